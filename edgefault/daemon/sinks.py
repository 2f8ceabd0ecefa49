"""Event sinks: JSON lines to stdout or a rotating file; MQTT and HTTP webhook behind an on-disk spool.

Every sink receives records (:class:`Record`: sensor id, JSON line, alert) from the scoring
threads through ``emit``. Stdout and file sinks write at once. MQTT and webhook sinks append to their
:class:`~edgefault.daemon.spool.Spool` (fast, survives a kill) and a delivery thread sends the
spooled lines in order, committing them only when the receiver acknowledged them (MQTT PUBACK at
QoS 1, HTTP 2xx): at-least-once delivery, in order, across broker outages and restarts.
"""
from __future__ import annotations

import logging
import os
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Any, NamedTuple

from edgefault.errors import MissingDependencyError
from edgefault.daemon.config import MQTTConfig, SinkConfig
from edgefault.daemon.metrics import Metrics
from edgefault.daemon.spool import Spool

log = logging.getLogger("edgefault.daemon")


class Record(NamedTuple):
    """One event on its way to the sinks (a tuple, so building one per event stays cheap)."""

    sensor: str
    """Id of the sensor that produced the event (MQTT topics fill ``{sensor}`` with it)."""
    line: bytes
    """The event as one JSON object, UTF-8, ending in ``b"\\n"``."""
    alert: bool
    """Whether sinks with ``only_alarms`` get it: the window was anomalous, the alarm changed, the
    drift state changed (onset or end) or retraining is recommended."""


def import_paho() -> Any:
    try:
        import paho.mqtt.client as mqtt
    except ImportError:
        raise MissingDependencyError("MQTT needs paho-mqtt: pip install edgefault[daemon]") from None
    return mqtt


def mqtt_client(cfg: MQTTConfig, client_id: str) -> Any:
    """A paho-mqtt 2.x client configured for TLS and username/password as the config says."""
    mqtt = import_paho()
    c = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id=cfg.client_id or client_id,
                    clean_session=True)
    if cfg.username is not None:
        c.username_pw_set(cfg.username, cfg.password)
    if cfg.tls is not None:
        c.tls_set(ca_certs=cfg.tls.ca_file, certfile=cfg.tls.cert_file, keyfile=cfg.tls.key_file)
        if cfg.tls.insecure:
            c.tls_insecure_set(True)
    return c


class Sink:
    def __init__(self, cfg: SinkConfig, metrics: Metrics) -> None:
        self.cfg = cfg
        self.id = cfg.id
        self.metrics = metrics
        metrics.touch("edgefault_sink_events_total", sink=self.id)
        metrics.touch("edgefault_sink_errors_total", sink=self.id)
        metrics.touch("edgefault_sink_dropped_events_total", sink=self.id)

    def select(self, records: list[Record]) -> list[Record]:
        return [r for r in records if r.alert] if self.cfg.only_alarms else records

    def emit(self, records: list[Record]) -> None:
        raise NotImplementedError

    def start(self) -> None:
        pass

    def sync(self) -> None:
        pass

    def stop(self, grace: float = 0.0) -> None:
        pass

    def close(self) -> None:
        """Release a sink that was never started (the daemon's start failed)."""

    def healthy(self) -> bool:
        return True


class StdoutSink(Sink):
    def __init__(self, cfg: SinkConfig, metrics: Metrics, stream: IO[bytes] | None = None) -> None:
        super().__init__(cfg, metrics)
        self.stream = stream if stream is not None else sys.stdout.buffer
        self.lock = threading.Lock()
        self.broken = False

    def emit(self, records: list[Record]) -> None:
        recs = self.select(records)
        if not recs or self.broken:
            return
        with self.lock:
            try:
                self.stream.write(b"".join(r.line for r in recs))
                self.stream.flush()
            except (BrokenPipeError, ValueError, OSError):
                self.broken = True
                self.metrics.inc("edgefault_sink_errors_total", sink=self.id)
                log.error("sink %s: stdout is closed; events are no longer written there", self.id)
                return
        self.metrics.inc("edgefault_sink_events_total", len(recs), sink=self.id)

    def healthy(self) -> bool:
        return not self.broken


class FileSink(Sink):
    """JSON lines appended to ``path``; rotated to path.1 .. path.<backups> past ``max_bytes``."""

    def __init__(self, cfg: SinkConfig, metrics: Metrics) -> None:
        super().__init__(cfg, metrics)
        assert cfg.path is not None
        self.path = Path(cfg.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()
        self.fh = open(self.path, "ab")
        self.size = self.fh.tell()

    def _rotate(self) -> None:
        self.fh.close()
        n = self.cfg.backups
        if n == 0:
            self.path.unlink(missing_ok=True)
        else:
            for i in range(n - 1, 0, -1):
                src = self.path.with_name(f"{self.path.name}.{i}")
                if src.exists():
                    os.replace(src, self.path.with_name(f"{self.path.name}.{i + 1}"))
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        self.fh = open(self.path, "ab")
        self.size = 0

    def emit(self, records: list[Record]) -> None:
        recs = self.select(records)
        if not recs:
            return
        data = b"".join(r.line for r in recs)
        with self.lock:
            if self.size and self.size + len(data) > self.cfg.max_bytes:
                self._rotate()
            self.fh.write(data)
            self.fh.flush()
            self.size += len(data)
        self.metrics.inc("edgefault_sink_events_total", len(recs), sink=self.id)

    def sync(self) -> None:
        with self.lock:
            os.fsync(self.fh.fileno())

    def stop(self, grace: float = 0.0) -> None:
        with self.lock:
            self.fh.flush()
            os.fsync(self.fh.fileno())
            self.fh.close()

    def close(self) -> None:
        with self.lock:
            self.fh.close()


class SpooledSink(Sink):
    """Base of network sinks: emit -> spool; a thread delivers batches and commits on success."""

    def __init__(self, cfg: SinkConfig, metrics: Metrics, state_dir: str | Path) -> None:
        super().__init__(cfg, metrics)
        self.spool = Spool(Path(state_dir) / "spool" / cfg.id, max_bytes=cfg.spool_max_bytes)
        self._stop = threading.Event()
        self.connected = False
        self.thread = threading.Thread(target=self._loop, name=f"edgefault-sink-{cfg.id}", daemon=True)
        self._dropped_seen = self.spool.dropped
        metrics.set("edgefault_sink_connected", 0.0, sink=self.id)
        metrics.set("edgefault_sink_spool_events", self.spool.pending, sink=self.id)

    def emit(self, records: list[Record]) -> None:
        recs = self.select(records)
        if recs:
            self.spool.append([r.sensor.encode() + b"\t" + r.line for r in recs])
            self._count_drops()

    def _count_drops(self) -> None:
        d = self.spool.dropped
        if d != self._dropped_seen:
            self.metrics.inc("edgefault_sink_dropped_events_total", d - self._dropped_seen, sink=self.id)
            log.warning("sink %s: spool over %d bytes, %d oldest events dropped", self.id,
                        self.cfg.spool_max_bytes, d - self._dropped_seen)
            self._dropped_seen = d

    def start(self) -> None:
        self.thread.start()

    def sync(self) -> None:
        self.spool.sync()

    def _loop(self) -> None:
        delay = self.cfg.retry_initial
        while not self._stop.is_set():
            batch = self.spool.peek(self.cfg.batch, timeout=0.2)
            self.metrics.set("edgefault_sink_spool_events", self.spool.pending, sink=self.id)
            if not batch:
                continue
            try:
                ok = self.deliver([self._split(b) for b in batch])
            except Exception as e:  # never let the delivery thread die
                log.warning("sink %s: delivery failed: %s: %s", self.id, type(e).__name__, e)
                ok = False
            if ok:
                self.spool.commit(len(batch))
                self.metrics.inc("edgefault_sink_dropped_events_total" if ok == "rejected" else
                                 "edgefault_sink_events_total", len(batch), sink=self.id)
                if not self.connected:
                    log.info("sink %s: delivering again", self.id)
                self.connected = True
                delay = self.cfg.retry_initial
            else:
                self.spool.rewind()
                self.metrics.inc("edgefault_sink_errors_total", sink=self.id)
                self.connected = False
                self._stop.wait(delay)
                delay = min(delay * 2, self.cfg.retry_max)
            self.metrics.set("edgefault_sink_connected", 1.0 if self.connected else 0.0, sink=self.id)

    @staticmethod
    def _split(line: bytes) -> tuple[str, bytes]:
        sensor, _, payload = line.partition(b"\t")
        return sensor.decode(), payload.rstrip(b"\n")

    def deliver(self, batch: list[tuple[str, bytes]]) -> bool | str:
        """True: acknowledged; False: retry later; "rejected": the receiver refused it for good."""
        raise NotImplementedError

    def stop(self, grace: float = 0.0) -> None:
        """Stop delivering after at most ``grace`` seconds spent emptying the spool; what is left
        stays spooled for the next start."""
        deadline = time.monotonic() + grace
        while self.spool.pending and self.connected and time.monotonic() < deadline:
            time.sleep(0.02)
        self._stop.set()
        if self.thread.is_alive():
            self.thread.join(timeout=self.cfg.timeout + 12)
        self.close_transport()
        self.spool.close()

    def close_transport(self) -> None:
        pass

    def close(self) -> None:
        self.close_transport()
        self.spool.close()

    def healthy(self) -> bool:
        return self.thread.is_alive()


class MqttSink(SpooledSink):
    def __init__(self, cfg: SinkConfig, metrics: Metrics, state_dir: str | Path) -> None:
        import_paho()  # fail at start, not in the thread
        super().__init__(cfg, metrics, state_dir)
        assert cfg.mqtt is not None
        self.m = cfg.mqtt
        self.client: Any = None
        self._conn = threading.Event()
        self._reachable = True

    def _connect(self) -> bool:
        c = mqtt_client(self.m, f"edgefault-{self.id}-{os.getpid()}")
        c.max_inflight_messages_set(max(20, self.cfg.batch))
        c.connect_timeout = 5.0
        conn = self._conn
        conn.clear()

        def on_connect(client: Any, userdata: Any, flags: Any, rc: Any, props: Any = None) -> None:
            if not rc.is_failure:
                conn.set()
            else:
                log.warning("sink %s: broker refused the connection: %s", self.id, rc)

        def on_disconnect(client: Any, userdata: Any, flags: Any, rc: Any, props: Any = None) -> None:
            conn.clear()

        c.on_connect = on_connect
        c.on_disconnect = on_disconnect
        try:
            c.connect(self.m.host, self.m.port, keepalive=self.m.keepalive)
        except (OSError, ValueError) as e:
            # once per outage at warning level; the retries that follow at debug level
            (log.warning if self._reachable else log.debug)("sink %s: cannot reach broker %s:%d: %s; events are "
                                                             "spooled", self.id, self.m.host, self.m.port, e)
            self._reachable = False
            return False
        c.loop_start()
        if not conn.wait(min(5.0, self.cfg.retry_max)):
            c.loop_stop()
            c.disconnect()
            return False
        self.client = c
        self._reachable = True
        return True

    def deliver(self, batch: list[tuple[str, bytes]]) -> bool:
        if self.client is None or not self._conn.is_set():
            self.close_transport()
            if not self._connect():
                return False
        c = self.client
        infos = [c.publish(self.m.topic.replace("{sensor}", s), p, qos=self.m.qos, retain=self.m.retain)
                 for s, p in batch]
        deadline = time.monotonic() + 10.0
        for info in infos:
            while not info.is_published():
                if not self._conn.is_set() or time.monotonic() > deadline or info.rc != 0:
                    self.close_transport()
                    return False
                time.sleep(0.001)
        return True

    def close_transport(self) -> None:
        c, self.client = self.client, None
        if c is not None:
            try:
                c.disconnect()
                c.loop_stop()
            except Exception:  # a dead socket may complain; it is gone either way
                pass


class WebhookSink(SpooledSink):
    """POST a JSON array of events; 2xx commits, 408/429/5xx and network errors are retried with
    exponential backoff, other 4xx answers drop the batch (counted) since retrying cannot help."""

    def deliver(self, batch: list[tuple[str, bytes]]) -> bool | str:
        assert self.cfg.url is not None
        body = b"[" + b",".join(p for _, p in batch) + b"]"
        req = urllib.request.Request(self.cfg.url, data=body, method="POST",
                                     headers={"Content-Type": "application/json", **self.cfg.headers})
        try:
            with urllib.request.urlopen(req, timeout=self.cfg.timeout) as resp:
                resp.read()
            return True
        except urllib.error.HTTPError as e:
            if e.code in (408, 429) or e.code >= 500:
                log.warning("sink %s: %s answered %d; retrying", self.id, self.cfg.url, e.code)
                return False
            log.error("sink %s: %s rejected %d events with %d %s; dropped", self.id, self.cfg.url,
                      len(batch), e.code, e.reason)
            return "rejected"
        except (urllib.error.URLError, OSError) as e:
            if self.connected:
                log.warning("sink %s: %s unreachable: %s", self.id, self.cfg.url, e)
            return False


def make_sink(cfg: SinkConfig, metrics: Metrics, state_dir: str | Path, stdout: IO[bytes] | None = None) -> Sink:
    if cfg.type == "stdout":
        return StdoutSink(cfg, metrics, stdout)
    if cfg.type == "file":
        return FileSink(cfg, metrics)
    if cfg.type == "mqtt":
        return MqttSink(cfg, metrics, state_dir)
    if cfg.type == "webhook":
        return WebhookSink(cfg, metrics, state_dir)
    raise ValueError(cfg.type)
