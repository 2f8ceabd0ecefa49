"""Kind ``sfdsc``: structured Fisher dictionary + tree-structured sparse coding + quadratic SVM
fault classifier. Training: :mod:`edgefault.train.sfdsc` (scikit-learn, ``pip install
"edgefault[train]"``); the device runs the core's tree-lasso coder and the SVM in numpy."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from edgefault.device.bundle import Bundle
from edgefault.errors import BundleError, InputError
from edgefault.kinds import register
from edgefault.kinds.base import ModelKind, ScoreBatch, TrainData, Trained, bundle_where, checked_array, model_number


# -- SFDSC: structured Fisher dictionary + tree-structured sparse coding + quadratic SVM ------------
def sfdsc_tree_codes(X: np.ndarray, dictionary: np.ndarray, tree: tuple[np.ndarray, np.ndarray, np.ndarray],
                     alpha: float, max_iter: int, tol: float, coder: object | None = None) -> np.ndarray:
    """Codes (m, n_atoms) of rows of X over ``dictionary`` (n_atoms, d) with the tree norm given
    as (parent, atom_node, weight): tree-structured group lasso (FISTA, exact tree prox) in the
    C++ core, float32. ``coder``: a :class:`edgefault.device.sparse.TreeLassoCoder` built for this
    dictionary and tree, reused across calls (built here when None)."""
    if coder is None:
        from edgefault.device.sparse import TreeLassoCoder

        coder = TreeLassoCoder(np.ascontiguousarray(np.asarray(dictionary).T), tuple(tree))
    return coder.encode(X, alpha, max_iter=max_iter, tol=tol).astype(np.float64)  # type: ignore[attr-defined]


def sfdsc_signal_matrix(features: np.ndarray, raw: np.ndarray | None, n_channels: int) -> np.ndarray:
    """Rows [mean_c, std_c for each channel | representation of channel 0, 1, ...] from features
    laid out per channel as [mean, std, representation...]; the representation is the raw
    window (m, n_channels, window) when ``raw`` is given."""
    m = features.shape[0]
    f = np.asarray(features, dtype=np.float64).reshape(m, n_channels, -1)
    extra = f[:, :, :2].reshape(m, -1)
    rep = np.asarray(raw, dtype=np.float64) if raw is not None else f[:, :, 2:]
    return np.concatenate([extra, rep.reshape(m, -1)], axis=1)


def sfdsc_prepare(S: np.ndarray, input_mean: np.ndarray | None = None, input_scale: np.ndarray | None = None,
                  row_norm: bool = True) -> np.ndarray:
    """The dictionary's input from signal rows S (m, d): standardised per column when
    ``input_mean`` / ``input_scale`` are given; then each row centred and scaled to unit norm
    (``row_norm``), or else the whole divided by sqrt(d) (unit norm on average for standardised
    columns)."""
    S = np.asarray(S, dtype=np.float64)
    if input_mean is not None and input_scale is not None:
        S = (S - input_mean) / input_scale
    if not row_norm:
        return S / np.sqrt(max(S.shape[1], 1))
    S = S - S.mean(axis=1, keepdims=True)
    nrm = np.linalg.norm(S, axis=1, keepdims=True)
    return np.divide(S, nrm, out=np.zeros_like(S), where=nrm > 0)


def sfdsc_features(X: np.ndarray, n_passthrough: int, dictionary: np.ndarray, atom_class: np.ndarray,
                   tree: tuple[np.ndarray, np.ndarray, np.ndarray], alpha: float, max_iter: int,
                   tol: float, input_mean: np.ndarray | None = None,
                   input_scale: np.ndarray | None = None, use_extra: bool = True,
                   row_norm: bool = True, coder: object | None = None) -> np.ndarray:
    """SVM inputs per row of X = [passthrough (n_passthrough) | signal (d)]: per-class squared
    residuals ||x - a^i D_i||^2 and activations ||a^i||_2 of the tree-sparse code a of the signal
    (:func:`sfdsc_prepare`), then (``use_extra``) the passthrough columns (the window's mean and
    standard deviation), or with n_passthrough = 0 the signal row's own mean and std."""
    X = np.asarray(X, dtype=np.float64)
    S = X[:, n_passthrough:]
    extra = X[:, :n_passthrough] if n_passthrough else np.stack([S.mean(axis=1), S.std(axis=1)], axis=1)
    S = sfdsc_prepare(S, input_mean, input_scale, row_norm)
    codes = sfdsc_tree_codes(S, dictionary, tree, alpha, max_iter, tol, coder)
    n_cls = int(atom_class.max()) + 1
    res = np.empty((X.shape[0], n_cls))
    act = np.empty((X.shape[0], n_cls))
    for i in range(n_cls):
        b = atom_class == i
        res[:, i] = np.sum((S - codes[:, b] @ dictionary[b]) ** 2, axis=1)
        act[:, i] = np.linalg.norm(codes[:, b], axis=1)
    return np.concatenate([res, act, extra] if use_extra else [res, act], axis=1)


def svm_ovo_decision(Z: np.ndarray, support_vectors: np.ndarray, dual_coef: np.ndarray, intercept: np.ndarray,
                     n_support: np.ndarray, gamma: float, coef0: float, degree: int) -> np.ndarray:
    """One-vs-one decision values (m, c(c-1)/2) of a polynomial-kernel SVM stored like
    scikit-learn's SVC (pairs (i, j), i < j, in order; positive means class i)."""
    K = (gamma * (np.asarray(Z, dtype=np.float64) @ support_vectors.T) + coef0) ** degree
    starts = np.concatenate([[0], np.cumsum(n_support)])
    c = n_support.size
    out = np.empty((K.shape[0], c * (c - 1) // 2))
    p = 0
    for i in range(c):
        si = slice(starts[i], starts[i + 1])
        for j in range(i + 1, c):
            sj = slice(starts[j], starts[j + 1])
            out[:, p] = K[:, si] @ dual_coef[j - 1, si] + K[:, sj] @ dual_coef[i, sj] + intercept[p]
            p += 1
    return out


def ovr_from_ovo(dec: np.ndarray, n_classes: int) -> np.ndarray:
    """scikit-learn's one-vs-rest shape of OvO decisions: votes plus confidences squashed into
    (-1/3, 1/3), so the argmax is the vote winner, ties broken by confidence."""
    m = dec.shape[0]
    votes = np.zeros((m, n_classes))
    conf = np.zeros((m, n_classes))
    p = 0
    for i in range(n_classes):
        for j in range(i + 1, n_classes):
            votes[:, i] += dec[:, p] > 0
            votes[:, j] += dec[:, p] <= 0
            conf[:, i] += dec[:, p]
            conf[:, j] -= dec[:, p]
            p += 1
    return votes + conf / (3.0 * (np.abs(conf) + 1.0))


def softmax_rows(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class SFDSCDeviceModel:
    """SFDSC classifier: per channel, the window's mean and std (time_stats) and a signal
    representation (a spectral feature block, or the raw window when ``model.input == "raw"``);
    tree-structured sparse codes over the bundle's dictionary; per-class residuals and
    activations plus mean/std, standardised, into a quadratic-kernel SVM evaluated in numpy.

    proba = softmax(temperature * one-vs-rest decision) (votes + confidences, see
    :func:`ovr_from_ovo`); score = 1 - P(normal label) when the model has one, else
    1 - max proba.
    """

    needs_features = True

    MAX_ITER = 10_000  # FISTA iterations per window a bundle may ask for (training uses 60)
    MAX_DEGREE = 16     # polynomial kernel degree (training uses 2)

    def __init__(self, bundle: Bundle) -> None:
        m = bundle.model
        where = bundle_where(bundle)
        num = lambda key, **kw: model_number(bundle, key, kind="sfdsc", **kw)  # noqa: E731
        self.alpha, self.tol = num("alpha", lo=0.0), num("tol", lo=0.0)
        self.max_iter = num("max_iter", integer=True, lo=1, hi=self.MAX_ITER)
        self.gamma, self.coef0 = num("gamma"), num("coef0")
        self.degree = num("degree", integer=True, lo=1, hi=self.MAX_DEGREE)
        self.temperature = num("temperature", above=0.0)
        if not isinstance(m.get("input"), str):
            raise BundleError(f"{where}: sfdsc model entry 'input' must be a string ('raw' or 'features'), "
                              f"got {m.get('input')!r:.60}")
        for key in ("use_extra", "row_norm"):
            if key in m and not isinstance(m[key], bool):
                raise BundleError(f"{where}: sfdsc model entry {key!r} must be true or false, got {m[key]!r:.60}")
        if m.get("normal_label") is not None and not isinstance(m["normal_label"], str):
            raise BundleError(f"{where}: sfdsc model entry 'normal_label' must be a string or null, got "
                              f"{m['normal_label']!r:.60}")
        self.needs_raw = m["input"] == "raw"
        self.use_extra = bool(m.get("use_extra", True))
        self.row_norm = bool(m.get("row_norm", True))
        normal = m.get("normal_label")
        for k in ("dictionary", "atom_class", "tree_parent", "tree_atom_node", "tree_weight", "feature_mean",
                  "feature_scale", "support_vectors", "dual_coef", "intercept", "n_support"):
            bundle.array(k)  # BundleError naming the missing array
        self.labels = bundle.labels or []
        c = len(self.labels)
        spec = bundle.spec
        self.n_ch = spec.n_channels
        per = len(spec.per_channel_names)
        if spec.per_channel_names[:2] != ("mean", "std") or (not self.needs_raw and per < 3):
            raise BundleError(f"{where}: sfdsc needs features [mean, std, representation...] per channel, "
                              f"got {list(spec.per_channel_names[:4])}")
        if c < 2:
            raise BundleError(f"{where}: an sfdsc classifier needs at least 2 labels, the manifest has {c}")
        self.per = per
        d = self.n_ch * (spec.window if self.needs_raw else per - 2)
        Draw = bundle.arrays["dictionary"]
        if Draw.ndim != 2 or Draw.shape[1] != d or Draw.shape[0] < 1:
            raise BundleError(f"{where}: sfdsc arrays do not fit: dictionary {tuple(Draw.shape)} for signal length "
                              f"{d}, expected (n_atoms, {d})")
        n_atoms = Draw.shape[0]
        arr = lambda name, shape, **kw: checked_array(bundle, name, shape, kind="sfdsc", **kw)  # noqa: E731
        D = arr("dictionary", (n_atoms, d))
        # classes index the labels: the SVM sees 2 features per class (residual, activation)
        self.atom_class = arr("atom_class", (n_atoms,), integer=True, lo=0, hi=c - 1)
        n_cls = int(self.atom_class.max()) + 1
        tree = (bundle.arrays["tree_parent"], bundle.arrays["tree_atom_node"], bundle.arrays["tree_weight"])
        arr("tree_atom_node", (n_atoms,), integer=True)
        arr("tree_parent", (None,), integer=True)
        arr("tree_weight", (tree[0].shape[0],), lo=0.0)
        self.D = D
        self.tree = tree
        from edgefault.device.sparse import IndexTree, TreeLassoCoder

        try:
            IndexTree(*self.tree)  # InputError "... not a tree ..." on a bad tree

            self.coder = TreeLassoCoder(np.ascontiguousarray(D.T), self.tree)
        except Exception as e:
            raise BundleError(f"{where}: {e}") from None
        n_f = 2 * n_cls + (2 * self.n_ch if self.use_extra else 0)
        self.fmean = arr("feature_mean", (n_f,))
        self.fscale = arr("feature_scale", (n_f,), positive=True)
        self.imean = bundle.arrays.get("input_mean")
        self.iscale = bundle.arrays.get("input_scale")
        if (self.imean is None) != (self.iscale is None):
            raise BundleError(f"{where}: input_mean / input_scale must both be present with shape ({d},) and a "
                              f"positive scale")
        if self.imean is not None:
            self.imean = arr("input_mean", (d,))
            self.iscale = arr("input_scale", (d,), positive=True)
        self.n_support = arr("n_support", (c,), integer=True, lo=0)
        n_sv = int(self.n_support.sum())
        self.sv = arr("support_vectors", (n_sv, n_f))
        self.dual = arr("dual_coef", (c - 1, n_sv))
        self.intercept = arr("intercept", (c * (c - 1) // 2,))
        self.normal_index = self.labels.index(normal) if normal in self.labels else None
        self.contrib_names: list[str] = []

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        F = sfdsc_features(X, 2 * self.n_ch, self.D, self.atom_class, self.tree, self.alpha, self.max_iter, self.tol,
                           self.imean, self.iscale, self.use_extra, self.row_norm, self.coder)
        Z = (F - self.fmean) / self.fscale
        dec = svm_ovo_decision(Z, self.sv, self.dual, self.intercept, self.n_support, self.gamma, self.coef0,
                               self.degree)
        return softmax_rows(self.temperature * ovr_from_ovo(dec, self.n_support.size))

    def score(self, features: np.ndarray, raw: np.ndarray | None) -> ScoreBatch:
        m = features.shape[0]
        X = sfdsc_signal_matrix(features, raw if self.needs_raw else None, self.n_ch)
        ok = np.isfinite(X).all(axis=1)
        proba = np.full((m, len(self.labels)), np.nan)
        if ok.any():
            proba[ok] = self.predict_proba(X[ok])
        if self.normal_index is not None:
            scores = 1.0 - proba[:, self.normal_index]
        else:
            scores = 1.0 - proba.max(axis=1)
        return ScoreBatch(scores=scores.astype(np.float32), proba=proba.astype(np.float32))


REPRESENTATIONS = ("log_power", "bands", "envelope", "magnitude", "raw")


class SFDSCKind(ModelKind):
    name = "sfdsc"
    task = "classify"
    help = "structured Fisher dictionaries + tree-structured sparse coding + SVM (needs scikit-learn)"
    train_extra = "train"
    train_modules = ("sklearn", "scipy")

    def device_model(self, bundle: Bundle) -> SFDSCDeviceModel:
        return SFDSCDeviceModel(bundle)

    def add_arguments(self, group: Any) -> None:
        group.add_argument("--atoms", type=int, default=12, help="sfdsc: atoms per class (default 12)")
        group.add_argument("--representation", default="log_power", choices=list(REPRESENTATIONS),
                           help="sfdsc: what the dictionary is learned on (default log_power spectra of windows)")
        group.add_argument("--env-fmax", type=float, default=1000.0,
                           help="sfdsc --representation envelope: top frequency in Hz (default 1000)")
        group.add_argument("--max-windows", type=int, default=300,
                           help="sfdsc: training windows kept per class (default 300)")
        group.add_argument("--svm-c", type=float, default=10.0, help="sfdsc: SVM C (default 10)")
        group.add_argument("--calib-fraction", type=float, default=None,
                           help="sfdsc: later part of every recording held out to calibrate the 'not normal' "
                                "threshold (at --target-far) and the 'unknown' confidence (default 0.25 for "
                                "train, 0 for eval; 0 = uncalibrated: 1 - P(normal) > 0.5, never unknown)")
        group.add_argument("--unknown-rate", type=float, default=0.01,
                           help="sfdsc: share of held-out windows of known classes called 'unknown' (default 0.01)")
        group.add_argument("--no-window-stats", action="store_true",
                           help="sfdsc: leave the window's mean and std out of the SVM inputs (they track load "
                                "and fault size)")

    def eval_description(self, opts: argparse.Namespace) -> dict[str, Any]:
        return {"representation": opts.representation, "atoms_per_class": opts.atoms,
                "window_stats": not opts.no_window_stats}

    def train(self, data: TrainData, opts: argparse.Namespace, out: Path) -> Trained:
        self.require_training()
        from edgefault.train.sfdsc import pack_sfdsc, sfdsc_spec, train_sfdsc

        if data.labels is None or len(data.labels) != len(data.recordings):
            raise ValueError("sfdsc: TrainData.labels must give one label per recording")
        spec = data.spec or sfdsc_spec(data.fs, data.channels, window=opts.window, hop=opts.hop or opts.window // 2,
                                       representation=opts.representation, env_fmax=opts.env_fmax)
        blocks = [(r.data, lab, str(r.path)) for r, lab in zip(data.recordings, data.labels)]
        calib = 0.25 if getattr(opts, "calib_fraction", None) is None else float(opts.calib_fraction)
        if not 0.0 <= calib <= 0.5:
            raise InputError(f"sfdsc --calib-fraction must be in [0, 0.5], got {calib:g}")
        if not 0.0 <= float(getattr(opts, "unknown_rate", 0.01)) < 0.5:
            raise InputError(f"sfdsc --unknown-rate must be in [0, 0.5), got {opts.unknown_rate:g}")
        res = train_sfdsc(blocks, spec, max_windows_per_class=opts.max_windows, random_state=opts.seed,
                          n_atoms_per_class=opts.atoms, C=opts.svm_c, use_extra=not opts.no_window_stats,
                          calib_fraction=calib, target_far=float(getattr(opts, "target_far", None) or 0.01),
                          unknown_rate=float(getattr(opts, "unknown_rate", 0.01)))
        res.info.update(data.info)
        from edgefault.samples import training_scaling

        res.info["input_scaling"] = training_scaling(r.input_scaling for r in data.recordings)
        bundle = pack_sfdsc(res, out, name=getattr(opts, "name", None))
        summary = {"bundle": str(out), "bundle_id": bundle.bundle_id, "labels": res.labels,
                   "n_train_windows": res.info["n_train_windows"],
                   "windows_per_label": res.info["windows_per_label"],
                   "calibration": res.info.get("calibration")}
        return Trained(bundle=bundle, summary=summary, n_train_windows=res.info["n_train_windows"],
                       eval_info={"train_labels": res.labels})


register(SFDSCKind())
