"""Evidence behind a measured false-alarm rate: effective windows, Wilson CI, the smallest target a
block can check, alarm onsets and their Poisson interval."""
from __future__ import annotations

import math

import numpy as np
import pytest

from edgefault.device.thresholds import (alarm_onsets, effective_size, far_evidence, onset_rate, poisson_interval,
                                         pooled_effective_size, smallest_checkable_far,
                                         smallest_far_confirmed_at_target, wilson_interval)


def test_smallest_checkable_targets() -> None:
    for n_eff in (20.0, 42.0, 500.0, 1e5):
        t0 = smallest_checkable_far(n_eff)  # no false alarm at all: the upper bound is exactly 2x t0
        assert t0 is not None and wilson_interval(0, n_eff)[1] == pytest.approx(2 * t0, rel=1e-9)
        assert far_evidence(0, 1000, n_eff, 1.01 * t0)["within_2x_target"] == "holds"
        assert far_evidence(0, 1000, n_eff, 0.99 * t0)["within_2x_target"] == "undecided"
        t = smallest_far_confirmed_at_target(n_eff)  # a model running at its target
        assert t is not None and t > t0
        assert wilson_interval(t * n_eff, n_eff)[1] == pytest.approx(2 * t, rel=1e-9)
        assert wilson_interval(1.1 * t * n_eff, n_eff)[1] < 2 * 1.1 * t
        assert wilson_interval(0.9 * t * n_eff, n_eff)[1] > 2 * 0.9 * t
    # the CWRU healthy test block (42 effective windows): 4.2 % at best, 13 % at the target rate
    assert smallest_checkable_far(42.0) == pytest.approx(0.0419, abs=1e-3)
    assert smallest_far_confirmed_at_target(42.0) == pytest.approx(0.134, abs=1e-3)
    assert smallest_checkable_far(0.0) is None and smallest_far_confirmed_at_target(0.0) is None


def test_far_evidence_verdicts() -> None:
    # 131 windows, 42 effective, none above: the CI reaches 8 %, a 1 % target can be neither shown nor refuted
    e = far_evidence(0, 131, 42.0, 0.01)
    assert e["far"] == 0 and e["ci95"] == list(wilson_interval(0, 42.0)) and e["ci95"][1] > 0.02
    assert e["within_2x_target"] == "undecided" and e["smallest_target_checkable"] > 0.01
    assert far_evidence(30, 1000, 900.0, 0.01)["within_2x_target"] == "fails"  # 3 %, CI above 2 %
    assert far_evidence(5, 10000, 9000.0, 0.01)["within_2x_target"] == "holds"
    assert "within_2x_target" not in far_evidence(1, 10, 5.0, None)


def test_alarm_onsets_count_turn_ons_from_reset() -> None:
    assert alarm_onsets(np.array([], dtype=bool)) == 0
    assert alarm_onsets(np.array([1, 1, 0, 1, 0, 0, 1, 1], dtype=bool)) == 3
    assert alarm_onsets(np.zeros(9, dtype=bool)) == 0


def test_poisson_interval_and_onset_rate() -> None:
    assert poisson_interval(0) == (0.0, pytest.approx(-math.log(0.025), rel=1e-3))
    for k, lo, hi in [(1, 0.0253, 5.572), (5, 1.623, 11.668), (20, 12.217, 30.888)]:  # exact Garwood bounds
        got = poisson_interval(k)
        assert got[0] == pytest.approx(lo, rel=0.02) and got[1] == pytest.approx(hi, rel=0.002)
    r = onset_rate(2, 0.5, 3, 5)
    assert r["per_time_unit"] == 4.0 and r["time_unit"] == "hour" and (r["alarm_k"], r["alarm_n"]) == (3, 5)
    assert r["per_time_unit_ci95"][0] < 4.0 < r["per_time_unit_ci95"][1]


def test_pooled_effective_size_of_short_correlated_streams() -> None:
    """60 streams of 40 AR(1) values (phi 0.9, autocorrelation time 19): per-stream estimates stop at a
    quarter of the stream and overstate the independent windows; the pooled one sees the correlation."""
    rng = np.random.default_rng(0)
    phi, streams = 0.9, []
    for _ in range(60):
        x = np.empty(40)
        x[0] = rng.normal() / math.sqrt(1 - phi * phi)
        for t in range(1, 40):
            x[t] = phi * x[t - 1] + rng.normal()
        streams.append(np.exp(0.1 * x))
    n_eff, tau = pooled_effective_size(streams)
    assert 10 <= tau <= 25 and n_eff == pytest.approx(2400 / tau)
    assert sum(effective_size(s)[0] for s in streams) > 2 * n_eff
    iid = [np.exp(rng.normal(size=40)) for _ in range(50)]
    assert pooled_effective_size(iid)[1] < 1.5
    assert pooled_effective_size([]) == (0.0, 1.0)
