"""One sample-scaling rule for file reads and live pushes (edgefault.samples; issues #12.9, #18.2)."""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from edgefault import Runtime
from edgefault.device.bundle import MANIFEST, load_bundle, manifest_digest
from edgefault.errors import BundleError, InputError
from edgefault.io.readers import read_recording
from edgefault.samples import LEGACY, scale_offset, to_float

from conftest import noise_recording

# dtype -> (samples, their floats under "full_scale")
TABLE = {
    np.int8: ([-128, 0, 64, 127], [-1.0, 0.0, 0.5, 127 / 128]),
    np.uint8: ([0, 128, 192, 255], [-1.0, 0.0, 0.5, 127 / 128]),
    np.int16: ([-32768, 0, 16384, 32767], [-1.0, 0.0, 0.5, 32767 / 32768]),
    np.uint16: ([0, 32768, 49152, 65535], [-1.0, 0.0, 0.5, 32767 / 32768]),
    np.int32: ([-(2**31), 0, 2**30, 2**31 - 1], [-1.0, 0.0, 0.5, 1.0]),  # (2**31-1)/2**31 rounds to 1 in f32
    np.uint32: ([0, 2**31, 3 * 2**30, 2**32 - 1], [-1.0, 0.0, 0.5, 1.0]),
    np.float16: ([-3.0, 0.0, 0.5, 1000.0], [-3.0, 0.0, 0.5, 1000.0]),
    np.float32: ([-3.0, 0.0, 0.5, 1e6], [-3.0, 0.0, 0.5, 1e6]),
    np.float64: ([-3.0, 0.0, 0.5, 1e6], [-3.0, 0.0, 0.5, 1e6]),
}


@pytest.mark.parametrize("dtype", list(TABLE), ids=lambda d: np.dtype(d).name)
def test_rule_table(dtype):
    x, want = TABLE[dtype]
    a = np.array(x, dtype)
    got = to_float(a)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, np.array(want, np.float32))
    # "float": integers as they are; an explicit input_scale multiplies every dtype
    np.testing.assert_array_equal(to_float(a, "float"), a.astype(np.float32))
    np.testing.assert_array_equal(to_float(a, "full_scale", 0.5), (a.astype(np.float64) * 0.5).astype(np.float32))


def test_legacy_rule_is_the_old_runtime():
    assert scale_offset(np.int16, LEGACY) == (1 / 32768, 0.0)
    assert scale_offset(np.int32, LEGACY) == (2.0**-31, 0.0)
    for t in (np.int8, np.uint8, np.uint16, np.uint32, np.float16):
        assert scale_offset(t, LEGACY) == (1.0, 0.0)


@pytest.mark.parametrize("dtype", [np.int64, np.uint64])
def test_64bit_integers_need_an_explicit_scale(dtype):
    a = np.array([1, 2**40], dtype)
    for rule in ("full_scale", "float", LEGACY):
        with pytest.raises(InputError, match="input_scale"):
            to_float(a, rule)
    np.testing.assert_array_equal(to_float(a, input_scale=2.0**-40), np.array([2.0**-40, 1.0], np.float32))


@pytest.mark.parametrize("bad", [np.array([True]), np.array([1 + 1j]), np.array(["x"])])
def test_other_dtypes_refused(bad):
    with pytest.raises(InputError, match="dtype"):
        to_float(bad)


# -- both paths, same values ----------------------------------------------------------------------
def _with_rule(path: Path, rule: str | None):
    b = load_bundle(path)
    if rule is None:
        b.manifest.pop("input_scaling", None)
    else:
        b.manifest["input_scaling"] = rule
    return b


def _ints(dtype, n: int = 3000) -> np.ndarray:
    sig = noise_recording(seconds=n / 4000.0, seed=3).data[:n]
    d = np.dtype(dtype)
    if d.kind == "f":
        return sig.astype(d)
    half = 2 ** (8 * d.itemsize - 1)
    v = np.clip(np.round(sig / 8.0 * half), -half, half - 1)  # ~1/8 of full scale
    return (v + (half if d.kind == "u" else 0)).astype(d)


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.float16,
                                   np.float32, np.float64], ids=lambda d: np.dtype(d).name)
def test_file_read_and_push_give_the_same_values(tmp_path, small_bundle, dtype):
    x = _ints(dtype)
    p = tmp_path / "x.npy"
    np.save(p, x)
    rec = read_recording(p, fs=4000)
    np.testing.assert_array_equal(rec.data, to_float(x))
    assert rec.input_scaling == ("full_scale" if np.dtype(dtype).kind in "iu" else "float")
    rt_file = Runtime(_with_rule(small_bundle, "full_scale"))
    rt_push = Runtime(_with_rule(small_bundle, "full_scale"))
    ref = [e.score for e in rt_file.push(rec.data)]
    got = [e.score for e in rt_push.push(x)]
    assert len(ref) > 10
    np.testing.assert_allclose(got, ref, rtol=1e-6)


def test_wav_and_npz_use_the_same_rule(tmp_path):
    wavfile = pytest.importorskip("scipy.io.wavfile")
    for dtype in (np.uint8, np.int16, np.int32):
        x = _ints(dtype, 500)
        wavfile.write(tmp_path / "x.wav", 4000, x)
        np.savez(tmp_path / "x.npz", data=x, fs=4000.0)
        w, z = read_recording(tmp_path / "x.wav"), read_recording(tmp_path / "x.npz")
        np.testing.assert_array_equal(w.data, to_float(x))
        np.testing.assert_array_equal(z.data, to_float(x))


def test_reader_input_scale_and_int64(tmp_path):
    p = tmp_path / "c.npy"
    np.save(p, np.arange(10, dtype=np.int64).reshape(-1, 1) * 1000)
    with pytest.raises(InputError, match=r"c\.npy.*input_scale"):
        read_recording(p, fs=10)
    rec = read_recording(p, fs=10, input_scale=1e-3)
    assert rec.data[:, 0].tolist() == list(range(10)) and rec.input_scaling == "float"
    with pytest.raises(InputError, match="input_scale"):
        read_recording(p, fs=10, input_scale=float("nan"))


# -- the bundle records the training input's rule; Runtime applies it --------------------------------
def test_bundle_records_float_training_and_push_takes_counts_as_is(tmp_path):
    """Issue #18 item 2: a model trained on raw-count floats scores raw int16 counts as counts."""
    from edgefault.device.spec import FeatureSpec
    from edgefault.train.anomaly import pack_gaussian, train_gaussian

    rec = noise_recording()
    counts = np.round(rec.data * 3000).astype(np.float32)  # ADC counts, stored as floats
    rec = type(rec)(data=counts, fs=rec.fs, channels=rec.channels, path="counts")
    spec = FeatureSpec.for_anomaly(rec.fs, rec.channels, window=256, hop=128, n_bands=8)
    b = pack_gaussian(train_gaussian([rec], spec, target_far=0.02), tmp_path / "c.efb")
    assert b.manifest["input_scaling"] == "float"
    live = np.round(noise_recording(seed=9).data[:8000] * 3000).astype(np.int16)
    ev_int = Runtime(tmp_path / "c.efb").push(live)
    ev_f = Runtime(tmp_path / "c.efb").push(live.astype(np.float32))
    np.testing.assert_allclose([e.score for e in ev_int], [e.score for e in ev_f], rtol=1e-6)
    assert np.mean([e.anomaly for e in ev_int]) < 0.2
    # an older bundle (no entry) keeps the earlier rule: int16 / 32768, so the counts look tiny
    old = Runtime(_with_rule(tmp_path / "c.efb", None)).push(live)
    ev_s = Runtime(tmp_path / "c.efb").push(live.astype(np.float32) / 32768)
    np.testing.assert_allclose([e.score for e in old], [e.score for e in ev_s], rtol=1e-6)


def test_bundle_records_integer_training(tmp_path):
    from edgefault.device.spec import FeatureSpec
    from edgefault.train.anomaly import pack_gaussian, train_gaussian

    x = _ints(np.int16, 40000)
    np.save(tmp_path / "pcm.npy", x)
    rec = read_recording(tmp_path / "pcm.npy", fs=4000)
    assert rec.input_scaling == "full_scale"
    spec = FeatureSpec.for_anomaly(rec.fs, rec.channels, window=256, hop=128, n_bands=8)
    b = pack_gaussian(train_gaussian([rec], spec, target_far=0.02), tmp_path / "p.efb")
    assert b.manifest["input_scaling"] == "full_scale"
    rt = Runtime(tmp_path / "p.efb")
    np.testing.assert_allclose([e.score for e in rt.push(x[:6000])],
                               [e.score for e in Runtime(tmp_path / "p.efb").push(rec.data[:6000])], rtol=1e-6)
    with pytest.raises(InputError, match="input_scale"):
        rt.push(x[:100].astype(np.int64))
    assert len(Runtime(tmp_path / "p.efb", input_scale=1 / 32768).push(x[:6000].astype(np.int64))) > 0


def _reseal(src: Path, dst: Path, **changes) -> None:
    with zipfile.ZipFile(src) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    man = json.loads(members[MANIFEST])
    man.update(changes)
    man["digest"] = manifest_digest(man)
    members[MANIFEST] = json.dumps(man).encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for n, d in members.items():
            zf.writestr(n, d)
    dst.write_bytes(buf.getvalue())


@pytest.mark.parametrize("bad", ["legacy", "int16", 1, None])
def test_bundle_input_scaling_checked_on_load(tmp_path, small_bundle, bad):
    assert load_bundle(small_bundle).manifest["input_scaling"] == "float"
    p = tmp_path / "bad.efb"
    _reseal(small_bundle, p, input_scaling=bad)
    with pytest.raises(BundleError, match=r"bad\.efb.*input_scaling"):
        load_bundle(p)
