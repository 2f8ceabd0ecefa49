"""An on-disk FIFO of event lines: the write-ahead queue between scoring and a network sink.

Lines are appended to segment files (``<first record number>.jsonl``) with a plain ``write``
(they survive the daemon being killed; ``sync()`` fsyncs them for power loss). The sink reads
them in order and ``commit(n)`` advances a cursor (``cursor``: segment and byte offset) once the
receiver acknowledged them; fully consumed segments are deleted. After a restart everything
after the cursor is delivered again: at-least-once. When the spool outgrows ``max_bytes`` the
oldest segments are deleted and their unacknowledged records counted in ``dropped``.
"""
from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

log = logging.getLogger("edgefault.daemon")

SEGMENT_BYTES = 1 << 20


class Spool:
    def __init__(self, directory: str | os.PathLike[str], max_bytes: int = 256 << 20,
                 segment_bytes: int = SEGMENT_BYTES) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.segment_bytes = max(1, min(segment_bytes, max_bytes // 4))
        self.cond = threading.Condition()
        self.dropped = 0
        self._closed = False
        # segments: [first_record, path, n_records, n_bytes]
        self._segs: list[list] = []
        segs = []
        for p in self.dir.glob("*.jsonl"):
            if p.stem.isdigit():
                segs.append(p)
            else:  # not a segment of ours (a stray copy, an editor backup): left where it is
                log.warning("spool %s: ignoring %s (not a spool segment: segment files are <number>.jsonl)",
                            self.dir, p.name)
        for p in sorted(segs, key=lambda q: int(q.stem)):
            data = p.read_bytes()
            end = data.rfind(b"\n") + 1
            if end < len(data):  # torn final line after a crash: cut it
                with open(p, "r+b") as fh:
                    fh.truncate(end)
                data = data[:end]
            self._segs.append([int(p.stem), p, data.count(b"\n"), len(data)])
        self._next = (self._segs[-1][0] + self._segs[-1][2]) if self._segs else 0
        self._wfd: int | None = None
        # cursor: record number of the first unacknowledged record and its byte offset
        self._cursor_path = self.dir / "cursor"
        self._rec, self._off = self._read_cursor()
        self._read_rec, self._read_off = self._rec, self._off  # where peek continues
        self._cfd = os.open(self._cursor_path, os.O_RDWR | os.O_CREAT, 0o600)
        self._gc()

    # -- cursor ----------------------------------------------------------------------------------
    def _read_cursor(self) -> tuple[int, int]:
        first = self._segs[0][0] if self._segs else self._next
        try:
            rec, off = (int(x) for x in self._cursor_path.read_text().split())
        except (OSError, ValueError):
            return first, 0
        if rec < first:  # the segment it points into was dropped
            return first, 0
        seg = self._seg_of(rec)
        if seg is None:
            return self._next, 0
        return rec, off

    def _write_cursor(self) -> None:
        os.pwrite(self._cfd, f"{self._rec:20d} {self._off:20d}\n".encode(), 0)

    def _seg_of(self, rec: int) -> list | None:
        for s in self._segs:
            if s[0] <= rec < s[0] + s[2] or (rec == s[0] + s[2] and s is self._segs[-1]):
                return s
        return None

    # -- writer ----------------------------------------------------------------------------------
    def append(self, lines: list[bytes]) -> None:
        """Append complete lines (each ending in b'\\n')."""
        if not lines:
            return
        data = b"".join(lines)
        with self.cond:
            if self._closed:
                raise RuntimeError("spool is closed")
            if not self._segs or self._segs[-1][3] >= self.segment_bytes:
                self._roll()
            seg = self._segs[-1]
            assert self._wfd is not None
            os.write(self._wfd, data)
            seg[2] += len(lines)
            seg[3] += len(data)
            self._next += len(lines)
            if sum(s[3] for s in self._segs) > self.max_bytes:
                self._trim()
            self.cond.notify_all()

    def _roll(self) -> None:
        if self._wfd is not None:
            os.close(self._wfd)
        p = self.dir / f"{self._next:020d}.jsonl"
        self._wfd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._segs.append([self._next, p, 0, 0])

    def _open_last_for_append(self) -> None:
        if self._wfd is None and self._segs:
            self._wfd = os.open(self._segs[-1][1], os.O_WRONLY | os.O_APPEND)

    def _trim(self) -> None:
        while len(self._segs) > 1 and sum(s[3] for s in self._segs) > self.max_bytes:
            first, p, n, _ = self._segs.pop(0)
            unacked = max(0, first + n - max(self._rec, first))
            self.dropped += unacked
            p.unlink(missing_ok=True)
            if self._rec < first + n:
                self._rec, self._off = first + n, 0
                self._write_cursor()
            if self._read_rec < first + n:
                self._read_rec, self._read_off = first + n, 0

    def sync(self) -> None:
        with self.cond:
            if self._wfd is not None:
                os.fsync(self._wfd)
            os.fsync(self._cfd)

    # -- reader ----------------------------------------------------------------------------------
    @property
    def pending(self) -> int:
        """Records appended and not yet acknowledged."""
        with self.cond:
            return self._next - self._rec

    def peek(self, n: int, timeout: float | None = None) -> list[bytes]:
        """Up to n records after those already peeked and not committed; waits up to timeout."""
        with self.cond:
            if self._read_rec >= self._next and timeout:
                self.cond.wait(timeout)
            out: list[bytes] = []
            while len(out) < n and self._read_rec < self._next:
                seg = self._seg_of(self._read_rec)
                if seg is None:
                    break
                if seg[0] == self._read_rec:  # at the start of a segment
                    self._read_off = 0
                with open(seg[1], "rb") as fh:
                    fh.seek(self._read_off)
                    while len(out) < n and self._read_rec < seg[0] + seg[2]:
                        line = fh.readline()
                        if not line.endswith(b"\n"):
                            break
                        out.append(line)
                        self._read_rec += 1
                        self._read_off += len(line)
            return out

    def rewind(self) -> None:
        """Forget what was peeked and not committed (deliver it again)."""
        with self.cond:
            self._read_rec, self._read_off = self._rec, self._off

    def commit(self, n: int) -> None:
        """The first n peeked records were acknowledged."""
        with self.cond:
            target = min(self._rec + n, self._read_rec)
            # walk the cursor forward to target, tracking segment and offset
            while self._rec < target:
                seg = self._seg_of(self._rec)
                assert seg is not None
                if seg[0] == self._rec:
                    self._off = 0
                end = seg[0] + seg[2]
                step = min(target, end) - self._rec
                if step == end - self._rec:
                    self._rec, self._off = end, seg[3]
                else:
                    with open(seg[1], "rb") as fh:
                        fh.seek(self._off)
                        for _ in range(step):
                            self._off += len(fh.readline())
                    self._rec += step
            self._gc()
            self._write_cursor()

    def _gc(self) -> None:
        """Delete segments wholly before the cursor (never the one being written)."""
        while len(self._segs) > 1 and self._segs[0][0] + self._segs[0][2] <= self._rec:
            first, p, n, _ = self._segs.pop(0)
            p.unlink(missing_ok=True)
            if self._rec == first + n:
                self._rec, self._off = self._segs[0][0], 0
        if self._read_rec < self._rec:
            self._read_rec, self._read_off = self._rec, self._off
        self._open_last_for_append()

    def close(self) -> None:
        with self.cond:
            self._closed = True
            if self._wfd is not None:
                os.fsync(self._wfd)
                os.close(self._wfd)
                self._wfd = None
            os.fsync(self._cfd)
            os.close(self._cfd)
            self.cond.notify_all()
