"""`edgefault serve` as a real process: real UDP/TCP sockets on loopback, stdin, a real mosquitto
broker with mosquitto_sub as the consumer, kill -9 and restart, broker outage, SIGHUP reload,
promtool on the live metrics page. Every wait is bounded; ports are free ports."""
from __future__ import annotations

import getpass
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

import edgefault
from conftest import noise_recording
from edgefault import Runtime
from edgefault.daemon import framing

PKG_PARENT = str(Path(edgefault.__file__).resolve().parents[1])


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(cond: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def http_get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except OSError:
        return 0, b""


def parse_metrics(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


_STARTED: list["Served"] = []


@pytest.fixture(autouse=True)
def _no_daemon_left_behind():  # type: ignore[no-untyped-def]
    """A failing test must not leave a daemon running: kill what is still up."""
    yield
    while _STARTED:
        d = _STARTED.pop()
        if d.p.poll() is None:
            d.p.kill()
            d.p.wait(10)
        d.err.close()
        d.out.close()


class Served:
    """`python -m edgefault serve --config ...` in a subprocess."""

    def __init__(self, tmp: Path, config: str, name: str = "d", stdin: Any = None) -> None:
        self.cfg = tmp / f"{name}.toml"
        self.cfg.write_text(config)
        self.err = open(tmp / f"{name}.stderr", "ab")
        self.out_path = tmp / f"{name}.stdout"
        self.out = open(self.out_path, "ab")
        env = {**os.environ, "PYTHONPATH": PKG_PARENT}
        env.pop("NOTIFY_SOCKET", None)
        self.p = subprocess.Popen([sys.executable, "-m", "edgefault", "serve", "--config", str(self.cfg)],
                                  stdin=stdin if stdin is not None else subprocess.DEVNULL, stdout=self.out,
                                  stderr=self.err, env=env, cwd=tmp)  # not the source tree: `-m` imports from cwd
        self.tmp, self.name = tmp, name
        _STARTED.append(self)

    def wait_ready(self, http_port: int) -> None:
        def ok() -> bool:
            if self.p.poll() is not None:
                raise AssertionError(f"daemon exited {self.p.returncode}: {self.stderr()}")
            return http_get(http_port, "/healthz")[0] == 200
        wait_for(ok, 30, "the daemon's health endpoint")

    def stderr(self) -> str:
        return (self.tmp / f"{self.name}.stderr").read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.p.poll() is None:
            self.p.send_signal(sig)
        rc = self.p.wait(timeout)
        self.err.close()
        self.out.close()
        return rc


def config(tmp: Path, bundle: Path, http: int, source: str, sinks: str = "", daemon: str = "") -> str:
    return f"""
[daemon]
state_dir = "{tmp / 'state'}"
state_interval = 0.3
{daemon}
[http]
listen = "127.0.0.1:{http}"
[[sensor]]
id = "m1"
bundle = "{bundle}"
queue_chunks = 10000
[sensor.source]
{source}
{sinks or f'[[sink]]{chr(10)}type = "file"{chr(10)}path = "{tmp / "events.jsonl"}"'}
"""


def read_events(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def reference_scores(bundle: Path, chunks: list[np.ndarray]) -> list[float | None]:
    rt = Runtime(bundle)
    return [e.score for c in chunks for e in rt.push(c)]


@pytest.fixture()
def stream() -> np.ndarray:
    return noise_recording(seconds=3.0, seed=5).data


# -- UDP: bad packets, gaps, reordering; metrics page; graceful stop ------------------------------------
def test_udp_bad_packets_gaps_metrics(tmp_path: Path, small_bundle: Path, stream: np.ndarray) -> None:
    http, port = free_port(), free_port(socket.SOCK_DGRAM)
    d = Served(tmp_path, config(tmp_path, small_bundle, http, f'type = "udp"\nlisten = "127.0.0.1:{port}"\n'
                                                               f'max_packet_bytes = 8192\nreorder_window = 8'))
    d.wait_ready(http)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    n = 200
    pk = [stream[i * n:(i + 1) * n] for i in range(20)]

    def send(b: bytes) -> None:
        tx.sendto(b, ("127.0.0.1", port))
        time.sleep(0.002)  # stay far below the socket buffer

    for i in range(10):
        send(framing.encode(i, pk[i]))
    good = framing.encode(10, pk[10])
    send(b"garbage that is no packet")                       # malformed
    send(good[:5] + b"\x09" + good[6:])                       # malformed: unknown format code
    send(good[:-3])                                           # truncated
    send(framing.encode(10, np.zeros((2000, 2))))             # oversized (16 kB > 8 kB)
    send(framing.encode(10, np.zeros((10, 3))))               # channels
    send(framing.encode(12, pk[12]))                          # gap: 10, 11 lost
    send(framing.encode(11, pk[11]))                          # late
    send(framing.encode(12, pk[12]))                          # duplicate
    for i in range(13, 20):
        send(framing.encode(i, pk[i]))
    expected_frames = 20 * n  # 18 packets accepted, the 2 lost ones marked as a gap of their length

    def metrics() -> dict[str, float]:
        return parse_metrics(http_get(http, "/metrics")[1].decode())

    tx.close()
    wait_for(lambda: metrics().get('edgefault_samples_total{sensor="m1"}') == expected_frames, 20, "all frames")
    m = wait_for(lambda: (lambda mm: mm if mm.get('edgefault_queue_depth{sensor="m1"}') == 0 else None)(metrics()),
                 20, "an empty queue")
    inv = {r: m[f'edgefault_packets_invalid_total{{reason="{r}",sensor="m1"}}']
           for r in ("malformed", "truncated", "oversized", "channels")}
    assert inv == {"malformed": 2, "truncated": 1, "oversized": 1, "channels": 1}
    assert m['edgefault_packets_total{sensor="m1"}'] == 18
    assert m['edgefault_source_gaps_total{sensor="m1"}'] == 1
    assert m['edgefault_source_lost_packets_total{sensor="m1"}'] == 2
    assert m['edgefault_source_late_packets_total{sensor="m1"}'] == 2
    assert m['edgefault_dropped_frames_total{reason="queue_full",sensor="m1"}'] == 0
    assert m['edgefault_windows_invalid_total{sensor="m1"}'] >= 1
    assert m['edgefault_windows_unscored_total{reason="gap",sensor="m1"}'] == m['edgefault_windows_invalid_total{sensor="m1"}']
    assert m['edgefault_scoring_latency_seconds_count{sensor="m1"}'] >= 1
    status, body = http_get(http, "/healthz")
    assert status == 200 and json.loads(body)["status"] == "ok"
    if shutil.which("promtool"):
        text = http_get(http, "/metrics")[1]
        r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, timeout=30)
        assert r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(), (r.stdout, r.stderr)
    assert d.stop() == 0, d.stderr()
    # the events are what an in-process Runtime gives for the same accepted samples and the gap of
    # the two lost packets (marked in full: t stays true)
    ev = read_events(tmp_path / "events.jsonl")
    rt = Runtime(small_bundle)
    want = [e for c in pk[:10] for e in rt.push(c)] + rt.push_gap(2 * n) + [e for c in pk[12:20] for e in rt.push(c)]
    ref = [e.score for e in want]
    assert [e["seq"] for e in ev] == list(range(1, len(ref) + 1))
    assert [e["t"] for e in ev] == [e.t for e in want]
    assert [e["flags"] for e in ev] == [list(e.flags) for e in want] and ["gap"] in [e["flags"] for e in ev]
    assert [e["score"] is None for e in ev] == [r is None for r in ref] and any(r is None for r in ref)
    assert [e["score"] for e in ev if e["score"] is not None] == pytest.approx([r for r in ref if r is not None],
                                                                                rel=1e-6)
    assert {e["bundle_id"] for e in ev} == {Runtime(small_bundle).bundle.bundle_id} and ev[0]["sensor"] == "m1"
    assert (tmp_path / "state" / "m1.state.npz").exists()


# -- TCP stream with garbage and a truncated tail ---------------------------------------------------------
def test_tcp_stream_resync_and_truncation(tmp_path: Path, small_bundle: Path, stream: np.ndarray) -> None:
    http, port = free_port(), free_port()
    d = Served(tmp_path, config(tmp_path, small_bundle, http, f'type = "tcp"\nlisten = "127.0.0.1:{port}"'))
    d.wait_ready(http)
    rng = np.random.default_rng(1)
    blob = b""
    sizes = rng.integers(1, 400, size=40)
    pos = 0
    for i, s in enumerate(sizes):
        blob += framing.encode(i, stream[pos:pos + s], "int16" if i % 2 else "float32") if i % 2 == 0 else \
            framing.encode(i, np.round(stream[pos:pos + s] * 8000), "int16")
        pos += int(s)
        if i == 20:
            blob += b"\x00junk\xff" * 3
    blob += framing.encode(99, stream[:50])[:-7]  # cut inside the last packet
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        for j in range(0, len(blob), 1000):
            c.sendall(blob[j:j + 1000])

    def metrics() -> dict[str, float]:
        return parse_metrics(http_get(http, "/metrics")[1].decode())

    m = wait_for(lambda: (lambda mm: mm if mm.get('edgefault_packets_invalid_total{reason="truncated",sensor="m1"}')
                          else None)(metrics()), 20, "the truncated packet")
    wait_for(lambda: metrics().get('edgefault_samples_total{sensor="m1"}') == pos, 20, "all frames")
    assert m['edgefault_packets_invalid_total{reason="malformed",sensor="m1"}'] == 1
    assert m['edgefault_source_gaps_total{sensor="m1"}'] == 0
    assert d.stop() == 0
    n_windows = (pos - 256) // 128 + 1
    assert len(read_events(tmp_path / "events.jsonl")) == n_windows


# -- stdin: raw int16 and CSV, stdout sink, exits at EOF ------------------------------------------------
@pytest.mark.parametrize("fmt", ["int16", "csv"])
def test_stdin_to_stdout(tmp_path: Path, small_bundle: Path, stream: np.ndarray, fmt: str) -> None:
    x16 = np.round(stream * 8000).astype("<i2")
    if fmt == "int16":
        payload = x16.tobytes() + b"\x01"  # a partial frame at the end: counted as truncated
        ref_chunk = x16
    else:
        payload = ("a,b\n" + "".join(f"{a:.6g},{b:.6g}\n" for a, b in stream) + "1,2,3\n").encode()
        ref_chunk = np.array([[float(f"{a:.6g}"), float(f"{b:.6g}")] for a, b in stream], dtype=np.float32)
    src = tmp_path / "in.bin"
    src.write_bytes(payload)
    http = free_port()
    with open(src, "rb") as fh:
        d = Served(tmp_path, config(tmp_path, small_bundle, http, f'type = "stdin"\nformat = "{fmt}"',
                                    sinks='[[sink]]\ntype = "stdout"'), stdin=fh)
        rc = d.p.wait(60)
    assert rc == 0, d.stderr()
    d.stop()
    ev = read_events(d.out_path)
    ref = reference_scores(small_bundle, [ref_chunk])
    assert len(ev) == len(ref) > 0
    assert [e["score"] for e in ev] == pytest.approx(ref, rel=1e-5)
    # the CSV header and the 3-column line are counted and skipped, not fatal
    csv = fmt == "csv"
    assert f"invalid input malformed={2 if csv else 0} truncated={0 if csv else 1} " in d.stderr()


# -- mosquitto ------------------------------------------------------------------------------------------------
class Broker:
    def __init__(self, tmp: Path, extra: str = "", sub_args: tuple[str, ...] = ()) -> None:
        if shutil.which("mosquitto") is None or shutil.which("mosquitto_sub") is None:
            pytest.skip("mosquitto / mosquitto_sub not installed (Debian packages mosquitto, mosquitto-clients)")
        self.port = free_port()
        self.dir = tmp / "broker"
        self.dir.mkdir()
        self.conf = self.dir / "mosquitto.conf"
        # `user`: run as whoever runs the tests (as root mosquitto would switch to user mosquitto,
        # which cannot write its persistence file into the test's temp folder)
        self.conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
                             f"user {getpass.getuser()}\n"
                             f"persistence_location {self.dir}/\nlog_dest stderr\n{extra}")
        self.sub_args = sub_args
        self.p: subprocess.Popen[bytes] | None = None
        self.subs: list[subprocess.Popen[bytes]] = []
        self.files: list[Any] = []

    def _open(self, path: Path) -> Any:
        fh = open(path, "ab")
        self.files.append(fh)
        return fh

    def start(self) -> None:
        self.p = subprocess.Popen(["mosquitto", "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                  stderr=self._open(self.dir / "broker.log"))

        def up() -> bool:
            assert self.p is not None and self.p.poll() is None, (self.dir / "broker.log").read_text()
            if "running" not in (self.dir / "broker.log").read_text():
                return False
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return True
            except OSError:
                return False
        wait_for(up, 10, "mosquitto to listen")

    def stop(self) -> None:
        if self.p is not None and self.p.poll() is None:
            self.p.terminate()
            self.p.wait(10)

    def subscribe(self, topic: str, out: Path) -> subprocess.Popen[bytes]:
        """mosquitto_sub with a persistent session (-c) at QoS 1: the broker keeps its messages
        across the subscriber's and its own restarts."""
        s = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(self.port), "-t", topic, "-q", "1",
                              "-c", "-i", "edgefault-test-sub", *self.sub_args], stdout=self._open(out), stderr=subprocess.DEVNULL)
        self.subs.append(s)
        return s

    def close(self) -> None:
        for s in self.subs:
            if s.poll() is None:
                s.terminate()
                s.wait(10)
        self.stop()
        for fh in self.files:
            fh.close()


@pytest.fixture()
def broker(tmp_path: Path):  # type: ignore[no-untyped-def]
    b = Broker(tmp_path)
    b.start()
    yield b
    b.close()


def mqtt_sink(broker: Broker, tmp: Path) -> str:
    return (f'[[sink]]\ntype = "mqtt"\nport = {broker.port}\ntopic = "plant/{{sensor}}/events"\n'
            f'retry_initial = 0.1\nretry_max = 0.5\n'
            f'[[sink]]\ntype = "file"\npath = "{tmp / "events.jsonl"}"\n')


def received(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text().splitlines() if x.startswith("{")]


def subscribed(broker: Broker) -> None:
    """mosquitto_sub has its subscription in place: a probe message comes back."""
    wait_for(lambda: len(broker.subs) > 0, 1)


def send_tcp(port: int, data: np.ndarray, seq0: int, frames: int = 256, pause: float = 0.0) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        k = 0
        for i in range(0, data.shape[0], frames):
            c.sendall(framing.encode(seq0 + k, data[i:i + frames]))
            k += 1
            if pause:
                time.sleep(pause)
    return k


def test_mqtt_broker_outage_every_event_in_order(tmp_path: Path, small_bundle: Path, broker: Broker) -> None:
    outage = float(os.environ.get("EDGEFAULT_TEST_OUTAGE_S", "2"))
    sub_out = tmp_path / "sub.jsonl"
    broker.subscribe("plant/#", sub_out)
    http, port = free_port(), free_port()
    d = Served(tmp_path, config(tmp_path, small_bundle, http, f'type = "tcp"\nlisten = "127.0.0.1:{port}"',
                                sinks=mqtt_sink(broker, tmp_path)))
    d.wait_ready(http)
    data = noise_recording(seconds=9.0, seed=8).data
    third = data.shape[0] // 3
    send_tcp(port, data[:third], 0)
    wait_for(lambda: len(received(sub_out)) > 0 and len(received(sub_out)) == len(read_events(tmp_path / "events.jsonl")),
             20, "events of part 1 at the subscriber")
    broker.stop()
    send_tcp(port, data[third:2 * third], 1000)  # scored while the broker is down: spooled
    wait_for(lambda: len(read_events(tmp_path / "events.jsonl")) >= (2 * third - 256) // 128 + 1, 20, "part 2 scored")
    m = parse_metrics(http_get(http, "/metrics")[1].decode())
    assert m['edgefault_sink_spool_events{sink="mqtt0"}'] > 0
    wait_for(lambda: json.loads(http_get(http, "/healthz")[1])["sinks"]["mqtt0"]["connected"] is False, 15,
             "the health page to show the sink disconnected")
    time.sleep(outage)
    broker.start()
    send_tcp(port, data[2 * third:], 2000)
    total = (data.shape[0] - 256) // 128 + 1
    wait_for(lambda: len(read_events(tmp_path / "events.jsonl")) == total, 20, "all windows scored")
    wait_for(lambda: {e["seq"] for e in received(sub_out)} >= set(range(1, total + 1)), 30,
             "every event at the subscriber")
    assert d.stop() == 0, d.stderr()
    got = [e["seq"] for e in received(sub_out)]
    firsts = list(dict.fromkeys(got))
    assert firsts == list(range(1, total + 1))  # every event, first deliveries in order
    assert len(got) - len(firsts) <= 100  # at-least-once: re-sends only of the batch in flight
    want = {e["seq"]: e for e in read_events(tmp_path / "events.jsonl")}
    assert all(want[e["seq"]] == e for e in received(sub_out))


def test_kill9_restart_state_restored_no_event_lost(tmp_path: Path, small_bundle: Path, broker: Broker) -> None:
    sub_out = tmp_path / "sub.jsonl"
    broker.subscribe("plant/#", sub_out)
    http, port = free_port(), free_port()
    cfg = config(tmp_path, small_bundle, http, f'type = "tcp"\nlisten = "127.0.0.1:{port}"',
                 sinks=mqtt_sink(broker, tmp_path))
    d = Served(tmp_path, cfg, name="a")
    d.wait_ready(http)
    data = noise_recording(seconds=8.0, seed=9).data
    half = data.shape[0] // 2 // 256 * 256
    send_tcp(port, data[:half], 0, pause=0.001)
    wait_for(lambda: len(read_events(tmp_path / "events.jsonl")) >= (half - 256) // 128 + 1, 20, "part 1 scored")
    wait_for(lambda: (tmp_path / "state" / "m1.state.npz").exists(), 5, "a state save")
    time.sleep(0.4)  # one more periodic save after the last window
    d.p.kill()  # SIGKILL: no shutdown code runs
    d.p.wait(10)
    d.stop()
    before = read_events(tmp_path / "events.jsonl")
    last_seq = before[-1]["seq"]
    d2 = Served(tmp_path, cfg, name="b")
    d2.wait_ready(http)
    assert "state restored" in d2.stderr()
    send_tcp(port, data[half:], 0)
    total_windows = (data.shape[0] // 256 * 256 - 256) // 128 + 1
    wait_for(lambda: len(read_events(tmp_path / "events.jsonl")) == total_windows, 20, "part 2 scored")
    assert d2.stop() == 0, d2.stderr()
    ev = read_events(tmp_path / "events.jsonl")
    after = ev[len(before):]
    # the restored state continues the stream: window numbers and event numbers go on, boot counts up
    assert [e["seq"] for e in ev] == list(range(1, len(ev) + 1))
    assert after[0]["seq"] == last_seq + 1 and after[0]["boot"] == 1 and before[0]["boot"] == 0
    assert [e["window_seq"] for e in ev] == list(range(len(ev)))
    # the scores equal one uninterrupted Runtime over the same samples
    assert [e["score"] for e in ev] == pytest.approx(reference_scores(small_bundle, [data[:data.shape[0] // 256 * 256]]),
                                                     rel=1e-6)
    wait_for(lambda: {e["seq"] for e in received(sub_out)} >= set(range(1, len(ev) + 1)), 30,
             "every event at the subscriber")
    got = [e["seq"] for e in received(sub_out)]
    assert list(dict.fromkeys(got)) == list(range(1, len(ev) + 1))
    dups = len(got) - len(set(got))
    assert dups <= 100  # at-least-once: only events unacknowledged at the kill are sent again


def test_mqtt_source(tmp_path: Path, small_bundle: Path, broker: Broker, stream: np.ndarray) -> None:
    http = free_port()
    d = Served(tmp_path, config(tmp_path, small_bundle, http,
                                f'type = "mqtt"\nport = {broker.port}\ntopic = "sensors/m1"\nqos = 1'))
    d.wait_ready(http)
    wait_for(lambda: json.loads(http_get(http, "/healthz")[1])["sensors"]["m1"]["source_ready"], 10,
             "the source's subscription (SUBACK)")
    chunks = [stream[i:i + 300] for i in range(0, 3000, 300)]
    for i, c in enumerate(chunks):
        f = tmp_path / f"p{i}.bin"
        f.write_bytes(framing.encode(i, c))
        subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.port), "-t", "sensors/m1", "-q", "1",
                        "-f", str(f)], check=True, timeout=10)
    n = (3000 - 256) // 128 + 1
    wait_for(lambda: len(read_events(tmp_path / "events.jsonl")) == n, 20, "events from MQTT packets")
    assert d.stop() == 0
    assert [e["score"] for e in read_events(tmp_path / "events.jsonl")] == pytest.approx(
        reference_scores(small_bundle, chunks), rel=1e-6)


# -- SIGHUP: swap the bundle without losing samples ----------------------------------------------------------
def test_sighup_swaps_bundle_without_losing_samples(tmp_path: Path, small_bundle: Path) -> None:
    from edgefault.device.spec import FeatureSpec
    from edgefault.train.anomaly import pack_gaussian, train_gaussian

    rec = noise_recording(seed=11)
    spec = FeatureSpec.for_anomaly(rec.fs, rec.channels, window=256, hop=128, n_bands=8)
    other = tmp_path / "other.efb"
    pack_gaussian(train_gaussian([rec], spec, target_far=0.05), other, k=1, n=1, name="other")
    live = tmp_path / "live.efb"
    shutil.copy(small_bundle, live)
    http, port = free_port(), free_port()
    d = Served(tmp_path, config(tmp_path, live, http, f'type = "tcp"\nlisten = "127.0.0.1:{port}"'))
    d.wait_ready(http)
    data = noise_recording(seconds=6.0, seed=12).data
    n = data.shape[0] // 2
    send_tcp(port, data[:n], 0)
    wait_for(lambda: len(read_events(tmp_path / "events.jsonl")) == (n - 256) // 128 + 1, 20, "part 1")
    shutil.copy(other, live)
    d.p.send_signal(signal.SIGHUP)
    wait_for(lambda: "reloaded" in d.stderr(), 10, "the reload")
    send_tcp(port, data[n:], 1000)
    total = (data.shape[0] - 256) // 128 + 1
    wait_for(lambda: len(read_events(tmp_path / "events.jsonl")) == total, 20, "part 2")
    assert d.stop() == 0
    ev = read_events(tmp_path / "events.jsonl")
    ids = [e["bundle_id"] for e in ev]
    a, b = Runtime(small_bundle).bundle.bundle_id, Runtime(other).bundle.bundle_id
    assert ids[0] == a and ids[-1] == b and ids == sorted(ids, key=lambda x: x == b)
    assert [e["window_seq"] for e in ev] == list(range(total))  # framing carried over: no sample lost


def test_kill9_while_broker_down_spooled_events_survive(tmp_path: Path, small_bundle: Path, broker: Broker) -> None:
    """Events accepted into the spool while the broker is down survive a kill -9 and arrive, in
    order, after both come back."""
    sub_out = tmp_path / "sub.jsonl"
    broker.subscribe("plant/#", sub_out)
    http, port = free_port(), free_port()
    cfg = config(tmp_path, small_bundle, http, f'type = "tcp"\nlisten = "127.0.0.1:{port}"',
                 sinks=mqtt_sink(broker, tmp_path))
    d = Served(tmp_path, cfg, name="a")
    d.wait_ready(http)
    data = noise_recording(seconds=4.0, seed=13).data
    broker.stop()
    send_tcp(port, data, 0)
    n = (data.shape[0] - 256) // 128 + 1
    wait_for(lambda: len(read_events(tmp_path / "events.jsonl")) == n, 20, "all windows scored")
    spooled = parse_metrics(http_get(http, "/metrics")[1].decode())['edgefault_sink_spool_events{sink="mqtt0"}']
    assert spooled > 0
    d.p.kill()
    d.p.wait(10)
    d.stop()
    broker.start()
    d2 = Served(tmp_path, cfg, name="b")
    d2.wait_ready(http)
    wait_for(lambda: {e["seq"] for e in received(sub_out)} >= set(range(1, n + 1)), 30, "every event at the subscriber")
    assert d2.stop() == 0
    got = [e["seq"] for e in received(sub_out)]
    assert list(dict.fromkeys(got)) == list(range(1, n + 1))


def test_mqtt_sink_tls_and_password(tmp_path: Path, small_bundle: Path) -> None:
    """A TLS listener with password auth: the sink verifies the broker against ca_file and logs in."""
    if shutil.which("openssl") is None or shutil.which("mosquitto_passwd") is None:
        pytest.skip("openssl / mosquitto_passwd not installed")
    c = tmp_path / "pki"
    c.mkdir()

    def run(*cmd: str) -> None:
        subprocess.run(cmd, cwd=c, check=True, capture_output=True, timeout=60)

    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "2", "-subj", "/CN=edgefault-test-ca")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=127.0.0.1")
    (c / "ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.pem", "-days", "2", "-extfile", "ext")
    run("mosquitto_passwd", "-b", "-c", "passwd", "edge", "s3cret")
    broker = Broker(tmp_path, extra=f"cafile {c / 'ca.pem'}\ncertfile {c / 'server.pem'}\nkeyfile {c / 'server.key'}\n"
                                    f"allow_anonymous false\npassword_file {c / 'passwd'}\n",
                    sub_args=("--cafile", str(c / "ca.pem"), "-u", "edge", "-P", "s3cret"))
    broker.conf.write_text(broker.conf.read_text().replace("allow_anonymous true\n", ""))
    broker.start()
    try:
        sub_out = tmp_path / "sub.jsonl"
        broker.subscribe("plant/#", sub_out)
        data = noise_recording(seconds=2.0, seed=21).data
        np.savez(tmp_path / "rec.npz", data=data, fs=np.float64(4000.0), channels=np.array(["a", "b"]))
        http = free_port()
        tls = f'[sink.tls]\nca_file = "{c / "ca.pem"}"\n'
        sinks = (f'[[sink]]\ntype = "mqtt"\nid = "good"\nport = {broker.port}\ntopic = "plant/{{sensor}}"\n'
                 f'username = "edge"\npassword = "s3cret"\nretry_initial = 0.1\nretry_max = 0.3\n{tls}'
                 f'[[sink]]\ntype = "mqtt"\nid = "badpw"\nport = {broker.port}\ntopic = "plant/{{sensor}}"\n'
                 f'username = "edge"\npassword = "wrong"\nretry_initial = 0.1\nretry_max = 0.3\n{tls}')
        d = Served(tmp_path, config(tmp_path, small_bundle, http,
                                    f'type = "file"\npath = "{tmp_path / "rec.npz"}"\nloop = true\nspeed = 0.5',
                                    sinks=sinks))
        d.wait_ready(http)
        wait_for(lambda: len(received(sub_out)) >= 5, 30, "events over TLS at the subscriber")
        wait_for(lambda: json.loads(http_get(http, "/healthz")[1])["sinks"]["good"]["connected"], 10,
                 "the health page to show the TLS sink connected")
        m = wait_for(lambda: (lambda mm: mm if mm['edgefault_sink_errors_total{sink="badpw"}'] >= 1 else None)(
            parse_metrics(http_get(http, "/metrics")[1].decode())), 10, "the refused login to be counted")
        assert m['edgefault_sink_events_total{sink="badpw"}'] == 0  # refused: nothing lost, it stays spooled
        assert m['edgefault_sink_spool_events{sink="badpw"}'] >= 1
        assert d.stop() == 0
        assert "refused the connection" in d.stderr()
        got = [e["seq"] for e in received(sub_out)]
        assert list(dict.fromkeys(got)) == list(range(1, len(set(got)) + 1))
    finally:
        broker.close()


def test_queue_full_drops_are_counted_never_silent(tmp_path: Path, small_bundle: Path) -> None:
    """A sender far faster than scoring into a 2-chunk queue: chunks are dropped, every frame is
    accounted for, and a dropped chunk becomes a marked gap (invalid windows), never a splice: the
    events cover the whole stream on its true time grid, up to drops after the last queued chunk."""
    http, port = free_port(), free_port(socket.SOCK_DGRAM)
    text = config(tmp_path, small_bundle, http, f'type = "udp"\nlisten = "127.0.0.1:{port}"\ngap_fill_frames = 0')
    d = Served(tmp_path, text.replace("queue_chunks = 10000", "queue_chunks = 2"))
    d.wait_ready(http)
    x = noise_recording(seconds=8.0, seed=17).data
    n = 4000
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        for k in range(x.shape[0] // n):
            tx.sendto(framing.encode(k, x[k * n:(k + 1) * n]), ("127.0.0.1", port))

    def m() -> dict[str, float]:
        return parse_metrics(http_get(http, "/metrics")[1].decode())

    def settled() -> dict[str, float] | None:
        mm = m()
        return mm if mm['edgefault_packets_total{sensor="m1"}'] + mm['edgefault_source_lost_packets_total{sensor="m1"}'] \
            >= x.shape[0] // n - 1 and mm['edgefault_queue_depth{sensor="m1"}'] == 0 else None

    wait_for(settled, 20, "the queue to drain")
    time.sleep(0.3)
    mm = m()
    dropped = mm['edgefault_dropped_frames_total{reason="queue_full",sensor="m1"}']
    frames = mm['edgefault_samples_total{sensor="m1"}']
    assert dropped > 0 and frames == mm['edgefault_packets_total{sensor="m1"}'] * n
    assert d.stop() == 0
    ev = read_events(tmp_path / "events.jsonl")
    assert (frames - dropped - 256) // 128 + 1 <= len(ev) <= (frames - 256) // 128 + 1
    assert [e["t"] for e in ev] == [(256 + 128 * k) / 4000.0 for k in range(len(ev))]  # no splice: t stays true
    if len(ev) > (frames - dropped - 256) // 128 + 1:  # a drop before a queued chunk: a gap, marked invalid
        assert sum(not e["valid"] for e in ev) > 0
    seen = [e["dropped_frames"] for e in ev]  # events report the drops so far
    assert seen == sorted(seen) and 0 < seen[-1] <= dropped and seen[-1] % n == 0
