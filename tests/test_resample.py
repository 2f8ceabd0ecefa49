"""edgefault.io.resample against scipy.signal and analytic signals."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgefault.errors import InputError
from edgefault.io.resample import (
    CUTOFF_FACTOR,
    rational_ratio,
    resample,
    resample_filter,
)

signal = pytest.importorskip("scipy.signal")

RATES = [(48000, 12000), (12000, 48000), (44100, 48000), (48000, 44100), (1000, 1500),
         (25600, 12800), (3, 7)]


def _rel_rms(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a - b) ** 2)) / np.sqrt(np.mean(b**2)))


def _tones(fs_in: float, fs_out: float, n: int, rel: list[float]) -> tuple[np.ndarray, list]:
    """Sum of sines at `rel` x the lower Nyquist, sampled at fs_in."""
    nyq = min(fs_in, fs_out) / 2
    parts = [(r * nyq, 0.3 + k) for k, r in enumerate(rel)]
    t = np.arange(n) / fs_in
    x = sum(np.sin(2 * np.pi * f * t + ph) for f, ph in parts)
    return x, parts


@pytest.mark.parametrize("fs_in,fs_out", RATES)
def test_matches_scipy_upfirdn_with_same_filter(fs_in, fs_out):
    # scipy designs nothing here: it applies our FIR with its own polyphase code, so this
    # checks phases, alignment (delay compensation), edges and length to rounding error.
    up, down = rational_ratio(fs_in, fs_out)
    x = np.random.default_rng(1).standard_normal((4001, 3))
    h = resample_filter(up, down)
    ref = signal.resample_poly(x, up, down, axis=0, window=h / up)
    got = resample(x, fs_in, fs_out)
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("fs_in,fs_out", [(48000, 12000), (44100, 48000), (1000, 1500)])
def test_filter_matches_scipy_firwin(fs_in, fs_out):
    up, down = rational_ratio(fs_in, fs_out)
    h = resample_filter(up, down)
    m = max(up, down)
    beta = signal.kaiser_beta(80.0)
    ref = signal.firwin(h.size, CUTOFF_FACTOR / m, window=("kaiser", beta)) * up
    np.testing.assert_allclose(h, ref, rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("fs_in,fs_out", RATES)
def test_band_limited_tones_vs_analytic_and_scipy(fs_in, fs_out):
    up, down = rational_ratio(fs_in, fs_out)
    n = 20000
    x, parts = _tones(fs_in, fs_out, n, [0.05, 0.3, 0.55, 0.79])
    y = resample(x, fs_in, fs_out)
    t = np.arange(y.size) / fs_out
    exact = sum(np.sin(2 * np.pi * f * t + ph) for f, ph in parts)
    edge = 30 * max(up, down) // down + 2  # filter half-length in output samples
    s = slice(edge, y.size - edge)
    assert _rel_rms(y[s], exact[s]) < 1e-3
    # scipy's default filter (Kaiser beta 5, cutoff at Nyquist) has ~2e-3 pass-band ripple
    # near 0.8 x Nyquist itself, hence the looser bound against it.
    ref = signal.resample_poly(x, up, down)
    assert _rel_rms(y[s], ref[s]) < 3e-3


@pytest.mark.parametrize("fs_in,fs_out", [(48000, 12000), (44100, 48000), (12000, 8000)])
def test_tone_at_twice_new_nyquist_is_attenuated(fs_in, fs_out):
    up, down = rational_ratio(fs_in, fs_out)
    n = 40000
    t = np.arange(n) / fs_in
    f = min(fs_out, fs_in / 2 * 0.999)  # 2 x new Nyquist, kept below the input Nyquist
    x = np.sin(2 * np.pi * f * t + 0.2)
    y = resample(x, fs_in, fs_out)
    edge = 30 * max(up, down) // down + 2
    att = 20 * math.log10(np.sqrt(np.mean(y[edge:-edge] ** 2)) / np.sqrt(0.5))
    assert att < -60


def test_stopband_of_filter():
    up, down = 1, 4
    h = resample_filter(up, down)
    w, resp = signal.freqz(h / up, worN=16384)
    fnorm = w / np.pi  # 1 = Nyquist of the up-sampled rate
    nyq_new = 1 / max(up, down)
    stop = np.abs(resp[fnorm >= nyq_new])
    passband = np.abs(resp[fnorm <= 0.8 * nyq_new])
    assert 20 * np.log10(stop.max()) < -79
    assert np.max(np.abs(passband - 1)) < 2e-4


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 300),
    fs_in=st.sampled_from([8000, 12000, 44100, 48000, 1000]),
    fs_out=st.sampled_from([8000, 12000, 44100, 48000, 1500]),
)
def test_output_length(n, fs_in, fs_out):
    up, down = rational_ratio(fs_in, fs_out)
    y = resample(np.ones(n), fs_in, fs_out)
    assert y.shape == (math.ceil(n * up / down),)
    assert y.shape == signal.resample_poly(np.ones(n), up, down).shape


def test_dtype_axis_and_identity():
    rng = np.random.default_rng(3)
    x32 = rng.standard_normal((2, 3000, 2)).astype(np.float32)
    y = resample(x32, 48000, 16000, axis=1)
    assert y.dtype == np.float32 and y.shape == (2, 1000, 2)
    ref = resample(x32.astype(np.float64), 48000, 16000, axis=-2)
    assert ref.dtype == np.float64
    np.testing.assert_allclose(y, ref, atol=2e-5)
    assert resample(np.arange(10), 10, 5).dtype == np.float64
    same = resample(x32, 12000, 12000.0)
    assert same.dtype == np.float32 and np.array_equal(same, x32) and same is not x32


def test_cwru_rate_is_fast_enough():
    # a correctness check on the real-size input; timing lives in bench/bench_resample.py
    x = np.random.default_rng(0).standard_normal((243938, 2)).astype(np.float32)
    y = resample(x, 48000, 12000)
    assert y.shape == (60985, 2) and y.flags.c_contiguous
    ref = signal.resample_poly(x.astype(np.float64), 1, 4, axis=0,
                               window=resample_filter(1, 4) / 1)
    np.testing.assert_allclose(y, ref, atol=1e-5)


def test_ratio():
    assert rational_ratio(48000, 12000) == (1, 4)
    assert rational_ratio(44100, 48000) == (160, 147)
    assert rational_ratio(12000, 12000) == (1, 1)


@pytest.mark.parametrize(
    "fs_in,fs_out,match",
    [
        (0, 1000, "fs_in"),
        (-5, 1000, "fs_in"),
        (1000, float("nan"), "fs_out"),
        (float("inf"), 1000, "fs_in"),
        ("abc", 1000, "fs_in"),
        (None, 1000, "fs_in"),
        (1000, 1000.37, "rational"),  # needs a denominator > 1000
        (1, 48000, "rational"),  # up > 1000
        (48000, 1, "rational"),  # down > 1000
    ],
)
def test_bad_rates(fs_in, fs_out, match):
    with pytest.raises(InputError, match=match):
        resample(np.zeros(10), fs_in, fs_out)


def test_bad_arrays():
    with pytest.raises(InputError, match="real numeric"):
        resample(np.zeros(10, complex), 2, 1)
    with pytest.raises(InputError, match="scalar"):
        resample(np.float64(1.0), 2, 1)
    with pytest.raises(InputError, match="axis"):
        resample(np.zeros((4, 4)), 2, 1, axis=2)
    with pytest.raises(InputError, match="axis"):
        resample(np.zeros((4, 4)), 2, 1, axis=0.5)
    with pytest.raises(InputError, match="positive integers"):
        resample_filter(0, 1)
    assert resample(np.zeros((0, 2)), 2, 1).shape == (0, 2)


@pytest.mark.parametrize("pass_f,stop_f", [(0.35, 0.40), (0.2, 0.3), (0.45, 0.5)])
def test_lowpass_response_and_alignment(pass_f: float, stop_f: float) -> None:
    """The common low-pass of `eval --band-limit`: flat to pass_f fs, 80 dB down from stop_f fs
    (frequency response of the taps), and a pass-band tone comes out unshifted in time."""
    from edgefault.io.resample import lowpass, lowpass_filter

    h = lowpass_filter(pass_f, stop_f)
    assert h.size % 2 == 1 and np.allclose(h, h[::-1])
    H = np.abs(np.fft.rfft(h, 1 << 16))
    f = np.fft.rfftfreq(1 << 16)
    assert np.max(np.abs(H[f <= pass_f] - 1.0)) < 2e-4
    assert 20 * np.log10(np.max(H[f >= stop_f])) <= -80.0
    n = 4000
    x = np.sin(2 * np.pi * 0.5 * pass_f * np.arange(n))[:, None] * np.ones((1, 2))
    y = lowpass(x.astype(np.float32), pass_f, stop_f)
    assert y.dtype == np.float32 and y.shape == x.shape
    core = slice(h.size, n - h.size)
    np.testing.assert_allclose(y[core], x[core], atol=5e-4)


def test_lowpass_bad_edges() -> None:
    from edgefault.errors import InputError
    from edgefault.io.resample import lowpass_filter

    for a, b in [(0.4, 0.35), (0.0, 0.3), (0.3, 0.6)]:
        with pytest.raises(InputError, match="band edges"):
            lowpass_filter(a, b)
