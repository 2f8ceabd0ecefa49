"""Per-push latency of this tree against another checkout (the previous version), same run.

Each push carries one hop of samples, so every push completes one window (as bench_vae.py).
Rounds alternate between the two trees, each in a fresh subprocess with only that tree on
PYTHONPATH; per tree: CPU (thread time) and wall p50 / p99 of `push` alone and of `push` plus
reading every Event's `alarm` (what code that handles events one by one pays).

    python bench/bench_versions.py --old /path/to/old/checkout [--bundle tests/data/vae_tiny.efb]
        [--rounds 10 --pushes 3000]

The old checkout needs an importable core: build it (tools/devbuild.sh there), or copy this
tree's edgefault/_core*.so into it when the binding's API has not changed (then the comparison
is of the Python side alone; say so beside the figures).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

CODE = r'''
import json, sys, time
import numpy as np
from edgefault.device.runtime import Runtime
rt = Runtime(sys.argv[1]); pushes = int(sys.argv[2])
hop, w = rt.spec.hop, rt.spec.window
x = np.random.default_rng(0).normal(size=(200000, len(rt.channels))).astype(np.float32) * 0.1
res = {}
for mode in ("push", "push+events"):
    rt.reset(); rt.push(x[:w - hop]); pos = w - hop
    cpu, wall = [], []
    for i in range(pushes):
        if pos + hop > len(x):
            pos = 0
        ch = x[pos:pos + hop]; pos += hop
        c0 = time.thread_time_ns(); t0 = time.perf_counter_ns()
        ev = rt.push(ch)
        if mode == "push+events":
            [e.alarm for e in ev]
        wall.append((time.perf_counter_ns() - t0) / 1e3); cpu.append((time.thread_time_ns() - c0) / 1e3)
        assert len(ev) == 1
    res[mode] = (cpu, wall)
print(json.dumps(res))
'''


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--old", required=True, type=Path, help="the other checkout (its edgefault/ importable)")
    ap.add_argument("--new", type=Path, default=ROOT, help="this tree (default)")
    ap.add_argument("--bundle", type=Path, default=ROOT / "tests" / "data" / "vae_tiny.efb")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--pushes", type=int, default=3000)
    a = ap.parse_args()
    trees = {"old": a.old.resolve(), "new": a.new.resolve()}
    acc = {t: {"push": ([], []), "push+events": ([], [])} for t in trees}
    for r in range(a.rounds):
        order = list(trees.items()) if r % 2 == 0 else list(trees.items())[::-1]
        for name, path in order:
            out = subprocess.run([sys.executable, "-c", CODE, str(a.bundle.resolve()), str(a.pushes)],
                                 capture_output=True, text=True, cwd="/",
                                 env={"PYTHONPATH": str(path), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"})
            if out.returncode:
                raise SystemExit(f"{name} ({path}): {out.stderr[-2000:]}")
            for mode, (cpu, wall) in json.loads(out.stdout).items():
                acc[name][mode][0].extend(cpu)
                acc[name][mode][1].extend(wall)
    print(f"{a.bundle.name}: {a.rounds} interleaved rounds of {a.pushes} pushes per tree; old = {trees['old']}")
    for mode in ("push", "push+events"):
        for name in trees:
            cpu, wall = (np.array(v) for v in acc[name][mode])
            print(f"{mode:<12} {name:<4} CPU p50 {np.percentile(cpu, 50):7.1f} p99 {np.percentile(cpu, 99):7.1f} us | "
                  f"wall p50 {np.percentile(wall, 50):7.1f} p99 {np.percentile(wall, 99):7.1f} us (n={len(cpu)})")


if __name__ == "__main__":
    main()
