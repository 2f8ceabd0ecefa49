from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgefault.errors import InputError
from edgefault.device.thresholds import calibrate_threshold, norm_ppf
from edgefault.train.gaussian import GaussianAnomalyModel, ledoit_wolf


@pytest.mark.parametrize("n, d", [(10, 30), (50, 5), (200, 40), (37, 37)])
def test_ledoit_wolf_matches_sklearn(n: int, d: int) -> None:
    from sklearn.covariance import ledoit_wolf as sk_lw

    rng = np.random.default_rng(n * d)
    x = rng.normal(size=(n, d)) @ rng.normal(size=(d, d))
    x -= x.mean(axis=0)
    cov, shrink = ledoit_wolf(x)
    ref_cov, ref_shrink = sk_lw(x, assume_centered=True)
    assert shrink == pytest.approx(ref_shrink, rel=1e-9, abs=1e-12)
    np.testing.assert_allclose(cov, ref_cov, rtol=1e-9, atol=1e-12)


def test_scores_are_mahalanobis_and_contributions_sum() -> None:
    from scipy.spatial.distance import mahalanobis

    rng = np.random.default_rng(1)
    X = rng.normal(size=(500, 6)) * [1, 2, 3, 4, 5, 6] + 10
    m = GaussianAnomalyModel().fit(X)
    Y = rng.normal(size=(20, 6)) * 3 + 10
    s = m.score_samples(Y)
    z = (Y - m.mean_) / m.scale_
    ref = np.array([mahalanobis(r, np.zeros(6), m.precision_.astype(float)) ** 2 for r in z])
    np.testing.assert_allclose(s, ref, rtol=1e-5)
    np.testing.assert_allclose(m.contributions(Y).sum(axis=1), s, rtol=1e-6)
    # healthy training data scores near its dimension on average (chi-square mean)
    assert 4.0 < m.score_samples(X).mean() < 8.0


def test_model_errors() -> None:
    with pytest.raises(InputError, match="not fitted"):
        GaussianAnomalyModel().score_samples(np.zeros((2, 3)))
    with pytest.raises(InputError, match="NaN"):
        GaussianAnomalyModel().fit(np.array([[1.0, np.nan], [2.0, 3.0]]))
    m = GaussianAnomalyModel().fit(np.random.default_rng(0).normal(size=(50, 3)))
    with pytest.raises(InputError, match="expected 3 features"):
        m.score_samples(np.zeros((2, 4)))
    # a constant feature does not break the fit or dominate the score
    X = np.random.default_rng(2).normal(size=(100, 3))
    X[:, 1] = 5.0
    m = GaussianAnomalyModel().fit(X)
    assert np.all(np.isfinite(m.score_samples(X)))


@given(st.floats(1e-6, 1 - 1e-6))
def test_norm_ppf_inverts_the_cdf(p: float) -> None:
    from scipy.stats import norm

    assert norm_ppf(p) == pytest.approx(norm.ppf(p), abs=1e-9)


def test_percentile_calibration_hits_target_on_fresh_data() -> None:
    rng = np.random.default_rng(5)
    cal = calibrate_threshold(rng.chisquare(10, size=5000), target_far=0.01)
    assert cal.method == "percentile"
    fresh = rng.chisquare(10, size=200000)
    assert 0.007 < np.mean(fresh > cal.threshold) < 0.013


def test_lognormal_calibration_with_few_windows_is_conservative_enough() -> None:
    rng = np.random.default_rng(6)
    fars = []
    for _ in range(200):
        cal = calibrate_threshold(rng.chisquare(20, size=40), target_far=0.01)
        assert cal.method == "lognormal" and cal.threshold >= cal.details["percentile_threshold"]
        fars.append(np.mean(rng.chisquare(20, size=20000) > cal.threshold))
    assert np.median(fars) < 0.02


@pytest.mark.parametrize("scores, far, match", [
    (np.ones(100), 0.01, "all equal"),
    (np.arange(5.0), 0.01, "at least 20"),
    (np.r_[np.arange(30.0), np.nan], 0.01, "NaN"),
    (np.arange(100.0), 0.7, "target false-alarm rate"),
])
def test_degenerate_calibrations_are_refused(scores: np.ndarray, far: float, match: str) -> None:
    with pytest.raises(InputError, match=match):
        calibrate_threshold(scores, target_far=far)
