"""`edgefault demo`: the whole path on a simulated bearing, no data or network needed.

1. Simulate a machine; take its first 60 s (healthy) (2 accelerometers, 12 kHz) and train the Gaussian
   anomaly model on it (threshold calibrated on a later, held-out part of that recording).
2. Stream the next 90 s of the same machine, in which an outer-race defect appears at
   t = 45 s and grows, through ``Runtime.push`` in 256-sample chunks, as a gateway would.
3. Report false alarms before the fault, the detection delay, and what the alarm points at.
"""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np

from edgefault.device.runtime import Runtime
from edgefault.device.spec import FeatureSpec
from edgefault.io.synth import bearing_signal
from edgefault.train.anomaly import pack_gaussian, train_gaussian
from edgefault.io.readers import Recording

FS = 12000.0
TRAIN_S = 60.0
RUN_S = 90.0
ONSET_S = 45.0  # seconds into the streamed run
CHANNELS = ("accel_de", "accel_fe")


def _sparkline(values: np.ndarray, width: int = 72) -> str:
    ticks = " .:-=+*#%@"
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return ""
    bins = np.array_split(v, min(width, v.size))
    peak = np.array([b.max() for b in bins])
    lo, hi = np.log10(max(peak.min(), 1e-9)), np.log10(max(peak.max(), 1e-9))
    idx = np.zeros_like(peak, dtype=int) if hi <= lo else \
        np.clip(((np.log10(np.maximum(peak, 1e-9)) - lo) / (hi - lo) * (len(ticks) - 1)).round(), 0, len(ticks) - 1).astype(int)
    return "".join(ticks[i] for i in idx)


def run_demo(out_dir: str | None = None, seed: int = 7, quiet: bool = False) -> int:
    say = (lambda *a: None) if quiet else print
    work = Path(out_dir) if out_dir else Path(tempfile.mkdtemp(prefix="edgefault-demo-"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()

    say("edgefault demo: simulated rolling-element bearing (SKF 6205 geometry), 2 channels @ 12 kHz")

    # One machine, 150 s: healthy for the first TRAIN_S + ONSET_S seconds, then an outer-race
    # defect appears and grows. The model sees only the first TRAIN_S seconds.
    def severity(t: np.ndarray) -> np.ndarray:
        after = t - (TRAIN_S + ONSET_S)
        return np.where(after >= 0, 0.15 + 0.6 * np.clip(after / 30.0, 0.0, 1.0), 0.0)

    signal = bearing_signal(TRAIN_S + RUN_S, fs=FS, shaft_hz=29.95, fault="outer_race", severity=severity,
                            n_channels=2, seed=seed)
    n_train = int(TRAIN_S * FS)
    rec = Recording(data=np.ascontiguousarray(signal[:n_train], dtype=np.float32), fs=FS, channels=CHANNELS,
                    path="simulated-healthy")
    spec = FeatureSpec.for_anomaly(FS, CHANNELS, window=1024, hop=512)
    result = train_gaussian([rec], spec, target_far=0.01)
    bundle_path = work / "demo.efb"
    bundle = pack_gaussian(result, bundle_path, k=3, n=5, name="demo bearing anomaly model")
    cal = result.calibration
    say(f"1. trained on the first {TRAIN_S:.0f} s: {result.info['n_train_windows']} healthy windows "
        f"({spec.feature_dim} features); threshold {cal.threshold:.1f} ({cal.method}, target false-alarm "
        f"rate {cal.target_far:.0%}, set on {result.info['n_calib_windows']} later held-out windows)")
    say(f"   bundle: {bundle_path} ({bundle_path.stat().st_size / 1024:.0f} KiB, id {bundle.bundle_id})")
    run = signal[n_train:]
    rt = Runtime(bundle_path)
    events = []
    t_push = time.perf_counter()
    for start in range(0, run.shape[0], 256):
        events.extend(rt.push(run[start:start + 256]))
    push_s = time.perf_counter() - t_push
    say(f"2. streamed {run.shape[0] / FS:.0f} s through Runtime.push in 256-sample chunks: "
        f"{len(events)} windows, {push_s / len(events) * 1e6:.0f} us per window")

    t = np.array([e.t for e in events])
    scores = np.array([e.score if e.score is not None else np.nan for e in events])
    anomalous = np.array([e.anomaly for e in events])
    alarm = np.array([e.alarm for e in events])
    before = t < ONSET_S
    fa_rate = float(anomalous[before].mean())
    alarm_before = bool(alarm[before].any())
    first = next((e for e in events if e.alarm and e.t >= ONSET_S), None)
    say(f"3. before the fault: {int(anomalous[before].sum())} of {int(before.sum())} windows above threshold "
        f"({fa_rate:.1%}), debounced alarm {'RAISED' if alarm_before else 'never raised'}")
    if first is None:
        say("   the fault was NOT detected")
    else:
        c = first.contrib
        top_ch = max(c["channel"], key=c["channel"].get)
        say(f"   fault onset at {ONSET_S:.0f} s -> alarm at {first.t:.2f} s (delay {first.t - ONSET_S:.2f} s), "
            f"score {first.score:.0f} vs threshold {first.threshold:.0f}")
        say(f"   top channel: {top_ch}; top features: " +
            ", ".join(f"{k} ({v:.0f})" for k, v in list(c["feature"].items())[:3]))
    say(f"   score (log scale, max per bin), onset at {ONSET_S / 90.0:.0%} of the line:")
    say("   |" + _sparkline(scores) + "|")
    events_path = work / "events.jsonl"
    with events_path.open("w") as fh:
        for e in events:
            fh.write(json.dumps(e.to_dict()) + "\n")
    say(f"   events: {events_path}   (try: edgefault info {bundle_path})")
    say(f"done in {time.perf_counter() - t0:.1f} s")
    ok = first is not None and not alarm_before
    return 0 if ok else 1
