#!/usr/bin/env python3
"""Regenerate tests/data/vae_tiny.efb and tests/data/vae_tiny_expected.npz, the VAE fixture of
tests/test_vae_device.py (the VAE device path, run with numpy + the core + onnxruntime, no torch).

Needs the training extra (torch, onnx, onnxscript, onnxruntime) and a built core:

    pip install torch==2.13.0 && pip install ".[train]" && python tools/make_vae_fixture.py
    # in the dev tree:  bash tools/devbuild.sh && PYTHONPATH=$PWD python tools/make_vae_fixture.py

What it does, all through the normal training / export / pack path (edgefault.train.vae:
train_vae -> ONNX export with its onnxruntime parity check -> pack_vae -> pack_bundle, which
seals the bundle: member sha256s, bundle_id, manifest digest):

- trains a tiny CNN VAE (latent 4, 32 linear band energies per channel, window 256, hop 128)
  on 16 s of simulated healthy 2-channel bearing vibration (edgefault.io.synth.bearing_signal,
  fs 8 kHz, seed 11; no real data, so nothing from ../shared/data is copied into the repository);
- makes the test input: 0.6 s healthy (seed 12, not seen in training) followed by 0.6 s of an
  outer-race fault (seed 13, severity 0.5), stored as float16 (the test pushes it cast to
  float32, an exact conversion, so both sides score bit-identical samples; float16 halves the
  file against float32);
- scores that input with edgefault.Runtime (onnxruntime, as on the device) and stores the
  per-window scores, thresholds, anomaly and alarm flags, the bundle's id and file sha256 and
  the versions used.

It checks that the fixture can fail a test: healthy windows must raise no alarm, the fault must
raise the alarm, the scores must not all be equal, and no score may lie within 0.1 % of the
threshold (the test compares the anomaly / alarm flags exactly, the scores within rtol 1e-4).
Retraining with another torch version gives a different (equally valid) network, so the bundle
and the expected scores are always regenerated and committed together.
"""
from __future__ import annotations

import argparse
import hashlib
import platform
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
FS = 8000.0
CHANNELS = ("de", "fe")
SYNTH = dict(fs=FS, resonance_hz=2500.0, n_channels=2)


def make_input() -> np.ndarray:
    """The test chunk (float16, (n, 2)): 0.6 s healthy, then 0.6 s outer-race fault."""
    from edgefault.io.synth import bearing_signal

    healthy = bearing_signal(0.6, seed=12, **SYNTH)
    fault = bearing_signal(0.6, fault="outer_race", severity=0.5, seed=13, **SYNTH)
    return np.concatenate([healthy, fault]).astype(np.float16)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out-dir", type=Path, default=DATA)
    ap.add_argument("--epochs", type=int, default=40)
    args = ap.parse_args()

    import onnxruntime
    import torch

    import edgefault
    from edgefault.device.bundle import load_bundle
    from edgefault.device.runtime import Runtime
    from edgefault.io.readers import Recording
    from edgefault.io.synth import bearing_signal
    from edgefault.train.vae import pack_vae, train_vae, vae_spec

    train = bearing_signal(16.0, seed=11, **SYNTH)
    rec = Recording(data=np.ascontiguousarray(train, dtype=np.float32), fs=FS, channels=CHANNELS,
                    path="synth:bearing_signal(16.0, seed=11, healthy)")
    spec = vae_spec(FS, CHANNELS, window=256, hop=128, n_bands=32)
    res = train_vae([rec], spec, epochs=args.epochs, seed=1, latent=4, n_bands=8, target_far=0.01)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    path = args.out_dir / "vae_tiny.efb"
    pack_vae(res, path, k=2, n=3, name="vae_tiny (test fixture, tools/make_vae_fixture.py)")
    bundle = load_bundle(path)  # the seal verifies

    x16 = make_input()
    rt = Runtime(path)
    ev = rt.push(x16.astype(np.float32))
    scores = np.array([e.score for e in ev], dtype=np.float64)
    thr = np.array([e.threshold for e in ev], dtype=np.float64)
    anomaly = np.array([e.anomaly for e in ev])
    alarm = np.array([e.alarm for e in ev])
    t = np.array([e.t for e in ev], dtype=np.float64)
    n_healthy_samples = int(round(0.6 * FS))
    healthy = t <= n_healthy_samples / FS  # windows that end inside the healthy part
    if not (np.all(np.isfinite(scores)) and np.ptp(scores) > 0):
        raise SystemExit(f"fixture scores are not finite or all equal: {scores[:8]}")
    if alarm[healthy].any() or not alarm[~healthy].any():
        raise SystemExit(f"fixture does not separate healthy from fault: alarm healthy {alarm[healthy].sum()}, "
                         f"fault {alarm[~healthy].sum()} of {(~healthy).sum()}; change seeds/epochs")

    margin = float(np.min(np.abs(scores - thr) / thr))
    if margin < 1e-3:  # the test compares flags exactly: no score may sit within its tolerance of the threshold
        raise SystemExit(f"a score lies within {margin:.2g} (relative) of the threshold; change seeds/epochs")

    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    np.savez_compressed(
        args.out_dir / "vae_tiny_expected.npz",
        input=x16, fs=np.float64(FS), n_healthy_samples=np.int64(n_healthy_samples),
        seq=np.array([e.seq for e in ev], dtype=np.int64), t=t, score=scores.astype(np.float32),
        threshold=thr.astype(np.float32), anomaly=anomaly, alarm=alarm,
        bundle_id=np.str_(bundle.bundle_id), bundle_sha256=np.str_(sha),
        made_with=np.str_(f"edgefault {edgefault.__version__}, torch {torch.__version__}, onnxruntime "
                          f"{onnxruntime.__version__}, numpy {np.__version__}, {platform.machine()}, "
                          f"python {platform.python_version()}"),
    )
    print(f"{path}: {path.stat().st_size} bytes, bundle_id {bundle.bundle_id}; "
          f"{len(ev)} windows, healthy scores {scores[healthy].min():.3g}..{scores[healthy].max():.3g}, "
          f"fault {scores[~healthy].min():.3g}..{scores[~healthy].max():.3g}, threshold {thr[0]:.3g}, "
          f"alarm windows {int(alarm.sum())} (fault part {int((~healthy).sum())})")
    print(f"{args.out_dir / 'vae_tiny_expected.npz'}: "
          f"{(args.out_dir / 'vae_tiny_expected.npz').stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
