"""Start-up time and memory of a device process.

  * `import edgefault` + loading a bundle, in a fresh interpreter (median of --repeat runs),
    beside a bare `import numpy` in the same run;
  * peak RSS (VmHWM) of a process that scores a 12 kHz, 2-channel stream with the Gaussian
    model for --seconds of signal, pushed in 256-sample chunks (no onnxruntime session).

    python bench/bench_footprint.py [--repeat 10] [--seconds 120]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

IMPORT = ("import time; t=time.perf_counter(); import edgefault; rt=edgefault.Runtime({b!r}); "
          "print(time.perf_counter()-t)")
NUMPY = "import time; t=time.perf_counter(); import numpy; print(time.perf_counter()-t)"
STREAM = """
import numpy as np, edgefault
def rss(tag):
    for line in open('/proc/self/status'):
        if line.startswith(tag): return int(line.split()[1]) / 1024
rt = edgefault.Runtime({b!r})
rng = np.random.default_rng(0)
n = 0
base = rss('VmRSS:')
for i in range(int({s} * 12000 / 256)):
    n += len(rt.push(rng.normal(size=(256, 2)).astype(np.float32)))
print(n, base, rss('VmRSS:'), rss('VmHWM:'))
"""


def make_bundle(path: Path) -> Path:
    from edgefault.io.readers import Recording
    from edgefault.device.spec import FeatureSpec
    from edgefault.train.anomaly import pack_gaussian, train_gaussian

    x = np.random.default_rng(0).normal(size=(240000, 2)).astype(np.float32)
    spec = FeatureSpec.for_anomaly(12000.0, ("DE", "FE"))
    pack_gaussian(train_gaussian([Recording(data=x, fs=12000.0, channels=("DE", "FE"), path="b")], spec), path)
    return path


def run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=120.0)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        b = str(make_bundle(Path(tmp) / "m.efb"))
        t_ef = np.median([float(run(IMPORT.format(b=b))) for _ in range(a.repeat)])
        t_np = np.median([float(run(NUMPY)) for _ in range(a.repeat)])
        print(f"import edgefault + load bundle: {t_ef * 1e3:.0f} ms median "
              f"(import numpy alone: {t_np * 1e3:.0f} ms; ratio {t_ef / t_np:.1f}x)")
        n, base, end, peak = run(STREAM.format(b=b, s=a.seconds)).split()
        print(f"streaming {a.seconds:.0f} s of 2-channel 12 kHz signal ({n} windows): RSS {float(base):.1f} MB "
              f"after load, {float(end):.1f} MB at end, peak {float(peak):.1f} MB")


if __name__ == "__main__":
    main()
