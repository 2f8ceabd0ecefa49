"""Feature kernels and FeatureExtractor against independent numpy/scipy references."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import scipy.io as sio
import scipy.signal as ss
import scipy.stats as st
from hypothesis import given, settings
from hypothesis import strategies as hst
from hypothesis.extra import numpy as hnp

from edgefault import _core
from edgefault.device import features as F

SIZES = [16, 60, 75, 128, 375, 1000, 1024, 4096]  # all 2^a 3^b 5^c, odd ones included
TAPERS = ["rect", "hann", "hamming", "blackman"]
LOG_EPS = 1e-12


def rand_windows(n, m=5, seed=0, offset=0.0, scale=1.0):
    rng = np.random.default_rng(seed + n)
    x = rng.standard_normal((m, n)) * scale + offset
    x[1] = rng.standard_t(3, n) * scale + offset  # heavy tails
    return x.astype(np.float32)


# ------------------------------------------------------------------ references

def ref_time_stats(x):
    x = np.asarray(x, dtype=np.float64)
    mean = x.mean(-1)
    ms = (x * x).mean(-1)
    rms = np.sqrt(ms)
    smr = np.sqrt(np.abs(x)).mean(-1) ** 2
    mean_abs = np.abs(x).mean(-1)
    var = x.var(-1)
    mx, mn = x.max(-1), x.min(-1)
    peak = np.maximum(np.abs(mx), np.abs(mn))
    return np.stack([
        mean, rms, smr, mean_abs, var, np.sqrt(var), mx, mn, mx - mn,
        st.skew(x, axis=-1, bias=True), st.kurtosis(x, axis=-1, fisher=False, bias=True),
        rms / mean_abs, peak / rms, peak / mean_abs, peak / smr, (x ** 4).mean(-1) / ms ** 2,
    ], axis=-1)


def ref_power(x, taper):
    """scipy periodogram (density) integrated over one bin: PSD * fs / n, with fs = 1."""
    n = x.shape[-1]
    _, p = ss.periodogram(x.astype(np.float64), fs=1.0, window=taper if taper != "rect" else "boxcar",
                          detrend=False, scaling="density", axis=-1)
    return p / n


def ref_bands(fs, n, n_bands, fmin, fmax, spacing):
    fmax = fs / 2 if fmax == 0 else fmax
    if spacing == "log":
        fmin = fs / n if fmin == 0 else fmin
        edges = np.geomspace(fmin, fmax, n_bands + 1)
    else:
        edges = np.linspace(fmin, fmax, n_bands + 1)
    f = np.arange(n // 2 + 1) * fs / n
    masks = [(f >= edges[b]) & (f < edges[b + 1]) for b in range(n_bands)]
    masks[-1] = (f >= edges[-2]) & (f <= edges[-1])
    return edges, np.array(masks)


def ref_spectral_shape(P, df):
    P = P.astype(np.float64)
    f = np.arange(P.shape[-1]) * df
    s0 = P.sum(-1)
    c = (f * P).sum(-1) / s0
    d = f - c[..., None]
    m2 = (d ** 2 * P).sum(-1) / s0
    m4 = (d ** 4 * P).sum(-1) / s0
    flat = np.exp(np.log(P + LOG_EPS).mean(-1)) / (P + LOG_EPS).mean(-1)
    return np.stack([c, np.sqrt(m2), flat, m4 / m2 ** 2], axis=-1)


def ref_envelope(x, fs, band=None):
    x = x.astype(np.float64)
    if band is not None:
        n = x.shape[-1]
        f = np.fft.rfftfreq(n, 1 / fs)
        X = np.fft.rfft(x, axis=-1)
        X[..., (f < band[0]) | (f > band[1])] = 0
        x = np.fft.irfft(X, n, axis=-1)
    return np.abs(ss.hilbert(x, axis=-1))


def ref_envelope_spectrum(x, fs, band=None, taper="hann"):
    e = ref_envelope(x, fs, band)
    w = ss.get_window(taper if taper != "rect" else "boxcar", x.shape[-1])
    return np.abs(np.fft.rfft(w * (e - e.mean(-1, keepdims=True)), axis=-1))


def close(a, b, rtol, atol):
    np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64), rtol=rtol, atol=atol)


# ------------------------------------------------------------------ time statistics

def test_time_stat_names_canonical():
    assert F.time_stat_names() == [
        "mean", "rms", "smr", "mean_abs", "var", "std", "max", "min", "p2p", "skewness", "kurtosis",
        "shape_factor", "crest_factor", "impulse_factor", "margin_factor", "kurtosis_factor"]
    assert F.TIME_STAT_NAMES == tuple(F.time_stat_names())


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("offset", [0.0, 3.0])
def test_time_stats_match_scipy(n, offset):
    x = rand_windows(n, offset=offset, scale=0.5)
    got = F.time_stats(x)
    assert got.dtype == np.float32 and got.shape == (5, 16)
    close(got, ref_time_stats(x), rtol=2e-5, atol=2e-5)


def test_time_stats_large_offset_keeps_central_moments():
    # mean 1000, std 0.01: raw-moment formulas would lose skewness/kurtosis entirely
    x = rand_windows(1024, offset=1000.0, scale=0.01)
    got = F.time_stats(x)
    ref = ref_time_stats(x)
    close(got[:, 9:11], ref[:, 9:11], rtol=1e-4, atol=1e-4)
    close(got[:, 4], ref[:, 4], rtol=1e-4, atol=0)


@pytest.mark.parametrize("scale", [1e-20, 1e15, 1e18])  # x**4 overflows float32 beyond ~1e9
def test_time_stats_extreme_magnitudes_do_not_overflow(scale):
    x = (rand_windows(1000).astype(np.float64) * scale).astype(np.float32)
    got = F.time_stats(x)
    assert np.all(np.isfinite(got))
    close(got, ref_time_stats(x), rtol=1e-4, atol=0)


@pytest.mark.parametrize("name", F.TIME_STAT_NAMES)
def test_extractor_single_stat_subset_equals_full_kernel(name):
    x = rand_windows(1000, offset=0.5)
    ex = F.FeatureExtractor(1000.0, 1000, [{"kind": "time_stats", "stats": [name]}])
    assert ex.feature_names == [name]
    close(ex.compute(x)[:, 0], F.time_stats(x)[:, F.TIME_STAT_NAMES.index(name)], 0, 0)


def test_time_stats_sine_hand_values():
    x = 2.0 * np.sin(2 * np.pi * 8 * np.arange(1024) / 1024)
    s = dict(zip(F.TIME_STAT_NAMES, F.time_stats(x)))
    assert s["rms"] == pytest.approx(2 / np.sqrt(2), rel=1e-6)
    assert s["crest_factor"] == pytest.approx(np.sqrt(2), rel=1e-6)
    assert s["kurtosis"] == pytest.approx(1.5, rel=1e-6)
    assert s["p2p"] == pytest.approx(4.0, rel=1e-6)


def test_time_stats_constant_and_zero_windows_are_finite():
    x = np.zeros((2, 64), np.float32)
    x[1] = -2.5
    got = F.time_stats(x)
    assert np.all(np.isfinite(got))
    assert np.all(got[0] == 0)
    s = dict(zip(F.TIME_STAT_NAMES, got[1]))
    assert s["mean"] == -2.5 and s["var"] == 0 and s["skewness"] == 0 and s["kurtosis"] == 0
    for k in ("shape_factor", "crest_factor", "impulse_factor", "margin_factor", "kurtosis_factor"):
        assert s[k] == pytest.approx(1.0, rel=1e-6)


def test_nan_propagates_per_window_without_crash():
    x = rand_windows(128)
    x[2, 17] = np.nan
    t = F.time_stats(x)
    assert np.all(np.isnan(t[2])) and np.all(np.isfinite(np.delete(t, 2, 0)))
    p = F.power_spectrum(x)
    assert np.all(np.isnan(p[2])) and np.all(np.isfinite(np.delete(p, 2, 0)))
    b = F.band_energies(x, 1000.0, n_bands=4)
    assert np.all(np.isnan(b[2])) and np.all(np.isfinite(np.delete(b, 2, 0)))
    ex = F.FeatureExtractor(1000.0, 128, [{"kind": "time_stats"}, {"kind": "spectral_shape"},
                                          {"kind": "envelope_spectrum"}])
    out = ex.compute(x)
    assert np.all(np.isnan(out[2, :16])) and np.all(np.isfinite(np.delete(out, 2, 0)))
    inf = F.time_stats(np.array([1.0, np.inf, 2.0, 3.0]))
    assert not np.all(np.isfinite(inf))


# ------------------------------------------------------------------ spectra

@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("taper", TAPERS)
def test_power_spectrum_matches_scipy_periodogram(n, taper):
    x = rand_windows(n, offset=0.3)
    got = F.power_spectrum(x, taper=taper)
    ref = ref_power(x, taper)
    assert got.shape == (5, n // 2 + 1)
    close(got, ref, rtol=2e-4, atol=2e-6 * ref.max())


@pytest.mark.parametrize("n", [16, 75, 1024])
@pytest.mark.parametrize("taper", TAPERS)
def test_magnitude_and_log_power_match_numpy(n, taper):
    x = rand_windows(n)
    w = ss.get_window(taper if taper != "rect" else "boxcar", n, fftbins=True)
    mag = np.abs(np.fft.rfft(w * x.astype(np.float64), axis=-1))
    close(F.magnitude_spectrum(x, taper), mag, rtol=1e-4, atol=1e-5 * mag.max())
    lp = 10 * np.log10(ref_power(x, taper) + LOG_EPS)
    close(F.log_power_spectrum(x, taper), lp, rtol=0, atol=2e-3)


def test_power_spectrum_hand_value_and_log_floor():
    n = 256
    x = 2.0 * np.sin(2 * np.pi * 10 * np.arange(n) / n)
    p = F.power_spectrum(x, taper="rect")
    assert p[10] == pytest.approx(2.0, rel=1e-5)  # A^2/2 in the sine's bin
    assert F.log_power_spectrum(np.zeros(64))[0] == pytest.approx(-120.0)


def test_leading_axes_are_kept():
    x = rand_windows(64, m=6).reshape(2, 3, 64)
    assert F.time_stats(x).shape == (2, 3, 16)
    assert F.power_spectrum(x).shape == (2, 3, 33)
    close(F.power_spectrum(x).reshape(6, 33), F.power_spectrum(x.reshape(6, 64)), 0, 0)
    assert F.time_stats(x[0, 0]).shape == (16,)


# ------------------------------------------------------------------ bands

@pytest.mark.parametrize("spacing", ["log", "linear"])
@pytest.mark.parametrize("fs,n,n_bands,fmin,fmax", [
    (12000.0, 1024, 16, 0.0, 0.0), (12000.0, 1024, 8, 100.0, 5000.0), (1000.0, 375, 5, 20.0, 0.0),
    (48000.0, 4096, 24, 50.0, 20000.0)])
def test_band_energies_match_reference(spacing, fs, n, n_bands, fmin, fmax):
    x = rand_windows(n)
    edges, masks = ref_bands(fs, n, n_bands, fmin, fmax, spacing)
    close(F.band_edges(fs, n, n_bands, fmin, fmax, spacing), edges, rtol=1e-12, atol=1e-9)
    P = ref_power(x, "hann")
    E = P @ masks.T.astype(np.float64)
    got = F.band_energies(x, fs, n_bands, fmin, fmax, spacing, log=False)
    close(got, E, rtol=2e-4, atol=1e-7)
    got_db = F.band_energies(x, fs, n_bands, fmin, fmax, spacing, log=True)
    close(got_db, 10 * np.log10(E + LOG_EPS), rtol=0, atol=2e-3)


def test_sine_lands_in_its_band():
    fs, n = 12000.0, 1024
    edges = F.band_edges(fs, n, 16)
    for f0 in (150.0, 900.0, 3100.0):
        x = np.sin(2 * np.pi * f0 * np.arange(n) / fs)
        e = F.band_energies(x, fs, 16, log=False)
        b = int(np.argmax(e))
        assert edges[b] <= f0 < edges[b + 1] + fs / n  # leakage can tie at an edge bin only


def test_band_config_rejected_with_message():
    with pytest.raises(ValueError, match="holds no FFT bin"):
        F.band_energies(np.zeros(64), 1000.0, n_bands=64)
    with pytest.raises(ValueError, match="fmax"):
        F.band_energies(np.zeros(64), 1000.0, n_bands=4, fmax=800.0)
    with pytest.raises(ValueError, match="fmin"):
        F.band_edges(1000.0, 64, 4, 400.0, 300.0, "linear")
    with pytest.raises(ValueError, match="spacing"):
        F.band_edges(1000.0, 64, 4, 0.0, 0.0, "mel")
    with pytest.raises(ValueError, match="n_bands"):
        F.band_edges(1000.0, 64, 0)
    with pytest.raises(ValueError, match="fs"):
        F.band_edges(-1.0, 64, 4)


# ------------------------------------------------------------------ spectral shape

@pytest.mark.parametrize("n", [16, 375, 1024])
@pytest.mark.parametrize("taper", ["rect", "hann"])
def test_spectral_shape_matches_reference(n, taper):
    x = rand_windows(n, offset=0.2)
    got = F.spectral_shape(x, 8000.0, taper)
    ref = ref_spectral_shape(ref_power(x, taper), 8000.0 / n)
    close(got, ref, rtol=2e-4, atol=1e-6)
    assert F.SPECTRAL_SHAPE_NAMES == ("centroid", "spread", "flatness", "spectral_kurtosis")


def test_spectral_shape_zero_window():
    assert F.spectral_shape(np.zeros(64), 1000.0).tolist() == [0.0, 0.0, 1.0, 0.0]


# ------------------------------------------------------------------ envelope

@pytest.mark.parametrize("n", [16, 75, 1024, 4096])
def test_envelope_matches_scipy_hilbert(n):
    x = rand_windows(n)
    e = ref_envelope(x, 1000.0)
    close(F.envelope(x, 1000.0), e, rtol=1e-4, atol=1e-5 * e.max())
    close(F.envelope_spectrum(x, 1000.0), ref_envelope_spectrum(x, 1000.0), rtol=1e-3,
          atol=1e-4 * ref_envelope_spectrum(x, 1000.0).max())


@pytest.mark.parametrize("band", [(100.0, 300.0), (0.0, 50.0), (250.0, 500.0)])
def test_band_passed_envelope_matches_reference(band):
    x = rand_windows(1000)
    e = ref_envelope(x, 1000.0, band)
    close(F.envelope(x, 1000.0, band), e, rtol=1e-4, atol=2e-5 * e.max())
    es = ref_envelope_spectrum(x, 1000.0, band, "hamming")
    close(F.envelope_spectrum(x, 1000.0, band, taper="hamming"), es, rtol=1e-3, atol=2e-4 * es.max())


def test_envelope_bad_band():
    with pytest.raises(ValueError, match="band"):
        F.envelope_spectrum(np.zeros(64), 1000.0, band=(300.0, 100.0))
    with pytest.raises(ValueError, match="band"):
        F.envelope_spectrum(np.zeros(64), 1000.0, band=(0.0, 800.0))
    with pytest.raises(ValueError, match="band"):
        F.envelope(np.zeros(64), 1000.0, band=5.0)


# ------------------------------------------------------------------ bearings

def test_cwru_6205_defect_frequencies():
    f = F.bearing_frequencies(geometry=F.CWRU_DRIVE_END_6205, shaft_hz=1.0)
    assert f["bpfi"] == pytest.approx(5.4152, abs=1e-4)
    assert f["bpfo"] == pytest.approx(3.5848, abs=1e-4)
    assert f["bsf"] == pytest.approx(2.3567, abs=1e-4)
    assert f["ftf"] == pytest.approx(0.3983, abs=1e-4)
    g = F.bearing_frequencies(9, 0.3126, 1.537, 0.0, 1797 / 60)
    assert g["bpfi"] == pytest.approx(5.4152 * 1797 / 60, rel=1e-4)


def test_bearing_frequencies_with_contact_angle():
    n, d, D, a, f = 12, 7.5, 40.0, 15.0, 25.0
    r = d / D * np.cos(np.radians(a))
    got = F.bearing_frequencies(n, d, D, a, f)
    assert got["bpfo"] == pytest.approx(n / 2 * f * (1 - r))
    assert got["bpfi"] == pytest.approx(n / 2 * f * (1 + r))
    assert got["bsf"] == pytest.approx(D / (2 * d) * f * (1 - r * r))
    assert got["ftf"] == pytest.approx(f / 2 * (1 - r))
    assert got["bpfo"] + got["bpfi"] == pytest.approx(n * f)


@pytest.mark.parametrize("args,needle", [
    ((9, 0.3, 1.5, 0.0, 0.0), "shaft_hz"), ((0, 0.3, 1.5, 0.0, 10.0), "n_elements"),
    ((9, 2.0, 1.5, 0.0, 10.0), "pitch_diameter"), ((9, -0.3, 1.5, 0.0, 10.0), "ball_diameter"),
    ((9, 0.3, 1.5, 95.0, 10.0), "contact_angle"), ((9, 0.3, np.nan, 0.0, 10.0), "pitch_diameter")])
def test_bearing_frequencies_rejects_bad_geometry(args, needle):
    with pytest.raises(ValueError, match=needle):
        F.bearing_frequencies(*args)


# ------------------------------------------------------------------ FeatureExtractor

PRODUCT_BLOCKS = [{"kind": "time_stats", "stats": ["rms", "kurtosis", "crest_factor"]},
                  {"kind": "band_energy", "n_bands": 16, "spacing": "log", "log": True}]


def test_extractor_product_set_equals_kernels():
    x = rand_windows(1024, m=8)
    ex = F.FeatureExtractor(12000.0, 1024, PRODUCT_BLOCKS)
    assert ex.n_features == 19 and ex.window == 1024 and ex.fs == 12000.0 and ex.taper == "hann"
    names = ex.feature_names
    assert names[:3] == ["rms", "kurtosis", "crest_factor"]
    assert names[3] == "band00_11.7_17.3Hz_dB" and names[-1].endswith("_6000Hz_dB")
    out = ex.compute(x)
    assert out.shape == (8, 19) and out.dtype == np.float32
    t = F.time_stats(x)
    idx = [F.TIME_STAT_NAMES.index(s) for s in ("rms", "kurtosis", "crest_factor")]
    close(out[:, :3], t[:, idx], 0, 0)
    close(out[:, 3:], F.band_energies(x, 12000.0, 16), 0, 0)
    close(ex.compute(x[3]), out[3], 0, 0)


def test_extractor_every_block_kind_against_kernels():
    fs, n = 12000.0, 2048
    x = rand_windows(n, m=4)
    geom = dict(F.CWRU_DRIVE_END_6205)
    blocks = [
        {"kind": "time_stats"},
        {"kind": "band_energy", "n_bands": 8, "spacing": "linear", "fmin": 0, "fmax": 6000, "log": False},
        {"kind": "spectral_shape"},
        {"kind": "magnitude_spectrum"},
        {"kind": "log_power_spectrum"},
        {"kind": "envelope_spectrum", "band": [1000, 5000], "fmax": 500},
        {"kind": "bearing_envelope", "geometry": geom, "shaft_hz": 29.95, "harmonics": 2,
         "band": [1000, 5000]},
    ]
    ex = F.FeatureExtractor(fs, n, blocks, taper="blackman")
    out = ex.compute(x)
    names = ex.feature_names
    nb = n // 2 + 1
    df = fs / n
    n_env = int(np.floor(500 / df)) + 1
    assert ex.n_features == len(names) == 16 + 8 + 4 + nb + nb + n_env + 8
    assert len(set(names)) == len(names)
    assert names[16] == "band00_0_750Hz" and names[28] == "mag_0000" and names[28 + nb] == "lps_0000"
    assert names[28 + 2 * nb] == "env_0000" and names[-8:] == [
        "bpfo_h1", "bpfo_h2", "bpfi_h1", "bpfi_h2", "bsf_h1", "bsf_h2", "ftf_h1", "ftf_h2"]
    o = 0
    close(out[:, o:o + 16], F.time_stats(x), 0, 0); o += 16
    close(out[:, o:o + 8], F.band_energies(x, fs, 8, 0, 6000, "linear", False, "blackman"), 0, 0); o += 8
    close(out[:, o:o + 4], F.spectral_shape(x, fs, "blackman"), 0, 0); o += 4
    close(out[:, o:o + nb], F.magnitude_spectrum(x, "blackman"), 0, 0); o += nb
    close(out[:, o:o + nb], F.log_power_spectrum(x, "blackman"), 0, 0); o += nb
    es = F.envelope_spectrum(x, fs, (1000, 5000), "blackman")
    close(out[:, o:o + n_env], es[:, :n_env], 0, 0); o += n_env
    # bearing_envelope: energy fraction of the one-sided envelope power within +-2 bins
    w = ss.get_window("blackman", n)
    P = np.abs(np.fft.rfft(w * (lambda e: e - e.mean(-1, keepdims=True))(
        ref_envelope(x, fs, (1000, 5000))), axis=-1)) ** 2
    P[:, 1:nb - 1] *= 2
    f = np.arange(nb) * df
    lines = F.bearing_frequencies(geometry=geom, shaft_hz=29.95)
    ref = []
    for key in ("bpfo", "bpfi", "bsf", "ftf"):
        for h in (1, 2):
            sel = np.abs(f - h * lines[key]) <= 2 * df
            ref.append(P[:, sel].sum(-1) / P.sum(-1))
    close(out[:, o:], np.stack(ref, -1), rtol=2e-3, atol=1e-5)


def test_extractor_blocks_roundtrip_and_defaults():
    ex = F.FeatureExtractor(12000.0, 1024, PRODUCT_BLOCKS + [
        {"kind": "bearing_envelope", "geometry": F.CWRU_DRIVE_END_6205, "shaft_hz": 29.95}])
    b = ex.blocks
    assert b[1] == {"kind": "band_energy", "n_bands": 16, "spacing": "log", "fmin": 0.0, "fmax": 0.0,
                    "log": True}
    assert b[2]["harmonics"] == 3 and b[2]["tolerance_hz"] == 0.0 and "band" not in b[2]
    ex2 = F.FeatureExtractor(ex.fs, ex.window, b, ex.taper)
    assert ex2.feature_names == ex.feature_names
    x = rand_windows(1024)
    close(ex2.compute(x), ex.compute(x), 0, 0)


def test_extractor_constant_window_is_finite():
    ex = F.FeatureExtractor(1000.0, 256, [
        {"kind": "time_stats"}, {"kind": "band_energy", "n_bands": 4}, {"kind": "spectral_shape"},
        {"kind": "log_power_spectrum"}, {"kind": "envelope_spectrum"},
        {"kind": "bearing_envelope", "geometry": F.CWRU_DRIVE_END_6205, "shaft_hz": 10.0}])
    for v in (0.0, 1.5):
        assert np.all(np.isfinite(ex.compute(np.full(256, v, np.float32))))


def test_extractor_threads_share_one_object_safely():
    ex = F.FeatureExtractor(12000.0, 1024, PRODUCT_BLOCKS + [{"kind": "envelope_spectrum"}])
    xs = [rand_windows(1024, m=64, seed=s) for s in range(4)]
    serial = [ex.compute(x) for x in xs]
    results = [None] * 4

    def run(i):
        for _ in range(5):
            results[i] = ex.compute(xs[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, b in zip(results, serial):
        close(a, b, 0, 0)


@pytest.mark.parametrize("blocks,needle", [
    ([{"kind": "band_energy", "nbands": 3}], r"unknown key 'nbands'.*allowed keys: fmax, fmin, kind, log"),
    ([{"kind": "wavelets"}], r"unknown kind 'wavelets'.*band_energy"),
    ([{"stats": ["rms"]}], "missing key 'kind'"),
    ([{"kind": "time_stats", "stats": ["rms", "rmss"]}], r"unknown statistic 'rmss'.*kurtosis_factor"),
    ([{"kind": "time_stats", "stats": "rms"}], "stats: expected a list"),
    ([{"kind": "time_stats", "stats": []}], "at least one"),
    ([{"kind": "time_stats", "stats": ["rms", "rms"]}], "twice"),
    ([{"kind": "time_stats"}, {"kind": "time_stats"}], "produced twice"),
    ([{"kind": "band_energy", "n_bands": True}], "n_bands: expected a number"),
    ([{"kind": "band_energy", "n_bands": 2.5}], "n_bands: expected an integer"),
    ([{"kind": "band_energy", "n_bands": 0}], "n_bands"),
    ([{"kind": "band_energy", "fmin": "10"}], "fmin: expected a number"),
    ([{"kind": "band_energy", "fmax": 7000}], r"blocks\[0\] \(band_energy\).fmax"),
    ([{"kind": "band_energy", "spacing": "mel"}], "spacing: expected 'log' or 'linear'"),
    ([{"kind": "band_energy", "log": 1}], "log: expected true or false"),
    ([{"kind": "band_energy", "n_bands": 200}], "no FFT bin"),
    ([{"kind": "spectral_shape", "fmax": 100}], "unknown key 'fmax'"),
    ([{"kind": "envelope_spectrum", "band": [100]}], r"band: expected \[lo, hi\]"),
    ([{"kind": "envelope_spectrum", "band": [300, 100]}], "band"),
    ([{"kind": "envelope_spectrum", "fmax": 9000}], "fmax"),
    ([{"kind": "bearing_envelope", "shaft_hz": 30}], "missing key 'geometry'"),
    ([{"kind": "bearing_envelope", "geometry": F.CWRU_DRIVE_END_6205}], "missing key 'shaft_hz'"),
    ([{"kind": "bearing_envelope", "geometry": F.CWRU_DRIVE_END_6205, "shaft_hz": 0}], "shaft_hz"),
    ([{"kind": "bearing_envelope", "geometry": {"n_elements": 9, "ball_diameter": 0.3},
       "shaft_hz": 30}], "missing key 'pitch_diameter'"),
    ([{"kind": "bearing_envelope", "geometry": {**F.CWRU_DRIVE_END_6205, "width": 1},
       "shaft_hz": 30}], "geometry: unknown key 'width'"),
    ([{"kind": "bearing_envelope", "geometry": F.CWRU_DRIVE_END_6205, "shaft_hz": 30, "harmonics": 0}],
     "harmonics"),
    ([{"kind": "bearing_envelope", "geometry": F.CWRU_DRIVE_END_6205, "shaft_hz": 30,
       "tolerance_hz": -1}], "tolerance_hz"),
    ([], "at least one"),
    ("time_stats", "blocks: expected a list"),
    ([["kind", "time_stats"]], "expected a dict"),
])
def test_extractor_rejects_bad_blocks(blocks, needle):
    with pytest.raises(ValueError, match=needle):
        F.FeatureExtractor(12000.0, 1024, blocks)


def test_extractor_rejects_bad_fs_window_taper():
    with pytest.raises(ValueError, match="fs"):
        F.FeatureExtractor(0.0, 1024, PRODUCT_BLOCKS)
    with pytest.raises(ValueError, match="window: expected >= 16"):
        F.FeatureExtractor(1000.0, 8, [{"kind": "time_stats"}])
    with pytest.raises(ValueError, match=r"window: spectral blocks need an FFT size.*1024"):
        F.FeatureExtractor(1000.0, 1021, PRODUCT_BLOCKS)
    assert F.FeatureExtractor(1000.0, 1021, [{"kind": "time_stats"}]).n_features == 16
    with pytest.raises(ValueError, match="taper"):
        F.FeatureExtractor(1000.0, 1024, PRODUCT_BLOCKS, taper="kaiser")


def test_extractor_compute_rejects_wrong_shapes():
    ex = F.FeatureExtractor(12000.0, 1024, PRODUCT_BLOCKS)
    with pytest.raises(ValueError, match="1024 samples"):
        ex.compute(np.zeros((3, 512), np.float32))
    with pytest.raises(ValueError, match="3-D"):
        ex.compute(np.zeros((2, 3, 1024), np.float32))
    assert ex.compute(np.zeros((0, 1024), np.float32)).shape == (0, 19)
    assert ex.compute(np.zeros((2, 1024), np.float64)).dtype == np.float32


# ------------------------------------------------------------------ bad input to the kernels

@pytest.mark.parametrize("bad", [np.array(["a", "b"]), np.zeros(8, complex), np.zeros(8, bool),
                                 np.array([None, 1.0], dtype=object), np.float32(1.0), np.zeros((3, 0))])
def test_kernels_reject_bad_arrays(bad):
    with pytest.raises(ValueError, match="x: expected"):
        F.time_stats(bad)


def test_spectral_kernels_reject_bad_sizes_and_names():
    with pytest.raises(ValueError, match="FFT size"):
        F.power_spectrum(np.zeros(77))
    with pytest.raises(ValueError, match="x: expected windows of >= 2"):
        F.power_spectrum(np.zeros(1))
    with pytest.raises(ValueError, match="taper"):
        F.power_spectrum(np.zeros(64), taper="kaiser")
    with pytest.raises(ValueError, match="fs"):
        F.spectral_shape(np.zeros(64), 0.0)
    with pytest.raises(ValueError, match="3-D"):
        _core.time_stats(np.zeros((2, 2, 4), np.float32))


def test_integer_and_float64_inputs_are_converted():
    x = (rand_windows(64) * 100).astype(np.int32)
    close(F.time_stats(x), F.time_stats(x.astype(np.float32)), 0, 0)
    big = np.array([1e300, 0.0, 1.0, 2.0])
    assert np.isinf(F.time_stats(big)[6])


# ------------------------------------------------------------------ properties (hypothesis)

finite_windows = hnp.arrays(np.float32, hst.sampled_from([16, 60, 128, 250]),
                            elements=hst.floats(-100, 100, width=32))


def energetic(x):
    return float(np.std(x)) > 1e-2


@settings(max_examples=60, deadline=None)
@given(finite_windows, hst.floats(0.01, 100))
def test_scale_behaviour(x, c):
    if not energetic(x):
        return
    a, b = F.time_stats(x), F.time_stats(np.float32(c) * x)
    s = dict(zip(F.TIME_STAT_NAMES, range(16)))
    assert b[s["rms"]] == pytest.approx(c * a[s["rms"]], rel=1e-4)
    for k in ("kurtosis", "skewness", "crest_factor", "shape_factor", "impulse_factor"):
        assert b[s[k]] == pytest.approx(a[s[k]], rel=1e-3, abs=1e-3)
    ea = F.band_energies(x, 1000.0, 4, spacing="linear", log=False)
    eb = F.band_energies(np.float32(c) * x, 1000.0, 4, spacing="linear", log=False)
    np.testing.assert_allclose(eb, c * c * ea, rtol=1e-3, atol=1e-6 * c * c * ea.sum())


@settings(max_examples=60, deadline=None)
@given(finite_windows, hst.sampled_from(TAPERS), hst.integers(1, 6))
def test_parseval_of_band_energy_scaling(x, taper, n_bands):
    n = x.size
    w = ss.get_window(taper if taper != "rect" else "boxcar", n).astype(np.float64)
    expect = np.mean((w * x) ** 2) / np.mean(w ** 2)
    e = F.band_energies(x, 2.0 * n, n_bands, 0.0, 0.0, "linear", log=False, taper=taper)
    assert e.sum() == pytest.approx(expect, rel=1e-4, abs=1e-6)
    assert F.power_spectrum(x, taper).sum() == pytest.approx(expect, rel=1e-4, abs=1e-6)


@settings(max_examples=60, deadline=None)
@given(finite_windows, hst.integers(0, 1000))
def test_magnitude_spectrum_invariant_to_circular_shift_rect(x, shift):
    a = F.magnitude_spectrum(x, taper="rect")
    b = F.magnitude_spectrum(np.roll(x, shift), taper="rect")
    np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-4 * max(1.0, float(a.max())))


@settings(max_examples=40, deadline=None)
@given(finite_windows)
def test_band_energies_are_nonnegative_and_flatness_bounded(x):
    e = F.band_energies(x, 1000.0, 3, spacing="linear", log=False)
    assert np.all(e >= 0)
    shape = F.spectral_shape(x, 1000.0)
    assert 0.0 <= shape[2] <= 1.0 + 1e-5 and shape[1] >= 0


# ------------------------------------------------------------------ real data (CWRU)

def _cwru(shared_data, rel, var):
    return sio.loadmat(shared_data / "cwru" / rel)[var][:, 0].astype(np.float32)


def _frames(x, n):
    m = x.size // n
    return x[: m * n].reshape(m, n)


@pytest.mark.data
def test_cwru_kernels_match_references_on_real_windows(shared_data):
    x = _frames(_cwru(shared_data, "drive_end_12k/0hp/inner_race_007.mat", "X105_DE_time"), 1024)[:20]
    close(F.time_stats(x), ref_time_stats(x), rtol=2e-5, atol=2e-5)
    P = ref_power(x, "hann")
    close(F.power_spectrum(x), P, rtol=2e-4, atol=2e-6 * P.max())
    close(F.envelope(x, 12000.0), ref_envelope(x, 12000.0), rtol=1e-4, atol=1e-4)


@pytest.mark.data
def test_cwru_inner_race_bpfi_envelope_energy(shared_data):
    shaft = 1797 / 60  # 0 hp
    n, fs = 4096, 12000.0
    inner = _frames(_cwru(shared_data, "drive_end_12k/0hp/inner_race_007.mat", "X105_DE_time"), n)
    normal48 = _cwru(shared_data, "normal_48k/0hp/normal.mat", "X097_DE_time")
    normal = _frames(ss.decimate(normal48.astype(np.float64), 4).astype(np.float32), n)  # 48 -> 12 kHz
    ex = F.FeatureExtractor(fs, n, [{"kind": "bearing_envelope", "geometry": F.CWRU_DRIVE_END_6205,
                                     "shaft_hz": shaft, "harmonics": 3, "tolerance_hz": 5.0,
                                     "band": [2000, 5000]}])
    i = ex.feature_names.index("bpfi_h1")
    fi, fn = ex.compute(inner)[:, i], ex.compute(normal)[:, i]
    assert np.median(fi) > 10 * np.median(fn)
    assert fi.min() > np.percentile(fn, 95)
    # the envelope spectrum peak between 20 and 400 Hz sits at BPFI (within 2 bins)
    es = F.envelope_spectrum(inner, fs, band=(2000, 5000)).mean(0)
    f = F.bin_frequencies(fs, n)
    sel = (f > 20) & (f < 400)
    bpfi = F.bearing_frequencies(geometry=F.CWRU_DRIVE_END_6205, shaft_hz=shaft)["bpfi"]
    assert abs(f[sel][np.argmax(es[sel])] - bpfi) <= 2 * fs / n


def test_training_leaves_out_health_checks_that_fire_on_healthy_data() -> None:
    """A channel that is constant in the healthy training data (C-MAPSS's constant sensors) would
    read FLAT on every window and nothing would ever be scored: training leaves that check out
    of the bundle's spec, keeps the others, and windows score."""
    from conftest import noise_recording

    from edgefault import Runtime
    from edgefault.device.spec import FeatureSpec
    from edgefault.io.readers import Recording
    from edgefault.train.anomaly import pack_gaussian, train_gaussian

    rec = noise_recording(seconds=10.0)
    spec = FeatureSpec.for_anomaly(rec.fs, rec.channels, window=256, hop=128, n_bands=4)
    assert spec.fit_health([rec.data]) == (spec, [])
    x = rec.data.copy()
    x[:, 1] = 0.7  # channel b constant
    fitted, off = spec.fit_health([x])
    assert off == ["flat"] and fitted.health_settings["checks"] == ["clip", "dropout", "dc_jump"]
    res = train_gaussian([Recording(data=x, fs=rec.fs, channels=rec.channels, path="const")], spec, target_far=0.05)
    assert res.spec.health_settings["checks"] == ["clip", "dropout", "dc_jump"]
    import tempfile
    from pathlib import Path
    with tempfile.TemporaryDirectory() as d:
        b = pack_gaussian(res, Path(d) / "c.efb")
        evs = Runtime(b).push(x[:4000])
    assert evs and all(e.valid for e in evs)
