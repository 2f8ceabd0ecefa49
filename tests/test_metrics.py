from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgefault.evaluation import metrics as M
from edgefault.errors import InputError


@pytest.fixture(scope="module")
def skm():  # type: ignore[no-untyped-def]
    """scikit-learn's metrics, the independent reference (only the tests that use it skip without it)."""
    return pytest.importorskip("sklearn.metrics", reason="scikit-learn is the reference for this test")


def _rand_labels(rng: np.random.Generator, n: int, classes: list[str]) -> np.ndarray:
    return np.array(classes)[rng.integers(0, len(classes), n)]


@pytest.mark.parametrize("seed", range(20))
def test_classification_metrics_match_sklearn(seed: int, skm) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 60))
    y_true = _rand_labels(rng, n, ["a", "b", "c"])
    # predictions use a partly different class set: "d" is never true, "c" may never be predicted
    y_pred = _rand_labels(rng, n, ["a", "b", "d"])
    assert M.accuracy(y_true, y_pred) == pytest.approx(skm.accuracy_score(y_true, y_pred))
    assert M.macro_f1(y_true, y_pred) == pytest.approx(
        skm.f1_score(y_true, y_pred, average="macro", zero_division=0)
    )
    labels = ["a", "b", "c", "d", "e"]  # "e" is absent from both
    assert M.macro_f1(y_true, y_pred, labels=labels) == pytest.approx(
        skm.f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)
    )
    labs, cm = M.confusion_matrix(y_true, y_pred)
    np.testing.assert_array_equal(cm, skm.confusion_matrix(y_true, y_pred, labels=labs))
    assert labs == sorted(set(y_true) | set(y_pred))
    sub = ["b", "a"]  # subset and custom order: other samples are dropped, like sklearn
    labs, cm = M.confusion_matrix(y_true, y_pred, labels=sub)
    assert labs == sub
    np.testing.assert_array_equal(cm, skm.confusion_matrix(y_true, y_pred, labels=sub))
    prf = M.precision_recall_f1(y_true, y_pred, labels=sub)
    p, r, f, s = skm.precision_recall_fscore_support(y_true, y_pred, labels=sub, zero_division=0)
    np.testing.assert_allclose(prf["precision"], p)
    np.testing.assert_allclose(prf["recall"], r)
    np.testing.assert_allclose(prf["f1"], f)
    np.testing.assert_array_equal(prf["support"], s)


def test_integer_labels_and_report_is_json(skm) -> None:
    y_true = np.array([0, 1, 2, 2, 1, 0, 3])
    y_pred = np.array([0, 2, 2, 2, 1, 1, 0])
    rep = M.classification_report(y_true, y_pred)
    json.dumps(rep)
    assert rep["labels"] == [0, 1, 2, 3]
    assert all(type(v) is int for v in rep["labels"])
    assert rep["n"] == 7
    assert rep["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred))
    assert rep["macro_f1"] == pytest.approx(skm.f1_score(y_true, y_pred, average="macro", zero_division=0))
    assert rep["per_class"]["3"]["support"] == 1 and rep["per_class"]["3"]["f1"] == 0.0
    assert rep["confusion_matrix"]["rows_true_cols_pred"] == skm.confusion_matrix(y_true, y_pred).tolist()


@pytest.mark.parametrize("seed", range(25))
def test_auroc_matches_sklearn_with_ties(seed: int, skm) -> None:
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(2, 200))
    y = rng.integers(0, 2, n)
    y[0], y[1] = 0, 1
    # coarse scores -> many ties, also between classes
    s = np.round(rng.normal(size=n) + 0.7 * y, int(rng.integers(0, 2)))
    assert M.auroc(y, s) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)
    assert M.auroc(y.astype(bool), s) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)


@given(st.lists(st.tuples(st.booleans(), st.integers(-3, 3)), min_size=2, max_size=40))
@settings(max_examples=150, deadline=None)
def test_auroc_equals_pairwise_probability(pairs: list[tuple[bool, int]]) -> None:
    y = np.array([p[0] for p in pairs])
    s = np.array([p[1] for p in pairs], dtype=float)
    if y.all() or not y.any():
        with pytest.raises(ValueError, match="both classes"):
            M.auroc(y, s)
        return
    pos, neg = s[y], s[~y]
    d = pos[:, None] - neg[None, :]
    expected = (np.sum(d > 0) + 0.5 * np.sum(d == 0)) / d.size
    assert M.auroc(y, s) == pytest.approx(expected, abs=1e-12)


def test_auroc_extremes() -> None:
    assert M.auroc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == 1.0
    assert M.auroc([1, 1, 0, 0], [0.1, 0.2, 0.3, 0.4]) == 0.0
    assert M.auroc([0, 1, 0, 1], [5, 5, 5, 5]) == 0.5


def test_rates_use_strictly_greater() -> None:
    neg = np.array([0.1, 0.5, 0.5, 0.9])
    assert M.false_alarm_rate(neg, 0.5) == 0.25  # equal to threshold is not an alarm
    assert M.false_alarm_rate(neg, 0.9) == 0.0  # threshold = max normal score -> no false alarm
    assert M.false_alarm_rate(neg, 0.0999) == 1.0
    assert M.detection_rate([1.0, 2.0, 0.5], 0.5) == pytest.approx(2 / 3)
    assert M.detection_rate([1.0, 2.0, 0.5], np.float32(0.49)) == 1.0


@pytest.mark.parametrize("seed", range(5))
def test_anomaly_report(seed: int, skm) -> None:
    rng = np.random.default_rng(seed)
    neg = rng.normal(size=300)
    pos = rng.normal(loc=1.5, size=80)
    th = float(np.quantile(neg, 0.95))
    rep = M.anomaly_report(neg, pos, th)
    json.dumps(rep)
    assert rep["false_alarm_rate"] == pytest.approx(np.mean(neg > th))
    assert rep["detection_rate"] == pytest.approx(np.mean(pos > th))
    y = np.r_[np.zeros(neg.size), np.ones(pos.size)]
    assert rep["auroc"] == pytest.approx(skm.roc_auc_score(y, np.r_[neg, pos]))
    assert rep["balanced_accuracy"] == pytest.approx(
        skm.balanced_accuracy_score(y, np.r_[neg, pos] > th)
    )
    assert rep["n_normal"] == 300 and rep["n_anomalous"] == 80
    assert rep["score_normal"]["max"] == pytest.approx(neg.max())
    only_normal = M.anomaly_report(neg, None, th)
    json.dumps(only_normal)
    assert only_normal["auroc"] is None and only_normal["detection_rate"] is None
    assert M.anomaly_report(neg, [], th)["n_anomalous"] == 0


def test_bad_input() -> None:
    with pytest.raises(InputError, match="same length"):
        M.accuracy([1, 2], [1])
    with pytest.raises(InputError, match="empty"):
        M.macro_f1([], [])
    with pytest.raises(InputError, match="1-D"):
        M.accuracy([[1]], [[1]])
    with pytest.raises(InputError, match="dtype"):
        M.accuracy([0.5, 1.0], [0.5, 1.0])
    assert M.accuracy([0.0, 1.0], [1.0, 1.0]) == 0.5  # whole-number floats are labels
    with pytest.raises(InputError, match="duplicates"):
        M.macro_f1([1], [1], labels=[1, 1])
    with pytest.raises(InputError, match="empty list"):
        M.confusion_matrix([1], [1], labels=[])
    with pytest.raises(ValueError, match="both classes"):
        M.auroc([1, 1, 1], [0.1, 0.2, 0.3])
    with pytest.raises(InputError, match="only 0 and 1"):
        M.auroc([0, 1, 2], [0.1, 0.2, 0.3])
    with pytest.raises(InputError, match="finite"):
        M.auroc([0, 1], [0.1, np.nan])
    with pytest.raises(InputError, match="same length"):
        M.auroc([0, 1, 1], [0.1, 0.2])
    with pytest.raises(InputError, match="finite"):
        M.false_alarm_rate([np.inf], 1.0)
    with pytest.raises(InputError, match="empty"):
        M.detection_rate([], 1.0)
    with pytest.raises(InputError, match="threshold"):
        M.false_alarm_rate([1.0], float("nan"))
    with pytest.raises(InputError, match="threshold"):
        M.false_alarm_rate([1.0], "high")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="mixed types"):
        M.macro_f1(np.array([1, "a"], dtype=object), np.array(["a", 1], dtype=object))
