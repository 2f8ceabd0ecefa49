"""Drift monitors: false-drift rate on a long stable healthy stream, detection delay on drifting
streams, and the per-window cost of the monitors in Runtime.push.

A Gaussian bundle (12 kHz, 1024-sample windows, hop 512, RMS / kurtosis / crest + 16 log band
energies) is trained on 120 s of simulated healthy bearing signal (edgefault.io.synth) with drift
monitors calibrated for --target onsets per window. Then:

  false drift : --minutes of fresh healthy signal (other seeds); drift onsets / windows vs target
  delay       : healthy for 20 s, then a change (gain x1.05 / x1.1 / x1.2, sensor noise x1.3 / x2,
                a growing outer-race fault); windows from the change to the first drift flag and
                to the first alarm (inf: not within 60 s), median over --trials seeds
  cost        : us/window of Runtime.push (256-sample chunks) with drift off / on / on + adaptive
                threshold, medians over --repeat runs, ratio vs drift off

    python bench/bench_drift.py [--minutes 60] [--target 1e-4] [--trials 5] [--repeat 5] [--sessions 1]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

FS, WINDOW, HOP = 12000.0, 1024, 512
BLOCKS = (
    {"kind": "time_stats", "stats": ["rms", "kurtosis", "crest_factor"]},
    {"kind": "band_energy", "n_bands": 16, "spacing": "log", "fmin": 50.0, "fmax": 6000.0, "log": True},
)


def make_bundle(path: Path, target: float, sessions: int = 1) -> Path:
    from edgefault.io.readers import Recording
    from edgefault.device.spec import FeatureSpec
    from edgefault.io.synth import bearing_signal
    from edgefault.train.anomaly import pack_gaussian, train_gaussian

    # 120 s of healthy signal in all, from `sessions` recordings (seeds 1..sessions: never the
    # evaluation seeds 1000+, 2000+, 3000+ or the cost stream's 7)
    recs = [Recording(data=bearing_signal(120.0 / sessions, FS, seed=1 + i)[:, None], fs=FS, channels=("x",),
                      path=f"healthy{i}") for i in range(sessions)]
    spec = FeatureSpec(fs=FS, window=WINDOW, hop=HOP, channels=("x",), blocks=BLOCKS)
    res = train_gaussian(recs, spec, drift_far=target)
    pack_gaussian(res, path)
    return path


def push_all(rt, x: np.ndarray, chunk: int = 256):  # type: ignore[no-untyped-def]
    ev = []
    for i in range(0, x.shape[0], chunk):
        ev += rt.push(x[i:i + chunk])
    return ev


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=60.0, help="healthy stream length for the false-drift rate")
    ap.add_argument("--target", type=float, default=1e-4, help="calibrated false-drift onsets per window")
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--sessions", type=int, default=1, choices=range(1, 7),
                    help="train / calibrate on this many healthy recordings (sessions) sharing the 120 s")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    from edgefault import Runtime
    from edgefault.device.bundle import load_bundle
    from edgefault.io.synth import bearing_signal

    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        bpath = make_bundle(Path(d) / "m.efb", args.target, args.sessions)
        cal = load_bundle(bpath).thresholds["drift"]
        print(f"trained + calibrated in {time.perf_counter() - t0:.1f} s: score CUSUM h = {cal['score']['h']:.2f}, "
              f"latent MEWMA (q={cal['latent']['q']}, lambda={cal['latent']['lambda']}) limit = "
              f"{cal['latent']['limit']:.2f}; calibration {cal['calibration']['n_windows']} windows from "
              f"{args.sessions} session(s), autocorr time {cal['calibration']['autocorr_time']}, between-session "
              f"sd of the log-score {cal['score'].get('session_sd', 0.0):.3f} robust sigma "
              f"({cal['calibration'].get('session_spread_source', '-')})")

        # false drift on a long healthy stream
        rt = Runtime(bpath)
        n_win = onsets = 0
        per_mon = {"score": 0, "latent": 0}
        seg = 60.0
        for k in range(int(np.ceil(args.minutes * 60 / seg))):
            for e in rt.push(bearing_signal(seg, FS, seed=1000 + k)):
                n_win += 1
                if e.drift and e.drift_changed:
                    onsets += 1
                    for m in e.drift_stats["monitors"]:
                        per_mon[m] += 1
        rate = onsets / n_win
        lo, hi = _poisson_ci(onsets)
        print(f"\nfalse drift: {onsets} onsets in {n_win} healthy windows ({args.minutes:g} min) = {rate:.2e} / window "
              f"(95 % CI {lo / n_win:.1e} - {hi / n_win:.1e}); target {args.target:.1e}; ratio {rate / args.target:.2f}; "
              f"by monitor {per_mon}")

        # detection delay
        changes = {
            "gain x1.05": lambda s: 1.05 * bearing_signal(60.0, FS, seed=s),
            "gain x1.1": lambda s: 1.1 * bearing_signal(60.0, FS, seed=s),
            "gain x1.2": lambda s: 1.2 * bearing_signal(60.0, FS, seed=s),
            "noise x1.3": lambda s: bearing_signal(60.0, FS, seed=s, noise_rms=0.065),
            "noise x2": lambda s: bearing_signal(60.0, FS, seed=s, noise_rms=0.1),
            "outer race, growing over 60 s": lambda s: bearing_signal(
                60.0, FS, seed=s, fault="outer_race", severity=lambda t: np.clip(t / 60.0, 0.0, 1.0) * 0.5),
        }
        print(f"\n{'change':32s} {'median delay (windows)':>22s} {'(seconds)':>10s} {'first alarm':>12s}")
        for name, make in changes.items():
            delays, alarms = [], []
            for tr in range(args.trials):
                rt = Runtime(bpath)
                healthy = bearing_signal(20.0, FS, seed=2000 + tr)
                ev = push_all(rt, np.concatenate([healthy, make(3000 + tr)]), 4096)
                n0 = sum(e.t <= 20.0 for e in ev)
                first = next((i for i, e in enumerate(ev) if e.drift and i >= n0), None)
                alarm = next((i for i, e in enumerate(ev) if e.alarm and i >= n0), None)
                delays.append(np.inf if first is None else first - n0)
                alarms.append(np.inf if alarm is None else alarm - n0)
            md = float(np.median(delays))
            print(f"{name:32s} {md:22.0f} {md * HOP / FS:10.2f} {float(np.median(alarms)):12.0f}")

        # cost per window
        x = bearing_signal(60.0, FS, seed=7).astype(np.float32)
        chunks = [x[i:i + 256] for i in range(0, x.shape[0], 256)]
        configs = (("drift off", {"drift": False}), ("drift on", {}),
                   ("drift + adaptive threshold", {"adaptive_threshold": True}))
        times: dict[str, list[float]] = {label: [] for label, _ in configs}
        for _ in range(args.repeat):  # interleaved, so load changes hit every configuration alike
            for label, kw in configs:
                rt = Runtime(bpath, **kw)
                t = time.perf_counter()
                n = 0
                for c in chunks:
                    n += len(rt.push(c))
                times[label].append((time.perf_counter() - t) / n * 1e6)
        res = {label: float(np.median(v)) for label, v in times.items()}
        print(f"\n{'Runtime.push (256-sample chunks)':34s} {'us/window':>10s} {'ratio vs off':>13s}")
        for label, v in res.items():
            print(f"{label:34s} {v:10.2f} {v / res['drift off']:13.3f}")


def _poisson_ci(k: int) -> tuple[float, float]:
    """Approximate 95 % interval for a Poisson count (Wilson-Hilferty)."""
    def wh(n: float, z: float) -> float:
        return n * (1 - 1 / (9 * n) + z / (3 * np.sqrt(n))) ** 3 if n > 0 else 0.0
    return (wh(k, -1.96) if k > 0 else 0.0, wh(k + 1, 1.96))


if __name__ == "__main__":
    main()
