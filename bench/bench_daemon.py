"""Soak of `edgefault serve`: a 12 kHz 3-channel stream over TCP, paced at --speed x real time
(default 50x) for --seconds of wall time, scored with a Gaussian bundle, events to a rotating
file sink. Prints the daemon's idle CPU, CPU use under load, RSS after warm-up and at the end,
frames dropped and windows scored vs expected; the peer is a bare in-process Runtime on the same
samples (x real time).

    python bench/bench_daemon.py [--seconds 600] [--speed 50] [--warmup 60]
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

FS, NCH, WINDOW, HOP = 12000.0, 3, 1024, 512
PACKET = 1200  # frames per packet (0.1 s of signal)


def make_bundle(path: Path) -> Path:
    from edgefault.io.readers import Recording
    from edgefault.device.spec import FeatureSpec
    from edgefault.train.anomaly import pack_gaussian, train_gaussian

    x = np.random.default_rng(0).normal(size=(360000, NCH)).astype(np.float32)
    spec = FeatureSpec.for_anomaly(FS, ("x", "y", "z"), window=WINDOW, hop=HOP)
    pack_gaussian(train_gaussian([Recording(data=x, fs=FS, channels=("x", "y", "z"), path="b")], spec), path)
    return path


def proc_stat(pid: int) -> tuple[float, float]:
    """(cpu seconds, RSS MB) of a process."""
    with open(f"/proc/{pid}/stat") as fh:
        f = fh.read().rsplit(")", 1)[1].split()
    cpu = (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    with open(f"/proc/{pid}/status") as fh:
        rss = next(int(ln.split()[1]) for ln in fh if ln.startswith("VmRSS:")) / 1024
    return cpu, rss


def metrics(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    out = {}
    for ln in text.splitlines():
        if ln and not ln.startswith("#"):
            k, v = ln.rsplit(" ", 1)
            out[k.split("{")[0] + ("{" + k.split("{")[1] if "{" in k and "reason" in k else "")] = float(v)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=600.0, help="wall time of the soak (default 600)")
    ap.add_argument("--speed", type=float, default=50.0, help="x real time (default 50)")
    ap.add_argument("--warmup", type=float, default=60.0, help="RSS baseline taken after this many s (default 60)")
    ap.add_argument("--idle", type=float, default=10.0, help="idle CPU measured over this many s (default 10)")
    a = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import edgefault
    from edgefault import Runtime
    from edgefault.daemon import framing

    rng = np.random.default_rng(1)
    block = rng.normal(size=(int(FS * 20), NCH)).astype(np.float32)  # 20 s, sent in a loop
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        bundle = make_bundle(t / "m.efb")
        # peer: a bare Runtime on the same samples, in this process
        rt = Runtime(bundle)
        t0 = time.perf_counter()
        for i in range(0, block.shape[0], PACKET):
            rt.push(block[i:i + PACKET])
        peer_x = block.shape[0] / FS / (time.perf_counter() - t0)

        http, port = free_port(), free_port()
        (t / "d.toml").write_text(f"""
[daemon]
state_dir = "{t / 'state'}"
state_interval = 30
[http]
listen = "127.0.0.1:{http}"
[[sensor]]
id = "soak"
bundle = "{bundle}"
queue_chunks = 256
[sensor.source]
type = "tcp"
listen = "127.0.0.1:{port}"
max_packet_bytes = 1048576
[[sink]]
type = "file"
path = "{t / 'events.jsonl'}"
max_bytes = 20000000
backups = 1
""")
        env = {**os.environ, "PYTHONPATH": str(Path(edgefault.__file__).resolve().parents[1])}
        err = open(t / "d.stderr", "wb")
        p = subprocess.Popen([sys.executable, "-m", "edgefault", "serve", "--config", str(t / "d.toml")],
                             stdout=subprocess.DEVNULL, stderr=err, env=env, cwd=tmp)
        deadline = time.monotonic() + 30
        while True:
            try:
                metrics(http)
                break
            except OSError:
                if time.monotonic() > deadline or p.poll() is not None:
                    raise SystemExit(f"daemon did not start: {(t / 'd.stderr').read_text()}")
                time.sleep(0.1)
        c0, rss_start = proc_stat(p.pid)
        time.sleep(a.idle)
        c1, _ = proc_stat(p.pid)
        idle_pct = 100 * (c1 - c0) / a.idle
        print(f"idle: {idle_pct:.2f} % CPU over {a.idle:.0f} s with no input; RSS {rss_start:.1f} MB")

        sent = [0]
        stop = threading.Event()

        def sender() -> None:
            rate = FS * a.speed
            with socket.create_connection(("127.0.0.1", port)) as s:
                t_start = time.monotonic()
                seq = 0
                while not stop.is_set():
                    due = t_start + sent[0] / rate
                    d = due - time.monotonic()
                    if d > 0:
                        time.sleep(d)
                    off = (seq * PACKET) % block.shape[0]
                    s.sendall(framing.encode(seq, block[off:off + PACKET]))
                    sent[0] += PACKET
                    seq += 1

        th = threading.Thread(target=sender, daemon=True)
        w0 = time.monotonic()
        cpu0, _ = proc_stat(p.pid)
        th.start()
        rss_warm = None
        samples = []
        while time.monotonic() - w0 < a.seconds:
            time.sleep(min(10.0, a.seconds / 10))
            el = time.monotonic() - w0
            cpu, rss = proc_stat(p.pid)
            samples.append((el, rss))
            if rss_warm is None and el >= a.warmup:
                rss_warm = rss
        stop.set()
        th.join()
        wall = time.monotonic() - w0
        cpu1, rss_end = proc_stat(p.pid)
        expected = (sent[0] - WINDOW) // HOP + 1
        deadline = time.monotonic() + 60
        while True:
            m = metrics(http)
            if m.get("edgefault_windows_scored_total", 0) + m.get("edgefault_windows_invalid_total", 0) >= expected \
                    or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        p.send_signal(signal.SIGTERM)
        rc = p.wait(60)
        err.close()
        scored = m.get("edgefault_windows_scored_total", 0)
        drops = m.get('edgefault_dropped_frames_total{reason="queue_full",sensor="soak"}', 0)
        lat_n = m.get("edgefault_scoring_latency_seconds_count", 0)
        lat_s = m.get("edgefault_scoring_latency_seconds_sum", 0)
        achieved = sent[0] / FS / wall
        util = (cpu1 - cpu0) / wall
        print(f"soak: {wall:.0f} s wall, {sent[0] / FS:.0f} s of 12 kHz x3 signal sent = {achieved:.1f}x real time "
              f"(target {a.speed:.0f}x)")
        print(f"  windows scored {scored:.0f} of {expected} expected; frames dropped {drops:.0f}; "
              f"invalid packets {sum(v for k, v in m.items() if k.startswith('edgefault_packets_invalid')):.0f}")
        print(f"  daemon CPU {100 * util:.0f} % of one core at {achieved:.0f}x -> about {achieved / max(util, 1e-9):.0f}x "
              f"real time per core; bare Runtime in-process: {peer_x:.0f}x (daemon/peer {achieved / max(util, 1e-9) / peer_x:.2f})")
        print(f"  mean latency chunk->sinks {1e3 * lat_s / max(lat_n, 1):.2f} ms")
        if rss_warm is not None:
            print(f"  RSS {rss_start:.1f} MB idle, {rss_warm:.1f} MB after {a.warmup:.0f} s warm-up, {rss_end:.1f} MB at end: "
                  f"growth after warm-up {rss_end - rss_warm:+.2f} MB")
        print("  RSS samples (s, MB): " + ", ".join(f"{e:.0f}:{r:.1f}" for e, r in samples))
        print(f"  daemon exit code {rc}")


if __name__ == "__main__":
    main()
