"""SFDSC: structured Fisher discrimination dictionary + tree-structured sparse coding + SVM.

:class:`SFDSCClassifier` is the scikit-learn style estimator: rows of X are
``[passthrough columns | signal]`` (``n_passthrough`` = 0: the whole row is the signal, and its
own mean and standard deviation are used). The signal is centred and scaled to unit norm, a
:class:`~edgefault.train.fisher_dl.FisherDictionaryLearning` dictionary is learned on it, and
every row is described by per-class group residuals ``||x - a^i D_i||^2`` and activations
``||a^i||_2`` of its tree-sparse code, plus the passthrough / mean / std columns; those
(standardised) go into an SVM with a quadratic kernel ``(gamma <u, v> + 1)^2``.

The SVM is trained with scikit-learn's SVC and evaluated in numpy exactly as on the device
(:func:`edgefault.kinds.sfdsc.svm_ovo_decision`); ``predict_proba`` is the softmax of
``temperature`` times the one-vs-rest shaped decision (votes + confidences), so ``predict`` (its
argmax) is the one-vs-one vote winner.

:func:`train_sfdsc` / :func:`pack_sfdsc` are the product path: labelled contiguous blocks of
recordings -> windows through the bundle's own feature pipeline -> classifier -> bundle of kind
``sfdsc`` (arrays only; the device needs numpy and the core, not scikit-learn).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.svm import SVC
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from edgefault.errors import InputError
from edgefault.device.runtime import UNKNOWN
from edgefault.io.manifest import is_healthy
from edgefault.kinds.sfdsc import (REPRESENTATIONS, ovr_from_ovo, sfdsc_features, sfdsc_prepare,
                                  sfdsc_signal_matrix, softmax_rows, svm_ovo_decision)
from edgefault.device.spec import FeatureSpec, health_for_training
from edgefault.train.fisher_dl import FisherDictionaryLearning



class SFDSCClassifier(ClassifierMixin, BaseEstimator):
    """Structured Fisher discrimination dictionary + tree-sparse coding + quadratic SVM.

    Dictionary parameters are those of :class:`FisherDictionaryLearning`; ``C`` is the SVM's
    regularisation, ``temperature`` scales the decision before the softmax of
    ``predict_proba``, ``n_passthrough`` leading columns of X go to the SVM unchanged;
    ``svm_cv`` >= 2 chooses C and the kernel's gamma by cross-validation over contiguous folds
    of the training rows (see :meth:`_select_svm`; attributes ``C_``, ``gamma_``,
    ``cv_scores_``).
    """

    def __init__(self, n_atoms_per_class: int = 12, *, alpha: float = 0.02, lambda_fisher: float = 0.01,
                 eta: float = 1.0, structure: float = 0.5, tree: Any = None, w_atom: float = 1.0,
                 w_class: float = 1.0, w_node: float = 1.0, w_root: float = 0.0,
                 max_iter: int = 8, coding_iter: int = 60, tol: float = 1e-4, C: float = 10.0,
                 temperature: float = 2.0, n_passthrough: int = 0, standardize: bool = False,
                 use_extra: bool = True, row_norm: bool = True, svm_cv: int = 0,
                 random_state: Any = None) -> None:
        self.n_atoms_per_class = n_atoms_per_class
        self.alpha = alpha
        self.lambda_fisher = lambda_fisher
        self.eta = eta
        self.structure = structure
        self.tree = tree
        self.w_atom = w_atom
        self.w_class = w_class
        self.w_node = w_node
        self.w_root = w_root
        self.max_iter = max_iter
        self.coding_iter = coding_iter
        self.tol = tol
        self.C = C
        self.temperature = temperature
        self.n_passthrough = n_passthrough
        self.standardize = standardize
        self.use_extra = use_extra
        self.row_norm = row_norm
        self.svm_cv = svm_cv
        self.random_state = random_state

    def _dl(self) -> FisherDictionaryLearning:
        return FisherDictionaryLearning(
            self.n_atoms_per_class, alpha=self.alpha, lambda_fisher=self.lambda_fisher, eta=self.eta,
            structure=self.structure, tree=self.tree, w_atom=self.w_atom,
            w_class=self.w_class, w_node=self.w_node, w_root=self.w_root,
            max_iter=self.max_iter, coding_iter=self.coding_iter, tol=self.tol, random_state=self.random_state)

    def _features(self, X: np.ndarray) -> np.ndarray:
        return sfdsc_features(X, int(self.n_passthrough), self.dictionary_, self.atom_class_, self.index_tree_,
                              float(self.alpha), int(self.coding_iter), float(self.tol), self.input_mean_,
                              self.input_scale_, bool(self.use_extra), bool(self.row_norm))

    def fit(self, X: Any, y: Any) -> "SFDSCClassifier":
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        npass = self.n_passthrough
        if isinstance(npass, bool) or not isinstance(npass, (int, np.integer)) or not 0 <= npass < X.shape[1]:
            raise ValueError(f"n_passthrough must be an integer in [0, n_features={X.shape[1]}), got {npass!r}")
        for name in ("C", "temperature"):
            v = getattr(self, name)
            if not isinstance(v, (int, float, np.integer, np.floating)) or not np.isfinite(v) or v <= 0:
                raise ValueError(f"{name} must be a finite number > 0, got {v!r}")
        classes, yi = np.unique(y, return_inverse=True)
        if classes.size < 2:
            raise ValueError(f"Classifier can't train when only one class is present (got class {classes!r})")
        self.classes_ = classes
        S = X[:, npass:]
        if self.standardize:
            mu, sd = S.mean(axis=0), S.std(axis=0)
            sd[~(sd > 1e-12 * max(float(np.max(sd)), 1e-300))] = 1.0
            self.input_mean_, self.input_scale_ = mu, sd
        else:
            self.input_mean_ = self.input_scale_ = None
        S = sfdsc_prepare(S, self.input_mean_, self.input_scale_, bool(self.row_norm))
        dl = self._dl().fit(S, y)  # the caller's labels: the fault tree is built on them
        self.dictionary_learning_ = dl
        self.dictionary_ = dl.components_
        self.atom_class_ = dl.atom_class_
        self.index_tree_ = dl.index_tree_
        self.fault_tree_ = dl.tree_
        self.n_iter_ = dl.n_iter_
        F = self._features(X)
        mu = F.mean(axis=0)
        sd = F.std(axis=0)
        sd[~(sd > 1e-12)] = 1.0
        self.feature_mean_, self.feature_scale_ = mu, sd
        Z = (F - mu) / sd
        self.gamma_, self.C_, self.cv_scores_ = self._select_svm(Z, yi)
        svm = SVC(kernel="poly", degree=2, coef0=1.0, gamma=self.gamma_, C=self.C_)
        svm.fit(Z, yi)
        self.svm_ = svm
        if svm.classes_.size != classes.size:  # pragma: no cover - SVC sees every class we do
            raise ValueError("SVM lost a class")
        dual, icpt = svm.dual_coef_, svm.intercept_
        if classes.size == 2:  # scikit-learn flips the binary signs relative to libsvm's one-vs-one
            dual, icpt = -dual, -icpt
        self.support_vectors_ = svm.support_vectors_
        self.dual_coef_ = np.asarray(dual, dtype=np.float64)
        self.intercept_ = np.asarray(icpt, dtype=np.float64)
        self.n_support_ = np.asarray(svm.n_support_, dtype=np.int64)
        return self

    def _select_svm(self, Z: np.ndarray, yi: np.ndarray) -> tuple[float, float, dict[str, float]]:
        """(gamma, C, cv scores): with ``svm_cv`` = k >= 2, the pair of C in C x {0.1, 1, 10} and
        gamma in {1/4, 1, 4} / n_features with the best mean accuracy over k contiguous folds of
        each class's rows (rows in time order, so a fold is a block of signal, not scattered
        neighbours of training windows), on the training rows only; else (1/n_features, C).
        The SVM inputs come from the dictionary learned on all training rows, so the scores are
        optimistic; they only rank the settings."""
        cv = self.svm_cv
        if isinstance(cv, bool) or not isinstance(cv, (int, np.integer)) or cv < 0 or cv == 1:
            raise ValueError(f"svm_cv must be 0 (off) or an integer >= 2, got {cv!r}")
        g0, c0 = 1.0 / Z.shape[1], float(self.C)
        counts = np.bincount(yi)
        if cv == 0 or counts.min() < 2 * cv:
            return g0, c0, {}
        fold = np.empty(yi.size, dtype=np.int64)
        for c in range(counts.size):
            idx = np.flatnonzero(yi == c)
            fold[idx] = np.arange(idx.size) * cv // idx.size
        scores: dict[str, float] = {}
        best = (-1.0, g0, c0)
        for cm in (1.0, 0.1, 10.0):
            for gm in (1.0, 0.25, 4.0):
                acc = []
                for f in range(cv):
                    tr, te = fold != f, fold == f
                    if np.unique(yi[tr]).size < counts.size:
                        continue
                    m = SVC(kernel="poly", degree=2, coef0=1.0, gamma=gm * g0, C=cm * c0).fit(Z[tr], yi[tr])
                    acc.append(float(np.mean(m.predict(Z[te]) == yi[te])))
                a = float(np.mean(acc)) if acc else 0.0
                scores[f"C={cm * c0:g},gamma={gm:g}/n_features"] = a
                if a > best[0] + 1e-12:  # ties keep the earlier (default-first) setting
                    best = (a, gm * g0, cm * c0)
        return best[1], best[2], scores

    def ovo_decision(self, X: Any) -> np.ndarray:
        """One-vs-one decisions (n, c(c-1)/2), pairs (i, j), i < j, positive = classes_[i]."""
        check_is_fitted(self, "svm_")
        X = validate_data(self, X, dtype=np.float64, reset=False)
        Z = (self._features(X) - self.feature_mean_) / self.feature_scale_
        return svm_ovo_decision(Z, self.support_vectors_, self.dual_coef_, self.intercept_, self.n_support_,
                                self.gamma_, 1.0, 2)

    def predict_proba(self, X: Any) -> np.ndarray:
        dec = self.ovo_decision(X)
        return softmax_rows(float(self.temperature) * ovr_from_ovo(dec, self.classes_.size))

    def predict(self, X: Any) -> np.ndarray:
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def bundle_arrays(self) -> dict[str, np.ndarray]:
        check_is_fitted(self, "svm_")
        parent, atom_node, weight = self.index_tree_
        return {
            "dictionary": self.dictionary_.astype(np.float32), "atom_class": self.atom_class_.astype(np.int32),
            "tree_parent": parent.astype(np.int32), "tree_atom_node": atom_node.astype(np.int32),
            "tree_weight": weight.astype(np.float32),
            "feature_mean": self.feature_mean_, "feature_scale": self.feature_scale_,
            "support_vectors": self.support_vectors_, "dual_coef": self.dual_coef_,
            "intercept": self.intercept_, "n_support": self.n_support_.astype(np.int32),
            **({} if self.input_mean_ is None else {"input_mean": self.input_mean_, "input_scale": self.input_scale_}),
        }

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags


# -- product path --------------------------------------------------------------------------------
def sfdsc_spec(fs: float, channels: Sequence[str], *, window: int = 1024, hop: int | None = None,
               representation: str = "bands", env_fmax: float = 1000.0,
               env_band: Sequence[float] | None = None, n_bands: int = 128, band_spacing: str = "linear",
               band_fmin: float = 0.0, band_fmax: float = 0.0) -> FeatureSpec:
    """Feature spec of an SFDSC model: per channel the window's mean and std, then the
    representation the dictionary is learned on: ``bands`` (log band energies in dB, n_bands
    bands), ``log_power`` (log-power spectrum), ``envelope`` / ``magnitude`` spectra, or
    ``raw`` (no block: the device hands the raw window over)."""
    if representation not in REPRESENTATIONS:
        raise InputError(f"representation {representation!r}: expected one of {list(REPRESENTATIONS)}")
    blocks: list[dict[str, Any]] = [{"kind": "time_stats", "stats": ["mean", "std"]}]
    if representation == "bands":
        blocks.append({"kind": "band_energy", "n_bands": int(n_bands), "spacing": band_spacing,
                       "fmin": float(band_fmin), "fmax": float(band_fmax), "log": True})
    elif representation == "envelope":
        b: dict[str, Any] = {"kind": "envelope_spectrum", "fmax": float(min(env_fmax, fs / 2))}
        if env_band:
            b["band"] = [float(env_band[0]), float(env_band[1])]
        blocks.append(b)
    elif representation == "log_power":
        blocks.append({"kind": "log_power_spectrum"})
    elif representation == "magnitude":
        blocks.append({"kind": "magnitude_spectrum"})
    return FeatureSpec(fs=fs, window=window, hop=hop or window // 2, channels=tuple(channels), blocks=tuple(blocks))


def block_matrix(spec: FeatureSpec, data: np.ndarray, use_raw: bool) -> np.ndarray:
    """SFDSC input rows of the finite windows of one contiguous block (n_samples, n_channels),
    computed through the bundle's streaming pipeline as on the device."""
    x = np.ascontiguousarray(data if data.ndim == 2 else data[:, None], dtype=np.float32)
    feats, _, finite, raw = spec.pipeline().push(x, 1.0, True, use_raw)
    if feats.shape[0] == 0:
        return np.zeros((0, 2 * spec.n_channels + (spec.n_channels * spec.window if use_raw else
                                                    spec.feature_dim - 2 * spec.n_channels)))
    X = sfdsc_signal_matrix(feats, raw if use_raw else None, spec.n_channels)
    return X[finite & np.isfinite(X).all(axis=1)]


@dataclass
class SFDSCTraining:
    classifier: SFDSCClassifier
    spec: FeatureSpec
    labels: list[str]
    normal_label: str | None
    info: dict[str, Any]


def train_sfdsc(blocks: Sequence[tuple[np.ndarray, str, str]], spec: FeatureSpec, *,
                max_windows_per_class: int | None = None, random_state: int = 0,
                calib_fraction: float = 0.0, target_far: float = 0.01, unknown_rate: float = 0.01,
                **params: Any) -> SFDSCTraining:
    """Train on labelled contiguous blocks ``(data (n, n_channels), label, source name)``.

    ``max_windows_per_class`` keeps an evenly spaced subset of each class's windows (training
    cost); ``params`` go to :class:`SFDSCClassifier` (``svm_cv`` defaults to 3 here: C and
    gamma chosen by 3-fold contiguous cross-validation inside the training windows).

    ``calib_fraction`` > 0 holds out the later part of every block (after a gap of one window, so
    no held-out window shares a sample with a training window) and calibrates the decisions on
    it (:func:`calibrate_decisions`): the "not normal" threshold on 1 - P(normal) of the held-out
    healthy windows at ``target_far``, and the confidence below which a window's class is
    "unknown" (``unknown_rate`` of the held-out windows of known classes fall below it). With 0
    (the default, as the evaluations train) the decisions stay uncalibrated: 1 - P(normal) > 0.5
    and no "unknown".
    """
    if not 0.0 <= calib_fraction <= 0.5:
        raise InputError(f"sfdsc: calibration fraction must be in [0, 0.5], got {calib_fraction}")
    if not blocks:
        raise InputError("sfdsc: no training recordings")
    spec = health_for_training(spec, [np.asarray(d) for d, _, _ in blocks], "train sfdsc")
    use_raw = len(spec.per_channel_names) == 2
    Xs, ys, desc = [], [], []
    Xc, yc = [], []  # held-out calibration windows
    h = hashlib.sha256()
    for data, label, name in blocks:
        h.update(name.encode())
        h.update(np.ascontiguousarray(data).tobytes())
        stop = data.shape[0]
        if calib_fraction > 0:
            n_cal = int(round(data.shape[0] * calib_fraction))
            stop = data.shape[0] - n_cal - spec.window  # a window's gap between training and calibration
            if n_cal < spec.window or stop < spec.window:
                raise InputError(f"sfdsc: {name} ({label}) is too short ({data.shape[0]} samples) to hold out "
                                 f"{calib_fraction:.0%} for calibration; give longer recordings or "
                                 f"--calib-fraction 0")
            C = block_matrix(spec, data[data.shape[0] - n_cal:], use_raw)
            Xc.append(C)
            yc.extend([label] * C.shape[0])
        X = block_matrix(spec, data[:stop], use_raw)
        if X.shape[0] == 0:
            raise InputError(f"sfdsc: {name} ({label}) has no complete finite window of {spec.window} samples")
        Xs.append(X)
        ys.extend([label] * X.shape[0])
        desc.append({"source": name, "label": label, "n_samples": int(data.shape[0]), "n_windows": int(X.shape[0]),
                     "train_stop": int(stop), "n_calib_windows": int(Xc[-1].shape[0]) if calib_fraction > 0 else 0})
    X = np.concatenate(Xs)
    y = np.asarray(ys)
    labels = sorted(set(ys))
    if len(labels) < 2:
        raise InputError(f"sfdsc: need recordings of at least 2 labels, got {labels}")
    if UNKNOWN in labels:
        raise InputError(f"sfdsc: {UNKNOWN!r} is the runtime's label for windows of no known class; rename that "
                         f"label in the manifest")
    if max_windows_per_class:
        keep = []
        for lab in labels:
            idx = np.flatnonzero(y == lab)
            if idx.size > max_windows_per_class:
                idx = idx[np.round(np.linspace(0, idx.size - 1, max_windows_per_class)).astype(np.int64)]
            keep.append(idx)
        sel = np.sort(np.concatenate(keep))
        X, y = X[sel], y[sel]
    params.setdefault("svm_cv", 3)
    clf = SFDSCClassifier(n_passthrough=2 * spec.n_channels, random_state=random_state, **params).fit(X, y)
    normal = next((lab for lab in labels if is_healthy(lab)), None)
    counts = {lab: int(np.sum(y == lab)) for lab in labels}
    info = {"method": "sfdsc", "n_train_windows": int(X.shape[0]), "windows_per_label": counts,
            "blocks": desc, "fingerprint": h.hexdigest()[:16], "params": clf.get_params(deep=False),
            "fault_tree": clf.fault_tree_.to_dict(), "n_support_vectors": int(clf.n_support_.sum()),
            "dl_objective": [float(v) for v in clf.dictionary_learning_.objective_],
            "svm": {"C": float(clf.C_), "gamma": float(clf.gamma_), "cv_accuracy": clf.cv_scores_}}
    info["params"]["tree"] = None if clf.tree is None else clf.fault_tree_.to_dict()
    if calib_fraction > 0:
        info["calibration"] = calibrate_decisions(clf, np.concatenate(Xc), np.asarray(yc), normal,
                                                  target_far=target_far, unknown_rate=unknown_rate)
    return SFDSCTraining(classifier=clf, spec=spec, labels=[str(c) for c in clf.classes_], normal_label=normal,
                         info=info)


def calibrate_decisions(clf: SFDSCClassifier, X: np.ndarray, y: np.ndarray, normal: str | None, *,
                        target_far: float = 0.01, unknown_rate: float = 0.01) -> dict[str, Any]:
    """The classifier's decisions calibrated on held-out windows ``X`` (labels ``y``, time order
    within each label): ``threshold`` / ``clear_threshold`` on 1 - P(normal) from the healthy
    windows at ``target_far`` (:func:`edgefault.device.thresholds.calibrate`, with the effective
    sample size of the overlapping windows), ``unknown_below``: the ``unknown_rate`` quantile of
    the top class probability over held-out windows of known classes, and what the held-out
    windows score with them (accuracy, unknown rate, false "not normal" rate)."""
    from edgefault.device.thresholds import calibrate, evidence

    P = clf.predict_proba(X)
    classes = [str(c) for c in clf.classes_]
    top = P.max(axis=1)
    pred = np.asarray(classes)[P.argmax(axis=1)]
    unknown_below = float(np.quantile(top, unknown_rate)) if unknown_rate > 0 else 0.0
    known = top >= unknown_below
    out: dict[str, Any] = {
        "n_windows": int(X.shape[0]), "unknown_rate_target": unknown_rate, "unknown_below": unknown_below,
        "accuracy": float(np.mean(pred == y)),
        "accuracy_known": float(np.mean(pred[known] == y[known])) if known.any() else None,
        "unknown_rate": float(np.mean(~known)),
        "per_label": {lab: {"n_windows": int(np.sum(y == lab)), "accuracy": float(np.mean(pred[y == lab] == lab))}
                      for lab in classes if np.any(y == lab)},
    }
    if normal is not None and np.any(y == normal):
        s = 1.0 - P[y == normal, classes.index(normal)]
        cal = calibrate(s, target_far=target_far, method="auto")
        thr = float(min(cal.threshold, 1.0))
        out.update({"target_far": target_far, "threshold": thr, "clear_threshold": float(min(cal.clear_threshold, thr)),
                    "threshold_method": cal.method, "far_on_calibration": float(np.mean(s > thr)),
                    "n_normal_windows": int(s.size), **evidence(s, target_far)})
        if normal is not None:
            faults = y != normal
            if faults.any():
                out["fault_detected_rate"] = float(np.mean(1.0 - P[faults, classes.index(normal)] > thr))
    return out


def pack_sfdsc(result: SFDSCTraining, out: str | Path, *, name: str | None = None):  # type: ignore[no-untyped-def]
    from edgefault.export import pack_bundle

    clf = result.classifier
    use_raw = len(result.spec.per_channel_names) == 2
    model = {"kind": "sfdsc", "task": "classify", "input": "raw" if use_raw else "features",
             "alpha": float(clf.alpha), "max_iter": int(clf.coding_iter), "tol": float(clf.tol),
             "gamma": float(clf.gamma_), "coef0": 1.0, "degree": 2, "temperature": float(clf.temperature),
             "normal_label": result.normal_label, "use_extra": bool(clf.use_extra), "row_norm": bool(clf.row_norm),
             "fault_tree": clf.fault_tree_.to_dict(),
             "score": "1 - P(normal)" if result.normal_label else "1 - max proba",
             "proba": "softmax(temperature * one-vs-rest shaped OvO decision)"}
    cal = result.info.get("calibration") or {}
    thresholds = {"threshold": cal.get("threshold", 0.5), "clear_threshold": cal.get("clear_threshold", 0.5),
                  "k": 1, "n": 1, "unknown_below": cal.get("unknown_below", 0.0),
                  "calibrated": "threshold" in cal}
    return pack_bundle(out, spec=result.spec, model=model, arrays=clf.bundle_arrays(), labels=result.labels,
                       thresholds=thresholds, training=result.info, name=name)
