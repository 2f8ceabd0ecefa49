"""Per-window latency of the VAE bundle through Runtime.push (features + onnxruntime + contrib +
alarm state), against the Gaussian bundle on the same data in the same run.

Each push carries exactly one hop of samples, so every push completes one window: the latency
of a push is the device's per-window cost. Prints p50 / p99 / max in microseconds, the ratio to
the Gaussian peer, the model's MFLOP per window and how the time splits (features alone,
onnxruntime alone).

    python bench/bench_vae.py [--data ../shared/data] [--arch cnn] [--input spectrum|waveform] [--windows 3000]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from edgefault.device.runtime import Runtime


def _healthy(data_dir: Path | None, channels: list[str]):  # type: ignore[no-untyped-def]
    from edgefault.io.readers import Recording, read_recording

    f = data_dir / "cwru" / "normal_48k" / "0hp" / "normal.mat" if data_dir else None
    if f is not None and f.is_file():
        return read_recording(f, channels=channels, fs=12000, default_fs=48000), "CWRU normal 0hp"
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60000, len(channels))).astype(np.float32)
    return Recording(data=x, fs=12000.0, channels=tuple(channels), path="noise"), "synthetic noise"


def _latency(rt: Runtime, x: np.ndarray, hop: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(wall, thread CPU) microseconds per push. On a shared machine the wall p99 also holds the
    time the thread sat preempted (a 4 ms scheduler slice); the CPU time is the work itself
    (onnxruntime runs on the calling thread with intra_op_num_threads=1)."""
    rt.reset()
    rt.push(x[: rt.spec.window - hop])  # prime the framer: every later push of `hop` samples = 1 window
    pos = rt.spec.window - hop
    out = np.empty(n)
    cpu = np.empty(n)
    for i in range(n):
        if pos + hop > x.shape[0]:
            pos = 0
        chunk = x[pos:pos + hop]
        c0 = time.thread_time_ns()
        t0 = time.perf_counter_ns()
        ev = rt.push(chunk)
        out[i] = (time.perf_counter_ns() - t0) / 1e3
        cpu[i] = (time.thread_time_ns() - c0) / 1e3
        pos += hop
        assert len(ev) == 1
    return out, cpu


def _fmt(name: str, us: np.ndarray) -> str:
    return (f"{name:<34} p50 {np.percentile(us, 50):8.1f} us   p99 {np.percentile(us, 99):8.1f} us   "
            f"max {us.max():8.1f} us")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    ap.add_argument("--arch", default="cnn", choices=["cnn", "transformer"])
    ap.add_argument("--input", default="spectrum", choices=["spectrum", "waveform"])
    ap.add_argument("--channels", default="DE,FE")
    ap.add_argument("--windows", type=int, default=3000)
    ap.add_argument("--hop", type=int, default=512)
    args = ap.parse_args()
    from edgefault.device.spec import FeatureSpec
    from edgefault.train.anomaly import pack_gaussian, train_gaussian
    from edgefault.train.vae import pack_vae, train_vae, vae_spec, vae_waveform_spec

    channels = args.channels.split(",")
    rec, what = _healthy(Path(args.data), channels)
    x = rec.data if rec.data.shape[1] > 1 else rec.data[:, 0]
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.monotonic()
        spec = (vae_waveform_spec(rec.fs, rec.channels, 1024, args.hop) if args.input == "waveform"
                else vae_spec(rec.fs, rec.channels, 1024, args.hop))
        res = train_vae([rec], spec, arch=args.arch, seed=0, input=args.input)
        t_train = time.monotonic() - t0
        vae = Runtime(pack_vae(res, Path(tmp) / "v.efb"))
        g = train_gaussian([rec], FeatureSpec.for_anomaly(rec.fs, rec.channels, 1024, args.hop))
        gauss = Runtime(pack_gaussian(g, Path(tmp) / "g.efb"))
    print(f"data: {what}, channels {channels}, window 1024, hop {args.hop}, {args.windows} pushes of one window")
    print(f"VAE ({args.arch}, {args.input} input): {res.mflop:.3f} MFLOP/window, {res.info['n_parameters']} parameters, "
          f"trained in {res.info['train_seconds']:.1f} s ({res.info['epochs_run']} epochs; {t_train:.1f} s with "
          f"export and calibration), ONNX score max rel diff {res.parity['score_max_rel_diff']:.2e}")
    lat_v, cpu_v = _latency(vae, x, args.hop, args.windows)
    lat_g, cpu_g = _latency(gauss, x, args.hop, args.windows)
    print(_fmt("Runtime.push, VAE (wall)", lat_v))
    print(_fmt("Runtime.push, VAE (thread CPU)", cpu_v))
    print(_fmt("Runtime.push, Gaussian peer (wall)", lat_g))
    print(_fmt("Runtime.push, Gaussian peer (CPU)", cpu_g))
    print(f"ratio VAE / Gaussian: p50 {np.percentile(lat_v, 50) / np.percentile(lat_g, 50):.2f}x, "
          f"p99 {np.percentile(lat_v, 99) / np.percentile(lat_g, 99):.2f}x (wall); CPU p99 "
          f"{np.percentile(cpu_v, 99) / np.percentile(cpu_g, 99):.2f}x")
    print(f"pushes over 1 ms (wall): VAE {np.mean(lat_v > 1000):.2%}, Gaussian {np.mean(lat_g > 1000):.2%}; "
          f"load average {' '.join(f'{v:.1f}' for v in __import__('os').getloadavg())} on "
          f"{__import__('os').cpu_count()} CPUs")
    # split: features alone, onnxruntime alone (one window)
    pipe = vae.spec.pipeline()
    pipe.push(np.ascontiguousarray(rec.data[: 1024 - args.hop]))
    feats = []
    t_feat = np.empty(args.windows)
    pos = 1024 - args.hop
    for i in range(args.windows):
        if pos + args.hop > rec.data.shape[0]:
            pos = 0
        c = np.ascontiguousarray(rec.data[pos:pos + args.hop])
        t0n = time.perf_counter_ns()
        f, _, _, raw = pipe.push(c, 1.0, vae.model.needs_features, vae.model.needs_raw)
        t_feat[i] = (time.perf_counter_ns() - t0n) / 1e3
        pos += args.hop
        if len(feats) < 64:
            feats.append((f, raw if vae.model.needs_raw else None))
    t_ort = np.empty(args.windows)
    model = vae.model
    for i in range(args.windows):
        f, raw = feats[i % len(feats)]
        t0n = time.perf_counter_ns()
        model.score(f, raw)
        t_ort[i] = (time.perf_counter_ns() - t0n) / 1e3
    print(_fmt("  of which framing + features (core)", t_feat))
    print(_fmt("  of which VAEDeviceModel.score", t_ort))


if __name__ == "__main__":
    main()
