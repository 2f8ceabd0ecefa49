"""edgefault.io.readers.rate_fit's statistic (upper_half_fraction: the power in fs/4 .. fs/2) of the
CWRU files as a 12 kHz model gets them, at the right rate and at the wrong one (issue #18 item 1).

    python bench/bench_rate_fit.py [DATA_DIR]   # default ../shared/data/cwru
"""
import glob
import os
import sys

import numpy as np

from edgefault.io.readers import available_channels, read_recording, upper_half_fraction, RATE_FIT_UPPER_MIN
D = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "cwru")
for chans in ("DE", "FE", "DE,FE"):
    right12 = [upper_half_fraction(read_recording(f, channels=chans, model_fs=12000).data)
               for f in sorted(glob.glob(D + "/drive_end_12k/*/*.mat"))
               if set(chans.split(",")) <= set(available_channels(f))]
    n = D + "/normal_48k/0hp/normal.mat"
    right48 = upper_half_fraction(read_recording(n, channels=chans, model_fs=12000).data)  # naming: 48k -> 12k
    wrong48 = upper_half_fraction(read_recording(n, channels=chans, model_fs=12000, default_fs=12000).data)
    # the other way round: a 12 kHz file read as 48 kHz and resampled to 12 kHz
    wrong12 = [upper_half_fraction(read_recording(f, channels=chans, model_fs=12000, default_fs=48000).data)
               for f in sorted(glob.glob(D + "/drive_end_12k/*/*.mat"))
               if set(chans.split(",")) <= set(available_channels(f))]
    print(f"{chans:6s} right: 12k files n={len(right12)} min={min(right12):.4f} median={np.median(right12):.3f} "
          f"max={max(right12):.3f}; 48k normal->12k {right48:.3f} | wrong: 48k read as 12k {wrong48:.4f}; "
          f"12k read as 48k min={min(wrong12):.4f} max={max(wrong12):.4f} | threshold {RATE_FIT_UPPER_MIN}")
