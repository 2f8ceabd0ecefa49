"""Threshold calibration on held-out healthy scores for a target false-alarm rate.

Numpy + stdlib only (it runs wherever training runs, torch or not).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .errors import InputError

MIN_CALIBRATION_WINDOWS = 20


def norm_ppf(p: float) -> float:
    """Inverse of the standard normal CDF (bisection on math.erf; |error| < 1e-12)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p}")
    lo, hi = -40.0, 40.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if 0.5 * math.erfc(-mid / math.sqrt(2.0)) < p:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


@dataclass(frozen=True)
class Calibration:
    threshold: float
    clear_threshold: float
    method: str
    target_far: float
    n_windows: int
    far_on_calibration: float
    details: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def calibrate_threshold(scores: np.ndarray, target_far: float = 0.01, method: str = "auto",
                        hysteresis: float = 0.9) -> Calibration:
    """Threshold such that about ``target_far`` of healthy windows score above it.

    Methods:
      * ``percentile``: the empirical (1 - target_far) quantile; needs at least
        10 / target_far windows to be trusted.
      * ``lognormal``: a log-normal fitted to the scores (robustly: median and MAD of log
        scores), quantile at 1 - target_far. Extrapolates below 1/n; used by ``auto`` when
        there are too few windows for the percentile, and never set below the empirical
        percentile.
    ``clear_threshold`` (hysteresis) is ``hysteresis`` x threshold.

    Raises InputError for a degenerate calibration: too few finite windows, constant or
    non-finite scores, a target rate outside (0, 0.5).
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    if not 0.0 < target_far < 0.5:
        raise InputError(f"target false-alarm rate must be in (0, 0.5), got {target_far}")
    if not 0.0 < hysteresis <= 1.0:
        raise InputError(f"hysteresis must be in (0, 1], got {hysteresis}")
    finite = s[np.isfinite(s)]
    if finite.size < MIN_CALIBRATION_WINDOWS:
        raise InputError(f"calibration needs at least {MIN_CALIBRATION_WINDOWS} healthy windows with finite "
                         f"scores, got {finite.size}: give more healthy data or a smaller hop")
    if finite.size < s.size:
        raise InputError(f"{s.size - finite.size} of {s.size} calibration scores are NaN/Inf: "
                         f"the healthy calibration data contains bad samples")
    if np.ptp(finite) <= 1e-12 * max(1.0, float(np.abs(finite).max())):
        raise InputError("calibration scores are all equal: the model cannot tell windows apart "
                         "(constant signal or a degenerate feature spec)")
    n = finite.size
    pct = float(np.quantile(finite, 1.0 - target_far, method="higher"))
    enough = n * target_far >= 10
    if method not in ("auto", "percentile", "lognormal"):
        raise InputError(f"unknown calibration method {method!r}; use auto, percentile or lognormal")
    details: dict[str, Any] = {"percentile_threshold": pct, "max_score": float(finite.max())}
    if method == "percentile" or (method == "auto" and enough):
        thr, used = pct, "percentile"
        if not enough:
            details["warning"] = (f"only {n} windows for target_far={target_far}: the percentile is "
                                  f"unreliable below 10 expected exceedances")
    else:
        if np.any(finite <= 0):
            raise InputError("lognormal calibration needs positive scores")
        logs = np.log(finite)
        med = float(np.median(logs))
        mad = float(np.median(np.abs(logs - med))) * 1.4826
        if mad <= 0:
            raise InputError("calibration scores have no spread on a log scale")
        z = norm_ppf(1.0 - target_far)
        thr_ln = math.exp(med + z * mad)
        details.update({"log_median": med, "log_sigma": mad, "z": z, "lognormal_threshold": thr_ln})
        thr, used = max(thr_ln, pct), "lognormal"
    far = float(np.mean(finite > thr))
    return Calibration(threshold=float(thr), clear_threshold=float(hysteresis * thr), method=used,
                       target_far=float(target_far), n_windows=int(n), far_on_calibration=far,
                       details=details)
