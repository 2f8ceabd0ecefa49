"""Per-window features through Runtime.push vs numpy/scipy doing the same work.

Feature set (the product figure): Hann window, real FFT, 16 log-spaced band energies (dB),
RMS, kurtosis, crest factor; 1024-sample windows, hop 512, one channel at 12 kHz.

  ours    : edgefault.Runtime.push in 256-sample chunks (features + Gaussian scoring +
            alarm state + event objects: strictly more work than the peers do)
  loop    : a per-window numpy loop computing the same numbers, written for speed: float32
            as our core computes, the window's FFT by scipy.fft and (when installed) by a
            pyFFTW plan made once, power as |z|^2 (numpy squares, no generic pow), band sums
            as one float32 matrix product with the one-sided weights folded in, moments by
            BLAS dot products (c2 = c*c; m4 = c2 . c2), results written into a preallocated array
  batched : the same over all windows at once (sliding_window_view, one FFT call, one sgemm)
  ours, batched: FeatureSpec.transform over the whole signal (the core's feature pipeline
            alone, no scoring or events): the like-for-like figure beside the batched peers

The peers run on one thread: every BLAS / OpenMP pool is pinned to 1 before numpy is imported
and scipy.fft gets workers=1, pyFFTW threads=1. A second figure runs the batched peers with two
threads (scipy.fft workers=2, pyFFTW threads=2, BLAS unpinned) in a subprocess, beside ours
measured in that same subprocess. Every peer's numbers are checked against ours (max relative
difference <= TOL) before it is timed. Timings are interleaved (one run of each method per
round) and the medians over --repeat rounds are printed with the ratios peer / ours; --callgrind
adds instructions per window (valgrind) for ours and the fastest loop and batched peers.

    python bench/bench_features.py [--seconds 60] [--repeat 7] [--hop 512|256] [--callgrind]
"""
from __future__ import annotations

import os

_THREADS = os.environ.get("EDGEFAULT_BENCH_THREADS", "1")
for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
           "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"):
    os.environ[_v] = _THREADS

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

FS, WINDOW, HOP, CHUNK, NB = 12000.0, 1024, 512, 256, 16
TOL = 2e-6  # max |ours - peer| / (|peer| + 1e-3) over all features and windows
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
    """Hann window (float32) and the (bins x bands) float32 matrix of one-sided power weights."""
    import edgefault._core as core

    edges = np.asarray(core.band_edges(FS, WINDOW, NB, 50.0, 6000.0, "log"))
    freqs = np.fft.rfftfreq(WINDOW, 1.0 / FS)
    last = len(edges) - 2  # the last band is closed at fmax (docs/features.md)
    hann = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(WINDOW) / WINDOW)).astype(np.float32)
    # one-sided power per bin: c_k |X_k|^2 / (n sum w^2), c_k = 1 at DC and Nyquist, else 2
    weight = np.full(WINDOW // 2 + 1, 2.0) / (WINDOW * np.sum(hann.astype(np.float64) ** 2))
    weight[0] /= 2
    weight[-1] /= 2
    M = np.zeros((WINDOW // 2 + 1, NB))
    for b, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
        sel = (freqs >= lo) & ((freqs < hi) if b < last else (freqs <= hi))
        M[sel, b] = weight[sel]
    return hann, M.astype(np.float32)


def _fft_scipy(workers: int):  # type: ignore[no-untyped-def]
    import scipy.fft

    return lambda a: scipy.fft.rfft(a, axis=-1, workers=workers)


def _plan_pyfftw(shape: tuple[int, ...], threads: int):  # type: ignore[no-untyped-def]
    """An FFTW_MEASURE plan on an aligned float32 input buffer (planning is set-up, not timed)."""
    import pyfftw

    a = pyfftw.empty_aligned(shape, dtype="float32")
    out = pyfftw.empty_aligned(shape[:-1] + (shape[-1] // 2 + 1,), dtype="complex64")
    plan = pyfftw.FFTW(a, out, axes=(-1,), flags=("FFTW_MEASURE",), threads=threads)
    return a, plan


def has_pyfftw() -> bool:
    try:
        import pyfftw  # noqa: F401
    except ImportError:
        return False
    return True


def features_loop(x: np.ndarray, hann, M, fft: str = "scipy", plan=None) -> np.ndarray:  # type: ignore[no-untyped-def]
    """One window at a time (what a per-window Python service does), float32; plan = (buffer,
    FFTW) from _plan_pyfftw((WINDOW,), 1) for fft='pyfftw'."""
    n_win = (x.shape[0] - WINDOW) // HOP + 1
    out = np.empty((n_win, 3 + NB), dtype=np.float32)
    inv_n = np.float32(1.0 / WINDOW)
    dot, mul, absolute, log10 = np.dot, np.multiply, np.abs, np.log10
    if fft == "pyfftw":
        a, fftw = plan if plan is not None else _plan_pyfftw((WINDOW,), 1)
        execute, z = fftw.execute, fftw.output_array
    else:
        rfft = _fft_scipy(1)
    for i in range(n_win):
        w = x[i * HOP:i * HOP + WINDOW]
        if fft == "pyfftw":
            mul(w, hann, out=a)
            execute()
        else:
            z = rfft(w * hann)
        p = absolute(z)
        p *= p
        out[i, 3:] = log10(dot(p, M) + 1e-12)
        c = w - np.add.reduce(w) * inv_n
        c2 = c * c
        m2 = dot(c, c) * inv_n
        ms = dot(w, w) * inv_n
        rms = np.sqrt(ms)
        out[i, 0] = rms
        out[i, 1] = dot(c2, c2) * inv_n / (m2 * m2)  # = scipy.stats.kurtosis(fisher=False)
        out[i, 2] = max(w.max(), -w.min()) / rms
    out[:, 3:] *= 10
    return out


def features_batched(x: np.ndarray, hann, M, fft: str = "scipy", threads: int = 1,
                     plan=None) -> np.ndarray:  # type: ignore[no-untyped-def]
    """All windows at once, float32; plan = (buffer, FFTW) from _plan_pyfftw for fft='pyfftw'."""
    frames = np.lib.stride_tricks.sliding_window_view(x, WINDOW)[::HOP]
    if fft == "pyfftw":
        a, fftw = plan if plan is not None else _plan_pyfftw(frames.shape, threads)
        np.multiply(frames, hann, out=a)
        fftw.execute()
        z = fftw.output_array
    else:
        z = _fft_scipy(threads)(frames * hann)
    p = np.abs(z)
    p *= p
    out = np.empty((frames.shape[0], 3 + NB), dtype=np.float32)
    np.log10(p @ M + 1e-12, out=out[:, 3:])
    out[:, 3:] *= 10
    inv_n = np.float32(1.0 / WINDOW)
    mean = frames.sum(axis=1) * inv_n
    c = frames - mean[:, None]
    c2 = c * c
    m2 = c2.sum(axis=1) * inv_n
    c2 *= c2
    m4 = c2.sum(axis=1) * inv_n
    rms = np.sqrt(m2 + mean * mean)  # as docs/features.md: sqrt(mu^2 + var)
    out[:, 0] = rms
    out[:, 1] = m4 / (m2 * m2)
    out[:, 2] = np.maximum(frames.max(axis=1), -frames.min(axis=1)) / rms
    return out


def run_ours(bundle: Path | "Runtime", x: np.ndarray) -> int:  # type: ignore[name-defined]
    """Push x in CHUNK-sample chunks through a Runtime (loaded once, reset per run)."""
    from edgefault import Runtime

    rt = bundle if isinstance(bundle, Runtime) else Runtime(bundle)
    rt.reset()
    n = 0
    for s in range(0, x.shape[0], CHUNK):
        n += len(rt.push(x[s:s + CHUNK]))
    return n


def peers(x: np.ndarray, threads: int = 1) -> dict[str, object]:
    """name -> zero-argument callable; FFT plans are made here (set-up), not in the timing."""
    hann, M = peer_setup()
    out: dict[str, object] = {}
    if threads == 1:
        out["loop, scipy.fft"] = lambda: features_loop(x, hann, M, "scipy")
        if has_pyfftw():
            p1 = _plan_pyfftw((WINDOW,), 1)
            out["loop, pyFFTW"] = lambda: features_loop(x, hann, M, "pyfftw", p1)
    out[f"batched, scipy.fft workers={threads}"] = lambda: features_batched(x, hann, M, "scipy", threads)
    if has_pyfftw():
        n_win = (x.shape[0] - WINDOW) // HOP + 1
        pb = _plan_pyfftw((n_win, WINDOW), threads)
        out[f"batched, pyFFTW threads={threads}"] = lambda: features_batched(x, hann, M, "pyfftw", threads, pb)
    return out


def interleaved_medians(fns: dict[str, object], repeat: int) -> dict[str, float]:
    """One run of each method per round (load changes hit all alike), median per method."""
    ts: dict[str, list[float]] = {k: [] for k in fns}
    for f in fns.values():
        f()  # warm-up (plans, caches, page faults)
    for _ in range(repeat):
        for k, f in fns.items():
            t0 = time.perf_counter()
            f()
            ts[k].append(time.perf_counter() - t0)
    return {k: float(np.median(v)) for k, v in ts.items()}


def rel_diff(ours: np.ndarray, ref: np.ndarray) -> float:
    return float(np.max(np.abs(ours.astype(np.float64) - ref) / (np.abs(ref.astype(np.float64)) + 1e-3)))


def callgrind_per_window(bundle: Path, method: str = "ours") -> float | None:
    """Instructions per window from the difference of two callgrind runs on the same generated
    signal (start-up, imports, signal generation, bundle loading and FFT planning cancel). method: 'ours' or a key of peers()."""
    counts = {}
    for seconds in (10.0, 40.0):
        with tempfile.TemporaryDirectory() as tmp:
            code = (f"import sys; sys.argv=['x']; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
                    f"import bench_features as b; import numpy as np; from pathlib import Path; b.HOP={HOP}; "
                    f"x=np.random.default_rng(1).normal(size=int(40*b.FS)).astype(np.float32)[:int({seconds}*b.FS)]; "
                    f"m={method!r}; f=(lambda: b.run_ours(Path({str(bundle)!r}), x)) if m=='ours' "
                    f"else b.peers(x)[m]; r=f(); print(r if m=='ours' else len(r))")
            out_file = Path(tmp) / "cg.out"
            r = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_file}",
                                sys.executable, "-c", code], capture_output=True, text=True,
                               env={**os.environ, "PYTHONHASHSEED": "0"})  # str hashes: the same dict probes
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


def measure(bundle: Path, x: np.ndarray, repeat: int, threads: int) -> dict[str, float]:
    from edgefault import Runtime
    from edgefault.device.spec import FeatureSpec

    spec = FeatureSpec(fs=FS, window=WINDOW, hop=HOP, channels=("x",), blocks=tuple(BLOCKS))
    ours_f, _, _ = spec.transform(x[:, None])
    fns = peers(x, threads)
    for k, f in fns.items():  # the same numbers, so the race is fair
        err = rel_diff(ours_f, f())
        print(f"# max relative difference ours vs {k}: {err:.2e} (tolerance {TOL:.0e})")
        if not err <= TOL:
            raise SystemExit(f"peer {k!r} computes different numbers ({err:.2e} > {TOL:.0e})")
    rt = Runtime(bundle)  # loading the bundle is start-up, not per-window work
    xs = x[:, None]
    fns = {"edgefault Runtime.push": lambda: run_ours(rt, x),
           "edgefault FeatureSpec.transform": lambda: spec.transform(xs), **fns}
    return interleaved_medians(fns, repeat)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--callgrind", action="store_true")
    ap.add_argument("--hop", type=int, default=512, help="hop in samples (default 512)")
    ap.add_argument("--no-threads", action="store_true", help="skip the two-thread batched figure")
    ap.add_argument("--_json", action="store_true", help=argparse.SUPPRESS)  # the two-thread subprocess
    a = ap.parse_args()
    global HOP
    HOP = a.hop
    threads = int(_THREADS)
    with tempfile.TemporaryDirectory() as tmp:
        bundle = make_bundle(Path(tmp) / "bench.efb")
        x = np.random.default_rng(1).normal(size=int(a.seconds * FS)).astype(np.float32)
        n_win = (x.shape[0] - WINDOW) // HOP + 1
        if a._json:
            print(json.dumps(measure(bundle, x, a.repeat, threads)))
            return
        print(f"{n_win} windows of {WINDOW} samples (hop {HOP}), pushed in chunks of {CHUNK}; "
              f"peers float32 on one thread; medians of {a.repeat} interleaved rounds")
        med = measure(bundle, x, a.repeat, 1)
        if not a.no_threads:
            env = dict(os.environ, EDGEFAULT_BENCH_THREADS="2")
            r = subprocess.run([sys.executable, __file__, "--_json", "--seconds", str(a.seconds),
                                "--repeat", str(a.repeat), "--hop", str(HOP)],
                               env=env, capture_output=True, text=True)
            if r.returncode != 0:
                print(r.stderr[-2000:], file=sys.stderr)
                med2 = {}
            else:
                med2 = json.loads(r.stdout.strip().splitlines()[-1])
        us = lambda t: t / n_win * 1e6  # noqa: E731
        ours = med["edgefault Runtime.push"]
        print(f"{'method':<40}{'us/window':>12}{'ratio peer/ours':>18}")
        for k, t in med.items():
            name = k if k.startswith("edgefault") else "numpy " + k
            print(f"{name:<40}{us(t):>12.2f}{t / ours:>18.1f}")
        tr = med["edgefault FeatureSpec.transform"]
        print("batched peers / FeatureSpec.transform (features only, like for like): " + ", ".join(
            f"{k} {t / tr:.1f}x" for k, t in med.items() if k.startswith("batched")))
        if not a.no_threads and med2:
            ours2 = med2.pop("edgefault Runtime.push")
            med2.pop("edgefault FeatureSpec.transform", None)
            print(f"two threads (subprocess, BLAS unpinned; ours, one thread, timed there too: {us(ours2):.2f} "
                  f"us/window; it runs slower beside two-thread peers on a 2-core machine):")
            print(f"{'':<40}{'us/window':>12}{'/ours there':>18}{'/ours above':>14}")
            for k, t in med2.items():
                print(f"{'numpy ' + k:<40}{us(t):>12.2f}{t / ours2:>18.1f}{t / ours:>14.1f}")
        if a.callgrind:
            loops = [k for k in med if k.startswith("loop")]
            batched = [k for k in med if k.startswith("batched")]
            best = [min(loops, key=med.get), min(batched, key=med.get)]  # by wall time in this run
            ipw = callgrind_per_window(bundle, "ours")
            if not ipw:
                print("callgrind: failed (is valgrind installed?)")
                return
            print(f"callgrind instructions per window: edgefault Runtime.push {ipw:,.0f}")
            for k in best:
                ip = callgrind_per_window(bundle, k)
                if ip:
                    print(f"callgrind instructions per window: numpy {k} {ip:,.0f} ({ip / ipw:.1f}x ours)")


if __name__ == "__main__":
    main()
