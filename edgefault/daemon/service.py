"""The daemon: sensors (source -> bounded queue -> scoring thread), sinks, state, HTTP, systemd.

Threads: one per source (plus one per TCP connection), one scoring thread per sensor, one
delivery thread per network sink, one HTTP server thread; the main thread handles signals,
the systemd watchdog and periodic fsyncs.
"""
from __future__ import annotations

import json
import logging
import os
import queue
import signal
import socket
import threading
import time
from collections import deque
from pathlib import Path
from typing import IO, Any

import numpy as np

from edgefault import __version__
from edgefault.errors import EdgefaultError, InputError
from edgefault.device.runtime import FLAG_GAP, EventBatch, Runtime
from edgefault.device.state import read_state, write_state
from edgefault.daemon.config import DaemonConfig, SensorConfig, load_config
from edgefault.daemon.metrics import HttpServer, Metrics, process_gauges, process_start_time
from edgefault.daemon.sinks import Record, Sink, make_sink
from edgefault.daemon.sources import Source, make_source

log = logging.getLogger("edgefault.daemon")
STATE_FORMAT = 1


# -- systemd ------------------------------------------------------------------------------------------
def sd_notify(msg: str) -> bool:
    """Send a datagram to $NOTIFY_SOCKET (the sd_notify protocol); False when not under systemd."""
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return False
    if addr[0] == "@":
        addr = "\0" + addr[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            s.connect(addr)
            s.sendall(msg.encode())
        return True
    except OSError as e:
        log.warning("sd_notify(%s) failed: %s", msg.split("\n")[0], e)
        return False


def watchdog_interval() -> float | None:
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return int(usec) / 2e6
    except ValueError:
        return None


# -- state files ------------------------------------------------------------------------------------
class SeqFile:
    """The last event sequence number handed to the sinks, rewritten in place (pwrite) before each
    batch is emitted, so a killed daemon never reuses a number."""

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            self.value = int(os.pread(self.fd, 32, 0).split()[0])
        except (ValueError, IndexError):
            self.value = 0

    def write(self, value: int) -> None:
        os.pwrite(self.fd, f"{value:20d}\n".encode(), 0)
        self.value = value

    def sync(self) -> None:
        os.fsync(self.fd)

    def close(self) -> None:
        os.fsync(self.fd)
        os.close(self.fd)


# -- one sensor -------------------------------------------------------------------------------------------

def sink_alert(ev: Any, retrain_before: bool) -> tuple[bool, bool]:
    """(alert, retrain now): an event reaches ``only_alarms`` sinks when its window is anomalous,
    the alarm or the drift state changed, or retraining is newly recommended (the retrain flag
    stays up while drift persists: only its first window is an alert)."""
    retrain = bool(ev.retrain)
    return bool(ev.anomaly or ev.alarm_changed or ev.drift_changed or (retrain and not retrain_before)), retrain

class SensorWorker:
    def __init__(self, cfg: SensorConfig, daemon: "Daemon", rt: Runtime | None = None) -> None:
        self.cfg = cfg
        self.id = cfg.id
        self.daemon = daemon
        self.metrics = daemon.metrics
        self.rt = rt if rt is not None else self._runtime(cfg)
        self._bundle_mtime = Path(cfg.bundle).stat().st_mtime_ns
        self.n_channels = self.rt.spec.n_channels
        self.fs = self.rt.fs
        self.window = self.rt.spec.window
        # items: (receive time (monotonic), chunk, frames lost just before it: dropped chunks and
        # source gaps, the source's UTC time of the chunk's first frame or None, receive time (UTC))
        self.queue: queue.Queue[tuple[float, np.ndarray, int, float | None, float] | None] = \
            queue.Queue(maxsize=cfg.queue_chunks)
        self._lost = 0  # frames lost since the last queued chunk (under _lost_lock)
        self._lost_lock = threading.Lock()
        self.dropped_frames = 0
        self.pending_rt: Runtime | None = None
        self.state_path = Path(daemon.cfg.state_dir) / f"{self.id}.state.npz"
        self.seqfile = SeqFile(Path(daemon.cfg.state_dir) / f"{self.id}.seq")
        self.seq = self.seqfile.value  # next event gets seq + 1
        self.boot = 0
        self._retrain = False  # the last event recommended retraining (only its onset is an alert)
        self._restore()
        self.thread = threading.Thread(target=self._loop, name=f"edgefault-score-{self.id}", daemon=True)
        self._stop = threading.Event()
        self.next_save = time.monotonic() + daemon.cfg.state_interval
        self.source: Source | None = None
        m, sid = self.metrics, self.id
        for name in ("edgefault_samples_total", "edgefault_windows_scored_total", "edgefault_windows_invalid_total",
                     "edgefault_anomalies_total", "edgefault_alarms_total", "edgefault_state_saves_total"):
            m.touch(name, sensor=sid)
        m.touch("edgefault_dropped_frames_total", sensor=sid, reason="queue_full")
        m.set("edgefault_queue_capacity", cfg.queue_chunks, sensor=sid)
        m.set("edgefault_threshold", self.rt.threshold, sensor=sid)
        m.set("edgefault_alarm", int(self.rt.alarm), sensor=sid)  # restored state, until the first window
        self.started = time.monotonic()
        self._recent: deque[tuple[float, int]] = deque()  # (emit time, windows): windows per second
        self._recent_lock = threading.Lock()
        self._info()

    def _runtime(self, cfg: SensorConfig) -> Runtime:  # uses no worker state (Daemon.start calls it first)
        try:
            return Runtime(cfg.bundle, input_scale=cfg.input_scale, alarm_k=cfg.alarm_k, alarm_n=cfg.alarm_n,
                           drift=cfg.drift, adaptive_threshold=cfg.adaptive_threshold)
        except EdgefaultError as e:
            raise type(e)(f"sensor {cfg.id}: {e}") from None

    def _info(self) -> None:
        b = self.rt.bundle
        self.bundle_fields = {"bundle_id": b.bundle_id, "bundle_name": b.manifest.get("name"),
                              "bundle_created": b.manifest.get("created")}
        self.metrics.set("edgefault_sensor_bundle_info", 1, sensor=self.id, bundle_id=b.bundle_id)

    # -- intake (source threads) --
    def offer(self, chunk: np.ndarray, block: float | None = None, t_wall: float | None = None) -> bool:
        """Queue a chunk for scoring. Non-blocking (block=None): a full queue drops the chunk and
        counts it. Blocking (block=seconds): False after the timeout, nothing counted (the caller
        offers it again). ``t_wall``: the source's UTC time of the chunk's first frame (packet
        timestamp), else the events' wall time is the receive time."""
        n = int(chunk.shape[0])
        with self._lost_lock:  # the frames lost before this chunk travel with it, so the gap stays in place
            lost, self._lost = self._lost, 0
            item = (time.monotonic(), chunk, lost, t_wall, time.time())
            try:
                if block is None:
                    self.queue.put_nowait(item)
                else:
                    self.queue.put(item, timeout=block)
            except queue.Full:
                if block is not None:
                    self._lost = lost
                    return False
                self._lost = lost + n  # a dropped chunk becomes a marked gap, never a splice
                self.dropped_frames += n
                self.metrics.inc("edgefault_dropped_frames_total", n, sensor=self.id, reason="queue_full")
                self.metrics.inc("edgefault_samples_total", n, sensor=self.id)
                return False
        self.metrics.inc("edgefault_samples_total", n, sensor=self.id)
        return True

    def gap(self, frames: int) -> None:
        """Samples lost in a source gap: marked before the next chunk that arrives
        (Runtime.push_gap: windows spanning the gap come back invalid with the flag ``gap`` and
        `t` stays true). Never dropped."""
        with self._lost_lock:
            self._lost += int(frames)
        self.metrics.inc("edgefault_samples_total", int(frames), sensor=self.id)  # the fill counts, as before

    # -- scoring thread --
    def _loop(self) -> None:
        try:
            while True:
                try:
                    item = self.queue.get(timeout=0.2)
                except queue.Empty:
                    item = None
                    if self._stop.is_set():
                        break
                if item is not None:
                    self._handle(*item)
                if self.pending_rt is not None:
                    self._swap()
                if time.monotonic() >= self.next_save:
                    self.save_state()
            self.save_state()
        except Exception:
            log.exception("sensor %s: scoring thread failed", self.id)
            self.daemon.fatal.set()

    def _handle(self, t_recv: float, chunk: np.ndarray, lost: int, t_wall: float | None = None,
                t_recv_wall: float | None = None) -> None:
        """Score one queued chunk, after marking the frames lost just before it as a gap."""
        if lost:
            self._emit(t_recv, self.rt.push_gap(lost))
        try:
            events = self.rt.push(chunk, t_wall, t_received=t_recv_wall)
        except InputError as e:
            log.warning("sensor %s: chunk refused: %s", self.id, e)
            return
        self._emit(t_recv, events)

    def _emit(self, t_recv: float, events: EventBatch) -> None:
        if not events:
            return
        sid = self.id
        base = {"sensor": sid, **self.bundle_fields, "boot": self.boot}
        recs: list[Record] = []
        # counts from the batch's columns; the records need every event's dict
        n_inval = int(np.count_nonzero(~events.valid))
        n_anom = int(np.count_nonzero(events.anomaly))
        n_alarm = int(np.count_nonzero(events.alarm_changed & events.alarm))
        unscored: dict[str, int] = {}
        seq = self.seq
        self.seqfile.write(seq + len(events))
        dumps = json.dumps
        for ev in events:
            seq += 1
            d = ev.to_dict()
            d["window_seq"] = d.pop("seq")
            d = {**base, "seq": seq, **d, "dropped_frames": self.dropped_frames}
            recs.append(Record(sid, dumps(d, allow_nan=False, separators=(",", ":")).encode() + b"\n",
                               self._alert(ev)))
            if ev.score is None:
                why = ev.flags[0]
                unscored[why] = unscored.get(why, 0) + 1
                if why == "sensor_fault":
                    for ch, checks in d["health"].items():
                        for c in checks:
                            self.metrics.inc("edgefault_sensor_health_total", sensor=sid, channel=ch, check=c)
        self.seq = seq
        self.daemon.emit(recs)
        m = self.metrics
        m.inc("edgefault_windows_scored_total", len(events) - n_inval, sensor=sid)
        m.inc("edgefault_windows_invalid_total", n_inval, sensor=sid)
        for why, k in unscored.items():
            m.inc("edgefault_windows_unscored_total", k, sensor=sid, reason=why)
        m.inc("edgefault_anomalies_total", n_anom, sensor=sid)
        m.inc("edgefault_alarms_total", n_alarm, sensor=sid)
        m.set("edgefault_event_seq", seq, sensor=sid)
        self._state_gauges(events)
        now = time.monotonic()
        with self._recent_lock:
            self._recent.append((now, len(events)))
        m.observe(now - t_recv, sensor=sid)

    def _state_gauges(self, events: EventBatch) -> None:
        """The sensor's state after the batch's last window, for /metrics."""
        m, sid = self.metrics, self.id
        last = len(events) - 1
        m.set("edgefault_threshold", float(events.threshold[last]), sensor=sid)
        m.set("edgefault_alarm", int(events.alarm[last]), sensor=sid)
        if events.drift is not None:
            m.set("edgefault_drift", int(events.drift[last]), sensor=sid)
        if np.isfinite(events.t_wall[last]):
            m.set("edgefault_last_window_timestamp_seconds", float(events.t_wall[last]), sensor=sid)
        scored = np.flatnonzero(events.valid)
        if scored.size:
            k = int(scored[-1])
            m.set("edgefault_score", float(events.score[k]), sensor=sid)
            proba = events.proba
            if proba is not None and events.labels:
                for lab, v in zip(events.labels, proba[k]):
                    m.set("edgefault_class_probability", float(v), sensor=sid, label=lab)
        had_samples = np.flatnonzero((events.flag_bits & FLAG_GAP) == 0)
        if had_samples.size:
            row = events.health[int(had_samples[-1])]
            for ch, bits in zip(events.channels, row):
                m.set("edgefault_channel_healthy", int(bits == 0), sensor=sid, channel=ch)

    def windows_per_second(self, now: float, span: float = 10.0) -> float:
        """Windows emitted per second over the last ``span`` seconds (less right after start)."""
        with self._recent_lock:  # the scoring thread appends while /metrics reads
            recent = self._recent
            while recent and recent[0][0] < now - span:
                recent.popleft()
            n = sum(k for _, k in recent)
        elapsed = min(span, now - self.started)
        return n / elapsed if elapsed > 0 else 0.0

    def _swap(self) -> None:
        new, self.pending_rt = self.pending_rt, None
        assert new is not None
        old = self.rt
        # carry the partial window over when the framing is the same, so no sample is lost
        if new.bundle.bundle_id == old.bundle.bundle_id:  # same model, other settings: keep everything
            st = old.get_state()
            if (new._drift is None) != (old._drift is None) or (new._drift is not None and (
                    new._drift.has_score, new._drift.has_latent, new._drift.has_adaptive)
                    != (old._drift.has_score, old._drift.has_latent, old._drift.has_adaptive)):
                st["drift"] = None  # drift / adaptive settings changed: those monitors restart
            if new._drift is None or not new._drift.has_adaptive:  # else the restored level sets it
                st["alarm"]["threshold"] = new.threshold
                st["alarm"]["clear_threshold"] = float(new._alarm.clear_threshold)
            new.set_state(st)
        elif (new.spec.window, new.spec.hop, new.spec.channels, new.fs) == (old.spec.window, old.spec.hop,
                                                                              old.spec.channels, old.fs):
            st = old.get_state()
            new._pipeline.set_state(np.asarray(st["tail"], dtype=np.float32), st["frames_seen"])
            new._seq = old._seq
        self.rt = new
        self._info()
        log.info("sensor %s: now running bundle %s", self.id, new.bundle.bundle_id)

    def _alert(self, ev: Any) -> bool:
        """Whether ``only_alarms`` sinks get the event: see :func:`sink_alert`."""
        alert, self._retrain = sink_alert(ev, self._retrain)
        return alert

    # -- state --
    def _restore(self) -> None:
        if not self.state_path.exists():
            return
        try:
            meta = read_state(self.state_path)
        except InputError as e:
            log.warning("sensor %s: %s; starting fresh", self.id, e)
            return
        d = meta.pop("daemon", None)
        try:
            if d is not None and not isinstance(d, dict):
                raise TypeError(f"a JSON {type(d).__name__}, expected an object")
            d = d or {}
            seq, dropped, boot = int(d.get("seq", 0)), int(d.get("dropped_frames", 0)), int(d.get("boot", 0))
        except (TypeError, ValueError) as e:
            log.warning("sensor %s: state file %s: 'daemon' section ignored (%s)", self.id, self.state_path, e)
            seq = dropped = boot = 0
        self.seq = max(self.seq, seq)
        self.dropped_frames = dropped
        self.boot = boot + 1
        try:
            try:
                self.rt.set_state(meta)
            except InputError as e:
                if not meta.get("drift"):
                    raise
                log.warning("sensor %s: saved drift state not used (%s); monitors restart", self.id, e)
                self.rt.set_state(dict(meta, drift=None))
            log.info("sensor %s: state restored (window %d, event seq %d)", self.id, self.rt._seq, self.seq)
        except InputError as e:
            log.warning("sensor %s: saved state not used: %s", self.id, e)

    def save_state(self) -> None:
        st = self.rt.get_state()
        st["daemon"] = {"format": STATE_FORMAT, "seq": self.seq, "dropped_frames": self.dropped_frames,
                        "boot": self.boot, "sensor": self.id, "saved": time.time()}
        write_state(self.state_path, st)
        self.seqfile.sync()
        self.metrics.inc("edgefault_state_saves_total", sensor=self.id)
        self.next_save = time.monotonic() + self.daemon.cfg.state_interval

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        """Score everything queued, save the state (only when the scoring thread ran)."""
        self._stop.set()
        if self.thread.ident is not None:
            self.thread.join()
        self.close()

    def close(self) -> None:
        """Close the event-number file (idempotent)."""
        if self.seqfile.fd >= 0:
            self.seqfile.close()
            self.seqfile.fd = -1


# -- the daemon ----------------------------------------------------------------------------------------
class Daemon:
    def __init__(self, cfg: DaemonConfig, *, stdin: IO[bytes] | None = None, stdout: IO[bytes] | None = None) -> None:
        self.cfg = cfg
        self.metrics = Metrics()
        self.fatal = threading.Event()
        self.stopping = threading.Event()
        self.reload_requested = threading.Event()
        self._stdin, self._stdout = stdin, stdout
        self.sinks: list[Sink] = []
        self.workers: list[SensorWorker] = []
        self.http: HttpServer | None = None
        self._lockfd: int | None = None
        self._started = False  # start() completed; stop() is a no-op otherwise
        self._stopped = False
        self.metrics.set("edgefault_up", 1)
        self.metrics.set("edgefault_build_info", 1, version=__version__)
        self.metrics.gauge_callbacks.append(self._gauges)
        self.start_time = process_start_time()

    def _gauges(self, m: Metrics) -> None:
        now = time.monotonic()
        for w in self.workers:
            m.set("edgefault_queue_depth", w.queue.qsize(), sensor=w.id)
            m.set("edgefault_windows_per_second", w.windows_per_second(now), sensor=w.id)
        process_gauges(m, self.start_time)

    def health(self) -> tuple[bool, dict[str, Any]]:
        sensors = {w.id: {"scoring": w.thread.is_alive(), "source": bool(w.source and w.source.thread.is_alive()),
                          "source_ready": bool(w.source and w.source.ready.is_set()),
                          "queue": w.queue.qsize(), "seq": w.seq, "bundle_id": w.rt.bundle.bundle_id}
                   for w in self.workers}
        sinks = {s.id: {"ok": s.healthy(), "connected": getattr(s, "connected", True),
                        "spooled": s.spool.pending if hasattr(s, "spool") else 0} for s in self.sinks}
        # a source that ends by itself (stdin, file) may be done; any other must be running
        sources_ok = all(w.source is not None and (w.source.finite or w.source.thread.is_alive()) for w in self.workers)
        ok = all(v["scoring"] for v in sensors.values()) and all(v["ok"] for v in sinks.values()) \
            and sources_ok and not self.fatal.is_set()
        return ok, {"status": "ok" if ok else "failing", "version": __version__, "sensors": sensors, "sinks": sinks}

    def emit(self, records: list[Record]) -> None:
        for s in self.sinks:
            s.emit(records)

    # -- lifecycle --
    def start(self) -> None:
        """Load every bundle, take the state folder's lock, build sinks, sensors, sources and the
        HTTP server, then start their threads. A failure leaves nothing behind: bundles are loaded
        before the state folder is touched (a missing or bad bundle creates no file at all), and
        after a later failure (a port in use, an unwritable sink) everything built so far is
        closed, the lock released and the files and folders this call created are removed."""
        if self._started or self._stopped:
            raise RuntimeError("a Daemon starts once")
        runtimes = [SensorWorker._runtime(None, sc)  # type: ignore[arg-type]
                    for sc in self.cfg.sensors]
        sd = Path(self.cfg.state_dir)
        sd_existed = sd.is_dir()
        before = {p for p in sd.rglob("*")} if sd_existed else set()
        sink_paths = [Path(sc.path) for sc in self.cfg.sinks if sc.type == "file" and sc.path]
        new_sink_files = [p for p in sink_paths if not p.exists()]
        locked = False
        try:
            sd.mkdir(parents=True, exist_ok=True)
            self._lock(sd)
            locked = True
            for sc in self.cfg.sinks:
                self.sinks.append(make_sink(sc, self.metrics, sd, self._stdout))
            for sc, rt in zip(self.cfg.sensors, runtimes):
                self.workers.append(SensorWorker(sc, self, rt))
            for w, sc in zip(self.workers, self.cfg.sensors):
                w.source = make_source(sc, w, self._stdin)
            if self.cfg.http_listen is not None:
                host, port = self.cfg.http_listen
                try:
                    self.http = HttpServer(host, port, self.metrics, self.health)
                except OSError as e:
                    raise InputError(f"[http] cannot listen on {host}:{port}: {e.strerror or e}") from None
        except BaseException:
            if locked:  # remove what this call created, while still holding the lock
                self._remove_new(sd, before, sd_existed, new_sink_files)
            self._release_unstarted()
            raise
        for s in self.sinks:
            s.start()
        for w in self.workers:
            w.start()
            assert w.source is not None
            w.source.start()
        if self.http is not None:
            self.http.start()
        self._started = True
        log.info("edgefault %s serving %d sensor(s) to %d sink(s)%s", __version__, len(self.workers), len(self.sinks),
                 f"; metrics on http://{self.cfg.http_listen[0]}:{self.http.port}/metrics" if self.http else "")
        sd_notify(f"READY=1\nSTATUS=serving {len(self.workers)} sensor(s)\nMAINPID={os.getpid()}")

    @staticmethod
    def _remove_new(sd: Path, before: set[Path], sd_existed: bool, new_sink_files: list[Path]) -> None:
        """After a failed start: delete the files and folders it created (seq files, spools, the
        lock, empty new sink files, the state folder itself when it was new)."""
        for p in new_sink_files:
            try:
                if p.stat().st_size == 0:
                    p.unlink()
            except OSError:
                pass
        for p in sorted(sd.rglob("*"), key=lambda q: len(q.parts), reverse=True):
            if p not in before:
                try:
                    p.rmdir() if p.is_dir() and not p.is_symlink() else p.unlink()
                except OSError:
                    pass
        if not sd_existed:
            try:
                sd.rmdir()
            except OSError:
                pass

    def _release_unstarted(self) -> None:
        """Close what a failed start() built (no thread of it runs yet): sockets, files, the lock."""
        for w in self.workers:
            if w.source is not None:
                try:
                    w.source.close()
                except Exception:
                    log.debug("closing source of %s", w.id, exc_info=True)
            w.close()
        if self.http is not None:
            self.http.httpd.server_close()
            self.http = None
        for s in self.sinks:
            try:
                s.close()
            except Exception:
                log.debug("closing sink %s", s.id, exc_info=True)
        self.workers.clear()
        self.sinks.clear()
        if self._lockfd is not None:
            os.close(self._lockfd)
            self._lockfd = None

    def _lock(self, sd: Path) -> None:
        import fcntl

        path = sd / "lock"
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                raise InputError(f"state directory {sd} is in use by another edgefault daemon") from None
            try:  # a failed start removes a lock file it created: retry when ours was unlinked meanwhile
                if os.stat(path).st_ino == os.fstat(fd).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
        self._lockfd = fd

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT (or until every finite source has ended); 0 on a clean stop."""
        wd = watchdog_interval() if self.cfg.watchdog else None
        next_wd = time.monotonic()
        next_sync = time.monotonic() + self.cfg.fsync_interval
        while not self.stopping.is_set() and not self.fatal.is_set():
            self.stopping.wait(0.1)
            now = time.monotonic()
            if self.reload_requested.is_set():
                self.reload_requested.clear()
                self.reload()
            if wd is not None and now >= next_wd and self.health()[0]:
                sd_notify("WATCHDOG=1")
                next_wd = now + wd
            if now >= next_sync:
                for s in self.sinks:
                    s.sync()
                for w in self.workers:
                    w.seqfile.sync()
                next_sync = now + self.cfg.fsync_interval
            if all(w.source is not None and w.source.finite and w.source.finished.is_set() for w in self.workers):
                log.info("every source has ended; stopping")
                break
        self.stop()
        return 1 if self.fatal.is_set() else 0

    def stop(self, grace: float = 2.0) -> None:
        """Stop a started daemon: score what is queued, save state, release the lock. A no-op
        when start() did not complete (it cleaned up after itself) or stop() already ran."""
        if not self._started or self._stopped:
            return
        self._stopped = True
        sd_notify("STOPPING=1")
        for w in self.workers:
            if w.source is not None:
                w.source.stop()
        for w in self.workers:
            w.stop()  # drains its queue, saves state
            m = self.metrics
            inv = {r: int(m.get("edgefault_packets_invalid_total", sensor=w.id, reason=r))
                   for r in ("malformed", "truncated", "oversized", "channels")}
            log.info("sensor %s: %d frames, %d windows scored, %d invalid, %d frames dropped, invalid input %s, "
                     "last event seq %d", w.id, m.get("edgefault_samples_total", sensor=w.id),
                     m.get("edgefault_windows_scored_total", sensor=w.id),
                     m.get("edgefault_windows_invalid_total", sensor=w.id),
                     m.get("edgefault_dropped_frames_total", sensor=w.id, reason="queue_full"),
                     " ".join(f"{k}={v}" for k, v in inv.items()), w.seq)
        for s in self.sinks:
            s.stop(grace)
        if self.http is not None:
            self.http.stop()
        if self._lockfd is not None:
            os.close(self._lockfd)
            self._lockfd = None
        log.info("stopped; state saved in %s", self.cfg.state_dir)

    def reload(self) -> None:
        """SIGHUP: re-read the config; sensors whose bundle or alarm settings changed get a new Runtime,
        swapped in by their scoring thread between two chunks (no queued sample is lost). Changes to
        sources, sinks or listeners need a restart and are reported."""
        sd_notify(f"RELOADING=1\nMONOTONIC_USEC={time.monotonic_ns() // 1000}")
        try:
            new = load_config(self.cfg.path)
            by_id = {s.id: s for s in new.sensors}
            if set(by_id) != {w.id for w in self.workers}:
                raise InputError("the set of sensor ids changed; restart the daemon to add or remove sensors")
            swaps = []
            for w in self.workers:
                nc = by_id[w.id]
                if nc.source != w.cfg.source:
                    log.warning("sensor %s: source settings changed; they take effect after a restart", w.id)
                changed = (nc.bundle, nc.input_scale, nc.alarm_k, nc.alarm_n, nc.drift, nc.adaptive_threshold) != (
                    w.cfg.bundle, w.cfg.input_scale, w.cfg.alarm_k, w.cfg.alarm_n, w.cfg.drift,
                    w.cfg.adaptive_threshold)
                mtime_changed = Path(nc.bundle).stat().st_mtime_ns != w._bundle_mtime
                if changed or mtime_changed:
                    rt = w._runtime(nc)
                    if rt.spec.n_channels != w.n_channels:
                        raise InputError(f"sensor {w.id}: new bundle has {rt.spec.n_channels} channels, the "
                                         f"running one {w.n_channels}; restart the daemon")
                    swaps.append((w, nc, rt))
            if new.sinks != self.cfg.sinks or new.http_listen != self.cfg.http_listen:
                log.warning("sink or http settings changed; they take effect after a restart")
            for w, nc, rt in swaps:
                w.cfg.bundle, w.cfg.input_scale, w.cfg.alarm_k, w.cfg.alarm_n = (nc.bundle, nc.input_scale,
                                                                                  nc.alarm_k, nc.alarm_n)
                w.cfg.drift, w.cfg.adaptive_threshold = nc.drift, nc.adaptive_threshold
                w._bundle_mtime = Path(nc.bundle).stat().st_mtime_ns
                w.pending_rt = rt
            self.metrics.inc("edgefault_reloads_total", result="ok")
            log.info("reloaded %s: %d sensor(s) get a new bundle", self.cfg.path, len(swaps))
        except (EdgefaultError, OSError) as e:
            self.metrics.inc("edgefault_reloads_total", result="failed")
            log.error("reload failed, keeping the running configuration: %s", e)
        sd_notify("READY=1")


def serve(config_path: str, *, log_level: str | None = None) -> int:
    cfg = load_config(config_path)
    logging.basicConfig(level=(log_level or cfg.log_level).upper(),
                        format="%(levelname)s %(name)s: %(message)s")
    d = Daemon(cfg)

    def on_term(signum: int, frame: Any) -> None:
        d.stopping.set()

    def on_hup(signum: int, frame: Any) -> None:
        d.reload_requested.set()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    signal.signal(signal.SIGHUP, on_hup)
    d.start()  # a failed start releases everything itself (no lock, no state files, no "state saved")
    return d.run()
