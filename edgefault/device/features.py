"""Per-window feature kernels (thin wrappers over the C++ core).

Every function takes a real array with **windows on the last axis**: shape ``(n,)`` is one
window, ``(m, n)`` is m windows, ``(a, b, n)`` is a*b windows; the leading axes are kept in the
result. The input is converted once to C-contiguous float32 (no copy if it already is one) and all
work happens in C++ with the GIL released. Exact formulas, defaults and the block schema of
:class:`FeatureExtractor` are in ``docs/features.md``.

Non-finite samples never crash a kernel: NaN propagates (a NaN anywhere in a window makes that
window's time statistics all NaN and, through the FFT, its spectral features NaN).

    >>> import numpy as np
    >>> from edgefault import features
    >>> x = np.sin(2 * np.pi * 8 * np.arange(1024) / 1024)
    >>> round(float(features.time_stats(x)[features.TIME_STAT_NAMES.index("crest_factor")]), 3)
    1.414
"""

import numpy as np

from edgefault import _core

__all__ = [
    "TIME_STAT_NAMES", "SPECTRAL_SHAPE_NAMES", "LOG_EPS", "TAPERS", "CWRU_DRIVE_END_6205",
    "FeatureExtractor", "time_stats", "time_stat_names", "power_spectrum", "log_power_spectrum",
    "magnitude_spectrum", "band_energies", "band_edges", "spectral_shape", "envelope",
    "envelope_spectrum", "bearing_frequencies", "bin_frequencies",
]

#: The 16 time-domain statistics, in the canonical order of :func:`time_stats` columns.
TIME_STAT_NAMES = tuple(_core.time_stat_names())
#: Columns of :func:`spectral_shape`.
SPECTRAL_SHAPE_NAMES = tuple(_core.spectral_shape_names())
#: Added to power before 10 log10 (log-power spectrum, log band energies); flatness floor.
LOG_EPS = float(_core.LOG_EPS)
#: Accepted taper names (periodic, = scipy.signal.get_window(name, n, fftbins=True)).
TAPERS = ("rect", "hann", "hamming", "blackman")

#: CWRU drive-end bearing, SKF 6205-2RS JEM deep-groove ball bearing (inches).
#: BPFI = 5.4152 x shaft speed, BPFO = 3.5848 x, BSF = 2.3567 x, FTF = 0.3983 x.
CWRU_DRIVE_END_6205 = {
    "n_elements": 9,
    "ball_diameter": 0.3126,
    "pitch_diameter": 1.537,
    "contact_angle_deg": 0.0,
}

#: Per-window feature extractor of one channel, configured by a list of block dicts
#: (schema: docs/features.md). ``FeatureExtractor(fs, window, blocks, taper="hann")``;
#: ``.compute(windows)`` maps ``(window,)`` -> ``(n_features,)`` and ``(m, window)`` ->
#: ``(m, n_features)``; ``.feature_names``, ``.n_features``, ``.window``, ``.fs``, ``.taper``,
#: ``.blocks`` (defaults filled in). Invalid specs raise ValueError naming the key.
FeatureExtractor = _core.FeatureExtractor


def _windows(x, name="x", min_len=1):
    """(float32 C-contiguous 2-D view, leading shape) of an array with windows on the last axis."""
    a = np.asarray(x)
    if a.dtype == object or a.dtype.kind not in "iuf":
        raise ValueError(f"{name}: expected a real numeric array (int or float), got dtype {a.dtype}")
    if a.ndim == 0:
        raise ValueError(f"{name}: expected at least 1-D (windows on the last axis), got a scalar")
    n = a.shape[-1]
    if n < min_len:
        raise ValueError(f"{name}: expected windows of >= {min_len} samples on the last axis, "
                         f"got shape {a.shape}")
    lead = a.shape[:-1]
    with np.errstate(over="ignore", invalid="ignore"):  # out-of-range float64 -> inf, as documented
        flat = np.ascontiguousarray(a, dtype=np.float32).reshape(-1, n)
    return flat, lead


def _taper(taper):
    if taper not in TAPERS:
        raise ValueError(f"taper: expected one of {', '.join(TAPERS)}, got {taper!r}")
    return taper


def _finish(out, lead):
    return out.reshape(lead + out.shape[1:])


def time_stat_names():
    """The 16 statistic names in canonical order (list)."""
    return list(TIME_STAT_NAMES)


def time_stats(x):
    """The 16 time-domain statistics of each window, shape ``(..., 16)`` float32.

    Order: mean, rms, smr, mean_abs, var, std, max, min, p2p, skewness (population), kurtosis
    (Pearson, non-excess), shape_factor, crest_factor, impulse_factor, margin_factor,
    kurtosis_factor. Ratios with a zero denominator are 0 (constant / zero windows).
    """
    a, lead = _windows(x)
    return _finish(_core.time_stats(a), lead)


def power_spectrum(x, taper="hann"):
    """One-sided power per bin ``P_k = c_k |X_k|^2 / (n * sum(w^2))``, shape ``(..., n//2+1)``.

    ``X = rfft(w * x)``; ``c_k`` = 1 at DC and (even n) Nyquist, 2 otherwise, so
    ``P.sum(-1) == mean((w*x)**2) / mean(w**2)`` (= mean square of x for ``taper="rect"``).
    """
    a, lead = _windows(x, min_len=2)
    return _finish(_core.power_spectrum(a, _taper(taper)), lead)


def log_power_spectrum(x, taper="hann"):
    """``10 log10(power_spectrum(x) + LOG_EPS)``, shape ``(..., n//2+1)``."""
    a, lead = _windows(x, min_len=2)
    return _finish(_core.log_power_spectrum(a, _taper(taper)), lead)


def magnitude_spectrum(x, taper="hann"):
    """``|rfft(w * x)|`` (unnormalised), shape ``(..., n//2+1)``."""
    a, lead = _windows(x, min_len=2)
    return _finish(_core.magnitude_spectrum(a, _taper(taper)), lead)


def _spacing(spacing):
    if spacing not in ("log", "linear"):
        raise ValueError(f"spacing: expected 'log' or 'linear', got {spacing!r}")
    return spacing


def band_edges(fs, window, n_bands=16, fmin=0.0, fmax=0.0, spacing="log"):
    """Band edges in Hz (``n_bands + 1`` values) used by :func:`band_energies`.

    ``fmax = 0`` means fs/2; with log spacing ``fmin = 0`` means fs/window (first non-DC bin).
    Raises ValueError if a band would hold no FFT bin.
    """
    return _core.band_edges(float(fs), int(window), int(n_bands), float(fmin), float(fmax),
                            _spacing(spacing))


def band_energies(x, fs, n_bands=16, fmin=0.0, fmax=0.0, spacing="log", log=True, taper="hann"):
    """Energy per band, shape ``(..., n_bands)``: ``E_b = sum of power_spectrum bins in band b``.

    Bin k (centre ``k fs/n``) is in band b when ``edges[b] <= f_k < edges[b+1]``; the last band
    also includes ``f_k == fmax``. With ``log=True`` returns ``10 log10(E_b + LOG_EPS)`` (dB).
    """
    a, lead = _windows(x, min_len=2)
    return _finish(_core.band_energies(a, float(fs), int(n_bands), float(fmin), float(fmax),
                                       _spacing(spacing), bool(log), _taper(taper)), lead)


def spectral_shape(x, fs, taper="hann"):
    """Spectral centroid (Hz), spread (Hz), flatness and spectral kurtosis, shape ``(..., 4)``.

    Weights are the one-sided power ``P_k`` over all bins ``k = 0..n/2`` (see docs/features.md).
    """
    a, lead = _windows(x, min_len=2)
    return _finish(_core.spectral_shape(a, float(fs), _taper(taper)), lead)


def envelope(x, fs, band=None):
    """|analytic signal| of each window (scipy.signal.hilbert convention), shape ``(..., n)``.

    ``band=(lo, hi)`` in Hz zeroes the FFT bins whose centre lies outside ``[lo, hi]`` first.
    """
    lo, hi = _band(band)
    a, lead = _windows(x, min_len=2)
    return _finish(_core.envelope(a, float(fs), lo, hi), lead)


def envelope_spectrum(x, fs, band=None, taper="hann"):
    """``|rfft(w * (e - mean(e)))|`` of the envelope ``e``, shape ``(..., n//2+1)``."""
    lo, hi = _band(band)
    a, lead = _windows(x, min_len=2)
    return _finish(_core.envelope_spectrum(a, float(fs), lo, hi, _taper(taper)), lead)


def _band(band):
    if band is None:
        return 0.0, 0.0
    try:
        lo, hi = band
        return float(lo), float(hi)
    except (TypeError, ValueError):
        raise ValueError(f"band: expected (lo, hi) in Hz or None, got {band!r}") from None


def bin_frequencies(fs, window):
    """Centre frequency in Hz of each one-sided bin: ``k * fs / window``, k = 0..window//2."""
    return np.arange(int(window) // 2 + 1) * (float(fs) / int(window))


def bearing_frequencies(n_elements=None, ball_diameter=None, pitch_diameter=None,
                        contact_angle_deg=0.0, shaft_hz=1.0, *, geometry=None):
    """Bearing defect frequencies in Hz: dict with ``bpfo``, ``bpfi``, ``bsf``, ``ftf``.

    Either the four geometry numbers, or ``geometry=`` a dict like :data:`CWRU_DRIVE_END_6205`.
    With ``shaft_hz=1`` the values are multiples of shaft speed. ``r = d/D cos(a)``:
    BPFO = n/2 f (1 - r), BPFI = n/2 f (1 + r), BSF = D/(2d) f (1 - r^2), FTF = f/2 (1 - r).
    """
    if geometry is not None:
        if n_elements is not None or ball_diameter is not None or pitch_diameter is not None:
            raise ValueError("bearing_frequencies: pass either geometry= or the geometry numbers, not both")
        allowed = {"n_elements", "ball_diameter", "pitch_diameter", "contact_angle_deg"}
        unknown = set(geometry) - allowed
        if unknown:
            raise ValueError(f"geometry: unknown keys {sorted(unknown)}; allowed: {sorted(allowed)}")
        n_elements = geometry.get("n_elements")
        ball_diameter = geometry.get("ball_diameter")
        pitch_diameter = geometry.get("pitch_diameter")
        contact_angle_deg = geometry.get("contact_angle_deg", 0.0)
    if n_elements is None or ball_diameter is None or pitch_diameter is None:
        raise ValueError("bearing_frequencies: n_elements, ball_diameter and pitch_diameter are required")
    return _core.bearing_frequencies(float(n_elements), float(ball_diameter), float(pitch_diameter),
                                     float(contact_angle_deg), float(shaft_hz))
