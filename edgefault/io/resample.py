"""Rational-factor polyphase resampling in pure numpy.

``resample(x, fs_in, fs_out)`` changes the sample rate by ``up / down``, the rational
approximation of ``fs_out / fs_in`` with ``down <= 1000`` (and ``up <= 1000``).  The
anti-aliasing / anti-imaging filter is a Kaiser-windowed sinc designed here with
``np.kaiser``:

- cutoff (centre of the transition band) at ``CUTOFF_FACTOR = 0.9`` times the lower of the
  two Nyquist frequencies;
- transition band from 0.8 to 1.0 times that Nyquist, so the pass band (ripple below
  ``1e-4``) reaches 0.8 x Nyquist and everything at or above the new Nyquist frequency, which
  would alias, is attenuated by at least ``STOPBAND_DB = 80`` dB;
- odd length ``2 * ceil(25.1 * max(up, down)) + 1`` (Kaiser's length formula for 80 dB and
  that transition width), linear phase.

The filter delay is compensated: output sample ``k`` is the signal at time ``k / fs_out``
(the same convention as ``scipy.signal.resample_poly``); the signal is taken as zero outside
the input, so the first and last ``~25 * max(up, down) / down`` output samples feel the edge.
The output has ``ceil(n * up / down)`` samples.  NaN in the input spreads over the filter
length around it.

The implementation evaluates only the output samples it keeps: output ``k`` uses the filter
phase ``p = (k * down + D) mod up`` at input position ``q = (k * down + D) // up``; outputs
with the same ``k mod up`` share a phase and their input positions advance by ``down``, so each
residue class is one matrix-vector product of a strided (no-copy) window view of the padded
input with that phase's taps.  Python loops run over the ``up`` residue classes, never over
samples.
"""

from __future__ import annotations

import math
import operator
from fractions import Fraction
from functools import lru_cache

import numpy as np
from numpy.lib.stride_tricks import as_strided

from edgefault.errors import InputError

__all__ = ["resample", "rational_ratio", "resample_filter", "lowpass", "lowpass_filter", "CUTOFF_FACTOR", "STOPBAND_DB"]

#: cutoff of the anti-aliasing filter, as a fraction of the lower Nyquist frequency
CUTOFF_FACTOR = 0.9
#: stop-band attenuation of the anti-aliasing filter, in dB
STOPBAND_DB = 80.0
#: largest ``up`` or ``down`` accepted
MAX_FACTOR = 1000
#: largest relative error accepted between ``up / down`` and ``fs_out / fs_in``
RATIO_TOLERANCE = 1e-6


def check_rate(value: object, name: str) -> float:
    """value as a positive finite rate in Hz, or InputError naming the argument."""
    try:
        f = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a positive finite number (Hz), got {value!r}") from None
    if not math.isfinite(f) or f <= 0.0:
        raise InputError(f"{name} must be a positive finite number (Hz), got {value!r}")
    return f


def rational_ratio(fs_in: float, fs_out: float) -> tuple[int, int]:
    """Return ``(up, down)`` with ``up / down`` equal to ``fs_out / fs_in`` within 1e-6 relative.

    Raises :class:`~edgefault.errors.InputError` for a non-positive or non-finite rate, for a
    ratio that no fraction with ``up, down <= 1000`` approximates that well.
    """
    fs_in = check_rate(fs_in, "fs_in")
    fs_out = check_rate(fs_out, "fs_out")
    ratio = fs_out / fs_in
    if not math.isfinite(ratio) or ratio == 0.0:  # e.g. fs_in = 5e-324: Fraction() cannot take inf
        raise InputError(
            f"cannot resample from fs_in={fs_in!r} Hz to fs_out={fs_out!r} Hz: the ratio {ratio!r} is "
            f"out of range (expected a ratio up/down with up, down <= {MAX_FACTOR}); check the rates"
        )
    frac = Fraction(ratio).limit_denominator(MAX_FACTOR)
    up, down = frac.numerator, frac.denominator
    if up == 0 or abs(up / down - ratio) > RATIO_TOLERANCE * ratio or up > MAX_FACTOR:
        raise InputError(
            f"cannot resample from fs_in={fs_in!r} Hz to fs_out={fs_out!r} Hz: the ratio "
            f"{ratio!r} has no rational approximation up/down with up, down <= {MAX_FACTOR} "
            f"within {RATIO_TOLERANCE:g} relative (best: {up}/{down}); choose rates with a "
            f"simpler ratio, or resample in two steps"
        )
    return up, down


@lru_cache(maxsize=32)
def _filter(up: int, down: int) -> np.ndarray:
    m = max(up, down)
    # Kaiser (1974): length for attenuation A over a transition width dw (rad/sample).
    # Transition 0.8 .. 1.0 x (pi / m)  ->  dw = 0.2 * pi / m.
    a = STOPBAND_DB
    beta = 0.1102 * (a - 8.7)
    half = math.ceil((a - 7.95) / (2.285 * 0.2 * math.pi) * m / 2.0)
    n = 2 * half + 1
    fc = CUTOFF_FACTOR * 0.5 / m  # cycles per sample at the up-sampled rate
    j = np.arange(n, dtype=np.float64) - half
    h = 2.0 * fc * np.sinc(2.0 * fc * j) * np.kaiser(n, beta)
    h *= up / h.sum()  # unit DC gain after zero-stuffing by `up`
    h.setflags(write=False)
    return h


def resample_filter(up: int, down: int) -> np.ndarray:
    """The (read-only, float64, odd-length, symmetric) FIR filter used for ``up / down``.

    Its gain at DC is ``up`` (compensating the zero-stuffing); its delay is ``(len - 1) / 2``
    samples at the up-sampled rate.
    """
    if int(up) != up or int(down) != down or up < 1 or down < 1:
        raise InputError(f"up and down must be positive integers, got up={up!r}, down={down!r}")
    return _filter(int(up), int(down))


def resample(x: np.ndarray, fs_in: float, fs_out: float, axis: int = 0) -> np.ndarray:
    """Resample ``x`` along ``axis`` from ``fs_in`` Hz to ``fs_out`` Hz.

    Returns float32 for float32 (or float16) input, float64 otherwise; a new array in every
    case (a copy when the rates are equal).  The length along ``axis`` becomes
    ``ceil(n * up / down)``; see the module docstring for the filter and the alignment.
    """
    up, down = rational_ratio(fs_in, fs_out)
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise InputError(f"x must be a real numeric array, got dtype {arr.dtype}")
    if arr.ndim == 0:
        raise InputError("x must have at least one dimension, got a scalar")
    try:
        axis = operator.index(axis)
    except TypeError:
        raise InputError(f"axis must be an integer, got {axis!r}") from None
    if not -arr.ndim <= axis < arr.ndim:
        raise InputError(f"axis={axis} is out of range for an array of shape {arr.shape}")
    axis %= arr.ndim
    out_dtype = np.float32 if arr.dtype in (np.float32, np.float16) else np.float64
    if up == down:  # equal rates (up == down == 1)
        return arr.astype(out_dtype, copy=True)

    moved = np.moveaxis(arr, axis, 0)
    rest = moved.shape[1:]
    n = moved.shape[0]
    n_out = -(-n * up // down)
    x2 = moved.reshape(n, math.prod(rest))
    c = x2.shape[1]
    if n == 0 or c == 0:
        return np.moveaxis(np.zeros((n_out,) + rest, dtype=out_dtype), 0, axis)

    h = _filter(up, down)
    delay = (h.size - 1) // 2
    k_taps = -(-h.size // up)  # taps per phase
    # phases[p, K-1-r] = h[p + up*r]: reversed so that a window of x in ascending order
    # dots with it directly.
    phases = np.zeros((up, k_taps), dtype=np.float64)
    for p in range(up):
        sub = h[p::up]
        phases[p, k_taps - sub.size :] = sub[::-1]
    phases = phases.astype(out_dtype)

    # Channel-major, zero-padded input: xpad[:, i + K - 1] = x[i].
    q_max = ((n_out - 1) * down + delay) // up
    tail = max(0, q_max + 1 - n)
    xpad = np.zeros((c, k_taps - 1 + n + tail), dtype=out_dtype)
    xpad[:, k_taps - 1 : k_taps - 1 + n] = x2.T
    item = xpad.itemsize

    out = np.empty((c, n_out), dtype=out_dtype)
    for res in range(min(up, n_out)):
        # outputs k = res + up*t share phase p and read x[q0 + down*t - r], r = 0..K-1,
        # i.e. the window xpad[:, q0 + down*t : q0 + down*t + K]
        t_count = (n_out - 1 - res) // up + 1
        m0 = res * down + delay
        p, q0 = m0 % up, m0 // up
        windows = as_strided(
            xpad[:, q0:], shape=(c, t_count, k_taps),
            strides=(xpad.strides[0], down * item, item), writeable=False,
        )
        out[:, res::up] = windows @ phases[p]
    return np.moveaxis(np.ascontiguousarray(out.T).reshape((n_out,) + rest), 0, axis)


def lowpass_filter(pass_fraction: float, stop_fraction: float) -> np.ndarray:
    """Linear-phase Kaiser-windowed sinc low-pass (float64, odd length, unit DC gain): flat
    (ripple about 1e-4) up to ``pass_fraction * fs``, at least ``STOPBAND_DB`` down from
    ``stop_fraction * fs`` (both fractions of the sample rate, 0 < pass < stop <= 0.5)."""
    if not 0.0 < pass_fraction < stop_fraction <= 0.5:
        raise InputError(f"low-pass band edges: expected 0 < pass < stop <= 0.5 (fractions of fs), got "
                         f"{pass_fraction}, {stop_fraction}")
    width = 2.0 * np.pi * (stop_fraction - pass_fraction)
    atten = STOPBAND_DB + 2.0  # Kaiser's formulas land within ~1 dB of the design
    n = int(math.ceil((atten - 7.95) / (2.285 * width)))
    n += 1 - n % 2  # odd
    beta = 0.1102 * (atten - 8.7)
    k = np.arange(n) - (n - 1) / 2.0
    fc = 0.5 * (pass_fraction + stop_fraction)
    h = 2.0 * fc * np.sinc(2.0 * fc * k) * np.kaiser(n, beta)
    return h / h.sum()


def lowpass(x: np.ndarray, pass_fraction: float, stop_fraction: float) -> np.ndarray:
    """``x`` (n_samples, ...) filtered along axis 0 by :func:`lowpass_filter`, delay compensated
    (zero outside the signal, as :func:`resample`); float32 for float32 input."""
    h = lowpass_filter(pass_fraction, stop_fraction)
    arr = np.asarray(x)
    a = arr.astype(np.float64).reshape(arr.shape[0], -1)
    out = np.empty_like(a)
    for j in range(a.shape[1]):
        out[:, j] = np.convolve(a[:, j], h, mode="same")
    return out.reshape(arr.shape).astype(np.float32 if arr.dtype == np.float32 else np.float64)
