"""Sample sources. Each runs in its own thread and hands (n_frames, n_channels) chunks to its
sensor's bounded queue (``SensorWorker.offer``); every packet or line it cannot use is counted
(``edgefault_packets_invalid_total{reason}``) and skipped, never fatal.
"""
from __future__ import annotations

import logging
import socket
import sys
import threading
import time
from typing import IO, Any, Protocol

import numpy as np

from edgefault.errors import EdgefaultError, InputError, MissingDependencyError
from edgefault.daemon import framing
from edgefault.daemon.config import SensorConfig, SourceConfig

log = logging.getLogger("edgefault.daemon")
MAX_TCP_SENDERS = 8  # concurrent connections per TCP source (bounded memory: one decoder buffer each)


class Worker(Protocol):  # what a source needs from its sensor (service.SensorWorker)
    id: str
    n_channels: int
    fs: float
    window: int
    metrics: Any

    def offer(self, chunk: np.ndarray, block: float | None = None, t_wall: float | None = None) -> bool: ...
    def gap(self, frames: int) -> None: ...


class Source:
    finite = False  # True when the source ends by itself (stdin EOF, file replay without loop)

    def __init__(self, cfg: SourceConfig, worker: Worker) -> None:
        self.cfg = cfg
        self.w = worker
        self.stop_event = threading.Event()
        self.finished = threading.Event()
        self.ready = threading.Event()  # listening / subscribed / port open (shown on /healthz)
        self.thread = threading.Thread(target=self._guarded, name=f"edgefault-src-{worker.id}", daemon=True)
        m, sid = worker.metrics, worker.id
        for r in ("malformed", "truncated", "oversized", "channels"):
            m.touch("edgefault_packets_invalid_total", sensor=sid, reason=r)
        for name in ("edgefault_packets_total", "edgefault_source_gaps_total", "edgefault_source_lost_packets_total",
                     "edgefault_source_late_packets_total", "edgefault_source_restarts_total",
                     "edgefault_source_errors_total"):
            m.touch(name, sensor=sid)

    def invalid(self, reason: str, detail: str = "") -> None:
        self.w.metrics.inc("edgefault_packets_invalid_total", sensor=self.w.id, reason=reason)
        log.debug("sensor %s: skipped %s input: %s", self.w.id, reason, detail)

    def start(self) -> None:
        self.thread.start()

    join_timeout = 5.0

    def stop(self) -> None:
        self.stop_event.set()
        self.close()
        self.thread.join(timeout=self.join_timeout)

    def close(self) -> None:
        pass

    def _guarded(self) -> None:
        try:
            self.run()
        except Exception as e:  # a source must never take the daemon down silently
            log.exception("sensor %s: source %s stopped: %s", self.w.id, self.cfg.type, e)
            self.w.metrics.inc("edgefault_source_errors_total", sensor=self.w.id)
        finally:
            self.finished.set()

    def run(self) -> None:
        raise NotImplementedError


# -- packet sources (UDP, TCP, MQTT) ---------------------------------------------------------------
class _PacketHandler:
    """Sequence tracking, channel checks and gap filling shared by the packet sources."""

    def __init__(self, src: Source) -> None:
        self.src = src
        self.tracker = framing.SequenceTracker(src.cfg.reorder_window)
        w = src.w
        # a gap is marked in full (t stays true) up to this many frames; a jump beyond that is more
        # likely a sender that lost its numbering than 10 minutes of lost packets
        self.fill_max = src.cfg.gap_fill_frames if src.cfg.gap_fill_frames is not None else int(600 * w.fs)

    def packet(self, h: framing.Header, data: np.ndarray) -> None:
        w = self.src.w
        if h.n_channels != w.n_channels:
            self.src.invalid("channels", f"packet has {h.n_channels} channels, the bundle expects {w.n_channels}")
            return
        t = self.tracker
        g0, lo0, la0, r0 = t.gaps, t.lost, t.late, t.restarts
        accept, lost = t.check(h.seq)
        m, sid = w.metrics, w.id
        if t.gaps != g0:
            m.inc("edgefault_source_gaps_total", sensor=sid)
            m.inc("edgefault_source_lost_packets_total", t.lost - lo0, sensor=sid)
        if t.late != la0:
            m.inc("edgefault_source_late_packets_total", sensor=sid)
        if t.restarts != r0:
            m.inc("edgefault_source_restarts_total", sensor=sid)
            log.info("sensor %s: sender restarted (sequence %d)", sid, h.seq)
        if not accept:
            return
        m.inc("edgefault_packets_total", sensor=sid)
        if lost and self.fill_max:
            w.gap(min(lost * max(h.n_frames, 1), self.fill_max))
        if h.n_frames:
            w.offer(data, t_wall=h.t_wall)


def _listen_error(sensor: str, proto: str, host: str, port: int, e: OSError) -> InputError:
    return InputError(f"sensor {sensor}: cannot listen on {proto} {host}:{port}: {e.strerror or e}")


class UdpSource(Source):
    def __init__(self, cfg: SourceConfig, worker: Worker) -> None:
        super().__init__(cfg, worker)
        assert cfg.listen is not None
        host, port = cfg.listen
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_DGRAM)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        except OSError:
            pass
        try:
            self.sock.bind((host, port))
        except OSError as e:
            self.sock.close()  # a failed start leaves no socket open
            raise _listen_error(worker.id, "udp", host, port, e) from None
        self.sock.settimeout(0.25)
        self.address = self.sock.getsockname()[:2]

    def run(self) -> None:
        self.ready.set()
        h = _PacketHandler(self)
        bufsize = max(self.cfg.max_packet_bytes, framing.HEADER_SIZE) + 1
        while not self.stop_event.is_set():
            try:
                pkt = self.sock.recv(bufsize)
            except socket.timeout:
                continue
            except OSError:
                if self.stop_event.is_set():
                    break
                raise
            try:
                hd, data = framing.decode(pkt, self.cfg.max_packet_bytes)
            except framing.PacketError as e:
                self.invalid(e.reason, str(e))
                continue
            h.packet(hd, data)

    def close(self) -> None:
        self.sock.close()


class TcpSource(Source):
    """Listens; each connection is a stream of packets with its own sequence numbering."""

    def __init__(self, cfg: SourceConfig, worker: Worker) -> None:
        super().__init__(cfg, worker)
        assert cfg.listen is not None
        host, port = cfg.listen
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.sock.bind((host, port))
            self.sock.listen(8)
        except OSError as e:
            self.sock.close()
            raise _listen_error(worker.id, "tcp", host, port, e) from None
        self.sock.settimeout(0.25)
        self.address = self.sock.getsockname()[:2]
        self.conns: set[socket.socket] = set()
        self.lock = threading.Lock()

    def run(self) -> None:
        self.ready.set()
        while not self.stop_event.is_set():
            try:
                conn, peer = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                if self.stop_event.is_set():
                    break
                raise
            with self.lock:
                if len(self.conns) >= MAX_TCP_SENDERS:
                    log.warning("sensor %s: refusing TCP sender %s: %d already connected", self.w.id, peer,
                                MAX_TCP_SENDERS)
                    self.w.metrics.inc("edgefault_source_errors_total", sensor=self.w.id)
                    conn.close()
                    continue
                self.conns.add(conn)
            conn.settimeout(0.25)
            threading.Thread(target=self._serve, args=(conn, peer), daemon=True,
                             name=f"edgefault-tcp-{self.w.id}").start()

    def _serve(self, conn: socket.socket, peer: Any) -> None:
        dec = framing.StreamDecoder(self.cfg.max_packet_bytes)
        h = _PacketHandler(self)
        log.info("sensor %s: TCP sender connected from %s", self.w.id, peer)
        try:
            while not self.stop_event.is_set():
                try:
                    data = conn.recv(1 << 16)
                except socket.timeout:
                    continue
                except OSError:
                    self.w.metrics.inc("edgefault_source_errors_total", sensor=self.w.id)
                    break
                if not data:
                    break
                for hd, arr in dec.feed(data):
                    h.packet(hd, arr)
                for r in dec.take_errors():
                    self.invalid(r, "bad header on the TCP stream; resynchronised on the next magic")
            left = dec.close()
            if left:
                self.invalid(left, "connection closed inside a packet")
        finally:
            with self.lock:
                self.conns.discard(conn)
            conn.close()
            log.info("sensor %s: TCP sender %s disconnected", self.w.id, peer)

    def close(self) -> None:
        self.sock.close()
        with self.lock:
            for c in list(self.conns):
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


class MqttSource(Source):
    """Subscribes to a topic; each message is one packet (framing.py)."""

    def __init__(self, cfg: SourceConfig, worker: Worker) -> None:
        super().__init__(cfg, worker)
        from edgefault.daemon.sinks import mqtt_client

        assert cfg.mqtt is not None
        self.m = cfg.mqtt
        self.handler = _PacketHandler(self)
        self.client = mqtt_client(self.m, f"edgefault-src-{worker.id}")
        self.client.reconnect_delay_set(1, 30)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.on_disconnect = lambda *a: self.ready.clear()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any = None) -> None:
        if rc.is_failure:
            log.warning("sensor %s: MQTT broker refused the connection: %s", self.w.id, rc)
            return
        client.subscribe(self.m.topic, qos=self.m.qos)

    def _on_subscribe(self, client: Any, userdata: Any, mid: Any, rcs: Any, props: Any = None) -> None:
        if all(not rc.is_failure for rc in rcs):
            self.ready.set()
        else:
            log.error("sensor %s: broker refused the subscription to %s: %s", self.w.id, self.m.topic, rcs)

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        try:
            hd, data = framing.decode(msg.payload, self.cfg.max_packet_bytes)
        except framing.PacketError as e:
            self.invalid(e.reason, str(e))
            return
        self.handler.packet(hd, data)

    def run(self) -> None:
        self.client.connect_async(self.m.host, self.m.port, keepalive=self.m.keepalive)
        self.client.loop_start()
        self.stop_event.wait()

    def close(self) -> None:
        try:
            self.client.disconnect()
            self.client.loop_stop()
        except Exception:
            pass


# -- byte streams (stdin, serial) ----------------------------------------------------------------------
class RawParser:
    """Raw little-endian int16 / float32 interleaved frames, or CSV lines (one frame per line)."""

    def __init__(self, fmt: str, n_channels: int, chunk_frames: int) -> None:
        self.fmt = fmt
        self.nc = n_channels
        self.chunk = chunk_frames
        self.buf = bytearray()
        self.dtype = np.dtype("<i2") if fmt == "int16" else np.dtype("<f4")
        self.bad_lines = 0

    def feed(self, data: bytes) -> list[np.ndarray]:
        self.buf += data
        if self.fmt == "csv":
            return self._csv()
        fb = self.nc * self.dtype.itemsize
        n = len(self.buf) // fb
        if n == 0:
            return []
        arr = np.frombuffer(bytes(self.buf[:n * fb]), dtype=self.dtype).reshape(n, self.nc)
        del self.buf[:n * fb]
        return [arr]

    def _csv(self) -> list[np.ndarray]:
        end = self.buf.rfind(b"\n") + 1
        if end == 0:
            if len(self.buf) > 1 << 16:  # a "line" this long is not a frame
                self.buf.clear()
                self.bad_lines += 1
            return []
        lines = bytes(self.buf[:end]).splitlines()
        del self.buf[:end]
        rows = []
        for ln in lines:
            s = ln.strip()
            if not s or s.startswith(b"#"):
                continue
            parts = s.replace(b";", b",").replace(b"\t", b",").split(b",")
            if len(parts) != self.nc:
                self.bad_lines += 1
                continue
            try:
                rows.append([float(p) for p in parts])
            except ValueError:
                self.bad_lines += 1  # a header line or garbage
        return [np.asarray(rows, dtype=np.float32)] if rows else []

    def close(self) -> bool:
        """True when a partial frame or line was left over."""
        left = bool(self.buf.strip()) if self.fmt == "csv" else bool(self.buf)
        if self.fmt == "csv" and left:
            self.buf += b"\n"
            return False
        self.buf.clear()
        return left


class _ByteStreamSource(Source):
    def _pump(self, read: Any) -> None:
        p = RawParser(self.cfg.format, self.w.n_channels, self.cfg.chunk_frames)
        want = self.cfg.chunk_frames * self.w.n_channels * (2 if self.cfg.format == "int16" else 4)
        while not self.stop_event.is_set():
            data = read(want)
            if data is None:
                continue
            if not data:
                break
            self._emit(p, p.feed(data), block=self.block)
        if p.close():
            self.invalid("truncated", "stream ended inside a frame")
        elif self.cfg.format == "csv":
            self._emit(p, p._csv(), block=self.block)

    block = False  # stdin: wait for queue room (the pipe pushes back) instead of dropping

    def _emit(self, p: RawParser, chunks: list[np.ndarray], block: bool = False) -> None:
        if p.bad_lines:
            self.w.metrics.inc("edgefault_packets_invalid_total", p.bad_lines, sensor=self.w.id, reason="malformed")
            p.bad_lines = 0
        for c in chunks:
            self.w.metrics.inc("edgefault_packets_total", sensor=self.w.id)
            while not self.w.offer(c, block=0.25 if block else None) and block and not self.stop_event.is_set():
                pass


class StdinSource(_ByteStreamSource):
    finite = True
    block = True
    join_timeout = 0.5  # a read from an idle pipe cannot be interrupted; the thread is a daemon thread

    def __init__(self, cfg: SourceConfig, worker: Worker, stream: IO[bytes] | None = None) -> None:
        super().__init__(cfg, worker)
        self.stream = stream if stream is not None else sys.stdin.buffer

    def run(self) -> None:
        self.ready.set()
        read1 = getattr(self.stream, "read1", self.stream.read)
        self._pump(read1)


class SerialSource(_ByteStreamSource):
    def __init__(self, cfg: SourceConfig, worker: Worker) -> None:
        super().__init__(cfg, worker)
        try:
            import serial
        except ImportError:
            raise MissingDependencyError("serial sources need pyserial: pip install edgefault[daemon]") from None
        self.serial_mod = serial
        self.port: Any = None

    def run(self) -> None:
        serial = self.serial_mod
        delay = 0.5
        while not self.stop_event.is_set():
            try:
                self.port = serial.Serial(self.cfg.device, self.cfg.baudrate, timeout=0.25)
            except (serial.SerialException, OSError) as e:
                log.warning("sensor %s: cannot open %s: %s", self.w.id, self.cfg.device, e)
                self.w.metrics.inc("edgefault_source_errors_total", sensor=self.w.id)
                self.stop_event.wait(delay)
                delay = min(delay * 2, 30.0)
                continue
            delay = 0.5
            port = self.port
            self.ready.set()

            def read(n: int) -> bytes | None:
                try:
                    d = port.read(max(1, min(n, port.in_waiting or 1)))
                except (serial.SerialException, OSError, TypeError):
                    return b""
                return d if d else None

            self._pump(read)
            self.ready.clear()
            try:
                port.close()
            except Exception:
                pass

    def close(self) -> None:
        if self.port is not None:
            try:
                self.port.cancel_read()
            except Exception:
                pass


# -- file replay ----------------------------------------------------------------------------------------
class FileSource(Source):
    """Replays a recording (any format read_recording reads) at ``speed`` x real time (0 = as fast
    as possible: the bounded queue blocks instead of dropping, so nothing is lost)."""

    def __init__(self, cfg: SourceConfig, worker: Worker, channels: list[str] | None) -> None:
        super().__init__(cfg, worker)
        self.finite = not cfg.loop
        from edgefault.io.readers import read_recording

        assert cfg.path is not None
        try:
            self.rec = read_recording(cfg.path, channels=channels, model_fs=worker.fs, default_fs=cfg.fs,
                                      assume_model_rate=cfg.assume_model_rate)
        except EdgefaultError as e:
            hint = (" (in the daemon config: fs = <Hz> or assume_model_rate = true in [sensor.source])"
                    if "--assume-model-rate" in str(e) else "")
            err = InputError if isinstance(e, InputError) else type(e)  # RateUnknownError takes more arguments
            raise err(f"sensor {worker.id}: file source: {e}{hint}") from None
        log.info("sensor %s: file source %s read at %g Hz (%s)", worker.id, cfg.path,
                 self.rec.source_fs or self.rec.fs, self.rec.fs_source)
        if self.rec.rate_warning:
            log.warning("sensor %s: file source: %s", worker.id, self.rec.rate_warning)
        if self.rec.data.shape[1] != worker.n_channels:
            from edgefault.daemon.config import ConfigError

            raise ConfigError(f"sensor {worker.id}: {cfg.path} gives {self.rec.data.shape[1]} channels "
                              f"({list(self.rec.channels)}), the bundle expects {worker.n_channels}; "
                              f"set channels = [...] in the sensor")

    def run(self) -> None:
        self.ready.set()
        data = self.rec.data
        step = self.cfg.chunk_frames
        rate = self.w.fs * self.cfg.speed
        while not self.stop_event.is_set():
            t0 = time.monotonic()
            for i in range(0, data.shape[0], step):
                if self.stop_event.is_set():
                    return
                if rate > 0:
                    due = t0 + i / rate
                    now = time.monotonic()
                    if due > now:
                        self.stop_event.wait(due - now)
                    self.w.offer(data[i:i + step])
                else:
                    while not self.w.offer(data[i:i + step], block=0.25):
                        if self.stop_event.is_set():
                            return
                self.w.metrics.inc("edgefault_packets_total", sensor=self.w.id)
            if not self.cfg.loop:
                return


def make_source(sc: SensorConfig, worker: Worker, stdin: IO[bytes] | None = None) -> Source:
    cfg = sc.source
    if cfg.type == "udp":
        return UdpSource(cfg, worker)
    if cfg.type == "tcp":
        return TcpSource(cfg, worker)
    if cfg.type == "mqtt":
        return MqttSource(cfg, worker)
    if cfg.type == "stdin":
        return StdinSource(cfg, worker, stdin)
    if cfg.type == "serial":
        return SerialSource(cfg, worker)
    if cfg.type == "file":
        return FileSource(cfg, worker, sc.channels)
    raise ValueError(cfg.type)
