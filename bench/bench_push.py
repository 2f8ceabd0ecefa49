"""Runtime.push per window across hops and chunk sizes, beside its peers, in one run.

The product figure of issue #19: the feature set of bench_features.py (Hann window, real FFT,
16 log-spaced band energies, RMS, kurtosis, crest factor; 1024-sample windows, one 12 kHz
channel, Gaussian bundle). Per hop (128, 256, 512, 1024):

  push(c)        : Runtime.push in c-sample chunks, c = 64 .. 65536 (features, sensor-health
                   checks, Gaussian score, contributions, alarm state; an EventBatch per push,
                   no per-window Python object)
  push_into(256) : the same into one preallocated batch (Runtime.new_batch)
  events(256)    : push(256) and iterating every Event of every batch (what code that reads
                   ev.alarm per window pays)
  kernels        : FeatureSpec.transform over the whole signal (the core's feature pipeline alone)
  loop           : the fastest per-window numpy loop of bench_features.py (float32, no generic
                   pow, |z|^2 by squaring, pyFFTW plan when installed, else scipy.fft)
  batched        : the fastest batched numpy peer (all windows at once)

Peers are checked to compute our numbers (bench_features.rel_diff) before they are timed; BLAS
and FFT threads are pinned to 1 before numpy is imported; timings are interleaved rounds, the
median per method is printed with the ratio peer / ours. --callgrind adds instructions per
window at hop 512, 256-sample chunks (difference of a 10 s and a 40 s run on the same generated
signal, so start-up and signal generation cancel; PYTHONHASHSEED=0, so the interpreter's dict
probes repeat: with random string hashes the count moves by ~1,500 between runs),
split by library (self cost: _core*.so, the interpreter, numpy, libc/libm), for push and
push_into, the loop peer and the caller's own loop (a push that does nothing); and for push and
push_into what runs inside calls into the core, inclusive (the binding layer, kernels and the
libm / libc / GIL calls they make). Python overhead = total - in core calls - the caller's loop.

    python bench/bench_push.py [--seconds 30] [--repeat 5] [--hops 128,256,512,1024] [--callgrind]

Instructions only (e.g. in the emulated aarch64 root of ci/arm.sh, where valgrind runs under
qemu-user about 20x slower): --hops "" --callgrind --callgrind-seconds 2,6
--callgrind-methods caller,push,push_into
"""
from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
           "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"):
    os.environ[_v] = "1"

import argparse  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from collections import defaultdict  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
import bench_features as bf  # noqa: E402

CHUNKS = (64, 256, 1024, 4096, 16384, 65536)


def push_all(rt, x: np.ndarray, chunk: int) -> int:  # type: ignore[no-untyped-def]
    rt.reset()
    n = 0
    push = rt.push
    for s in range(0, x.shape[0], chunk):
        n += len(push(x[s:s + chunk]))
    return n


class NullRuntime:
    """push() that does nothing: the caller's own loop (slicing, len, the call), which every
    per-window figure includes and callgrind_split reports apart."""

    def reset(self) -> None:
        pass

    def push(self, chunk: np.ndarray) -> tuple[()]:
        return ()


def push_into_all(rt, x: np.ndarray, chunk: int, out) -> int:  # type: ignore[no-untyped-def]
    rt.reset()
    n = 0
    push_into = rt.push_into
    for s in range(0, x.shape[0], chunk):
        n += len(push_into(x[s:s + chunk], out))
    return n


def push_events(rt, x: np.ndarray, chunk: int) -> int:  # type: ignore[no-untyped-def]
    rt.reset()
    n = 0
    for s in range(0, x.shape[0], chunk):
        for ev in rt.push(x[s:s + chunk]):
            n += ev.alarm
    return n


def measure_hop(hop: int, seconds: float, repeat: int, tmp: Path) -> list[tuple[str, float]]:
    from edgefault import Runtime
    from edgefault.device.spec import FeatureSpec

    bf.HOP = hop
    bundle = bf.make_bundle(tmp / f"hop{hop}.efb")
    x = np.random.default_rng(1).normal(size=int(seconds * bf.FS)).astype(np.float32)
    n_win = (x.shape[0] - bf.WINDOW) // hop + 1
    spec = FeatureSpec(fs=bf.FS, window=bf.WINDOW, hop=hop, channels=("x",), blocks=tuple(bf.BLOCKS))
    ours_f, _, _ = spec.transform(x[:, None])
    peers = bf.peers(x, 1)
    for k, f in peers.items():
        err = bf.rel_diff(ours_f, f())  # type: ignore[operator]
        if not err <= bf.TOL:
            raise SystemExit(f"peer {k!r} computes different numbers ({err:.2e} > {bf.TOL:.0e})")
    rt = Runtime(bundle)
    out = rt.new_batch(64)
    xs = x[:, None]
    fns: dict[str, object] = {f"push({c})": (lambda c=c: push_all(rt, xs, c)) for c in CHUNKS}
    fns["push_into(256)"] = lambda: push_into_all(rt, xs, 256, out)
    fns["events(256)"] = lambda: push_events(rt, xs, 256)
    fns["kernels"] = lambda: spec.transform(xs)
    fns.update(peers)
    med = bf.interleaved_medians(fns, repeat)
    loop = min((k for k in med if k.startswith("loop")), key=med.get)
    batched = min((k for k in med if k.startswith("batched")), key=med.get)
    rows = [(k, med[k] / n_win * 1e6) for k in fns if not (k.startswith("loop") or k.startswith("batched"))]
    rows += [(f"{loop}", med[loop] / n_win * 1e6), (f"{batched}", med[batched] / n_win * 1e6)]
    return rows


# ---------------------------------------------------------------------------------------- callgrind
_COST = re.compile(r"^[0-9+\-*]")


def self_cost_by_object(path: Path) -> dict[str, int]:
    """Self instructions per ELF object from a callgrind output file (name compression handled;
    the cost line after calls= is the callee's inclusive cost and is skipped)."""
    names: dict[str, str] = {}
    cost: dict[str, int] = defaultdict(int)
    ob = "?"
    skip = False
    for line in path.read_text().splitlines():
        if line.startswith("ob=") or line.startswith("cob="):  # names are defined in either
            m = re.match(r"c?ob=\((\d+)\)(?: (.*))?", line)
            if m and m.group(2):
                names[m.group(1)] = m.group(2)
            if line.startswith("ob="):
                ob = names.get(m.group(1), m.group(1)) if m else line[3:]
        elif line.startswith("calls="):
            skip = True
        elif _COST.match(line):
            if skip:
                skip = False
                continue
            parts = line.split()
            if len(parts) >= 2:
                cost[ob] += int(parts[-1])
    return dict(cost)


def _group(obj: str) -> str:
    base = os.path.basename(obj)
    if base.startswith("_core"):
        return "core"
    if "libpython" in base or base.startswith("python"):
        return "interpreter"
    if "numpy" in obj:
        return "numpy"
    return "libc/libm/other"


_IN_CORE = "--toggle-collect=pybind11::cpp_function::dispatcher*"


def callgrind_split(bundle: Path, method: str, short: float = 10.0,
                    long: float = 40.0) -> tuple[float, dict[str, float]] | None:
    """(instructions per window, {group: per window}) for method 'push', 'push_into', 'loop' or
    'caller' (the push loop with a push that does nothing). Groups: self cost by library, and
    'in core calls': everything executed inside calls into _core (inclusive: the binding layer,
    the kernels and the libm / libc / GIL calls they make), counted in a second pair of runs."""
    runs = {}
    incl = {}
    for seconds, toggle in ((short, False), (long, False), (short, True), (long, True)):
        if toggle and method in ("loop", "caller"):
            continue
        with tempfile.TemporaryDirectory() as tmp:
            code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
                    f"import bench_push as bp; import bench_features as bf; import numpy as np; "
                    f"from edgefault import Runtime; "  # bench_push first: it pins the BLAS threads
                    f"bf.HOP = 512; x = np.random.default_rng(1).normal(size=int({long} * bf.FS))"
                    f".astype(np.float32)[:int({seconds} * bf.FS)]; m = {method!r}\n"
                    f"if m == 'loop':\n"
                    f"    hann, M = bf.peer_setup(); fft = 'pyfftw' if bf.has_pyfftw() else 'scipy'\n"
                    f"    plan = bf._plan_pyfftw((bf.WINDOW,), 1) if fft == 'pyfftw' else None\n"
                    f"    print(len(bf.features_loop(x, hann, M, fft, plan)))\n"
                    f"elif m == 'caller':\n"
                    f"    bp.push_all(bp.NullRuntime(), x[:, None], 256); print((x.shape[0] - bf.WINDOW) // 512 + 1)\n"
                    f"else:\n"
                    f"    rt = Runtime({str(bundle)!r}); xs = x[:, None]\n"
                    f"    print(bp.push_all(rt, xs, 256) if m == 'push' else bp.push_into_all(rt, xs, 256, "
                    f"rt.new_batch(64)))\n")
            out_file = Path(tmp) / "cg.out"
            r = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_file}"]
                               + ([_IN_CORE] if toggle else []) + [sys.executable, "-c", code],
                               capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"})
            if r.returncode != 0:
                print(r.stderr[-2000:], file=sys.stderr)
                return None
            n = int(r.stdout.strip().splitlines()[-1])
            if toggle:
                incl[seconds] = (n, sum(self_cost_by_object(out_file).values()))
            else:
                runs[seconds] = (n, self_cost_by_object(out_file))
    (n1, c1), (n2, c2) = runs[short], runs[long]
    groups: dict[str, float] = defaultdict(float)
    for ob in set(c1) | set(c2):
        groups[_group(ob)] += (c2.get(ob, 0) - c1.get(ob, 0)) / (n2 - n1)
    total = sum(groups.values())
    if incl:
        (m1, i1), (m2, i2) = incl[short], incl[long]
        groups["in core calls"] = (i2 - i1) / (m2 - m1)
    return total, dict(groups)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--hops", default="128,256,512,1024")
    ap.add_argument("--callgrind", action="store_true")
    ap.add_argument("--callgrind-seconds", type=lambda v: tuple(float(x) for x in v.split(",")), default=(10.0, 40.0),
                    help="the two signal lengths whose difference is counted (default 10,40; 2,6 under emulation)")
    ap.add_argument("--callgrind-methods", default="caller,push,push_into,loop")
    a = ap.parse_args()
    hops = [int(h) for h in a.hops.split(",") if h]  # --hops "": callgrind only
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        print(f"{a.seconds:g} s of one 12 kHz channel, 1024-sample windows; peers float32, one thread; "
              f"medians of {a.repeat} interleaved rounds; us per window (ratio = that / push(256))")
        for hop in hops:
            rows = measure_hop(hop, a.seconds, a.repeat, tmp)
            ref = dict(rows)["push(256)"]
            print(f"\nhop {hop}")
            print(f"{'method':<36}{'us/window':>11}{'/ push(256)':>13}")
            for k, us in rows:
                print(f"{k:<36}{us:>11.2f}{us / ref:>13.2f}")
        if a.callgrind:
            bf.HOP = 512
            bundle = bf.make_bundle(tmp / "cg.efb")
            print("\ncallgrind, hop 512, 256-sample chunks: instructions per window (self cost by library; "
                  "'in core calls' inclusive)")
            caller = 0.0
            for m in a.callgrind_methods.split(","):
                res = callgrind_split(bundle, m, *a.callgrind_seconds)
                if res is None:
                    print(f"{m}: callgrind failed (is valgrind installed?)")
                    continue
                total, groups = res
                core_incl = groups.pop("in core calls", None)
                parts = ", ".join(f"{g} {v:,.0f} ({v / total:.0%})" for g, v in sorted(groups.items()))
                print(f"{m:<10} {total:>10,.0f}  {parts}")
                if m == "caller":
                    caller = total
                if core_incl is not None:
                    py = total - core_incl - caller
                    print(f"{'':<10} {'':>10}  in core calls {core_incl:,.0f} ({core_incl / total:.0%}); the caller's "
                          f"loop {caller:,.0f}; Python overhead (the rest) {py:,.0f} ({py / total:.0%})")


if __name__ == "__main__":
    main()
