"""Peaks-over-threshold calibration: generalised Pareto fits against scipy and an independent
L-moment computation, extrapolated thresholds against known distributions, guards."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgefault.errors import InputError
from edgefault.device.thresholds import calibrate_threshold, gpd_fit, gpd_quantile_over

stats = pytest.importorskip("scipy.stats", reason="scipy is the independent reference")


def _gpd_loglik(y: np.ndarray, xi: float, sigma: float) -> float:
    return float(np.sum(stats.genpareto.logpdf(y, xi, loc=0, scale=sigma)))


@pytest.mark.parametrize("xi", [-0.3, 0.0, 0.15, 0.4])
def test_mle_matches_scipy(xi: float) -> None:
    y = stats.genpareto.rvs(xi, scale=1.7, size=1500, random_state=np.random.default_rng(1))
    ours = gpd_fit(y, "mle")
    ref = stats.genpareto.fit(y, floc=0)
    assert ours[0] == pytest.approx(ref[0], abs=2e-3)
    assert ours[1] == pytest.approx(ref[2], rel=2e-3)
    # never worse than scipy's optimum
    assert _gpd_loglik(y, *ours) >= _gpd_loglik(y, ref[0], ref[2]) - 1e-6


@pytest.mark.parametrize("xi", [-0.2, 0.0, 0.25])
def test_pwm_matches_l_moments_from_pairwise_differences(xi: float) -> None:
    y = stats.genpareto.rvs(xi, scale=2.0, size=400, random_state=np.random.default_rng(2))
    n = y.size
    l1 = y.mean()
    l2 = np.abs(y[:, None] - y[None, :]).sum() / (n * (n - 1)) / 2  # half Gini mean difference
    k = l1 / l2 - 2.0  # Hosking's k = -xi for the GPD with location 0
    shape, scale = gpd_fit(y, "pwm")
    assert shape == pytest.approx(-k, abs=1e-9)
    assert scale == pytest.approx((1 + k) * l1, rel=1e-9)
    assert shape == pytest.approx(xi, abs=0.15)


def test_mle_is_constrained_to_the_regular_region() -> None:
    """Uniform excesses (true xi = -1, where the likelihood is unbounded at the sample maximum):
    the fit stays at xi >= -0.5, maximises the likelihood there, and the threshold stays finite."""
    y = np.random.default_rng(6).uniform(0, 1, size=12)
    xi, sigma = gpd_fit(y, "mle")
    assert xi >= -0.5 - 1e-9 and xi == pytest.approx(-0.5, abs=1e-3)
    # best on the boundary xi = -0.5 (the sample max must stay inside the support sigma / 0.5)
    grid = np.linspace(2 * y.max() * 0.5 + 1e-9, 5.0, 4000)
    best = max(_gpd_loglik(y, -0.5, s) for s in grid)
    assert _gpd_loglik(y, xi, sigma) >= best - 1e-3
    s = np.r_[np.random.default_rng(7).uniform(0, 1, size=90)]
    cal = calibrate_threshold(s, target_far=1e-4, method="pot")
    assert cal.details["gpd_shape"] >= -0.5 - 1e-9 and s.max() <= cal.threshold < 1.5


def test_quantile_formula_matches_scipy() -> None:
    for xi in (-0.2, 0.0, 0.3):
        got = gpd_quantile_over(5.0, xi, 2.0, 0.1, 1e-4)
        ref = 5.0 + stats.genpareto.isf(1e-3, xi, scale=2.0)
        assert got == pytest.approx(ref, rel=1e-6)


@pytest.mark.parametrize("gpd_method", ["mle", "pwm"])
def test_pot_extrapolates_below_one_over_n(gpd_method: str) -> None:
    """Target rate 1e-5 from 4000 healthy windows (40x below 1/n): the threshold lands near the true
    quantile of a Weibull-tailed (gamma) score, where the percentile cannot go past the maximum."""
    dist = stats.gamma(3.0, scale=1.0)
    s = dist.rvs(size=4000, random_state=np.random.default_rng(3))
    cal = calibrate_threshold(s, target_far=1e-5, method="pot", gpd_method=gpd_method)
    true = dist.isf(1e-5)
    assert cal.method == "pot" and cal.threshold > s.max()
    assert abs(cal.threshold - true) / true < 0.25
    assert dist.sf(cal.threshold) < 1e-4  # realised false-alarm rate within 10x of target
    pct = calibrate_threshold(s, target_far=1e-5, method="percentile")
    assert pct.threshold == s.max() and dist.sf(pct.threshold) > 3e-5


@settings(max_examples=30, deadline=None)
@given(a=st.floats(1e-3, 1e3), b=st.floats(-1e3, 1e3), seed=st.integers(0, 2 ** 16))
def test_pot_is_affine_equivariant(a: float, b: float, seed: int) -> None:
    s = stats.gamma(2.0).rvs(size=600, random_state=np.random.default_rng(seed))
    c1 = calibrate_threshold(s, target_far=1e-4, method="pot")
    c2 = calibrate_threshold(a * s + b, target_far=1e-4, method="pot")
    assert c2.threshold == pytest.approx(a * c1.threshold + b, rel=1e-6, abs=1e-6 * (abs(b) + a))


def test_guard_refuses_a_threshold_that_flags_nothing() -> None:
    s = np.abs(stats.cauchy.rvs(size=200, random_state=np.random.default_rng(4))) + 1.0
    with pytest.raises(InputError, match="flag nothing"):
        calibrate_threshold(s, target_far=1e-12, method="pot")


def test_guard_refuses_a_threshold_that_flags_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    import edgefault.device.thresholds as th

    # a fit gone wrong (threshold far below the bulk) must not be accepted
    monkeypatch.setattr(th, "gpd_quantile_over", lambda *a: -1e9)
    monkeypatch.setattr(th.np, "quantile", lambda *a, **k: -1e9)
    s = np.linspace(1.0, 2.0, 100)
    with pytest.raises(InputError, match="flags everything"):
        th.calibrate_threshold(s, target_far=1e-3, method="pot")


def test_bad_arguments() -> None:
    s = stats.gamma(2.0).rvs(size=300, random_state=np.random.default_rng(5))
    with pytest.raises(InputError, match="mle or pwm"):
        calibrate_threshold(s, 1e-3, method="pot", gpd_method="moments")
    with pytest.raises(InputError, match="tail_fraction"):
        calibrate_threshold(s, 1e-3, method="pot", tail_fraction=0.7)
    with pytest.raises(InputError, match="at least 50 calibration windows"):
        calibrate_threshold(s[:40], 1e-3, method="pot")
    with pytest.raises(InputError, match="pot"):
        calibrate_threshold(s, 1e-3, method="evt")
    with pytest.raises(InputError, match="at least 3"):
        gpd_fit(np.array([1.0, 2.0]))
    with pytest.raises(InputError, match="at least 3"):
        gpd_fit(np.array([1.0, np.nan, 2.0, 3.0]))
    assert math.isfinite(gpd_fit(np.array([0.0, 1.0, 2.0, 3.0, 4.0]), "mle")[1])


# -- robust calibration: serial correlation and between-session shift --------------------------------
def test_effective_size_sees_serial_correlation() -> None:
    from edgefault.device.thresholds import effective_size

    rng = np.random.default_rng(0)
    iid = np.exp(rng.normal(size=4000))
    n_iid, tau_iid = effective_size(iid)
    smooth = np.exp(np.convolve(rng.normal(size=4000 + 15), np.ones(16) / 4.0, mode="valid"))  # 16-window overlap
    n_s, tau_s = effective_size(smooth)
    assert tau_iid < 1.3 and n_iid > 3000
    assert tau_s > 8 and n_s < 4000 / 8


def test_robust_threshold_is_at_least_plain_and_grows_with_session_spread() -> None:
    from edgefault.device.thresholds import calibrate_robust, calibrate_threshold

    rng = np.random.default_rng(1)
    groups = np.repeat(np.arange(4), 500)
    same = np.exp(rng.normal(size=2000))
    shifted = same * np.exp(np.repeat(rng.normal(0, 0.5, 4), 500))
    plain = calibrate_threshold(same, 0.01).threshold
    r_same = calibrate_robust(same, 0.01, groups=groups)
    r_shift = calibrate_robust(shifted, 0.01, groups=groups)
    assert r_same.threshold >= plain and r_same.method.startswith("robust-")
    assert r_shift.details["session_sd_log"] > 0.2 > r_same.details["session_sd_log"]
    assert r_shift.threshold > calibrate_threshold(shifted, 0.01).threshold
    d = r_shift.details
    assert d["effective_windows"] <= 2000 and 0 <= d["far_on_calibration_ci95"][0] <= d["far_on_calibration_ci95"][1] <= 1


def test_wilson_interval_covers_the_rate() -> None:
    from edgefault.device.thresholds import wilson_interval

    lo, hi = wilson_interval(5, 100)
    assert lo < 0.05 < hi and 0 <= lo and hi <= 1
    assert wilson_interval(0, 50)[0] == 0.0 and wilson_interval(0, 0) == (0.0, 1.0)


def test_gaussian_robust_calibration_scores_each_session_by_a_model_without_it() -> None:
    """With several healthy recordings, robust calibration scores each recording's calibration
    block with a model fitted on the others (a new session lands farther than a seen one)."""
    from conftest import noise_recording

    from edgefault.device.spec import FeatureSpec
    from edgefault.train.anomaly import train_gaussian

    recs = [noise_recording(seconds=10.0, seed=s) for s in range(3)]
    for i, r in enumerate(recs):
        r.data[:] *= np.float32(1.0 + 0.2 * i)  # a gain change between sessions
    spec = FeatureSpec.for_anomaly(recs[0].fs, recs[0].channels, window=256, hop=128, n_bands=8)
    plain = train_gaussian(recs, spec, target_far=0.01, drift_far=None)
    robust = train_gaussian(recs, spec, target_far=0.01, calibration="robust", drift_far=None)
    assert robust.calibration.details["leave_one_session_out"] is True
    assert robust.calibration.threshold > plain.calibration.threshold
