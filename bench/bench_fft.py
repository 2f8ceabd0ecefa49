"""Per-frame forward real FFT timing: edgefault._core.rfft vs scipy.fft, numpy.fft and pyFFTW.

All peers get the same float32 (frames, n) batch (numpy >= 2, scipy.fft and pyFFTW all transform
float32 as float32) and are measured in the same run, interleaved, on one thread: BLAS / OpenMP
pools pinned to 1 before numpy is imported, scipy.fft workers=1, pyFFTW threads=1 with an
FFTW_MEASURE plan made outside the timing. One extra column, scipy.fft workers=2, is the
two-thread figure (ours stays on one thread). Prints median microseconds per frame and the ratio
peer/ours (> 1 means we are faster).

    PYTHONPATH=. python bench/bench_fft.py --frames 2000 --repeat 21

    PYTHONPATH=. python bench/bench_fft.py --sizes 256 375 750 1500   # any 2^a 3^b 5^c

Instruction counts (stable across runs; divide the count by --frames). --callgrind makes one
edgefault rfft call per size given (so give one size per valgrind run to read its count):

    PYTHONPATH=. valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        --toggle-collect='edgefault::RealFFT::forward*' \
        "$(python -c 'import sys; print(sys.executable)')" bench/bench_fft.py --callgrind --sizes 375 --frames 1000

--callgrind-all runs that valgrind command itself for every size (valgrind on PATH) and prints
instructions per frame.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
           "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"):
    os.environ[_v] = "1"

import argparse  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from typing import Callable  # noqa: E402

import numpy as np  # noqa: E402

from edgefault import _core  # noqa: E402

SIZES = (256, 375, 512, 750, 1024, 1500, 2048, 4096)


def _median_us_per_frame(fn: Callable[[], object], frames: int, repeat: int) -> float:
    fn()  # warm up (plans, caches, page faults)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) / frames * 1e6


def _peers(x: np.ndarray) -> dict[str, Callable[[], object]]:
    n = x.shape[-1]
    peers: dict[str, Callable[[], object]] = {"edgefault": lambda: _core.rfft(x)}
    try:
        import scipy.fft

        peers["scipy.fft"] = lambda: scipy.fft.rfft(x, axis=-1, workers=1)
        peers["scipy.fft w2"] = lambda: scipy.fft.rfft(x, axis=-1, workers=2)
    except ImportError:
        pass
    peers["numpy.fft"] = lambda: np.fft.rfft(x, axis=-1)
    try:
        import pyfftw
        import pyfftw.builders

        a = pyfftw.empty_aligned(x.shape, dtype="float32")
        a[...] = x
        plan = pyfftw.builders.rfft(
            a, n=n, axis=-1, planner_effort="FFTW_MEASURE", threads=1,
            overwrite_input=False, avoid_copy=True,
        )
        peers["pyfftw"] = lambda: plan()
    except ImportError:
        pass
    return peers


def _callgrind_all(sizes: list[int], frames: int) -> None:
    import re
    import subprocess
    import sys

    print(f"# callgrind, edgefault::RealFFT::forward, instructions per frame ({frames} frames)")
    for n in sizes:
        cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
               "--toggle-collect=edgefault::RealFFT::forward*", sys.executable, __file__,
               "--callgrind", "--sizes", str(n), "--frames", str(frames)]
        p = subprocess.run(cmd, capture_output=True, text=True, check=True)
        m = re.search(r"Collected : (\d+)", p.stderr)
        if not m:
            raise SystemExit(f"no 'Collected' line from valgrind for n={n}:\n{p.stderr[-2000:]}")
        print(f"{n:>6} {int(m.group(1)) / frames:>10.0f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=2000, help="frames per batch (default 2000)")
    ap.add_argument("--repeat", type=int, default=21, help="timed repetitions (default 21)")
    ap.add_argument("--sizes", type=int, nargs="*", default=list(SIZES))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--callgrind", action="store_true",
                    help="run exactly one edgefault rfft over --frames frames of each size, "
                         "no timing (for valgrind --tool=callgrind)")
    ap.add_argument("--callgrind-all", action="store_true",
                    help="run valgrind --tool=callgrind on --callgrind once per size and print "
                         "instructions per frame in edgefault::RealFFT::forward")
    args = ap.parse_args()
    if args.frames < 1 or args.repeat < 1:
        ap.error("--frames and --repeat must be >= 1")
    for n in args.sizes:
        if not _core.fft_size_supported(n):
            ap.error(f"--sizes: {n} is not 2^a 3^b 5^c")
    if args.callgrind:
        for n in args.sizes:
            x = np.random.default_rng(args.seed).standard_normal((args.frames, n)).astype(np.float32)
            _core.rfft(x)
            print(f"# one edgefault rfft call: {args.frames} frames of n={n}; "
                  f"divide the collected instruction count by {args.frames}")
        return
    if args.callgrind_all:
        _callgrind_all(args.sizes, args.frames)
        return

    rng = np.random.default_rng(args.seed)
    print(f"# rfft float32, frames={args.frames}, repeat={args.repeat}, median us/frame; "
          f"ratio = peer/edgefault (>1: edgefault faster)")
    print(f"# {platform.machine()} {platform.processor() or ''} numpy {np.__version__}")
    rows = []
    names: list[str] = []
    for n in args.sizes:
        x = rng.standard_normal((args.frames, n)).astype(np.float32)
        peers = _peers(x)
        # Sanity: every peer computes the same thing.
        ref = np.fft.rfft(x[:4].astype(np.float64), axis=-1)
        got = _core.rfft(x[:4])
        err = np.abs(got - ref).max() / np.abs(ref).max()
        if err > 1e-5:
            raise SystemExit(f"edgefault rfft disagrees with numpy at n={n}: rel err {err:.2e}")
        # Interleave peers across repeats to share any frequency drift fairly.
        res = {k: [] for k in peers}
        for _ in range(3):
            for k, fn in peers.items():
                res[k].append(_median_us_per_frame(fn, args.frames, max(1, args.repeat // 3)))
        med = {k: statistics.median(v) for k, v in res.items()}
        rows.append((n, med))
        for k in med:
            if k not in names:
                names.append(k)

    head = f"{'n':>6} " + " ".join(f"{k:>11}" for k in names)
    head += " " + " ".join(f"{k + '/ours':>16}" for k in names if k != "edgefault")
    print(head)
    for n, med in rows:
        ours = med["edgefault"]
        line = f"{n:>6} " + " ".join(f"{med[k]:>11.3f}" if k in med else f"{'-':>11}" for k in names)
        line += " " + " ".join(
            f"{med[k] / ours:>16.2f}" if k in med else f"{'-':>16}" for k in names if k != "edgefault"
        )
        print(line)


if __name__ == "__main__":
    main()
