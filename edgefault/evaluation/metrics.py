"""Classification and anomaly-detection metrics in plain numpy.

Everything here is small, dependency-free (numpy + stdlib) and checked against
scikit-learn in the tests. Reports are JSON-serialisable dicts (plain ``int`` /
``float`` / ``str`` / ``list``), so ``json.dumps(report)`` always works.

Conventions
-----------
- Labels may be strings or integers; ``labels`` lists fix the class order.
- Zero division (a class never predicted and never present) gives 0, like
  scikit-learn's ``zero_division=0``.
- Anomaly scores: higher means more anomalous, and a window is flagged as an
  anomaly when ``score > threshold`` (strictly greater). Both
  :func:`false_alarm_rate` and :func:`detection_rate` use that same rule, so a
  threshold equal to the largest normal score gives a false-alarm rate of 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from edgefault.errors import InputError

__all__ = [
    "accuracy",
    "macro_f1",
    "precision_recall_f1",
    "confusion_matrix",
    "auroc",
    "false_alarm_rate",
    "detection_rate",
    "classification_report",
    "anomaly_report",
]


# --------------------------------------------------------------------------- helpers


def _labels_1d(y: Any, name: str) -> np.ndarray:
    a = np.asarray(y)
    if a.ndim != 1:
        raise InputError(f"{name}: expected a 1-D sequence of labels, got shape {a.shape}")
    if a.size == 0:
        return a
    if a.dtype.kind == "f" and np.all(np.isfinite(a)) and np.all(a == np.round(a)):
        return a  # whole-number floats such as 0.0 / 1.0 are class labels
    if a.dtype.kind not in "biuUSO":
        raise InputError(
            f"{name}: expected integer, boolean or string labels, got dtype {a.dtype} "
            f"(continuous values are scores, not labels)"
        )
    return a


def _pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    t = _labels_1d(y_true, "y_true")
    p = _labels_1d(y_pred, "y_pred")
    if t.shape[0] != p.shape[0]:
        raise InputError(
            f"y_true and y_pred must have the same length, got {t.shape[0]} and {p.shape[0]}"
        )
    if t.shape[0] == 0:
        raise InputError("y_true and y_pred are empty: need at least one sample")
    return t, p


def _py(v: Any) -> Any:
    """numpy scalar -> plain Python scalar (for JSON)."""
    return v.item() if isinstance(v, np.generic) else v


def _resolve_labels(t: np.ndarray, p: np.ndarray, labels: Sequence[Any] | None) -> list[Any]:
    if labels is None:
        try:
            u = np.unique(np.concatenate([t, p]))
        except TypeError as e:  # mixed str / int in object arrays
            raise InputError(f"labels of mixed types cannot be ordered: {e}") from None
        return [_py(v) for v in u]
    out = [_py(v) for v in labels]
    if len(out) == 0:
        raise InputError("labels: expected at least one label, got an empty list")
    if len(set(out)) != len(out):
        raise InputError(f"labels: duplicates are not allowed, got {out}")
    return out


def _scores_1d(s: Any, name: str, allow_empty: bool = False) -> np.ndarray:
    a = np.asarray(s, dtype=np.float64)
    if a.ndim != 1:
        raise InputError(f"{name}: expected a 1-D array of scores, got shape {a.shape}")
    if a.size == 0 and not allow_empty:
        raise InputError(f"{name}: empty, need at least one score")
    if not np.all(np.isfinite(a)):
        raise InputError(f"{name}: scores must be finite (found NaN or inf)")
    return a


def _threshold(threshold: Any) -> float:
    try:
        th = float(threshold)
    except (TypeError, ValueError):
        raise InputError(f"threshold: expected a number, got {threshold!r}") from None
    if np.isnan(th):
        raise InputError("threshold: must not be NaN")
    return th


# --------------------------------------------------------------------------- classification


def accuracy(y_true: Any, y_pred: Any) -> float:
    """Fraction of samples where ``y_pred == y_true``."""
    t, p = _pair(y_true, y_pred)
    return float(np.mean(t == p))


def _encode(t: np.ndarray, p: np.ndarray, labs: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Label -> index in ``labs`` (-1 for labels not listed)."""
    index = {lab: i for i, lab in enumerate(labs)}
    ti = np.fromiter((index.get(_py(v), -1) for v in t), dtype=np.intp, count=t.shape[0])
    pi = np.fromiter((index.get(_py(v), -1) for v in p), dtype=np.intp, count=p.shape[0])
    return ti, pi


def confusion_matrix(
    y_true: Any, y_pred: Any, labels: Sequence[Any] | None = None
) -> tuple[list[Any], np.ndarray]:
    """Return ``(labels, matrix)``; ``matrix[i, j]`` counts true ``labels[i]`` predicted ``labels[j]``.

    ``labels`` defaults to the sorted union of ``y_true`` and ``y_pred``. As in
    scikit-learn, samples whose true or predicted label is not in ``labels`` are
    left out of the matrix.
    """
    t, p = _pair(y_true, y_pred)
    labs = _resolve_labels(t, p, labels)
    ti, pi = _encode(t, p, labs)
    k = len(labs)
    keep = (ti >= 0) & (pi >= 0)
    m = np.bincount(ti[keep] * k + pi[keep], minlength=k * k).reshape(k, k).astype(np.int64)
    return labs, m


def precision_recall_f1(
    y_true: Any, y_pred: Any, labels: Sequence[Any] | None = None
) -> dict[str, Any]:
    """Per-class precision, recall, F1 and support (zero division -> 0).

    Returns a dict with keys ``labels``, ``precision``, ``recall``, ``f1``,
    ``support`` (lists aligned with ``labels``). A sample of a listed class that
    is predicted as an unlisted class still counts as a false negative (as in
    scikit-learn).
    """
    t, p = _pair(y_true, y_pred)
    labs = _resolve_labels(t, p, labels)
    ti, pi = _encode(t, p, labs)
    k = len(labs)
    tp = np.bincount(ti[(ti >= 0) & (ti == pi)], minlength=k).astype(np.float64)
    n_true = np.bincount(ti[ti >= 0], minlength=k).astype(np.float64)
    n_pred = np.bincount(pi[pi >= 0], minlength=k).astype(np.float64)
    fp = n_pred - tp
    fn = n_true - tp
    prec = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), 0.0)
    rec = np.where(tp + fn > 0, tp / np.maximum(tp + fn, 1), 0.0)
    den = 2 * tp + fp + fn
    f1 = np.where(den > 0, 2 * tp / np.maximum(den, 1), 0.0)
    return {
        "labels": labs,
        "precision": [float(v) for v in prec],
        "recall": [float(v) for v in rec],
        "f1": [float(v) for v in f1],
        "support": [int(v) for v in n_true],
    }


def macro_f1(y_true: Any, y_pred: Any, labels: Sequence[Any] | None = None) -> float:
    """Unweighted mean of per-class F1 over ``labels`` (default: union of y_true and y_pred).

    A class that is neither present nor predicted contributes F1 = 0 (sklearn's
    ``zero_division=0``), so listing a class absent from the data lowers the score.
    """
    return float(np.mean(precision_recall_f1(y_true, y_pred, labels)["f1"]))


def classification_report(
    y_true: Any, y_pred: Any, labels: Sequence[Any] | None = None
) -> dict[str, Any]:
    """JSON-serialisable summary: n, accuracy, macro_f1, per-class scores, confusion matrix."""
    t, p = _pair(y_true, y_pred)
    prf = precision_recall_f1(t, p, labels)
    labs, m = confusion_matrix(t, p, prf["labels"])
    per_class = {
        str(lab): {
            "precision": prf["precision"][i],
            "recall": prf["recall"][i],
            "f1": prf["f1"][i],
            "support": prf["support"][i],
        }
        for i, lab in enumerate(labs)
    }
    return {
        "n": int(t.shape[0]),
        "accuracy": float(np.mean(t == p)),
        "macro_f1": float(np.mean(prf["f1"])),
        "labels": labs,
        "per_class": per_class,
        "confusion_matrix": {"labels": labs, "rows_true_cols_pred": m.tolist()},
    }


# --------------------------------------------------------------------------- anomaly detection


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties get the average of the ranks they span (like scipy's rankdata)."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    n = xs.shape[0]
    # start index of each run of equal values
    new = np.empty(n, dtype=bool)
    new[0] = True
    np.not_equal(xs[1:], xs[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    ends = np.append(starts[1:], n)  # exclusive
    avg = (starts + ends + 1) / 2.0  # mean of 1-based ranks starts+1 .. ends
    run = np.cumsum(new) - 1
    ranks = np.empty(n, dtype=np.float64)
    ranks[order] = avg[run]
    return ranks


def auroc(y_true: Any, score: Any) -> float:
    """Area under the ROC curve via the Mann-Whitney U statistic (ties count 1/2).

    ``y_true`` is binary (bool, or 0/1); 1 / True is the positive (anomalous)
    class. Raises ``InputError`` (a ``ValueError``) if only one class is present.
    """
    y = np.asarray(y_true)
    s = _scores_1d(score, "score")
    if y.ndim != 1 or y.shape[0] != s.shape[0]:
        raise InputError(
            f"y_true must be 1-D with the same length as score ({s.shape[0]}), got shape {y.shape}"
        )
    if y.dtype.kind == "b":
        pos = y
    else:
        if y.dtype.kind not in "iuf":
            raise InputError(f"y_true: expected booleans or 0/1, got dtype {y.dtype}")
        bad = ~np.isin(y, (0, 1))
        if np.any(bad):
            raise InputError(f"y_true: expected only 0 and 1, found {np.unique(y[bad])[:5].tolist()}")
        pos = y == 1
    n_pos = int(np.count_nonzero(pos))
    n_neg = int(pos.shape[0] - n_pos)
    if n_pos == 0 or n_neg == 0:
        raise InputError(
            f"auroc needs both classes in y_true, got {n_pos} positive and {n_neg} negative"
        )
    r = _average_ranks(s)
    u = float(np.sum(r[pos])) - n_pos * (n_pos + 1) / 2.0
    return u / (n_pos * n_neg)


def false_alarm_rate(score_negatives: Any, threshold: float) -> float:
    """Fraction of normal scores flagged as anomalous, i.e. ``score > threshold``."""
    s = _scores_1d(score_negatives, "score_negatives")
    return float(np.mean(s > _threshold(threshold)))


def detection_rate(score_positives: Any, threshold: float) -> float:
    """Fraction of anomalous scores detected, i.e. ``score > threshold`` (recall on anomalies)."""
    s = _scores_1d(score_positives, "score_positives")
    return float(np.mean(s > _threshold(threshold)))


def anomaly_report(
    score_normal: Any, score_anomalous: Any | None, threshold: float
) -> dict[str, Any]:
    """JSON-serialisable summary of an anomaly detector at a fixed threshold.

    ``score_anomalous`` may be ``None`` or empty (only normal data available):
    then detection rate and AUROC are reported as ``None``.
    """
    th = _threshold(threshold)
    neg = _scores_1d(score_normal, "score_normal")
    pos = (
        np.zeros(0)
        if score_anomalous is None
        else _scores_1d(score_anomalous, "score_anomalous", allow_empty=True)
    )
    far = float(np.mean(neg > th))
    out: dict[str, Any] = {
        "rule": "anomaly = score > threshold",
        "threshold": th,
        "n_normal": int(neg.shape[0]),
        "n_anomalous": int(pos.shape[0]),
        "false_alarm_rate": far,
        "detection_rate": None,
        "balanced_accuracy": None,
        "auroc": None,
        "score_normal": _quantiles(neg),
        "score_anomalous": _quantiles(pos) if pos.size else None,
    }
    if pos.size:
        dr = float(np.mean(pos > th))
        y = np.concatenate([np.zeros(neg.shape[0], bool), np.ones(pos.shape[0], bool)])
        out["detection_rate"] = dr
        out["balanced_accuracy"] = 0.5 * (dr + (1.0 - far))
        out["auroc"] = auroc(y, np.concatenate([neg, pos]))
    return out


def _quantiles(a: np.ndarray) -> dict[str, float]:
    q = np.quantile(a, [0.0, 0.5, 0.95, 0.99, 1.0])
    return {
        "min": float(q[0]),
        "median": float(q[1]),
        "p95": float(q[2]),
        "p99": float(q[3]),
        "max": float(q[4]),
        "mean": float(np.mean(a)),
    }
