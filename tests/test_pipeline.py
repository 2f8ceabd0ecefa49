"""The streaming framer + feature pipeline, seen from Python."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgefault import _core
from edgefault.errors import InputError
from edgefault.device.spec import FeatureSpec

BLOCKS = ({"kind": "time_stats"}, {"kind": "band_energy", "n_bands": 8, "spacing": "log", "fmin": 20.0})


def _spec(channels: int = 3, window: int = 128, hop: int = 48) -> FeatureSpec:
    return FeatureSpec(fs=2000.0, window=window, hop=hop, channels=tuple(f"c{i}" for i in range(channels)),
                       blocks=BLOCKS)


def _signal(n: int, c: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, c)).astype(np.float32)


def test_raw_windows_and_features_equal_direct_computation() -> None:
    spec = _spec()
    x = _signal(1000, 3)
    feats, ends, finite, raw = spec.pipeline().push(x, 1.0, True, True)
    starts = np.arange(0, 1000 - 128 + 1, 48)
    assert np.array_equal(ends, starts + 128) and finite.all()
    ex = spec.extractor()
    for i, s in enumerate(starts):
        assert np.array_equal(raw[i], x[s:s + 128].T)
        direct = np.concatenate([ex.compute(x[s:s + 128, c][None])[0] for c in range(3)])
        np.testing.assert_array_equal(feats[i], direct)
    assert feats.shape[1] == spec.feature_dim == len(spec.feature_names)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 400), min_size=1, max_size=30), st.integers(1, 128))
def test_any_chunking_gives_the_same_windows(chunks: list[int], hop: int) -> None:
    spec = _spec(channels=2, window=128, hop=hop)
    x = _signal(sum(chunks), 2, seed=len(chunks))
    ref_f, ref_e, _, _ = spec.pipeline().push(x, 1.0, True, False)
    p = spec.pipeline()
    parts_f, parts_e, s = [], [], 0
    for n in chunks:
        bound = p.max_windows_for(n)
        f, e, _, _ = p.push(x[s:s + n], 1.0, True, False)
        assert f.shape[0] == bound
        parts_f.append(f)
        parts_e.append(e)
        s += n
    np.testing.assert_array_equal(np.concatenate(parts_f), ref_f)
    np.testing.assert_array_equal(np.concatenate(parts_e), ref_e)


@pytest.mark.parametrize("dtype, scale", [(np.int16, 1 / 32768), (np.int32, 1 / 2**31), (np.float64, 0.5)])
def test_integer_and_double_input_with_scale(dtype: type, scale: float) -> None:
    spec = _spec(channels=1)
    rng = np.random.default_rng(3)
    if np.issubdtype(dtype, np.integer):
        q = rng.integers(np.iinfo(dtype).min // 2, np.iinfo(dtype).max // 2, size=(600, 1)).astype(dtype)
    else:
        q = rng.normal(size=(600, 1)).astype(dtype)
    f_q, _, _, _ = spec.pipeline().push(q, scale, True, False)
    f_ref, _, _, _ = spec.pipeline().push((q.astype(np.float64) * scale).astype(np.float32), 1.0, True, False)
    np.testing.assert_allclose(f_q, f_ref, rtol=2e-5, atol=1e-5)


def test_bad_input_is_rejected_and_state_kept() -> None:
    p = _spec(channels=2).pipeline()
    x = _signal(300, 2)
    p.push(x[:100])
    with pytest.raises(ValueError, match="2 channels|expected 2"):
        p.push(_signal(10, 3))
    with pytest.raises(ValueError, match="expects 2 channels"):
        p.push(np.zeros(10, np.float32))
    with pytest.raises(TypeError, match="not supported"):
        p.push(np.zeros((10, 2), np.complex64))
    with pytest.raises(ValueError, match="1-D .* or 2-D"):
        p.push(np.zeros((2, 2, 2), np.float32))
    assert p.frames_seen == 100
    f_rest, _, _, _ = p.push(x[100:])
    f_ref, _, _, _ = _spec(channels=2).pipeline().push(x)
    np.testing.assert_array_equal(f_rest, f_ref[-f_rest.shape[0]:])


def test_equal_but_distinct_dtypes_are_accepted() -> None:
    """A pickled or byte-swapped float32 array has a dtype object that is not numpy's singleton."""
    import pickle

    spec = _spec(channels=2)
    x = _signal(500, 2)
    ref, _, _, _ = spec.pipeline().push(x)
    for y in (pickle.loads(pickle.dumps(x)), x.astype(">f4")):
        got, _, _, _ = spec.pipeline().push(y)
        np.testing.assert_array_equal(got, ref)


def test_spec_validation_messages() -> None:
    with pytest.raises(InputError, match="hop"):
        FeatureSpec(fs=1000.0, window=64, hop=65, channels=("a",), blocks=BLOCKS)
    with pytest.raises(InputError, match="duplicate channel"):
        FeatureSpec(fs=1000.0, window=64, hop=32, channels=("a", "a"), blocks=BLOCKS)
    with pytest.raises(InputError, match="unknown keys"):
        FeatureSpec.from_dict({**_spec().to_dict(), "extra": 1})
    with pytest.raises(InputError, match="feature spec"):
        FeatureSpec(fs=1000.0, window=64, hop=32, channels=("a",), blocks=({"kind": "nope"},))
    s = _spec()
    assert FeatureSpec.from_dict(s.to_dict()) == s


def test_core_alarm_and_scorer_bindings_validate() -> None:
    with pytest.raises(ValueError, match="k must be"):
        _core.AlarmState(1.0, 1.0, 5, 3)
    with pytest.raises(ValueError, match="precision"):
        _core.GaussianScorer(np.zeros(2, np.float32), np.ones(2, np.float32), np.eye(3, dtype=np.float32))
