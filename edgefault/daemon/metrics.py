"""Prometheus text exposition (format 0.0.4) and the loopback HTTP server for /metrics and /healthz.

No client library (the daemon's only dependency is numpy; prometheus_client would add a package
for ~150 lines of text formatting, and promtool checks the output in the tests): counters, gauges
and one histogram kept under a lock and rendered on request.
"""
from __future__ import annotations

import bisect
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

# name -> (type, help)
FAMILIES: dict[str, tuple[str, str]] = {
    "edgefault_up": ("gauge", "1 while the daemon runs."),
    "edgefault_build_info": ("gauge", "Version of edgefault (value 1)."),
    "edgefault_sensor_bundle_info": ("gauge", "Bundle each sensor runs (value 1)."),
    "edgefault_samples_total": ("counter", "Frames (samples per channel) received from the source."),
    "edgefault_windows_scored_total": ("counter", "Windows scored."),
    "edgefault_windows_invalid_total": ("counter", "Windows not scored (any reason, see edgefault_windows_unscored_total)."),
    "edgefault_windows_unscored_total": ("counter", "Windows not scored, by reason: gap (lost samples), sensor_fault, "
                                                    "nonfinite_input, nonfinite_score."),
    "edgefault_sensor_health_total": ("counter", "Windows in which a channel failed a sensor-health check, by channel "
                                                 "and check (flat, clip, dropout, dc_jump)."),
    "edgefault_anomalies_total": ("counter", "Windows whose score exceeded the threshold."),
    "edgefault_alarms_total": ("counter", "Alarm state changes to on."),
    "edgefault_dropped_frames_total": ("counter", "Frames dropped before scoring, by reason."),
    "edgefault_packets_total": ("counter", "Packets accepted from the source."),
    "edgefault_packets_invalid_total": ("counter", "Packets counted and skipped, by reason."),
    "edgefault_source_gaps_total": ("counter", "Sequence gaps seen by the source."),
    "edgefault_source_lost_packets_total": ("counter", "Packets missing in sequence gaps."),
    "edgefault_source_late_packets_total": ("counter", "Late or duplicate packets dropped (reordering)."),
    "edgefault_source_restarts_total": ("counter", "Sender restarts (sequence jumped back)."),
    "edgefault_source_errors_total": ("counter", "Source I/O errors (reconnects follow)."),
    "edgefault_score": ("gauge", "Score of the sensor's last scored window (absent until one is scored)."),
    "edgefault_threshold": ("gauge", "Alarm threshold in force at the sensor's last window."),
    "edgefault_alarm": ("gauge", "1 while the sensor's alarm is on, else 0."),
    "edgefault_drift": ("gauge", "1 while a drift monitor signals, else 0 (sensors with drift monitoring only)."),
    "edgefault_class_probability": ("gauge", "Classifier bundles: probability of each label in the last scored window."),
    "edgefault_last_window_timestamp_seconds": ("gauge", "UTC time (POSIX seconds) of the end of the sensor's last "
                                                "window."),
    "edgefault_channel_healthy": ("gauge", "1 when the channel passed every sensor-health check in the last window "
                                  "that had samples (not a gap), else 0."),
    "edgefault_windows_per_second": ("gauge", "Windows completed (scored or not) per second over the last 10 s."),
    "edgefault_queue_depth": ("gauge", "Chunks waiting to be scored."),
    "edgefault_queue_capacity": ("gauge", "Capacity of the scoring queue in chunks."),
    "edgefault_event_seq": ("gauge", "Sequence number of the last event emitted."),
    "edgefault_scoring_latency_seconds": ("histogram", "Time from receiving a chunk to its events being handed to the sinks."),
    "edgefault_sink_events_total": ("counter", "Events delivered (acknowledged) by each sink."),
    "edgefault_sink_errors_total": ("counter", "Delivery failures (retried) by each sink."),
    "edgefault_sink_dropped_events_total": ("counter", "Events dropped by a sink (spool over its bound)."),
    "edgefault_sink_spool_events": ("gauge", "Events waiting in the sink's on-disk spool."),
    "edgefault_sink_connected": ("gauge", "1 when the sink's last delivery succeeded."),
    "edgefault_state_saves_total": ("counter", "State files written."),
    "edgefault_reloads_total": ("counter", "Configuration reloads (SIGHUP), by result."),
    # the process collector's standard names (as prometheus_client's), read from /proc and os.times()
    "process_cpu_seconds_total": ("counter", "User and system CPU time of the daemon process in seconds."),
    "process_resident_memory_bytes": ("gauge", "Resident memory of the daemon process in bytes."),
    "process_open_fds": ("gauge", "Open file descriptors of the daemon process."),
    "process_start_time_seconds": ("gauge", "Start time of the daemon process, UTC POSIX seconds."),
}


def _esc(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(lab: tuple[tuple[str, str], ...]) -> str:
    return "{" + ",".join(f'{k}="{_esc(v)}"' for k, v in lab) + "}" if lab else ""


def _num(v: float) -> str:
    if v != v:
        return "NaN"
    if v in (float("inf"), float("-inf")):
        return "+Inf" if v > 0 else "-Inf"
    return repr(float(v)) if not float(v).is_integer() else str(int(v))


def process_start_time() -> float:
    """UTC start time of this process: /proc/self/stat's start (clock ticks after boot) plus the
    boot time in /proc/stat; where those are missing, now."""
    import os
    import time

    try:
        with open("/proc/self/stat") as fh:
            ticks = int(fh.read().rsplit(")", 1)[1].split()[19])  # field 22 (starttime)
        with open("/proc/stat") as fh:
            btime = next(int(ln.split()[1]) for ln in fh if ln.startswith("btime "))
        return btime + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return time.time()


def process_gauges(m: "Metrics", start_time: float) -> None:
    """process_* of this process: CPU from os.times(), RSS and open fds from /proc (Linux; where
    /proc is missing RSS falls back to the peak, ru_maxrss, and open fds are left out)."""
    import os

    t = os.times()
    m.set("process_cpu_seconds_total", t.user + t.system)
    m.set("process_start_time_seconds", start_time)
    try:
        with open("/proc/self/statm") as fh:
            rss_pages = int(fh.read().split()[1])
        m.set("process_resident_memory_bytes", rss_pages * os.sysconf("SC_PAGE_SIZE"))
        m.set("process_open_fds", len(os.listdir("/proc/self/fd")))
    except (OSError, ValueError, IndexError):
        import resource

        m.set("process_resident_memory_bytes", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)


class Histogram:
    __slots__ = ("buckets", "counts", "sum", "count")

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.sum = 0.0
        self.count = 0


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, dict[tuple[tuple[str, str], ...], float]] = {k: {} for k in FAMILIES}
        self._hist: dict[tuple[tuple[str, str], ...], Histogram] = {}
        self.gauge_callbacks: list[Callable[["Metrics"], None]] = []

    @staticmethod
    def _key(labels: dict[str, str] | None) -> tuple[tuple[str, str], ...]:
        return tuple(sorted((labels or {}).items()))

    def inc(self, name: str, by: float = 1.0, **labels: str) -> None:
        if by == 0:
            return
        k = self._key(labels)
        with self._lock:
            d = self._values[name]
            d[k] = d.get(k, 0.0) + by

    def touch(self, name: str, **labels: str) -> None:
        """Make a counter visible at 0 before its first increment."""
        k = self._key(labels)
        with self._lock:
            self._values[name].setdefault(k, 0.0)

    def set(self, name: str, value: float, **labels: str) -> None:
        with self._lock:
            self._values[name][self._key(labels)] = float(value)

    def get(self, name: str, **labels: str) -> float:
        with self._lock:
            return self._values[name].get(self._key(labels), 0.0)

    def observe(self, value: float, **labels: str) -> None:
        k = self._key(labels)
        with self._lock:
            h = self._hist.get(k)
            if h is None:
                h = self._hist[k] = Histogram(LATENCY_BUCKETS)
            h.counts[bisect.bisect_left(h.buckets, value)] += 1
            h.sum += value
            h.count += 1

    def render(self) -> str:
        for cb in self.gauge_callbacks:
            cb(self)
        out: list[str] = []
        with self._lock:
            for name, (typ, help_) in FAMILIES.items():
                if typ == "histogram":
                    if not self._hist:
                        continue
                    out.append(f"# HELP {name} {help_}")
                    out.append(f"# TYPE {name} histogram")
                    for lab, h in sorted(self._hist.items()):
                        acc = 0
                        for le, c in zip(h.buckets + (float("inf"),), h.counts):
                            acc += c
                            lb = lab + (("le", _num(le) if le != float("inf") else "+Inf"),)
                            out.append(f"{name}_bucket{_labels(lb)} {acc}")
                        out.append(f"{name}_sum{_labels(lab)} {_num(h.sum)}")
                        out.append(f"{name}_count{_labels(lab)} {h.count}")
                    continue
                vals = self._values[name]
                if not vals:
                    continue
                out.append(f"# HELP {name} {help_}")
                out.append(f"# TYPE {name} {typ}")
                for lab, v in sorted(vals.items()):
                    out.append(f"{name}{_labels(lab)} {_num(v)}")
        return "\n".join(out) + "\n"


class HttpServer:
    """GET /metrics (Prometheus text) and /healthz (JSON; 200 healthy, 503 not) in a thread."""

    def __init__(self, host: str, port: int, metrics: Metrics, health: Callable[[], tuple[bool, dict[str, Any]]]) -> None:
        m, h = metrics, health

        class Handler(BaseHTTPRequestHandler):
            server_version = "edgefault"

            def do_GET(self) -> None:  # noqa: N802
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    body = m.render().encode()
                    self._send(200, "text/plain; version=0.0.4; charset=utf-8", body)
                elif path in ("/healthz", "/health"):
                    ok, info = h()
                    self._send(200 if ok else 503, "application/json", json.dumps(info).encode() + b"\n")
                else:
                    self._send(404, "text/plain", b"not found: try /metrics or /healthz\n")

            def _send(self, code: int, ctype: str, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        family = socket.AF_INET6 if ":" in host else socket.AF_INET

        class Server(ThreadingHTTPServer):
            address_family = family
            daemon_threads = True

        self.httpd = Server((host, port), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.5},
                                       name="edgefault-http", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
