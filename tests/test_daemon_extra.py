"""Daemon: webhook retries/backoff, serial port through a socat pty pair, sd_notify messages,
CLI exit codes for bad configs, missing optional dependencies."""
from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import noise_recording
from edgefault import MissingDependencyError, Runtime
from edgefault.cli import main
from edgefault.daemon import Daemon, parse_config
from test_daemon_live import PKG_PARENT, free_port, read_events, reference_scores, wait_for


def _npz(path: Path, seconds: float = 2.0, seed: int = 3) -> np.ndarray:
    rec = noise_recording(seconds=seconds, seed=seed)
    np.savez(path, data=rec.data, fs=np.float64(rec.fs), channels=np.array(rec.channels))
    return rec.data


def _serial_daemon(tmp_path: Path, small_bundle: Path, device: Path, fmt: str) -> tuple[Daemon, threading.Thread]:
    """A running daemon with one serial sensor on ``device`` writing events to tmp_path/ev.jsonl."""
    d = Daemon(parse_config(f"""
[daemon]
state_dir = "{tmp_path / 'st'}"
[http]
listen = ""
[[sensor]]
id = "m1"
bundle = "{small_bundle}"
[sensor.source]
type = "serial"
device = "{device}"
format = "{fmt}"
[[sink]]
type = "file"
path = "{tmp_path / 'ev.jsonl'}"
""", str(tmp_path / "c.toml")))
    d.start()
    th = threading.Thread(target=d.run, daemon=True)
    th.start()
    return d, th


def test_webhook_retries_in_order_and_drops_rejected(tmp_path: Path, small_bundle: Path) -> None:
    got: list[list[dict[str, Any]]] = []
    answers = [503, 503, 429, 400]  # then 200 for ever
    seen_headers: list[str | None] = []

    class H(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            seen_headers.append(self.headers.get("X-Token"))
            code = answers.pop(0) if answers else 200
            if code == 200:
                got.append(json.loads(body))
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *a: Any) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    data = _npz(tmp_path / "rec.npz")
    cfg = parse_config(f"""
[daemon]
state_dir = "{tmp_path / 'st'}"
[http]
listen = ""
[[sensor]]
id = "m1"
bundle = "{small_bundle}"
[sensor.source]
type = "file"
path = "{tmp_path / 'rec.npz'}"
speed = 0
[[sink]]
type = "webhook"
url = "http://127.0.0.1:{srv.server_address[1]}/ev"
batch = 10
retry_initial = 0.01
retry_max = 0.05
headers = {{ X-Token = "abc" }}
[[sink]]
type = "file"
path = "{tmp_path / 'ev.jsonl'}"
""", str(tmp_path / "c.toml"))
    d = Daemon(cfg)
    d.start()
    wait_for(lambda: d.sinks[0].spool.pending == 0 and len(read_events(tmp_path / "ev.jsonl")) > 0, 20, "delivery")
    assert d.run() == 0
    srv.shutdown()
    srv.server_close()
    all_ev = read_events(tmp_path / "ev.jsonl")
    flat = [e["seq"] for b in got for e in b]
    # the batch answered 400 is dropped and counted; everything else arrives once, in order
    assert flat == [e["seq"] for e in all_ev][10:]
    assert d.metrics.get("edgefault_sink_dropped_events_total", sink="webhook0") == 10
    assert d.metrics.get("edgefault_sink_errors_total", sink="webhook0") == 3
    assert set(seen_headers) == {"abc"}
    assert [e["score"] for e in all_ev] == pytest.approx(reference_scores(small_bundle, [data]), rel=1e-6)


def test_serial_source_through_socat_pty(tmp_path: Path, small_bundle: Path) -> None:
    pytest.importorskip("serial", reason="pyserial not installed (pip install edgefault[daemon])")
    if shutil.which("socat") is None:
        pytest.skip("socat not installed (Debian package socat)")
    a, b = tmp_path / "ttyA", tmp_path / "ttyB"
    so = subprocess.Popen(["socat", f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"],
                          stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: a.exists() and b.exists(), 10, "socat ptys")
        data = noise_recording(seconds=2.0, seed=4).data
        x16 = np.round(data * 8000).astype("<i2")
        d, th = _serial_daemon(tmp_path, small_bundle, a, "int16")
        wait_for(lambda: d.workers[0].source is not None and getattr(d.workers[0].source, "port", None) is not None,
                 10, "the port to open")
        with open(b, "wb", buffering=0) as fh:
            raw = x16.tobytes()
            for i in range(0, len(raw), 4096):
                fh.write(raw[i:i + 4096])
                time.sleep(0.002)
        n = (x16.shape[0] - 256) // 128 + 1
        wait_for(lambda: len(read_events(tmp_path / "ev.jsonl")) == n, 20, "events from the serial port")
        d.stopping.set()
        th.join(30)
        assert [e["score"] for e in read_events(tmp_path / "ev.jsonl")] == pytest.approx(
            reference_scores(small_bundle, [x16]), rel=1e-6)
    finally:
        so.terminate()
        so.wait(10)


def test_sd_notify_ready_watchdog_stopping(tmp_path: Path, small_bundle: Path) -> None:
    sock_path = str(tmp_path / "notify.sock")
    rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    rx.bind(sock_path)
    rx.settimeout(10)
    http = free_port()
    port = free_port()
    (tmp_path / "c.toml").write_text(f"""
[daemon]
state_dir = "{tmp_path / 'st'}"
[http]
listen = "127.0.0.1:{http}"
[[sensor]]
id = "m1"
bundle = "{small_bundle}"
[sensor.source]
type = "udp"
listen = "127.0.0.1:{port}"
""")
    env = {**os.environ, "PYTHONPATH": PKG_PARENT, "NOTIFY_SOCKET": sock_path, "WATCHDOG_USEC": "400000"}
    p = subprocess.Popen([sys.executable, "-m", "edgefault", "serve", "--config", str(tmp_path / "c.toml")],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=tmp_path)
    try:
        msgs: list[str] = []
        while not any(m.startswith("READY=1") for m in msgs):
            msgs.append(rx.recv(4096).decode())
        t0 = time.monotonic()
        n_wd = 0
        while n_wd < 3:
            if rx.recv(4096).decode() == "WATCHDOG=1":
                n_wd += 1
        assert time.monotonic() - t0 < 3  # pinged at half of WATCHDOG_USEC
        p.send_signal(signal.SIGHUP)
        while not (m := rx.recv(4096).decode()).startswith("RELOADING=1"):
            pass
        assert "MONOTONIC_USEC=" in m
        p.send_signal(signal.SIGTERM)
        while rx.recv(4096).decode() != "STOPPING=1":
            pass
        assert p.wait(20) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        assert p.stderr is not None
        p.stderr.close()
        rx.close()


def test_cli_bad_config_exit_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "c.toml").write_text('[[sensor]]\nid = "a"\nbundle = "x.efb"\n[sensor.source]\ntype = "tcp"\n')
    assert main(["serve", "--config", str(tmp_path / "c.toml")]) == 2
    assert "sensor[0].source.listen: is required" in capsys.readouterr().err
    assert main(["serve", "--config", str(tmp_path / "missing.toml")]) == 2
    assert "not found" in capsys.readouterr().err


def test_bundle_error_names_the_sensor(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text(f'[daemon]\nstate_dir = "{tmp_path}/st"\n[http]\nlisten = ""\n'
                                     '[[sensor]]\nid = "pump"\nbundle = "nope.efb"\n[sensor.source]\ntype = "stdin"\n')
    r = subprocess.run([sys.executable, "-m", "edgefault", "serve", "--config", str(tmp_path / "c.toml")],
                       capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": PKG_PARENT},
                       stdin=subprocess.DEVNULL, cwd=tmp_path)
    assert r.returncode == 2 and "sensor pump:" in r.stderr and "nope.efb" in r.stderr


def test_missing_paho_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from edgefault.daemon import sinks

    monkeypatch.setitem(sys.modules, "paho", None)
    monkeypatch.setitem(sys.modules, "paho.mqtt", None)
    monkeypatch.setitem(sys.modules, "paho.mqtt.client", None)
    with pytest.raises(MissingDependencyError, match=r"pip install edgefault\[daemon\]"):
        sinks.import_paho()


def test_second_daemon_on_same_state_dir_refused(tmp_path: Path, small_bundle: Path) -> None:
    text = f"""
[daemon]
state_dir = "{tmp_path / 'st'}"
[http]
listen = ""
[[sensor]]
id = "m1"
bundle = "{small_bundle}"
[sensor.source]
type = "udp"
listen = "127.0.0.1:0"
"""
    d1 = Daemon(parse_config(text, str(tmp_path / "c.toml")))
    d1.start()
    try:
        d2 = Daemon(parse_config(text, str(tmp_path / "c.toml")))
        with pytest.raises(Exception, match="in use by another edgefault daemon"):
            d2.start()
    finally:
        d1.stop()
    assert Runtime(small_bundle).bundle.bundle_id in (tmp_path / "st" / "m1.state.npz").read_bytes().decode("latin1")


def test_restart_with_another_bundle_keeps_seq(tmp_path: Path, small_bundle: Path) -> None:
    """State saved for one bundle is not applied to another (logged); event numbers go on."""
    from edgefault.device.spec import FeatureSpec
    from edgefault.train.anomaly import pack_gaussian, train_gaussian

    rec = noise_recording(seed=31)
    other = tmp_path / "other.efb"
    pack_gaussian(train_gaussian([rec], FeatureSpec.for_anomaly(rec.fs, rec.channels, window=256, hop=128, n_bands=8)),
                  other, name="other")
    _npz(tmp_path / "rec.npz", seconds=1.0)

    def run(bundle: Path) -> list[dict[str, Any]]:
        (tmp_path / "ev.jsonl").unlink(missing_ok=True)
        cfg = parse_config(f"""
[daemon]
state_dir = "{tmp_path / 'st'}"
[http]
listen = ""
[[sensor]]
id = "m1"
bundle = "{bundle}"
[sensor.source]
type = "file"
path = "{tmp_path / 'rec.npz'}"
speed = 0
[[sink]]
type = "file"
path = "{tmp_path / 'ev.jsonl'}"
""", str(tmp_path / "c.toml"))
        d = Daemon(cfg)
        d.start()
        assert d.run() == 0
        return read_events(tmp_path / "ev.jsonl")

    a = run(small_bundle)
    b = run(small_bundle)
    c = run(other)
    assert b[0]["seq"] == a[-1]["seq"] + 1 and b[0]["window_seq"] == a[-1]["window_seq"] + 1 and b[0]["boot"] == 1
    assert c[0]["seq"] == b[-1]["seq"] + 1 and c[0]["window_seq"] == 0 and c[0]["bundle_name"] == "other"


def test_dead_network_source_makes_health_fail(tmp_path: Path, small_bundle: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    d = Daemon(parse_config(f"""
[daemon]
state_dir = "{tmp_path / 'st'}"
[http]
listen = ""
[[sensor]]
id = "m1"
bundle = "{small_bundle}"
[sensor.source]
type = "udp"
listen = "127.0.0.1:0"
""", str(tmp_path / "c.toml")))
    d.start()
    try:
        assert d.health()[0] is True
        src = d.workers[0].source
        assert src is not None
        src.sock.close()  # type: ignore[attr-defined]  # the receive loop fails
        wait_for(lambda: not src.thread.is_alive(), 10, "the source thread to end")
        ok, info = d.health()
        assert ok is False and info["status"] == "failing" and info["sensors"]["m1"]["source"] is False
        assert d.metrics.get("edgefault_source_errors_total", sensor="m1") == 1
        assert "source udp stopped" in caplog.text
    finally:
        d.stop()


def test_serial_port_reopened_after_it_disappears(tmp_path: Path, small_bundle: Path) -> None:
    pytest.importorskip("serial", reason="pyserial not installed (pip install edgefault[daemon])")
    if shutil.which("socat") is None:
        pytest.skip("socat not installed (Debian package socat)")
    a, b = tmp_path / "ttyA", tmp_path / "ttyB"

    def pair() -> subprocess.Popen[bytes]:
        p = subprocess.Popen(["socat", f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"],
                             stderr=subprocess.DEVNULL)
        wait_for(lambda: a.exists() and b.exists(), 10, "socat ptys")
        return p

    so = pair()
    d, th = _serial_daemon(tmp_path, small_bundle, a, "float32")
    src = d.workers[0].source
    assert src is not None
    try:
        x = noise_recording(seconds=1.0, seed=6).data
        for k, (lo, hi) in enumerate([(0, 2000), (2000, x.shape[0])]):
            wait_for(src.ready.is_set, 15, "the serial port to be open")
            with open(b, "wb", buffering=0) as fh:
                fh.write(x[lo:hi].astype("<f4").tobytes())
            wait_for(lambda: d.metrics.get("edgefault_samples_total", sensor="m1") == hi, 15, "the frames")
            if k == 0:  # the port goes away and comes back
                so.terminate()
                so.wait(10)
                wait_for(lambda: not src.ready.is_set(), 10, "the port to be seen gone")
                so = pair()
        d.stopping.set()
        th.join(30)
        ev = read_events(tmp_path / "ev.jsonl")
        assert len(ev) == (x.shape[0] - 256) // 128 + 1  # one continuous stream across the reopen
        assert [e["score"] for e in ev] == pytest.approx(reference_scores(small_bundle, [x]), rel=1e-6)
    finally:
        d.stopping.set()
        so.terminate()
        so.wait(10)


def _file_config(tmp_path: Path, bundle: Path, extra: str = "") -> str:
    return f"""
[daemon]
state_dir = "{tmp_path / ('st' + str(len(extra)))}"
[http]
listen = ""
[[sensor]]
id = "m1"
bundle = "{bundle}"
[sensor.source]
type = "file"
path = "{tmp_path / 'rec.npz'}"
speed = 0
{extra}
[[sink]]
type = "file"
path = "{tmp_path / 'ev.jsonl'}"
"""


def test_file_source_rate_less_file_needs_fs(tmp_path: Path, small_bundle: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    """Issue #18 item 1: a replayed file that stores no rate is not read at the bundle's rate silently."""
    rec = noise_recording(seconds=1.0, seed=3)
    np.savez(tmp_path / "rec.npz", data=rec.data, channels=np.array(rec.channels))  # no fs entry

    def config(extra: str) -> Any:
        return parse_config(_file_config(tmp_path, small_bundle, extra), str(tmp_path / "c.toml"))

    # the config is valid; the source refuses the file when it opens it (run in a process of its own:
    # a daemon whose start fails leaves its sinks open)
    config("")
    (tmp_path / "c.toml").write_text(_file_config(tmp_path, small_bundle))
    p = subprocess.run([sys.executable, "-m", "edgefault", "serve", "--config", str(tmp_path / "c.toml")],
                       capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(PKG_PARENT)}, cwd=tmp_path)
    assert p.returncode != 0
    assert "rec.npz" in p.stderr and "assume_model_rate = true" in p.stderr and "fs = <Hz>" in p.stderr
    for extra, source in ((f"fs = {rec.fs}", "option"), ("assume_model_rate = true", "model")):
        with caplog.at_level(logging.INFO, logger="edgefault.daemon"):
            d = Daemon(config(extra))
            d.start()
            assert d.run() == 0
        assert f"read at {rec.fs:g} Hz ({source})" in caplog.text
        assert len(read_events(tmp_path / "ev.jsonl")) > 0
