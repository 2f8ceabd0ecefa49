"""Dictionary-learning speed on one core: edgefault's structured Fisher dictionary learning vs
scikit-learn's dictionary learners with the same number of atoms, measured in the same run.

Run: PYTHONPATH=. python bench/bench_dictionary.py [--per-class 300] [--repeat 3] [--iters 8]

Problem (issue 4): 10 classes x 12 atoms = 120 atoms of 1024 points, --per-class training rows
per class (300 = the `--max-windows` default of `edgefault train/eval --method sfdsc`). Rows are
synthetic and reproducible: each class is a mixture of 3 random smooth 1024-point prototypes
(shared low-frequency content across classes, as spectra of one machine are) plus noise, each
row centred and scaled to unit norm as SFDSC prepares its input.

- ours: FisherDictionaryLearning(12 per class, --iters alternations; each = FISTA tree-sparse
  coding of every row + closed-form block update of every sub-dictionary), supervised.
- peer 1: sklearn.decomposition.DictionaryLearning(120 atoms, max_iter=--iters, fit_algorithm
  "cd"), unsupervised, all rows.
- peer 2: sklearn.decomposition.MiniBatchDictionaryLearning(120 atoms, batch_size 256,
  max_iter=--iters epochs), unsupervised, all rows.
  All learners use the same sparsity weight --alpha (default 0.02, SFDSC's default; ours on the
  tree-structured norm, the peers on the l1 norm) on the same unit-norm rows.
- peer 3: one sklearn DictionaryLearning(12 atoms, max_iter=--iters) per class (the
  per-class part of a class-structured dictionary without the discriminative terms).

Every BLAS / OpenMP pool is pinned to one thread before numpy is imported (the target is "one
core"). Times are medians over --repeat fits of CPU time and wall clock; ratios are peer / ours.
Target (issue 4): ours <= 60 s.
"""
from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
           "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"):
    os.environ[_v] = "1"

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
from sklearn.decomposition import DictionaryLearning, MiniBatchDictionaryLearning  # noqa: E402

from edgefault.train.fisher_dl import FisherDictionaryLearning  # noqa: E402


def make_data(n_classes: int, per_class: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, d)
    shared = np.stack([np.cos(2 * np.pi * f * t) for f in (1, 2, 3)])
    X, y = [], []
    for c in range(n_classes):
        # smooth class prototypes: random low-order cosine series plus a few class-specific peaks
        protos = []
        for _ in range(3):
            coef = rng.standard_normal(12) / (1.0 + np.arange(12))
            p = sum(a * np.cos(np.pi * (k + 1) * t) for k, a in enumerate(coef)) + shared.T @ rng.standard_normal(3)
            peaks = rng.choice(d, size=4, replace=False)
            p[peaks] += 2.0
            protos.append(p)
        P = np.stack(protos)
        W = rng.dirichlet(np.ones(3), size=per_class)
        X.append(W @ P + 0.3 * rng.standard_normal((per_class, d)))
        y.append(np.full(per_class, c))
    Xa = np.concatenate(X)
    Xa -= Xa.mean(axis=1, keepdims=True)
    Xa /= np.linalg.norm(Xa, axis=1, keepdims=True)
    return Xa, np.concatenate(y)


def timed(fn, repeat: int) -> tuple[float, float]:
    cpu, wall = [], []
    for _ in range(repeat):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - t0)
    return statistics.median(cpu), statistics.median(wall)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--atoms", type=int, default=12, help="atoms per class")
    ap.add_argument("--dim", type=int, default=1024, help="atom length")
    ap.add_argument("--per-class", type=int, default=300, help="training rows per class")
    ap.add_argument("--iters", type=int, default=8, help="alternations (ours: max_iter; peers: max_iter)")
    ap.add_argument("--alpha", type=float, default=0.02,
                    help="sparsity weight of every learner (ours: tree norm; peers: l1), rows have unit norm")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-peers", action="store_true")
    args = ap.parse_args()

    X, y = make_data(args.classes, args.per_class, args.dim)
    n_atoms = args.classes * args.atoms
    print(f"{args.classes} classes x {args.atoms} atoms of {args.dim} points, {X.shape[0]} rows, "
          f"{args.iters} iterations, one thread; medians of {args.repeat}")

    ours = FisherDictionaryLearning(args.atoms, alpha=args.alpha, max_iter=args.iters, random_state=0)
    c_ours, w_ours = timed(lambda: ours.fit(X, y), args.repeat)
    resid = ours.class_residuals(X, ours.train_codes_)
    acc = float(np.mean(ours.classes_[np.argmin(resid, axis=1)] == y))
    print(f"  ours  {'FisherDictionaryLearning':<46} cpu {c_ours:7.2f} s  wall {w_ours:7.2f} s  "
          f"(target <= 60 s; training min-residual accuracy {100 * acc:.1f} %)")
    if args.skip_peers:
        return
    peers = {
        f"sklearn DictionaryLearning({n_atoms}, cd)": lambda: DictionaryLearning(
            n_atoms, alpha=args.alpha, max_iter=args.iters, fit_algorithm="cd", transform_algorithm="lasso_cd",
            random_state=0).fit(X),
        f"sklearn MiniBatchDictionaryLearning({n_atoms})": lambda: MiniBatchDictionaryLearning(
            n_atoms, alpha=args.alpha, batch_size=256, max_iter=args.iters, random_state=0).fit(X),
        f"sklearn DictionaryLearning({args.atoms}) per class": lambda: [DictionaryLearning(
            args.atoms, alpha=args.alpha, max_iter=args.iters, fit_algorithm="cd", random_state=0).fit(X[y == c])
            for c in range(args.classes)],
    }
    for name, fn in peers.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence warnings at a fixed iteration budget
            c, w = timed(fn, args.repeat)
        print(f"  peer  {name:<46} cpu {c:7.2f} s  wall {w:7.2f} s  ratio cpu {c / c_ours:6.2f}x  "
              f"wall {w / w_ours:6.2f}x")


if __name__ == "__main__":
    main()
