from __future__ import annotations

import numpy as np
import pytest

from edgefault.errors import InputError
from edgefault.io.synth import CWRU_6205, bearing_frequencies, bearing_signal, fault_frequency

FS = 12000.0
SHAFT = 29.95


def envelope_spectrum(x: np.ndarray, fs: float, band: tuple[float, float] = (2000.0, 4000.0)
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Band-pass around the resonance, |analytic signal| via FFT, then the envelope's spectrum."""
    x = np.asarray(x, dtype=np.float64)
    x = x - x.mean()
    X = np.fft.fft(x)
    f = np.fft.fftfreq(x.size, 1 / fs)
    h = np.where((f >= band[0]) & (f <= band[1]), 2.0, 0.0)  # positive band only, doubled
    env = np.abs(np.fft.ifft(X * h))
    env -= env.mean()
    return np.fft.rfftfreq(env.size, 1 / fs), np.abs(np.fft.rfft(env * np.hanning(env.size)))


def kurtosis(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=np.float64) - np.mean(x)
    return float(np.mean(x**4) / np.mean(x**2) ** 2)


def peak_in(f: np.ndarray, e: np.ndarray, lo: float, hi: float) -> float:
    m = (f >= lo) & (f <= hi)
    return float(f[m][np.argmax(e[m])])


def prominence(f: np.ndarray, e: np.ndarray, f0: float, tol: float = 1.5, ring: float = 8.0) -> float:
    """Peak within +-tol Hz of f0 divided by the median level within +-ring Hz (outside +-tol)."""
    near = np.abs(f - f0) <= tol
    around = (np.abs(f - f0) <= ring) & ~near
    return float(e[near].max() / np.median(e[around]))


def test_bearing_frequencies_cwru_ratios() -> None:
    fr = bearing_frequencies(1.0, CWRU_6205)
    # CWRU's published multiples of shaft speed for the 6205-2RS JEM drive-end bearing
    assert fr["bpfi"] == pytest.approx(5.4152, abs=1e-4)
    assert fr["bpfo"] == pytest.approx(3.5848, abs=1e-4)
    assert fr["ftf"] == pytest.approx(0.39828, abs=5e-5)
    # BSF as D/(2d)(1 - (d/D cos a)^2) = 2.3567; CWRU tabulates 4.7135 = 2 x BSF
    assert fr["bsf"] == pytest.approx(4.7135 / 2, abs=1e-4)
    assert fr["bsf"] == pytest.approx(1.537 / (2 * 0.3126) * (1 - (0.3126 / 1.537) ** 2), rel=1e-12)
    f = bearing_frequencies(SHAFT)
    assert f["bpfo"] == pytest.approx(3.5848 * SHAFT, rel=1e-4)
    assert f["bpfo"] + f["bpfi"] == pytest.approx(9 * SHAFT)  # n * shaft, exact identity
    assert f["bpfo"] == pytest.approx(9 * f["ftf"])
    assert fault_frequency("ball", SHAFT) == pytest.approx(2 * f["bsf"])
    assert fault_frequency("inner_race", SHAFT) == f["bpfi"]


def test_contact_angle_lowers_ratio() -> None:
    a = bearing_frequencies(30.0, (9, 0.3126, 1.537, 0.0))
    b = bearing_frequencies(30.0, (9, 0.3126, 1.537, 40.0))
    r = 0.3126 / 1.537 * np.cos(np.radians(40.0))
    assert b["bpfo"] == pytest.approx(4.5 * 30 * (1 - r))
    assert b["bpfo"] > a["bpfo"] and b["bpfi"] < a["bpfi"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_outer_race_envelope_peaks_at_bpfo(seed: int) -> None:
    x = bearing_signal(8.0, fs=FS, shaft_hz=SHAFT, fault="outer_race", severity=0.5, seed=seed)
    f, e = envelope_spectrum(x, FS)
    bpfo = bearing_frequencies(SHAFT)["bpfo"]
    assert abs(peak_in(f, e, 20, 600) - bpfo) <= 0.01 * bpfo
    assert abs(peak_in(f, e, 1.5 * bpfo, 2.5 * bpfo) - 2 * bpfo) <= 0.01 * 2 * bpfo  # harmonic
    assert prominence(f, e, bpfo) > 10


@pytest.mark.parametrize("seed", [0, 1])
def test_inner_race_sidebands_at_shaft_rate(seed: int) -> None:
    x = bearing_signal(10.0, fs=FS, shaft_hz=SHAFT, fault="inner_race", severity=0.6, seed=seed)
    f, e = envelope_spectrum(x, FS)
    bpfi = bearing_frequencies(SHAFT)["bpfi"]
    assert abs(peak_in(f, e, 100, 250) - bpfi) <= 0.01 * bpfi
    for sb in (bpfi - SHAFT, bpfi + SHAFT):
        assert prominence(f, e, sb) > 10, sb
    assert prominence(f, e, SHAFT) > 10  # the modulation itself shows at 1x in the envelope
    # an outer-race signal of the same energy has no sidebands at BPFI +- shaft
    y = bearing_signal(10.0, fs=FS, shaft_hz=SHAFT, fault="outer_race", severity=0.6, seed=seed)
    fy, ey = envelope_spectrum(y, FS)
    assert prominence(fy, ey, bpfi + SHAFT) < 5  # noise-only peaks reach ~2-3.5


def test_ball_fault_at_twice_bsf_with_cage_sidebands() -> None:
    x = bearing_signal(10.0, fs=FS, shaft_hz=SHAFT, fault="ball", severity=0.7, seed=4)
    f, e = envelope_spectrum(x, FS)
    fr = bearing_frequencies(SHAFT)
    two_bsf = 2 * fr["bsf"]
    assert abs(peak_in(f, e, 100, 200) - two_bsf) <= 0.01 * two_bsf
    assert prominence(f, e, two_bsf - fr["ftf"], tol=1.0, ring=5.0) > 8


def test_healthy_envelope_has_no_bearing_lines() -> None:
    x = bearing_signal(8.0, fs=FS, shaft_hz=SHAFT, fault=None, seed=3)
    f, e = envelope_spectrum(x, FS)
    fr = bearing_frequencies(SHAFT)
    for k in ("bpfo", "bpfi"):
        assert prominence(f, e, fr[k]) < 5  # a fault line scores > 10, noise ~2-3


@pytest.mark.parametrize("fault", ["outer_race", "inner_race", "ball"])
def test_kurtosis_faulty_above_healthy(fault: str) -> None:
    healthy = bearing_signal(4.0, fault=None, seed=11)
    faulty = bearing_signal(4.0, fault=fault, severity=0.5, seed=11)
    assert kurtosis(healthy) < 3.5
    assert kurtosis(faulty) > kurtosis(healthy) + 1.5


def test_severity_scales_and_grows() -> None:
    rms = [float(np.std(bearing_signal(3.0, fault="outer_race", severity=s, seed=5))) for s in (0.0, 0.3, 1.0)]
    assert rms[0] < rms[1] < rms[2]
    healthy = bearing_signal(3.0, fault=None, seed=5)
    zero = bearing_signal(3.0, fault="outer_race", severity=0.0, seed=5)
    assert np.std(zero) == pytest.approx(np.std(healthy), rel=0.05)

    def growing(t: np.ndarray) -> np.ndarray:
        return np.clip(t / 8.0, 0.0, 1.0)

    x = bearing_signal(8.0, fault="outer_race", severity=growing, seed=6)
    n = x.size // 4
    k = [kurtosis(x[i * n:(i + 1) * n]) for i in range(4)]
    r = [float(np.sqrt(np.mean(x[i * n:(i + 1) * n].astype(np.float64) ** 2))) for i in range(4)]
    assert r[0] < r[1] < r[2] < r[3]
    assert k[3] > k[0]


def test_shape_dtype_and_determinism() -> None:
    a = bearing_signal(0.5, fs=FS, fault="ball", seed=42)
    b = bearing_signal(0.5, fs=FS, fault="ball", seed=42)
    c = bearing_signal(0.5, fs=FS, fault="ball", seed=43)
    assert a.shape == (6000,) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    g1 = bearing_signal(0.5, seed=np.random.default_rng(1))
    g2 = bearing_signal(0.5, seed=np.random.default_rng(1))
    np.testing.assert_array_equal(g1, g2)
    assert np.all(np.isfinite(a))
    assert bearing_signal(1.0, fs=48000, resonance_hz=9000, seed=0).shape == (48000,)


def test_two_channels_share_the_source() -> None:
    x = bearing_signal(6.0, fault="outer_race", severity=0.8, n_channels=2, seed=9)
    assert x.shape == (72000, 2) and x.dtype == np.float32
    one = bearing_signal(6.0, fault="outer_race", severity=0.8, n_channels=1, seed=9)
    np.testing.assert_array_equal(x[:, 0], one)  # channel 0 is the single-channel signal
    assert np.std(x[:, 1]) < np.std(x[:, 0])  # farther sensor, attenuated
    assert not np.allclose(x[:, 0], x[:, 1])
    bpfo = bearing_frequencies(SHAFT)["bpfo"]
    f, e = envelope_spectrum(x[:, 1], FS, band=(3200.0, 4600.0))  # 2nd path resonates at 1.31 x 3 kHz
    assert abs(peak_in(f, e, 20, 600) - bpfo) <= 0.01 * bpfo
    # independent noise: the residual after removing the shared part is uncorrelated
    h = bearing_signal(6.0, fault=None, noise_rms=0.5, n_channels=2, seed=9)
    assert abs(np.corrcoef(h[:, 0], h[:, 1])[0, 1]) < 0.1


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(duration_s=0), "duration_s"),
        (dict(duration_s=-1), "duration_s"),
        (dict(duration_s=1e-6), "no samples"),
        (dict(fs=0), "fs"),
        (dict(shaft_hz=float("nan")), "shaft_hz"),
        (dict(shaft_hz=7000.0), "Nyquist"),
        (dict(fault="cage"), "fault"),
        (dict(fault="outer_race", severity=1.5), "severity"),
        (dict(fault="outer_race", severity=-0.1), "severity"),
        (dict(severity="high"), "severity"),
        (dict(fault="outer_race", severity=lambda t: 2.0), "severity"),
        (dict(fault="outer_race", severity=lambda t: np.zeros(3)), "shape"),
        (dict(fault="outer_race", severity=lambda t: min(t, 1.0)), "severity callable failed"),
        (dict(geometry=(9, 2.0, 1.5, 0.0)), "ball_diameter"),
        (dict(geometry=(9.5, 0.3, 1.5, 0.0)), "n_balls"),
        (dict(geometry=(9, 0.3, 1.5, 95.0)), "contact angle"),
        (dict(geometry=(9, 0.3)), "geometry"),
        (dict(resonance_hz=5800), "resonance_hz"),
        (dict(damping=0.0), "damping"),
        (dict(damping=1.0), "damping"),
        (dict(noise_rms=-1), "noise_rms"),
        (dict(n_channels=3), "n_channels"),
        (dict(n_channels=True), "n_channels"),
        (dict(seed="abc"), "seed"),
        (dict(slip=0.5), "slip"),
    ],
)
def test_bad_args(kwargs: dict, match: str) -> None:
    args = dict(duration_s=0.1)
    args.update(kwargs)
    with pytest.raises(InputError, match=match):
        bearing_signal(**args)


def test_bad_frequency_args() -> None:
    with pytest.raises(InputError, match="shaft_hz"):
        bearing_frequencies(0.0)
    with pytest.raises(InputError, match="fault"):
        fault_frequency("cage", 30.0)


def test_test_helpers_match_scipy() -> None:
    """The numpy envelope / kurtosis used above agree with scipy's independent versions."""
    sig = pytest.importorskip("scipy.signal")
    stats = pytest.importorskip("scipy.stats")
    x = bearing_signal(1.0, fault="inner_race", seed=2).astype(np.float64)
    assert kurtosis(x) == pytest.approx(stats.kurtosis(x, fisher=False), rel=1e-9)
    # full-band analytic signal: our FFT construction == scipy.signal.hilbert
    X = np.fft.fft(x)
    f = np.fft.fftfreq(x.size)
    h = np.where(f > 0, 2.0, 0.0)
    h[0] = 1.0
    h[x.size // 2] = 1.0  # even length: Nyquist bin kept once
    np.testing.assert_allclose(np.abs(np.fft.ifft(X * h)), np.abs(sig.hilbert(x)), rtol=1e-9, atol=1e-12)
