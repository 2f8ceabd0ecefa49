"""Per-window features through Runtime.push vs numpy/scipy doing the same work.

Feature set (the product figure): Hann window, real FFT, 16 log-spaced band energies (dB),
RMS, kurtosis, crest factor; 1024-sample windows, hop 512, one channel at 12 kHz.

  ours    : edgefault.Runtime.push in 256-sample chunks (features + Gaussian scoring +
            alarm state + event objects: strictly more work than the peers do)
  loop    : a per-window numpy/scipy loop computing the same numbers
  batched : the same computed batched in numpy over all windows at once

Prints medians over --repeat runs and the ratios peer / ours, plus callgrind instructions per
window when --callgrind is given (valgrind must be installed).

    python bench/bench_features.py [--seconds 60] [--repeat 5] [--callgrind]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

FS, WINDOW, HOP, CHUNK, NB = 12000.0, 1024, 512, 256, 16
BLOCKS = [
    {"kind": "time_stats", "stats": ["rms", "kurtosis", "crest_factor"]},
    {"kind": "band_energy", "n_bands": NB, "spacing": "log", "fmin": 50.0, "fmax": 6000.0, "log": True},
]


def make_bundle(path: Path, seconds: float = 20.0) -> Path:
    from edgefault.io.readers import Recording
    from edgefault.device.spec import FeatureSpec
    from edgefault.train.anomaly import pack_gaussian, train_gaussian

    rng = np.random.default_rng(0)
    x = rng.normal(size=(int(seconds * FS), 1)).astype(np.float32)
    spec = FeatureSpec(fs=FS, window=WINDOW, hop=HOP, channels=("x",), blocks=tuple(BLOCKS))
    res = train_gaussian([Recording(data=x, fs=FS, channels=("x",), path="bench")], spec, target_far=0.01)
    pack_gaussian(res, path)
    return path


def peer_setup():  # type: ignore[no-untyped-def]
    import edgefault._core as core

    edges = np.asarray(core.band_edges(FS, WINDOW, NB, 50.0, 6000.0, "log"))
    freqs = np.fft.rfftfreq(WINDOW, 1.0 / FS)
    last = len(edges) - 2  # the last band is closed at fmax (docs/features.md)
    bins = [np.flatnonzero((freqs >= lo) & ((freqs < hi) if b < last else (freqs <= hi)))
            for b, (lo, hi) in enumerate(zip(edges[:-1], edges[1:]))]
    starts = np.array([b[0] for b in bins])
    ends = np.array([b[-1] + 1 for b in bins])
    hann = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(WINDOW) / WINDOW)).astype(np.float32)
    # one-sided power per bin: c_k |X_k|^2 / (n sum w^2), c_k = 1 at DC and Nyquist, else 2
    weight = np.full(WINDOW // 2 + 1, 2.0) / (WINDOW * np.sum(hann.astype(np.float64) ** 2))
    weight[0] /= 2
    weight[-1] /= 2
    return hann, starts, ends, weight


def features_loop(x: np.ndarray, hann, starts, ends, weight) -> np.ndarray:  # type: ignore[no-untyped-def]
    import scipy.fft

    out = []
    for s in range(0, x.shape[0] - WINDOW + 1, HOP):
        w = x[s:s + WINDOW]
        p = np.abs(scipy.fft.rfft(w * hann)) ** 2 * weight
        cs = np.concatenate([[0.0], np.cumsum(p)])
        bands = 10 * np.log10(cs[ends] - cs[starts] + 1e-12)
        w64 = w.astype(np.float64)
        rms = np.sqrt(np.mean(w64 ** 2))
        c = w64 - w64.mean()
        kurt = np.mean(c ** 4) / np.mean(c ** 2) ** 2  # = scipy.stats.kurtosis(fisher=False), without its overhead
        crest = np.max(np.abs(w)) / rms
        out.append(np.r_[rms, kurt, crest, bands])
    return np.array(out)


def features_batched(x: np.ndarray, hann, starts, ends, weight) -> np.ndarray:  # type: ignore[no-untyped-def]
    frames = np.lib.stride_tricks.sliding_window_view(x, WINDOW)[::HOP]
    p = np.abs(np.fft.rfft(frames * hann, axis=1)) ** 2 * weight
    cs = np.concatenate([np.zeros((p.shape[0], 1)), np.cumsum(p, axis=1)], axis=1)
    bands = 10 * np.log10(cs[:, ends] - cs[:, starts] + 1e-12)
    f64 = frames.astype(np.float64)
    m2 = np.mean(f64 ** 2, axis=1)
    c = f64 - f64.mean(axis=1, keepdims=True)
    kurt = np.mean(c ** 4, axis=1) / np.mean(c ** 2, axis=1) ** 2
    rms = np.sqrt(m2)
    crest = np.max(np.abs(frames), axis=1) / rms
    return np.column_stack([rms, kurt, crest, bands])


def run_ours(bundle: Path | "Runtime", x: np.ndarray) -> int:  # type: ignore[name-defined]
    """Push x in CHUNK-sample chunks through a Runtime (loaded once, reset per run)."""
    from edgefault import Runtime

    rt = bundle if isinstance(bundle, Runtime) else Runtime(bundle)
    rt.reset()
    n = 0
    for s in range(0, x.shape[0], CHUNK):
        n += len(rt.push(x[s:s + CHUNK]))
    return n


def median_time(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def callgrind_per_window(bundle: Path) -> float | None:  # uses the module default hop
    """Instructions per window from the difference of two callgrind runs (start-up cancels)."""
    counts = {}
    for seconds in (10.0, 40.0):
        with tempfile.TemporaryDirectory() as tmp:
            code = (f"import sys; sys.argv=['x']; import numpy as np; from pathlib import Path; "
                    f"sys.path.insert(0, {str(Path(__file__).parent)!r}); import bench_features as b; "
                    f"x=np.random.default_rng(1).normal(size=int({seconds}*b.FS)).astype(np.float32); "
                    f"print(b.run_ours(Path({str(bundle)!r}), x))")
            out_file = Path(tmp) / "cg.out"
            r = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_file}",
                                sys.executable, "-c", code], capture_output=True, text=True)
            if r.returncode != 0:
                print(r.stderr[-2000:], file=sys.stderr)
                return None
            n_windows = int(r.stdout.strip().splitlines()[-1])
            total = None
            for line in out_file.read_text().splitlines():
                if line.startswith("summary:") or line.startswith("totals:"):
                    total = int(line.split()[1])
            counts[seconds] = (n_windows, total)
    (n1, i1), (n2, i2) = counts[10.0], counts[40.0]
    return (i2 - i1) / (n2 - n1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--callgrind", action="store_true")
    ap.add_argument("--hop", type=int, default=512, help="hop in samples (default 512)")
    a = ap.parse_args()
    global HOP
    HOP = a.hop
    with tempfile.TemporaryDirectory() as tmp:
        bundle = make_bundle(Path(tmp) / "bench.efb")
        x = np.random.default_rng(1).normal(size=int(a.seconds * FS)).astype(np.float32)
        peer = peer_setup()
        n_win = (x.shape[0] - WINDOW) // HOP + 1
        # same numbers check (band energies / rms / kurtosis / crest), so the race is fair
        from edgefault.device.spec import FeatureSpec

        spec = FeatureSpec(fs=FS, window=WINDOW, hop=HOP, channels=("x",), blocks=tuple(BLOCKS))
        ours_f, _, _ = spec.transform(x[:, None])
        ref_f = features_batched(x, *peer)
        err = np.max(np.abs(ours_f - ref_f) / (np.abs(ref_f) + 1e-3))
        from edgefault import Runtime

        rt = Runtime(bundle)  # loading the bundle is start-up, not per-window work
        t_ours = median_time(lambda: run_ours(rt, x), a.repeat)
        t_loop = median_time(lambda: features_loop(x, *peer), max(1, a.repeat // 2))
        t_batch = median_time(lambda: features_batched(x, *peer), a.repeat)
        us = lambda t: t / n_win * 1e6  # noqa: E731
        print(f"{n_win} windows of {WINDOW} samples (hop {HOP}), pushed in chunks of {CHUNK}; "
              f"max relative difference ours vs numpy: {err:.2e}")
        print(f"{'method':<34}{'us/window':>12}{'ratio vs ours':>16}")
        print(f"{'edgefault Runtime.push':<34}{us(t_ours):>12.2f}{1.0:>16.1f}")
        print(f"{'numpy/scipy per-window loop':<34}{us(t_loop):>12.2f}{t_loop / t_ours:>16.1f}")
        print(f"{'numpy batched':<34}{us(t_batch):>12.2f}{t_batch / t_ours:>16.1f}")
        if a.callgrind:
            ipw = callgrind_per_window(bundle)
            print(f"callgrind: {ipw:,.0f} instructions per window (Runtime.push, 256-sample chunks)"
                  if ipw else "callgrind: failed (is valgrind installed?)")


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
