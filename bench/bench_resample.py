"""Resampling speed: edgefault.io.resample vs scipy.signal.resample_poly, same run.

Run: PYTHONPATH=. python bench/bench_resample.py
Note the filters differ: edgefault uses ~50 x max(up, down) taps (80 dB, cutoff 0.9 x Nyquist),
scipy's default ~20 x max(up, down) taps (beta 5, cutoff at Nyquist); the last column runs
scipy with edgefault's filter for a like-for-like comparison.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
from scipy import signal

from edgefault.io.resample import rational_ratio, resample, resample_filter


def median_time(fn, repeat: int = 7) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    rng = np.random.default_rng(0)
    cases = [(48000, 12000, 243938), (12000, 48000, 120000), (44100, 48000, 441000),
             (48000, 44100, 480000), (25600, 12000, 256000)]
    print(f"{'case':>22} {'edgefault':>10} {'scipy':>9} {'ratio':>6} {'scipy+ourFIR':>13} {'ratio':>6}")
    for fs_in, fs_out, n in cases:
        x = rng.standard_normal((n, 2)).astype(np.float32)
        up, down = rational_ratio(fs_in, fs_out)
        h = resample_filter(up, down) / up
        t_ef = median_time(lambda: resample(x, fs_in, fs_out))
        t_sp = median_time(lambda: signal.resample_poly(x, up, down, axis=0))
        t_sh = median_time(lambda: signal.resample_poly(x, up, down, axis=0, window=h))
        label = f"{fs_in}->{fs_out} n={n}x2"
        print(f"{label:>22} {t_ef * 1e3:9.1f}ms {t_sp * 1e3:7.1f}ms {t_ef / t_sp:6.1f}"
              f" {t_sh * 1e3:11.1f}ms {t_ef / t_sh:6.1f}")


if __name__ == "__main__":
    main()
