"""Physically modelled rolling-element-bearing vibration, for the demo and tests.

Model (after McFadden & Smith 1984 and Randall & Antoni 2011):

- healthy machine: shaft harmonics (1x, 2x with random phases), broadband
  sensor noise, and a weak structural resonance rung by random small impacts
  (Poisson arrivals, so nothing periodic shows in the envelope);
- localised fault: an impulse train at the defect frequency (BPFO for the outer
  race, BPFI for the inner race, 2 x BSF for a ball, which strikes both races
  per spin), with 1-2 % random slip jitter of the intervals between impacts;
  every impact rings an exponentially damped resonance at ``resonance_hz``.
  Inner-race impacts are amplitude-modulated at the shaft rate (the defect
  passes through the load zone once per turn), ball impacts at the cage rate
  (FTF). ``severity`` scales the impact amplitude; a callable of time models a
  growing fault.

Impacts are placed at exact (fractional-sample) times and each one's ring-down
is evaluated analytically, so defect frequencies are exact, not rounded to the
sample grid. Pure numpy; deterministic for a given ``seed``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Union

import numpy as np

from edgefault.errors import InputError

__all__ = ["CWRU_6205", "bearing_frequencies", "fault_frequency", "bearing_signal", "FAULTS"]

#: SKF 6205-2RS JEM (CWRU drive end): balls, ball diameter (in), pitch diameter (in), contact angle (deg)
CWRU_6205 = (9, 0.3126, 1.537, 0.0)
FAULTS = ("outer_race", "inner_race", "ball")

Severity = Union[float, Callable[[np.ndarray], Any]]

# Relative amplitudes (signal units ~ g). Chosen so that severity 1 gives clearly
# impulsive signals and severity ~0.1 is near the noise floor.
_SHAFT_AMP = (0.08, 0.04)  # 1x, 2x
_IMPACT_AMP = 1.5  # peak ring-down amplitude at severity 1
_BG_RATE_HZ = 300.0  # random structural impacts per second
_BG_AMP = 0.03
_MOD_DEPTH = 0.8  # depth of the load-zone modulation (inner race / ball)
_AMP_SPREAD = 0.1  # per-impact amplitude scatter (relative std)
_CH2_GAIN = 0.45  # second sensor: farther from the bearing
_CH2_RES_RATIO = 1.31
_CH2_DELAY_S = 2.0e-4


def _geometry(geometry: Sequence[float]) -> tuple[int, float, float, float]:
    try:
        nb, d, pd, ang = (float(v) for v in geometry)
    except (TypeError, ValueError):
        raise InputError(
            f"geometry: expected (n_balls, ball_diameter, pitch_diameter, contact_angle_deg), got {geometry!r}"
        ) from None
    if not (nb >= 1 and nb == int(nb)):
        raise InputError(f"geometry: n_balls must be a positive integer, got {geometry[0]!r}")
    if not (math.isfinite(d) and math.isfinite(pd) and 0 < d < pd):
        raise InputError(f"geometry: need 0 < ball_diameter < pitch_diameter, got d={d}, D={pd}")
    if not (math.isfinite(ang) and 0 <= ang < 90):
        raise InputError(f"geometry: contact angle must be in [0, 90) degrees, got {ang}")
    return int(nb), d, pd, ang


def _positive(v: Any, name: str) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise InputError(f"{name}: expected a positive number, got {v!r}") from None
    if not (math.isfinite(x) and x > 0):
        raise InputError(f"{name}: expected a positive number, got {v!r}")
    return x


def bearing_frequencies(shaft_hz: float, geometry: Sequence[float] = CWRU_6205) -> dict[str, float]:
    """Characteristic defect frequencies (Hz) of a bearing with a stationary outer race.

    With ``r = d / D * cos(angle)`` and ``n`` balls:
    ``ftf = f/2 (1 - r)``, ``bpfo = n f/2 (1 - r)``, ``bpfi = n f/2 (1 + r)``,
    ``bsf = D/(2d) f (1 - r^2)`` (ball spin; a ball defect strikes at ``2 * bsf``).
    """
    f = _positive(shaft_hz, "shaft_hz")
    nb, d, pd, ang = _geometry(geometry)
    r = d / pd * math.cos(math.radians(ang))
    return {
        "shaft": f,
        "ftf": 0.5 * f * (1 - r),
        "bpfo": 0.5 * nb * f * (1 - r),
        "bpfi": 0.5 * nb * f * (1 + r),
        "bsf": pd / (2 * d) * f * (1 - r * r),
    }


def fault_frequency(fault: str, shaft_hz: float, geometry: Sequence[float] = CWRU_6205) -> float:
    """Impact rate (Hz) of a localised fault: BPFO, BPFI, or 2 x BSF for a ball."""
    fr = bearing_frequencies(shaft_hz, geometry)
    if fault == "outer_race":
        return fr["bpfo"]
    if fault == "inner_race":
        return fr["bpfi"]
    if fault == "ball":
        return 2.0 * fr["bsf"]
    raise InputError(f"fault {fault!r}: expected one of {FAULTS}")


def _ringdown(x: np.ndarray, times: np.ndarray, amps: np.ndarray, fs: float,
              f_res: float, zeta: float) -> None:
    """Add ``amp * exp(-zeta w t) sin(w_d t)`` starting at each (fractional) time into x."""
    if times.size == 0:
        return
    n = x.shape[0]
    w = 2 * math.pi * f_res
    decay = zeta * w
    wd = w * math.sqrt(1 - zeta * zeta)
    length = int(math.ceil(math.log(1e4) / decay * fs)) + 1  # until the envelope is 1e-4
    first = np.ceil(times * fs).astype(np.int64)
    step = max(1, (1 << 21) // length)  # bounded memory (~50 MB) whatever the damping
    for lo in range(0, times.size, step):
        t0 = times[lo:lo + step]
        i0 = first[lo:lo + step]
        a = amps[lo:lo + step]
        idx = i0[:, None] + np.arange(length)[None, :]
        tau = idx / fs - t0[:, None]
        h = a[:, None] * np.exp(-decay * tau) * np.sin(wd * tau)
        keep = idx < n
        x += np.bincount(idx[keep].astype(np.intp), weights=h[keep], minlength=n)[:n]


def _impact_times(rate: float, duration: float, slip: float, rng: np.random.Generator) -> np.ndarray:
    period = 1.0 / rate
    n = int(math.ceil(duration * rate * 1.1)) + 4
    intervals = period * (1.0 + slip * rng.standard_normal(n))
    intervals = np.maximum(intervals, 0.5 * period)
    t = rng.uniform(0, period) + np.concatenate([[0.0], np.cumsum(intervals[:-1])])
    return t[t < duration]


def _severity_at(severity: Severity, t: np.ndarray) -> np.ndarray:
    if callable(severity):
        try:
            s = np.asarray(severity(t.copy()), dtype=np.float64)
        except Exception as e:  # a user callable; say which argument failed
            raise InputError(f"severity callable failed on an array of times: {e}") from e
        if s.ndim == 0:
            s = np.full(t.shape, float(s))
        if s.shape != t.shape:
            raise InputError(f"severity callable: returned shape {s.shape} for times of shape {t.shape}; "
                             f"it must work element-wise on a numpy array")
    else:
        try:
            s = np.full(t.shape, float(severity))
        except (TypeError, ValueError):
            raise InputError(f"severity: expected a number in [0, 1] or a callable of time, got {severity!r}") from None
    if not np.all(np.isfinite(s)) or np.any(s < 0) or np.any(s > 1):
        raise InputError("severity: values must lie in [0, 1]")
    return s


def bearing_signal(
    duration_s: float,
    fs: float = 12000.0,
    shaft_hz: float = 29.95,
    fault: str | None = None,
    severity: Severity = 0.5,
    geometry: Sequence[float] = CWRU_6205,
    resonance_hz: float = 3000.0,
    damping: float = 0.05,
    noise_rms: float = 0.05,
    seed: int | np.random.Generator | None = None,
    n_channels: int = 1,
    slip: float = 0.015,
) -> np.ndarray:
    """Simulated accelerometer signal of a rolling-element bearing.

    Parameters
    ----------
    duration_s, fs : length in seconds and sample rate in Hz (``round(duration_s * fs)`` samples).
    shaft_hz : shaft rotation frequency (29.95 Hz = 1797 rpm, CWRU at 0 hp).
    fault : ``None`` (healthy), ``"outer_race"``, ``"inner_race"`` or ``"ball"``.
    severity : impact amplitude scale in [0, 1], or a callable ``f(t) -> array`` evaluated
        element-wise on the impact times (seconds) for a growing fault.
    geometry : ``(n_balls, ball_d, pitch_D, contact_angle_deg)``; default SKF 6205 (CWRU).
    resonance_hz, damping : structural resonance rung by impacts (damping ratio, 0 < damping < 1).
    noise_rms : standard deviation of the additive white sensor noise (per channel).
    seed : int or ``numpy.random.Generator``; the same seed gives the same signal.
    n_channels : 1 -> shape ``(n,)``; 2 -> ``(n, 2)``, the second channel a farther sensor: the
        same sources attenuated, through a different resonance, slightly delayed, with its
        own noise.
    slip : relative std of the random jitter of intervals between fault impacts (1-2 % typical).

    Returns float32.
    """
    duration = _positive(duration_s, "duration_s")
    fs = _positive(fs, "fs")
    f = _positive(shaft_hz, "shaft_hz")
    f_res = _positive(resonance_hz, "resonance_hz")
    nyq = fs / 2
    if f >= nyq:
        raise InputError(f"shaft_hz {f} must be below the Nyquist frequency {nyq} Hz")
    if f_res >= 0.9 * nyq:
        raise InputError(f"resonance_hz {f_res} must be below 0.9 x Nyquist ({0.9 * nyq:g} Hz) for fs={fs:g}")
    try:
        zeta = float(damping)
    except (TypeError, ValueError):
        zeta = math.nan
    if not (0 < zeta < 1):
        raise InputError(f"damping: expected a damping ratio in (0, 1), got {damping!r}")
    try:
        nrms = float(noise_rms)
    except (TypeError, ValueError):
        nrms = math.nan
    if not (math.isfinite(nrms) and nrms >= 0):
        raise InputError(f"noise_rms: expected a number >= 0, got {noise_rms!r}")
    try:
        sl = float(slip)
    except (TypeError, ValueError):
        sl = math.nan
    if not (0 <= sl <= 0.1):
        raise InputError(f"slip: expected a relative jitter in [0, 0.1], got {slip!r}")
    if fault is not None and fault not in FAULTS:
        raise InputError(f"fault {fault!r}: expected None or one of {FAULTS}")
    if isinstance(n_channels, bool) or n_channels not in (1, 2):
        raise InputError(f"n_channels: expected 1 or 2, got {n_channels!r}")
    freqs = bearing_frequencies(f, geometry)
    if not callable(severity):
        _severity_at(severity, np.zeros(1))  # validate even for a healthy signal
    n = int(round(duration * fs))
    if n < 1:
        raise InputError(f"duration_s {duration_s} at fs {fs:g} gives no samples")
    if isinstance(seed, np.random.Generator):
        rng = seed
    elif seed is None or (isinstance(seed, (int, np.integer)) and not isinstance(seed, bool)):
        rng = np.random.default_rng(seed)
    else:
        raise InputError(f"seed: expected an int, a numpy Generator or None, got {seed!r}")

    t = np.arange(n) / fs
    dur = n / fs
    res2 = f_res * _CH2_RES_RATIO if f_res * _CH2_RES_RATIO < 0.9 * nyq else f_res / _CH2_RES_RATIO

    # Sources shared by both sensors: shaft harmonics, background impacts, fault impacts.
    phases = rng.uniform(0, 2 * np.pi, 2)
    shaft = (_SHAFT_AMP[0] * np.sin(2 * np.pi * f * t + phases[0])
             + _SHAFT_AMP[1] * np.sin(2 * np.pi * 2 * f * t + phases[1]))
    n_bg = rng.poisson(_BG_RATE_HZ * dur)
    bg_t = np.sort(rng.uniform(0, dur, n_bg))
    bg_a = _BG_AMP * np.abs(rng.standard_normal(n_bg)) * rng.choice([-1.0, 1.0], n_bg)

    imp_t = np.zeros(0)
    imp_a = np.zeros(0)
    if fault is not None:
        rate = fault_frequency(fault, f, geometry)
        imp_t = _impact_times(rate, dur, sl, rng)
        scatter = np.maximum(1.0 + _AMP_SPREAD * rng.standard_normal(imp_t.size), 0.2)
        imp_a = _IMPACT_AMP * _severity_at(severity, imp_t) * scatter
        if fault in ("inner_race", "ball"):
            f_mod = f if fault == "inner_race" else freqs["ftf"]
            phi = rng.uniform(0, 2 * np.pi)
            imp_a *= (1 - _MOD_DEPTH) + _MOD_DEPTH * 0.5 * (1 + np.cos(2 * np.pi * f_mod * imp_t + phi))

    all_t = np.concatenate([bg_t, imp_t])
    all_a = np.concatenate([bg_a, imp_a])
    x1 = shaft.copy()
    _ringdown(x1, all_t, all_a, fs, f_res, zeta)
    x1 += nrms * rng.standard_normal(n)
    if n_channels == 1:
        return x1.astype(np.float32)

    x2 = 0.7 * (_SHAFT_AMP[0] * np.sin(2 * np.pi * f * t + phases[0] - 0.6)
                + _SHAFT_AMP[1] * np.sin(2 * np.pi * 2 * f * t + phases[1] - 1.2))
    _ringdown(x2, all_t + _CH2_DELAY_S, _CH2_GAIN * all_a, fs, res2, zeta)
    x2 += nrms * rng.standard_normal(n)
    return np.stack([x1, x2], axis=1).astype(np.float32)
