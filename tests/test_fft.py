"""edgefault._core FFT vs numpy.fft (float64 reference), property tests and bad input."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from edgefault import _core

SIZES = [1, 2, 3, 4, 5, 6, 8, 9, 10, 12, 15, 16, 25, 27, 30, 45, 60, 64, 75, 100, 120, 125,
         128, 240, 243, 256, 360, 375, 480, 512, 625, 729, 750, 1000, 1024, 1125, 1500, 1536,
         2048, 3000, 3125, 4096, 8192]
# Odd n runs real-input passes (not a complex transform of the real data): every odd size up to
# 20000, since each puts the switch between pass kinds and the vector tails in another place.
ODD_SIZES = [n for n in range(1, 20001, 2) if _core.fft_size_supported(n)]
# n = 2 m and 4 m (m odd, n >= 60) run the same passes and a last radix-2 / radix-4 real pass.
TWO_FOUR_ODD_SIZES = [n for n in range(2, 40001, 2) if n % 8 and _core.fft_size_supported(n)]
PROP_SIZES = [1, 2, 3, 5, 8, 12, 16, 30, 64, 100, 128, 360, 1024]


def _tol(x: np.ndarray) -> float:
    """Scale-aware bound for float32 transforms: a few eps32 * log2(n) * ||x||_2 per bin."""
    n = x.shape[-1]
    return 2e-6 * (1.0 + np.log2(n)) * float(np.linalg.norm(x.astype(np.complex128))) + 1e-30


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


# ---------------------------------------------------------------------------------------------
# Against numpy.fft on random signals.
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", SIZES)
def test_rfft_matches_numpy(n: int) -> None:
    x = _rng(n).standard_normal((3, n)).astype(np.float32)
    got = _core.rfft(x)
    ref = np.fft.rfft(x.astype(np.float64), axis=-1)
    assert got.dtype == np.complex64 and got.shape == (3, n // 2 + 1)
    for row in range(3):
        assert np.abs(got[row] - ref[row]).max() <= _tol(x[row])


@pytest.mark.parametrize("n", SIZES)
def test_irfft_matches_numpy(n: int) -> None:
    X = (_rng(n + 1).standard_normal((2, n // 2 + 1))
         + 1j * _rng(n + 2).standard_normal((2, n // 2 + 1))).astype(np.complex64)
    got = _core.irfft(X, n)
    ref = np.fft.irfft(X.astype(np.complex128), n, axis=-1)  # also ignores Im(DC), Im(Nyquist)
    assert got.dtype == np.float32 and got.shape == (2, n)
    for row in range(2):
        assert np.abs(got[row] - ref[row]).max() <= _tol(X[row]) / n * 2


@pytest.mark.parametrize("n", SIZES)
def test_complex_fft_ifft_match_numpy(n: int) -> None:
    r = _rng(3 * n)
    x = (r.standard_normal((2, n)) + 1j * r.standard_normal((2, n))).astype(np.complex64)
    f = _core.fft(x)
    fi = _core.ifft(x)
    assert f.dtype == np.complex64 and fi.dtype == np.complex64
    ref = np.fft.fft(x.astype(np.complex128), axis=-1)
    iref = np.fft.ifft(x.astype(np.complex128), axis=-1)
    for row in range(2):
        assert np.abs(f[row] - ref[row]).max() <= _tol(x[row])
        assert np.abs(fi[row] - iref[row]).max() <= _tol(x[row]) / n


def test_rfft_odd_sizes_match_numpy() -> None:
    assert len(ODD_SIZES) == 37 and {15, 45, 125, 243, 375, 3125, 15625} <= set(ODD_SIZES)
    for n in ODD_SIZES:
        x = _rng(7 * n).standard_normal((2, n)).astype(np.float32)
        got = _core.rfft(x)
        ref = np.fft.rfft(x.astype(np.float64), axis=-1)
        assert got.shape == (2, n // 2 + 1)
        for row in range(2):
            assert np.abs(got[row] - ref[row]).max() <= _tol(x[row]), n
            assert got[row, 0].imag == 0.0
        back = _core.irfft(got, n)
        np.testing.assert_allclose(back, x, atol=1e-5 * (1 + np.log2(n)), err_msg=str(n))


def test_rfft_2_and_4_times_odd_sizes_match_numpy() -> None:
    assert {30, 60, 90, 750, 1500, 3750, 7500} <= set(TWO_FOUR_ODD_SIZES)
    for n in TWO_FOUR_ODD_SIZES:
        x = _rng(11 * n).standard_normal((2, n)).astype(np.float32)
        got = _core.rfft(x)
        ref = np.fft.rfft(x.astype(np.float64), axis=-1)
        for row in range(2):
            assert np.abs(got[row] - ref[row]).max() <= _tol(x[row]), n
            assert got[row, 0].imag == 0.0 and got[row, -1].imag == 0.0
        np.testing.assert_allclose(_core.irfft(got, n), x, atol=1e-5 * (1 + np.log2(n)),
                                   err_msg=str(n))


@pytest.mark.parametrize("n", [256, 375, 750, 1500])
def test_rfft_issue19_sizes_tight(n: int) -> None:
    """The issue #19 sizes against numpy, bin by bin relative to the spectrum's RMS."""
    x = _rng(n + 19).standard_normal((8, n)).astype(np.float32)
    got = _core.rfft(x).astype(np.complex128)
    ref = np.fft.rfft(x.astype(np.float64), axis=-1)
    rms = np.sqrt(np.mean(np.abs(ref) ** 2, axis=-1, keepdims=True))
    assert (np.abs(got - ref) / rms).max() < 2e-6 * (1 + np.log2(n))


_ISA_SCRIPT = """
import sys
import numpy as np
from edgefault import _core
out = []
for n in [1, 2, 3, 12, 15, 45, 64, 125, 243, 256, 375, 750, 1000, 1024, 1500, 3125, 4096]:
    x = np.random.default_rng(n).standard_normal((2, n)).astype(np.float32)
    X = _core.rfft(x)
    z = (x + 1j * x[::-1]).astype(np.complex64)
    out += [X, _core.irfft(X, n), _core.fft(z), _core.ifft(z)]
np.savez(sys.argv[1], *out)
"""


def test_avx_and_base_kernels_give_identical_bits(tmp_path) -> None:
    """On x86 CPUs with AVX the kernels run from a second, VEX-encoded build (fft_avx.cpp);
    EDGEFAULT_FFT_ISA=base forces the baseline one. Same arithmetic: the same bits."""
    import os
    import subprocess
    import sys

    files = {}
    for isa in ("default", "base"):
        env = dict(os.environ)
        env.pop("EDGEFAULT_FFT_ISA", None)
        if isa == "base":
            env["EDGEFAULT_FFT_ISA"] = "base"
        files[isa] = tmp_path / f"{isa}.npz"
        # cwd: not the project root, whose source tree (no built core) would shadow the installed package
        r = subprocess.run([sys.executable, "-c", _ISA_SCRIPT, str(files[isa])], env=env, cwd=tmp_path,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, f"EDGEFAULT_FFT_ISA={isa}: {r.stderr[-2000:]}"
    a, b = np.load(files["default"]), np.load(files["base"])
    assert a.files == b.files and len(a.files) == 68
    for k in a.files:
        assert a[k].dtype == b[k].dtype and a[k].tobytes() == b[k].tobytes(), k


@pytest.mark.parametrize("n", [6, 64, 375, 1000, 1024, 1500])
def test_round_trips(n: int) -> None:
    x = _rng(n).standard_normal((4, n)).astype(np.float32)
    np.testing.assert_allclose(_core.irfft(_core.rfft(x), n), x, atol=1e-5 * (1 + np.log2(n)))
    z = x + 1j * x[::-1]
    np.testing.assert_allclose(_core.ifft(_core.fft(z)), z, atol=1e-5 * (1 + np.log2(n)))


def test_irfft_default_n_is_even() -> None:
    x = _rng(1).standard_normal(16).astype(np.float32)
    y = _core.irfft(_core.rfft(x))
    assert y.shape == (16,)
    np.testing.assert_allclose(y, x, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# Shapes, dtypes, layout, threads.
# ---------------------------------------------------------------------------------------------
def test_batches_over_all_leading_axes() -> None:
    x = _rng(5).standard_normal((2, 3, 4, 60)).astype(np.float32)
    got = _core.rfft(x)
    assert got.shape == (2, 3, 4, 31)
    ref = np.fft.rfft(x.astype(np.float64), axis=-1)
    assert np.abs(got - ref).max() <= _tol(x.reshape(-1, 60)[0]) * 3
    assert _core.fft(x.astype(np.complex64)).shape == (2, 3, 4, 60)
    assert _core.irfft(got, 60).shape == (2, 3, 4, 60)


def test_empty_batch_and_1d() -> None:
    assert _core.rfft(np.zeros((0, 32), np.float32)).shape == (0, 17)
    y = _core.rfft(np.arange(8, dtype=np.float32))
    assert y.shape == (5,)
    np.testing.assert_allclose(y, np.fft.rfft(np.arange(8.0)), atol=1e-5)


def test_casts_other_real_dtypes_and_strided_input() -> None:
    x64 = _rng(7).standard_normal((5, 128))
    ref = _core.rfft(x64.astype(np.float32))
    np.testing.assert_array_equal(_core.rfft(x64), ref)  # float64 -> float32 cast
    ints = np.arange(32, dtype=np.int16)
    np.testing.assert_allclose(_core.rfft(ints), np.fft.rfft(ints.astype(np.float64)), atol=1e-3)
    big = _rng(8).standard_normal((5, 256)).astype(np.float32)
    strided = big[:, ::2]  # non-contiguous view
    np.testing.assert_array_equal(_core.rfft(strided), _core.rfft(np.ascontiguousarray(strided)))
    np.testing.assert_array_equal(_core.rfft(big.T.copy().T), _core.rfft(big))  # F-order


def test_threads_give_identical_results() -> None:
    x = _rng(9).standard_normal((64, 1024)).astype(np.float32)
    ref = _core.rfft(x)
    out: list[np.ndarray] = [None] * 4  # type: ignore[list-item]

    def work(i: int) -> None:
        for _ in range(20):
            out[i] = _core.rfft(x)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for o in out:
        np.testing.assert_array_equal(o, ref)


def test_next_fast_len_and_supported() -> None:
    assert _core.next_fast_len(0) == 1
    assert _core.next_fast_len(1) == 1
    assert _core.next_fast_len(1000) == 1000
    assert _core.next_fast_len(1001) == 1024
    assert _core.next_fast_len(1025) == 1080
    assert _core.next_fast_len(7) == 8
    for n in range(1, 2000):
        m = _core.next_fast_len(n)
        assert m >= n and _core.fft_size_supported(m)
        assert all(not _core.fft_size_supported(k) for k in range(n, m))
    assert _core.fft_size_supported(1024)
    assert _core.fft_size_supported(2 * 3 * 5)
    assert not _core.fft_size_supported(0)
    assert not _core.fft_size_supported(7)
    assert not _core.fft_size_supported(-4)
    assert not _core.fft_size_supported(1000003)


# ---------------------------------------------------------------------------------------------
# Real data: CWRU drive-end vibration.
# ---------------------------------------------------------------------------------------------
@pytest.mark.data
def test_cwru_signal_matches_numpy(shared_data) -> None:
    from scipy.io import loadmat

    mat = loadmat(shared_data / "cwru" / "drive_end_12k" / "0hp" / "inner_race_007.mat")
    key = next(k for k in mat if k.endswith("_DE_time"))
    sig = np.asarray(mat[key], dtype=np.float64).ravel()
    assert sig.size > 100_000
    n, hop = 1024, 512
    idx = np.arange(n)[None, :] + hop * np.arange((sig.size - n) // hop + 1)[:, None]
    frames = (sig[idx] * np.hanning(n)).astype(np.float32)
    got = _core.rfft(frames)
    ref = np.fft.rfft(frames.astype(np.float64), axis=-1)
    err = np.abs(got - ref).max(axis=-1)
    bound = np.array([_tol(f) for f in frames])
    assert np.all(err <= bound)
    # Power spectra agree closely where there is energy (what features consume).
    p_got, p_ref = np.abs(got) ** 2, np.abs(ref) ** 2
    assert np.abs(p_got.sum(axis=0) - p_ref.sum(axis=0)).max() <= 1e-4 * p_ref.sum(axis=0).max()
    np.testing.assert_allclose(_core.irfft(got, n), frames, atol=1e-5 * np.abs(frames).max() * 11)


# ---------------------------------------------------------------------------------------------
# Properties (hypothesis).
# ---------------------------------------------------------------------------------------------
finite32 = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False, width=32)


@st.composite
def real_signal(draw, min_n: int = 1) -> np.ndarray:
    n = draw(st.sampled_from([s for s in PROP_SIZES if s >= min_n]))
    return draw(hnp.arrays(np.float32, n, elements=finite32))


def _scale(x: np.ndarray) -> float:
    return float(np.linalg.norm(x.astype(np.float64))) + 1e-6


@settings(max_examples=60, deadline=None)
@given(real_signal())
def test_parseval(x: np.ndarray) -> None:
    n = x.size
    X = _core.rfft(x).astype(np.complex128)
    w = np.full(X.size, 2.0)
    w[0] = 1.0
    if n % 2 == 0:
        w[-1] = 1.0
    energy_t = float(np.sum(x.astype(np.float64) ** 2))
    energy_f = float(np.sum(w * np.abs(X) ** 2) / n)
    assert abs(energy_f - energy_t) <= 1e-5 * (1 + np.log2(n)) * energy_t + 1e-6


@settings(max_examples=60, deadline=None)
@given(real_signal(), st.floats(-4, 4, width=32), st.floats(-4, 4, width=32), st.integers(0, 2**31))
def test_linearity(x: np.ndarray, a: float, b: float, seed: int) -> None:
    y = np.random.default_rng(seed).standard_normal(x.size).astype(np.float32) * 100
    a32, b32 = np.float32(a), np.float32(b)
    lhs = _core.rfft((a32 * x + b32 * y).astype(np.float32)).astype(np.complex128)
    rhs = a * _core.rfft(x).astype(np.complex128) + b * _core.rfft(y).astype(np.complex128)
    scale = abs(a) * _scale(x) + abs(b) * _scale(y)
    assert np.abs(lhs - rhs).max() <= 4e-6 * (1 + np.log2(x.size)) * scale + 1e-4


@settings(max_examples=60, deadline=None)
@given(real_signal(), st.integers(0, 10_000))
def test_circular_shift_theorem(x: np.ndarray, shift: int) -> None:
    n = x.size
    s = shift % n
    k = np.arange(n // 2 + 1)
    lhs = _core.rfft(np.roll(x, s)).astype(np.complex128)
    rhs = _core.rfft(x).astype(np.complex128) * np.exp(-2j * np.pi * k * s / n)
    assert np.abs(lhs - rhs).max() <= 4e-6 * (1 + np.log2(n)) * _scale(x)


@settings(max_examples=60, deadline=None)
@given(real_signal())
def test_real_input_hermitian_symmetry(x: np.ndarray) -> None:
    n = x.size
    F = _core.fft(x.astype(np.complex64)).astype(np.complex128)
    k = np.arange(1, n)
    tol = 4e-6 * (1 + np.log2(n)) * _scale(x)
    assert np.abs(F[n - k] - np.conj(F[k])).max(initial=0.0) <= tol
    assert abs(F[0].imag) <= tol
    # rfft is the non-negative half of the complex transform.
    assert np.abs(_core.rfft(x) - F[: n // 2 + 1]).max() <= tol


@settings(max_examples=40, deadline=None)
@given(real_signal())
def test_rfft_irfft_round_trip(x: np.ndarray) -> None:
    n = x.size
    y = _core.irfft(_core.rfft(x), n)
    assert np.abs(y - x).max() <= 4e-6 * (1 + np.log2(n)) * (np.abs(x).max() + 1e-3) * 4


# ---------------------------------------------------------------------------------------------
# Bad input.
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: _core.rfft(np.zeros(8, np.complex64)), "complex"),
        (lambda: _core.rfft(np.zeros(7, np.float32)), r"x.shape\[-1\]=7"),
        (lambda: _core.rfft(np.zeros((3, 14), np.float32)), r"=14.*2\^a \* 3\^b \* 5\^c"),
        (lambda: _core.rfft(np.zeros((2, 0), np.float32)), r"=0"),
        (lambda: _core.rfft(np.float32(1.0)), "at least 1 dimension"),
        (lambda: _core.rfft(np.array(["a", "b"])), "dtype"),
        (lambda: _core.rfft(None), "dtype object"),
        (lambda: _core.fft(np.zeros(7, np.complex64)), r"=7"),
        (lambda: _core.ifft(np.zeros(1000003, np.complex64)), r"=1000003"),
        (lambda: _core.fft(np.array([object(), object()])), "dtype"),
        (lambda: _core.irfft(np.zeros(513, np.complex64), 1000), r"n//2\+1 == 501"),
        (lambda: _core.irfft(np.zeros(4, np.complex64), 7), r"n=7"),
        (lambda: _core.irfft(np.zeros(1, np.complex64)), r"n=0"),
        (lambda: _core.irfft(np.zeros(5, np.complex64), 8.5), "integer"),
        (lambda: _core.irfft(np.zeros(0, np.complex64)), ">= 1"),
        (lambda: _core.next_fast_len(-1), ">= 0"),
    ],
)
def test_bad_input_raises_value_error(call, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()
