"""Sample packet framing for UDP, TCP and MQTT sources (documented in docs/daemon.md).

A packet is a little-endian header (16 bytes in version 1, 24 in version 2) followed by the
samples::

    offset size field
    0      4    magic        b"EFS1"
    4      1    version      1 or 2
    5      1    format       1 = int16, 2 = float32 (little-endian)
    6      2    n_channels   uint16, 1..1024
    8      4    seq          uint32 packet sequence number, +1 per packet, wraps at 2**32
    12     4    n_frames     uint32, frames (samples per channel) in this packet
    16     8    t_ns         version 2 only: int64, UTC time of the packet's first frame in
                             nanoseconds since 1970-01-01 (0 = the sender has no clock)
    16/24  ...  payload      n_frames * n_channels samples, interleaved frame by frame

UDP: one packet per datagram (the datagram length must equal 16 + payload). TCP: packets back
to back on the stream; after a bad header the reader skips to the next magic. MQTT: one packet
per message.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from edgefault.errors import InputError

MAGIC = b"EFS1"
VERSION = 2  # what encode() writes with a timestamp; version 1 packets (no timestamp) are read too
HEADER = struct.Struct("<4sBBHII")
HEADER_SIZE = HEADER.size  # 16: the version-1 header, the smallest
T_NS = struct.Struct("<q")
HEADER_SIZES = {1: HEADER_SIZE, 2: HEADER_SIZE + T_NS.size}
MAX_HEADER_SIZE = max(HEADER_SIZES.values())
FORMATS = {1: np.dtype("<i2"), 2: np.dtype("<f4")}
FORMAT_CODES = {"int16": 1, "float32": 2}
MAX_CHANNELS = 1024


class PacketError(InputError):
    """A packet that cannot be used (an :class:`~edgefault.errors.InputError`, so a ``ValueError``);
    ``reason`` is one of malformed, truncated, oversized, channels."""

    def __init__(self, reason: str, msg: str) -> None:
        super().__init__(msg)
        self.reason = reason


@dataclass(frozen=True)
class Header:
    format: int
    n_channels: int
    seq: int
    n_frames: int
    version: int = 1
    t_ns: int = 0  # version 2: UTC ns of the first frame; 0 = none

    @property
    def size(self) -> int:
        """Header bytes (16 or 24)."""
        return HEADER_SIZES[self.version]

    @property
    def t_wall(self) -> float | None:
        """UTC POSIX seconds of the first frame, None without a timestamp."""
        return self.t_ns / 1e9 if self.t_ns else None

    @property
    def payload_bytes(self) -> int:
        return self.n_frames * self.n_channels * FORMATS[self.format].itemsize


def encode(seq: int, samples: np.ndarray, fmt: str = "float32", t_ns: int | None = None) -> bytes:
    """Build a packet from (n_frames, n_channels) samples (sender side; used by tests and bench):
    version 2 with ``t_ns`` (UTC nanoseconds of the first frame), version 1 without."""
    code = FORMAT_CODES[fmt]
    x = np.asarray(samples)
    if x.ndim == 1:
        x = x[:, None]
    data = np.ascontiguousarray(x, dtype=FORMATS[code]).tobytes()
    version = 1 if t_ns is None else 2
    head = HEADER.pack(MAGIC, version, code, x.shape[1], seq & 0xFFFFFFFF, x.shape[0])
    return head + (T_NS.pack(t_ns) if t_ns is not None else b"") + data


def parse_header(buf: bytes | memoryview, max_packet_bytes: int) -> Header:
    if len(buf) < HEADER_SIZE:
        raise PacketError("truncated", f"packet of {len(buf)} bytes is shorter than the {HEADER_SIZE}-byte header")
    magic, version, fmt, nch, seq, nfr = HEADER.unpack_from(buf, 0)
    if magic != MAGIC:
        raise PacketError("malformed", f"packet has bad magic {bytes(magic)!r}, expected {MAGIC!r}")
    if version not in HEADER_SIZES:
        raise PacketError("malformed", f"packet version {version} is not supported (expected 1 or 2)")
    size = HEADER_SIZES[version]
    if len(buf) < size:
        raise PacketError("truncated", f"packet of {len(buf)} bytes is shorter than the {size}-byte version "
                                       f"{version} header")
    t_ns = T_NS.unpack_from(buf, HEADER_SIZE)[0] if version == 2 else 0
    if t_ns < 0:
        raise PacketError("malformed", f"packet timestamp t_ns {t_ns} is negative (0 = none)")
    if fmt not in FORMATS:
        raise PacketError("malformed", f"packet sample format code {fmt} is unknown (1 = int16, 2 = float32)")
    if not 1 <= nch <= MAX_CHANNELS:
        raise PacketError("malformed", f"packet n_channels {nch} is outside 1..{MAX_CHANNELS}")
    h = Header(fmt, nch, seq, nfr, version, t_ns)
    if size + h.payload_bytes > max_packet_bytes:
        raise PacketError("oversized", f"packet of {size + h.payload_bytes} bytes exceeds "
                                       f"max_packet_bytes {max_packet_bytes}")
    return h


def decode(buf: bytes | memoryview, max_packet_bytes: int) -> tuple[Header, np.ndarray]:
    """Parse one whole packet (UDP datagram / MQTT message) -> header and (n_frames, n_channels)."""
    if len(buf) > max_packet_bytes:
        raise PacketError("oversized", f"packet of {len(buf)} bytes exceeds max_packet_bytes {max_packet_bytes}")
    h = parse_header(buf, max_packet_bytes)
    want = h.size + h.payload_bytes
    if len(buf) < want:
        raise PacketError("truncated", f"packet has {len(buf)} bytes, its header announces {want}")
    if len(buf) > want:
        raise PacketError("malformed", f"packet has {len(buf)} bytes, its header announces {want}")
    data = np.frombuffer(buf, dtype=FORMATS[h.format], offset=h.size, count=h.n_frames * h.n_channels)
    return h, data.reshape(h.n_frames, h.n_channels)


class StreamDecoder:
    """Incremental TCP decoder: feed bytes, get packets; resynchronises on the magic."""

    def __init__(self, max_packet_bytes: int) -> None:
        self.max = max_packet_bytes
        self.buf = bytearray()
        self.errors: list[str] = []  # reasons since the last call to take_errors()
        self._in_sync = True

    def feed(self, data: bytes) -> list[tuple[Header, np.ndarray]]:
        """Append bytes; return the complete packets now available. Each stretch of bytes
        skipped to resynchronise counts once in ``errors`` (with the reason that started it)."""
        buf = self.buf
        buf += data
        out = []
        while buf:
            n = len(buf)
            k = min(4, n)
            if buf[:k] != MAGIC[:k]:
                nxt = buf.find(MAGIC, 1)
                if nxt < 0:  # keep a tail that may be the start of the next magic
                    keep = next((j for j in (3, 2, 1) if n > j and buf[n - j:] == MAGIC[:j]), 0)
                    nxt = n - keep
                self._skip(nxt, "malformed")
                continue
            if n < HEADER_SIZE or (buf[4] == 2 and n < HEADER_SIZES[2]):
                break
            try:
                h = parse_header(bytes(buf[:MAX_HEADER_SIZE]), self.max)
            except PacketError as e:
                self._skip(1, e.reason)
                continue
            want = h.size + h.payload_bytes
            if n < want:
                break
            arr = np.frombuffer(bytes(buf[h.size:want]), dtype=FORMATS[h.format])
            out.append((h, arr.reshape(h.n_frames, h.n_channels)))
            del buf[:want]
            self._in_sync = True
        return out

    def _skip(self, n: int, reason: str) -> None:
        if self._in_sync:
            self.errors.append(reason)
            self._in_sync = False
        del self.buf[:n]

    def take_errors(self) -> list[str]:
        e, self.errors = self.errors, []
        return e

    def close(self) -> str | None:
        """End of stream: a partial packet left over is 'truncated'."""
        left = len(self.buf)
        self.buf.clear()
        return "truncated" if left else None


class SequenceTracker:
    """Classifies packet sequence numbers: in order, gap (lost packets), late/duplicate, restart.

    ``check(seq)`` returns (accept, lost): accept False for a late or duplicate packet (dropped),
    lost = number of packets missing before this one. A jump back by more than ``reorder_window``
    is taken as the sender restarting and accepted.
    """

    def __init__(self, reorder_window: int = 1024) -> None:
        self.window = reorder_window
        self.expected: int | None = None
        self.gaps = self.lost = self.late = self.restarts = 0

    def check(self, seq: int) -> tuple[bool, int]:
        if self.expected is None:
            self.expected = (seq + 1) & 0xFFFFFFFF
            return True, 0
        ahead = (seq - self.expected) & 0xFFFFFFFF
        if ahead == 0:
            self.expected = (seq + 1) & 0xFFFFFFFF
            return True, 0
        behind = (self.expected - seq) & 0xFFFFFFFF
        if behind <= self.window:
            self.late += 1
            return False, 0
        if ahead < 0x80000000 and ahead <= (1 << 24):
            self.gaps += 1
            self.lost += ahead
            self.expected = (seq + 1) & 0xFFFFFFFF
            return True, ahead
        self.restarts += 1
        self.expected = (seq + 1) & 0xFFFFFFFF
        return True, 0
