"""Threshold calibration on held-out healthy scores for a target false-alarm rate.

Numpy + stdlib only (it runs wherever training runs, torch or not).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from edgefault.errors import InputError

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


XI_MIN = -0.5


def gpd_fit(excesses: np.ndarray, method: str = "mle") -> tuple[float, float]:
    """Generalised Pareto fit ``(shape xi, scale sigma)`` to positive excesses over a threshold.

    ``pwm``: probability-weighted moments (Hosking & Wallis 1987): with a0 = mean(y) and
    a1 = mean((n - j) / (n - 1) * y_(j)) over the ascending order statistics (j = 1..n),
    xi = 2 - a0 / (a0 - 2 a1), sigma = 2 a0 a1 / (a0 - 2 a1).
    ``mle``: maximum likelihood through Grimshaw's one-dimensional profile in theta = xi / sigma
    (xi(theta) = mean(log(1 + theta y)), sigma = xi / theta, profile log-likelihood
    -n (1 + xi + log sigma); theta -> 0 is the exponential),
    maximised over a grid and refined by golden-section search. Support: theta > -1 / max(y).
    The likelihood is unbounded for xi < -1 (a few excesses piled near their maximum) and
    irregular below -0.5 (Smith 1985), so the MLE is constrained to xi >= ``XI_MIN`` = -0.5.
    Survival function: (1 + xi y / sigma)^(-1/xi), or exp(-y / sigma) for xi = 0.
    """
    y = np.sort(np.asarray(excesses, dtype=np.float64).ravel())
    n = y.size
    if n < 3 or not np.all(np.isfinite(y)) or y[0] < 0 or y[-1] <= 0:
        raise InputError(f"generalised Pareto fit needs at least 3 finite non-negative excesses with spread, got {n}")
    if method == "pwm":
        a0 = float(y.mean())
        a1 = float(np.mean((n - np.arange(1, n + 1)) / (n - 1) * y))
        d = a0 - 2.0 * a1
        if d <= 0:
            raise InputError("generalised Pareto PWM fit failed: the excesses are too heavy-tailed (a0 <= 2 a1)")
        return 2.0 - a0 / d, 2.0 * a0 * a1 / d
    if method != "mle":
        raise InputError(f"unknown generalised Pareto fit {method!r}; use mle or pwm")
    ymax, mean = float(y[-1]), float(y.mean())

    def profile(theta: float) -> float:
        if abs(theta) < 1e-12 / ymax:  # exponential limit
            return -n * (1.0 + math.log(mean))
        t = np.log1p(theta * y)
        xi = float(t.mean())
        if xi * theta <= 0 or xi < XI_MIN:  # sigma = xi / theta > 0; the regular region xi >= -0.5
            return -math.inf
        return -n * (1.0 + math.log(xi / theta) + xi)  # l = -n log sigma - (1 + 1/xi) sum(t)

    lo, hi = -1.0 / ymax * (1 - 1e-9), 50.0 / mean
    grid = np.concatenate([-np.geomspace(-lo, 1e-6 / ymax, 60), [0.0], np.geomspace(1e-6 / ymax, hi, 80)])
    vals = np.array([profile(float(t)) for t in grid])
    k = int(np.argmax(vals))
    a, b = float(grid[max(k - 1, 0)]), float(grid[min(k + 1, grid.size - 1)])
    g = (math.sqrt(5) - 1) / 2
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = profile(c), profile(d)
    for _ in range(100):
        if fc > fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = profile(c)
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = profile(d)
    theta = 0.5 * (a + b)
    if profile(theta) < vals[k]:
        theta = float(grid[k])
    if abs(theta) < 1e-12 / ymax:
        return 0.0, mean
    xi = float(np.mean(np.log1p(theta * y)))
    return xi, xi / theta


def gpd_quantile_over(u: float, xi: float, sigma: float, p_exceed_u: float, p: float) -> float:
    """Level exceeded with probability ``p`` when ``u`` is exceeded with probability ``p_exceed_u``
    and excesses over u follow GPD(xi, sigma)."""
    r = p / p_exceed_u
    if abs(xi) < 1e-9:
        return u - sigma * math.log(r)
    return u + sigma / xi * (r ** (-xi) - 1.0)


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


def effective_size(scores: np.ndarray) -> tuple[float, float]:
    """(effective number of independent windows, integrated autocorrelation time) of a score
    stream in time order (overlapping windows are serially correlated: n_eff = n / tau), from the
    log scores (positive scores) or the scores."""
    from edgefault.device.drift import autocorr_time

    s = np.asarray(scores, dtype=np.float64)
    s = s[np.isfinite(s)]
    u = np.log(s) if s.size and np.all(s > 0) else s
    tau = max(1.0, autocorr_time(u))
    return s.size / tau, tau


def pooled_effective_size(streams: list[np.ndarray], max_lag: int = 200) -> tuple[float, float]:
    """(effective number of independent windows, autocorrelation time) of several independent
    short score streams (e.g. one per engine), each in time order. One autocorrelation pooled over
    the streams about their common mean (a stream's own offset is dependence too), summed until it
    first drops below 0.05 (as :func:`edgefault.device.drift.autocorr_time`); per-stream estimates
    of short streams stop at a quarter of their length and overstate the independent windows."""
    ss = [np.asarray(x, dtype=np.float64) for x in streams]
    ss = [x[np.isfinite(x)] for x in ss]
    ss = [x for x in ss if x.size]
    if not ss:
        return 0.0, 1.0
    allv = np.concatenate(ss)
    if np.all(allv > 0):
        ss, allv = [np.log(x) for x in ss], np.log(allv)
    c = [x - allv.mean() for x in ss]
    var = float(np.mean((allv - allv.mean()) ** 2))
    tau = 1.0
    if var > 0:
        for lag in range(1, min(max_lag, max(x.size for x in c) // 2)):
            pairs = [(x[:-lag], x[lag:]) for x in c if x.size > lag]
            r = sum(float(a @ b) for a, b in pairs) / sum(a.size for a, _ in pairs) / var
            if r < 0.05:
                break
            tau += 2.0 * r
    return allv.size / tau, tau


def evidence(calib_scores: np.ndarray, target_far: float) -> dict[str, Any]:
    """How much a calibration set can support: its windows, its effective (independent) windows
    and the smallest false-alarm target with 10 expected independent exceedances."""
    n_eff, tau = effective_size(calib_scores)
    return {"n_calib_effective": round(n_eff, 1), "calib_autocorr_time": round(tau, 2),
            "min_supported_far": (10.0 / n_eff) if n_eff > 0 else None,
            "target_supported": bool(n_eff > 0 and target_far >= 10.0 / n_eff)}


def wilson_interval(k: float, n: float, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a rate k / n (n may be an effective, non-integer size)."""
    if n <= 0:
        return 0.0, 1.0
    p = k / n
    den = 1.0 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(max(p * (1 - p) / n + z * z / (4 * n * n), 0.0)) / den
    return max(0.0, mid - half), min(1.0, mid + half)


def smallest_checkable_far(n_eff: float, factor: float = 2.0, z: float = 1.96) -> float | None:
    """Smallest target that ``n_eff`` independent windows can show to be met within ``factor`` x
    target at all: with no false alarm the Wilson upper bound is z^2 / (n + z^2); below
    that / factor no outcome of the block can show it."""
    return z * z / (factor * (n_eff + z * z)) if n_eff > 0 else None


def smallest_far_confirmed_at_target(n_eff: float, factor: float = 2.0, z: float = 1.96) -> float | None:
    """Smallest target t that ``n_eff`` independent windows confirm within ``factor`` x t for a model
    that runs exactly at its target (achieved rate t, Wilson upper bound factor x t). Closed form
    of (u - p)^2 = z^2 u (1 - u) / n at u = factor x p."""
    if n_eff <= 0 or factor <= 1:
        return None
    return z * z * factor / ((factor - 1) ** 2 * n_eff + z * z * factor * factor)


def far_evidence(n_exceed: int, n_windows: int, n_eff: float, target_far: float | None,
                 factor: float = 2.0) -> dict[str, Any]:
    """Achieved false-alarm rate per window with the evidence behind it: effective (independent)
    windows, Wilson 95 % interval on that size, whether FAR <= ``factor`` x target holds within the
    interval ("holds": upper bound below, "fails": lower bound above, else "undecided") and the
    smallest target these windows can check at all (:func:`smallest_checkable_far`: even with no
    false alarm) and for a model running at its target (:func:`smallest_far_confirmed_at_target`)."""
    far = n_exceed / n_windows if n_windows else float("nan")
    lo, hi = wilson_interval(far * n_eff, n_eff) if n_windows else (0.0, 1.0)
    out: dict[str, Any] = {"far": far, "n_windows": int(n_windows), "n_effective": float(n_eff),
                           "ci95": [lo, hi], "smallest_target_checkable": smallest_checkable_far(n_eff, factor),
                           "smallest_target_confirmed_at_target_rate": smallest_far_confirmed_at_target(n_eff, factor)}
    if target_far is not None:
        bound = factor * target_far
        out[f"within_{factor:g}x_target"] = "holds" if hi <= bound else "fails" if lo > bound else "undecided"
    return out


def alarm_onsets(alarm: np.ndarray) -> int:
    """Times the debounced alarm turns on in one stream that starts from a reset (alarm off)."""
    a = np.asarray(alarm, dtype=bool)
    return int(a[0] + np.sum(a[1:] & ~a[:-1])) if a.size else 0


def poisson_interval(k: int, z: float = 1.96) -> tuple[float, float]:
    """Approximate 95 % interval of a Poisson mean from k events (Garwood's chi-square bounds,
    Wilson-Hilferty quantiles, exact for 2 degrees of freedom: upper bound within 0.2 % of exact,
    lower bound at most 8 % below)."""
    def chi2(p_z: float, nu: float) -> float:
        if nu == 2:  # exact: the exponential
            return -2.0 * math.log(1.0 - 0.5 * (1.0 + math.erf(p_z / math.sqrt(2.0))))
        c = 2.0 / (9.0 * nu)
        return nu * max(1.0 - c + p_z * math.sqrt(c), 0.0) ** 3

    lo = 0.0 if k == 0 else chi2(-z, 2 * k) / 2.0
    return lo, chi2(z, 2 * k + 2) / 2.0


def onset_rate(n_onsets: int, healthy_time: float, k: int, n: int, unit: str = "hour") -> dict[str, Any]:
    """False-alarm onsets (the debounced k-of-n alarm turning on) per ``unit`` of healthy data
    monitored (``healthy_time`` in that unit), with the k and n used."""
    lo, hi = poisson_interval(n_onsets)
    ok = healthy_time > 0
    return {"onsets": int(n_onsets), "healthy_time": float(healthy_time), "time_unit": unit,
            "per_time_unit": n_onsets / healthy_time if ok else None,
            "per_time_unit_ci95": [lo / healthy_time, hi / healthy_time] if ok else None,
            "alarm_k": int(k), "alarm_n": int(n)}


def calibrate_robust(scores: np.ndarray, target_far: float = 0.01, *, groups: np.ndarray | None = None,
                     guarantee: float = 0.9, n_boot: int = 64, seed: int = 0, hysteresis: float = 0.9) -> Calibration:
    """A threshold that holds on healthy data recorded later, not only on the calibration block.

    The plain estimate (:func:`calibrate_threshold` ``auto``: percentile, or a log-normal tail
    when there are too few windows) is repeated on ``n_boot`` replicates of the calibration
    scores, each a stationary block bootstrap (mean block = the integrated autocorrelation time
    of the log scores: overlapping windows are not independent) shifted in log score by a random
    session offset drawn from the between-session spread (random-effects estimate over
    ``groups``, one label per window, e.g. the recording; else over sub-blocks of the stream;
    :func:`edgefault.device.drift.session_spread`). The threshold is the ``guarantee`` quantile of
    the replicate thresholds (Gandy & Kvaloy's guaranteed conditional performance: with
    probability ``guarantee`` the false-alarm rate of a new session is at most about the target),
    never below the plain estimate. ``details`` holds the effective sample size, the
    autocorrelation time, the session spread and the replicate spread."""
    from edgefault.device.drift import block_bootstrap_indices, session_spread

    base = calibrate_threshold(scores, target_far, "auto", hysteresis)
    s = np.asarray(scores, dtype=np.float64).ravel()
    if not 0.5 <= guarantee < 1.0:
        raise InputError(f"guarantee must be in [0.5, 1), got {guarantee}")
    if np.any(s <= 0):
        raise InputError("robust calibration needs positive scores (log scale)")
    ls = np.log(s)
    n_eff, tau = effective_size(s)
    sd_b, source, n_groups = session_spread(ls, tau, groups)
    rng = np.random.default_rng(seed)
    reps = []
    for _ in range(int(n_boot)):
        idx = block_bootstrap_indices(s.size, s.size, max(tau, 1.0), rng)
        b = np.exp(ls[idx] + rng.normal(0.0, float(sd_b[0])))
        try:
            reps.append(calibrate_threshold(b, target_far, "auto", hysteresis).threshold)
        except InputError:  # a degenerate replicate (ties): skip it
            continue
    if len(reps) < n_boot // 2:
        raise InputError("robust calibration: most bootstrap replicates were degenerate; give more healthy data")
    thr = max(float(np.quantile(reps, guarantee)), base.threshold)
    far = float(np.mean(s > thr))
    lo, hi = wilson_interval(far * n_eff, n_eff)
    details = {**base.details, "plain_method": base.method, "plain_threshold": base.threshold,
               "effective_windows": n_eff, "autocorr_time": tau, "session_sd_log": float(sd_b[0]),
               "session_source": source, "n_sessions": n_groups, "guarantee": guarantee, "n_boot": len(reps),
               "replicate_thresholds_q10_q50_q90": [float(v) for v in np.quantile(reps, [0.1, 0.5, 0.9])],
               "far_on_calibration_ci95": [lo, hi],
               "min_supported_far": 10.0 / n_eff}
    if n_eff * target_far < 10:
        details["warning"] = (f"{n_eff:.0f} effective windows for target_far={target_far}: fewer than 10 expected "
                              f"independent exceedances, the threshold rests on a log-normal tail")
    return Calibration(threshold=thr, clear_threshold=float(hysteresis * thr), method=f"robust-{base.method}",
                       target_far=float(target_far), n_windows=int(s.size), far_on_calibration=far, details=details)


def calibrate_threshold(scores: np.ndarray, target_far: float = 0.01, method: str = "auto",
                        hysteresis: float = 0.9, tail_fraction: float = 0.1, gpd_method: str = "mle") -> Calibration:
    """Threshold such that about ``target_far`` of healthy windows score above it.

    Methods:
      * ``percentile``: the empirical (1 - target_far) quantile; needs at least
        10 / target_far windows to be trusted.
      * ``lognormal``: a log-normal fitted to the scores (robustly: median and MAD of log
        scores), quantile at 1 - target_far. Extrapolates below 1/n; used by ``auto`` when
        there are too few windows for the percentile, and never set below the empirical
        percentile.
      * ``pot``: peaks over threshold: a generalised Pareto (``gpd_method`` mle or pwm, see
        :func:`gpd_fit`) fitted to the excesses over the empirical (1 - ``tail_fraction``)
        quantile (at least 10 excesses), extrapolated to ``target_far``; meant for rates far
        below 1/n. Never set below the empirical percentile.
    ``clear_threshold`` (hysteresis) is ``hysteresis`` x threshold.
    A calibration that would flag everything (more than half the calibration windows above the
    threshold) or nothing at all (a non-finite threshold, or one extrapolated more than 1000
    healthy score ranges above the largest calibration score) raises InputError.

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
    if method not in ("auto", "percentile", "lognormal", "pot"):
        raise InputError(f"unknown calibration method {method!r}; use auto, percentile, lognormal or pot")
    details: dict[str, Any] = {"percentile_threshold": pct, "max_score": float(finite.max())}
    if method == "pot":
        if not 0.0 < tail_fraction < 0.5:
            raise InputError(f"tail_fraction must be in (0, 0.5), got {tail_fraction}")
        srt = np.sort(finite)
        n_tail = max(10, int(round(tail_fraction * n)))
        if n < 5 * n_tail:
            raise InputError(f"peaks-over-threshold on {n_tail} excesses needs at least {5 * n_tail} calibration "
                             f"windows, got {n}: give more healthy data or use lognormal")
        u = float(srt[n - n_tail - 1])
        exc = srt[n - n_tail:] - u
        if exc.max() <= 0:
            raise InputError("calibration scores have no spread in their upper tail (ties at the top)")
        xi, sigma = gpd_fit(exc, gpd_method)
        p_u = n_tail / n
        thr_pot = gpd_quantile_over(u, xi, sigma, p_u, target_far) if target_far < p_u else pct
        details.update({"pot_u": u, "pot_n_excesses": int(n_tail), "gpd_shape": xi, "gpd_scale": sigma,
                        "gpd_method": gpd_method, "pot_threshold": thr_pot})
        thr, used = max(thr_pot, pct), "pot"
    elif method == "percentile" or (method == "auto" and enough):
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
    med, mx = float(np.median(finite)), float(finite.max())
    if not math.isfinite(thr) or thr > mx + 1000.0 * max(mx - med, 1e-12 * max(abs(mx), 1.0)):
        raise InputError(f"{used} calibration gives threshold {thr:.6g}, far beyond the largest healthy score "
                         f"{mx:.6g}: it would flag nothing; use more calibration data or a larger target_far")
    far = float(np.mean(finite > thr))
    if far > 0.5:
        raise InputError(f"{used} calibration would flag {far:.0%} of the healthy calibration windows "
                         f"(threshold {thr:.6g}): refusing a threshold that flags everything")
    return Calibration(threshold=float(thr), clear_threshold=float(hysteresis * thr), method=used,
                       target_far=float(target_far), n_windows=int(n), far_on_calibration=far,
                       details=details)


CALIBRATIONS = ("robust", "auto", "percentile", "lognormal", "pot")


def calibrate(scores: np.ndarray, target_far: float = 0.01, method: str = "robust", hysteresis: float = 0.9,
              groups: np.ndarray | None = None) -> Calibration:
    """Threshold calibration by name: ``robust`` (:func:`calibrate_robust`: serial correlation and
    between-session shift, ``groups`` = the session of each window) or one of the plain methods of
    :func:`calibrate_threshold`."""
    if method == "robust":
        return calibrate_robust(scores, target_far, groups=groups, hysteresis=hysteresis)
    if method not in CALIBRATIONS:
        raise InputError(f"unknown calibration method {method!r}; use {', '.join(CALIBRATIONS)}")
    return calibrate_threshold(scores, target_far, method, hysteresis)
