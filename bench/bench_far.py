"""False-alarm rate on healthy sessions recorded after calibration: plain vs robust thresholds.

Simulated healthy bearings (edgefault.io.synth.bearing_signal, 2 channels, 12 kHz), one
*session* per recording: each session draws its own shaft speed (+-1 %), sensor gain (log-normal,
sd --gain-sd), noise level (+-10 %) and resonance (+-3 %): what a restart, another day or a
re-mounted sensor changes on a healthy machine. A Gaussian model (the product default) is
trained on --train-sessions sessions (each cut train | calib in time order, gap of one window)
with --calibration auto (plain: percentile or log-normal tail on the calibration windows) and
robust (block bootstrap for serial correlation + a between-session offset, 90 % guaranteed-
performance quantile), then every window of --test-sessions fresh sessions (seeds never used in
training) is scored through Runtime.push. Prints per target and method: measured FAR per window
over all test windows, its spread across sessions (median, 90th percentile), the share of test
sessions above 2x target, the effective sample sizes of calibration and test, and false-alarm
onsets (the debounced --k of --n alarm turning on) per hour of healthy test data.

    python bench/bench_far.py [--targets 0.01,0.001] [--train-sessions 1,3] [--test-sessions 30] [--seconds 20] [--k 3 --n 5]
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from edgefault.device.runtime import Runtime
from edgefault.device.spec import FeatureSpec
from edgefault.device.thresholds import alarm_onsets, effective_size, onset_rate, wilson_interval
from edgefault.io.readers import Recording
from edgefault.io.synth import bearing_signal
from edgefault.train.anomaly import pack_gaussian, train_gaussian

FS = 12000.0


def session(seed: int, seconds: float, gain_sd: float) -> np.ndarray:
    rng = np.random.default_rng(10_000 + seed)
    x = bearing_signal(seconds, fs=FS, shaft_hz=29.95 * (1 + rng.uniform(-0.01, 0.01)),
                       noise_rms=0.05 * (1 + rng.uniform(-0.1, 0.1)),
                       resonance_hz=3000.0 * (1 + rng.uniform(-0.03, 0.03)), seed=seed, n_channels=2)
    return np.ascontiguousarray(x * np.exp(rng.normal(0.0, gain_sd, size=(1, 2))), dtype=np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--targets", default="0.01,0.001")
    ap.add_argument("--train-sessions", default="1,3")
    ap.add_argument("--test-sessions", type=int, default=30)
    ap.add_argument("--seconds", type=float, default=20.0, help="length of every session (s)")
    ap.add_argument("--gain-sd", type=float, default=0.05, help="between-session sensor gain spread (log sd)")
    ap.add_argument("--hop", type=int, default=512)
    ap.add_argument("--k", type=int, default=3, help="debounced alarm: k of the last n windows (default 3, as the CLI)")
    ap.add_argument("--n", type=int, default=5)
    a = ap.parse_args()
    spec = FeatureSpec.for_anomaly(FS, ("DE", "FE"), window=1024, hop=a.hop)
    tests = [session(1000 + i, a.seconds, a.gain_sd) for i in range(a.test_sessions)]
    print(f"{a.test_sessions} test sessions x {a.seconds:g} s, hop {a.hop}, gain sd {a.gain_sd}, "
          f"alarm onsets per hour with k={a.k} of n={a.n}")
    print(f"{'target':>7} {'train':>5} {'method':>16} {'FAR':>8} {'95% CI':>17} {'x target':>8} "
          f"{'med/sess':>8} {'p90/sess':>8} {'>2x':>5} {'n_eff cal':>9} {'n_eff test':>10} {'onsets/h':>8} {'95% CI':>13}")
    for n_train in [int(v) for v in a.train_sessions.split(",")]:
        recs = [Recording(data=session(i, a.seconds, a.gain_sd), fs=FS, channels=("DE", "FE"), path=f"s{i}")
                for i in range(n_train)]
        for target in [float(v) for v in a.targets.split(",")]:
            for method in ("auto", "robust"):
                res = train_gaussian(recs, spec, target_far=target, calibration=method, drift_far=None)
                with tempfile.TemporaryDirectory() as tmp:
                    rt = Runtime(pack_gaussian(res, Path(tmp) / "m.efb", k=a.k, n=a.n))
                per, n_eff, k, n, onsets = [], 0.0, 0, 0, 0
                for x in tests:
                    rt.reset()
                    ev = [e for e in rt.push(x) if e.valid]
                    sc = np.array([e.score for e in ev])
                    onsets += alarm_onsets(np.array([e.alarm for e in ev], dtype=bool))
                    per.append(float(np.mean(sc > res.calibration.threshold)))
                    k += int(np.sum(sc > res.calibration.threshold))
                    n += sc.size
                    n_eff += effective_size(sc)[0]
                far = k / n
                lo, hi = wilson_interval(far * n_eff, n_eff)
                cal_eff = res.calibration.details.get("effective_windows") or effective_size(res.calib_scores)[0]
                on = onset_rate(onsets, n * a.hop / FS / 3600.0, a.k, a.n)  # monitored time: windows x hop
                print(f"{target:7.3g} {n_train:5d} {res.calibration.method:>16} {far:8.2e} [{lo:.1e}, {hi:.1e}] "
                      f"{far / target:8.2f} {np.median(per):8.2e} {np.quantile(per, 0.9):8.2e} "
                      f"{np.mean(np.array(per) > 2 * target):5.2f} {cal_eff:9.0f} {n_eff:10.0f} {on['per_time_unit']:8.1f} "
                      f"[{on['per_time_unit_ci95'][0]:5.1f}, {on['per_time_unit_ci95'][1]:5.1f}]")


if __name__ == "__main__":
    main()
