"""edgefault.io.readers / edgefault.io.matv5 against independent readers (scipy.io, wave, numpy,
pyarrow), on written files, MATLAB-written files shipped with scipy, and real CWRU data."""

from __future__ import annotations

import csv
import glob
import math
import os
import struct
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from edgefault.io.matv5 import MatFile, loadmat
from edgefault.errors import InputError, MissingDependencyError
from edgefault.io.readers import Recording, available_channels, read_recording
from edgefault.io.resample import resample

sio = pytest.importorskip("scipy.io")
wavfile = pytest.importorskip("scipy.io.wavfile")

RNG = np.random.default_rng(7)
SCIPY_MAT_DIR = Path(sio.__file__).parent / "matlab" / "tests" / "data"


def _check_recording(rec: Recording) -> None:
    assert rec.data.dtype == np.float32 and rec.data.flags.c_contiguous
    assert rec.data.ndim == 2 and rec.data.shape[1] == len(rec.channels)
    assert rec.duration == pytest.approx(rec.data.shape[0] / rec.fs)


# -- MATLAB v5 parser ----------------------------------------------------------------------
def _mat_payload() -> dict[str, object]:
    return {
        "a": RNG.standard_normal((7, 1)),  # 1-char name: small data element format
        "single_col": RNG.standard_normal((50, 1)).astype(np.float32),
        "row": RNG.standard_normal((1, 33)),
        "mat3d": RNG.standard_normal((2, 3, 4)),
        "fortran": np.asfortranarray(RNG.standard_normal((5, 6))),
        "i8": np.array([[-128, 0, 127]], np.int8),
        "u8": np.array([[0, 255]], np.uint8),
        "i16": np.array([[-32768, 5, 32767]], np.int16),
        "u16": np.array([[0, 65535]], np.uint16),
        "i32": np.array([[-(2**31), 2**31 - 1]], np.int32),
        "u32": np.array([[0, 2**32 - 1]], np.uint32),
        "i64": np.array([[-(2**63), 2**63 - 1]], np.int64),
        "u64": np.array([[0, 2**64 - 1]], np.uint64),
        "flag": np.array([[True, False, True]]),
        "scalar": 3.5,
        "with_nan": np.array([[1.0, np.nan, np.inf]]),
        "empty": np.zeros((0, 3)),
        "text": "hello",
        "cells": np.array([np.arange(3), "x"], dtype=object),
        "st": {"f": 1.0},
        "cplx": np.array([[1 + 2j]]),
    }


@pytest.mark.parametrize("compress", [False, True])
def test_matv5_vs_scipy_savemat(tmp_path, compress):
    p = tmp_path / f"all_{compress}.mat"
    sio.savemat(p, _mat_payload(), do_compression=compress)
    ref = sio.loadmat(p)
    # mat_dtype=True (class dtype, as MATLAB loads it) warns on complex: leave "cplx" out
    ref.update(sio.loadmat(p, mat_dtype=True, variable_names=[k for k in ref if k != "cplx"]))
    mf = MatFile(str(p))
    listed = {v.name: v for v in mf.variables}
    assert set(listed) == {k for k in ref if not k.startswith("__")}
    for name, v in listed.items():
        if name in ("text", "cells", "st", "cplx"):
            assert not v.supported and v.reason
            with pytest.raises(InputError, match=name):
                mf.load(name)
            continue
        got = mf.load(name)
        want = ref[name]
        assert v.supported and v.shape == want.shape
        assert got.dtype == want.dtype.newbyteorder("=") and got.shape == want.shape
        np.testing.assert_array_equal(got, want)
    assert {v.mclass for v in mf.variables if not v.supported} == {
        "char", "cell", "struct", "double"}
    assert set(loadmat(str(p))) == {n for n, v in listed.items() if v.supported}


def _scipy_mat_files() -> list[str]:
    files = sorted(glob.glob(str(SCIPY_MAT_DIR / "*.mat")))
    keep = ["big_endian", "little_endian", "testdouble_", "testmatrix_", "testminus_",
            "testmulti_", "test3dmatrix_", "testbool_", "test_skip_variable",
            "miuint32_for_miint32", "some_functions"]
    return [f for f in files if any(os.path.basename(f).startswith(k) for k in keep)
            and "_4.2c_" not in f]


@pytest.mark.parametrize("path", _scipy_mat_files(), ids=os.path.basename)
def test_matv5_on_matlab_written_files(path):
    # Files written by MATLAB 6.1 .. 7.4 on Solaris (big-endian) and Linux, compressed or not.
    ref = sio.loadmat(path, mat_dtype=True)
    mf = MatFile(path)
    numeric = [v for v in mf.variables if v.supported]
    assert numeric, "each chosen file has at least one numeric variable"
    for v in numeric:
        want = ref[v.name]
        got = mf.load(v.name)
        assert got.dtype == want.dtype.newbyteorder("=")
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("name,match", [
    ("testhdf5_7.4_GLNX86.mat", "v7.3.*HDF5.*-v7"),
    ("testmatrix_4.2c_SOL2.mat", "not a MATLAB v5.*v4"),
    ("corrupted_zlib_checksum.mat", "corrupt"),
    ("malformed1.mat", "truncated"),
])
def test_matv5_refuses_other_and_broken_files(name, match):
    path = SCIPY_MAT_DIR / name
    if not path.is_file():
        pytest.skip(f"{name} not shipped with this scipy")
    with pytest.raises(InputError, match=match):
        MatFile(str(path)).load(MatFile(str(path)).variables[0].name)


@pytest.mark.parametrize("compress", [False, True])
def test_mat_truncated_mid_variable(tmp_path, compress):
    p = tmp_path / "full.mat"
    sio.savemat(p, {"X001_DE_time": RNG.standard_normal((4000, 1))}, do_compression=compress)
    raw = p.read_bytes()
    cut = tmp_path / "cut.mat"
    cut.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(InputError, match=rf"truncated.*X001_DE_time.*needs {len(raw)} bytes"):
        read_recording(cut, fs=12000)
    header_only = tmp_path / "hdr.mat"
    header_only.write_bytes(raw[:100])
    with pytest.raises(InputError, match="too short"):
        read_recording(header_only, fs=12000)


# -- .mat recordings (CWRU naming) -----------------------------------------------------------
def _cwru_like(path: Path, compress: bool = False) -> dict[str, np.ndarray]:
    v = {
        "X098_DE_time": RNG.standard_normal((3000, 1)),
        "X098_FE_time": RNG.standard_normal((3000, 1)),
        "X099_DE_time": RNG.standard_normal((2500, 1)).astype(np.float32),
        "X099_FE_time": RNG.standard_normal((2500, 1)).astype(np.float32),
        "X099_BA_time": RNG.standard_normal((2500, 1)).astype(np.float32),
        "X099RPM": np.array([[1797.0]]),
        "notes": "bearing test",
    }
    sio.savemat(path, v, do_compression=compress)
    return v


@pytest.mark.parametrize("compress", [False, True])
def test_mat_record_preference_and_channel_names(tmp_path, compress):
    p = tmp_path / "99.mat"
    v = _cwru_like(p, compress)
    assert available_channels(p) == ("DE", "FE", "BA", "X098_DE_time", "X098_FE_time")
    rec = read_recording(p, default_fs=12000)
    _check_recording(rec)
    assert rec.channels == ("DE", "FE", "BA") and rec.rpm == 1797.0 and rec.fs == 12000
    assert rec.source_fs is None and rec.path == str(p)
    np.testing.assert_array_equal(rec.data[:, 1], v["X099_FE_time"][:, 0])
    rec = read_recording(p, channels="fe, de", fs=12000)
    assert rec.channels == ("FE", "DE")
    np.testing.assert_array_equal(rec.data[:, 1], v["X099_DE_time"][:, 0])
    rec = read_recording(p, channels=["X099_ba_time"], fs=12000)
    assert rec.channels == ("BA",)
    rec = read_recording(p, channels=["X098_DE_time", "X098_FE_time"], fs=12000)
    assert rec.data.dtype == np.float32 and rec.rpm == 1797.0  # the file's only RPM
    np.testing.assert_array_equal(rec.data[:, 0], v["X098_DE_time"][:, 0].astype(np.float32))
    with pytest.raises(InputError, match="different lengths"):
        read_recording(p, channels="DE,X098_DE_time", fs=12000)


def test_mat_record_rank_by_file_name(tmp_path):
    # Without the number in the name, X099 wins by having an RPM variable; a file named
    # 98.mat prefers X098 (its own record), even though it has fewer channels and no RPM.
    p = tmp_path / "98.mat"
    _cwru_like(p)
    assert available_channels(p)[:2] == ("DE", "FE")
    rec = read_recording(p, fs=1000)
    assert rec.data.shape == (3000, 2)
    q = tmp_path / "inner_race.mat"
    _cwru_like(q)
    assert read_recording(q, fs=1000).data.shape == (2500, 3)


def test_mat_generic_vectors_and_errors(tmp_path):
    p = tmp_path / "plain.mat"
    sio.savemat(p, {"vib": np.arange(10.0), "cur": np.arange(10.0)[:, None] * 2,
                    "m": np.ones((3, 4)), "c": np.array(["x"], dtype=object)})
    rec = read_recording(p, fs=100)
    assert set(rec.channels) == {"vib", "cur"}
    with pytest.raises(InputError, match=r"no channel 'm' \(a double array of shape \(3, 4\)"):
        read_recording(p, channels="m", fs=100)
    with pytest.raises(InputError, match=r"no channel 'c' \(a cell array"):
        read_recording(p, channels="c", fs=100)


def test_mat_missing_channel_and_rate(tmp_path):
    p = tmp_path / "1.mat"
    sio.savemat(p, {"X001_DE_time": np.ones((100, 1))})
    with pytest.raises(InputError) as e:
        read_recording(p, channels="FE", default_fs=12000)
    msg = str(e.value)
    assert str(p) in msg and "'FE'" in msg and "available: DE" in msg
    with pytest.raises(InputError, match="does not store its sample rate.*fs="):
        read_recording(p)
    rec = read_recording(p, fs=12000)  # fs alone is the file's rate: no resampling
    assert rec.fs == 12000 and rec.source_fs is None and rec.data.shape == (100, 1)


def test_mat_resamples_with_default_fs(tmp_path):
    p = tmp_path / "5.mat"
    x = RNG.standard_normal((4800, 1)).astype(np.float32)
    sio.savemat(p, {"X005_DE_time": x})
    rec = read_recording(p, fs=12000, default_fs=48000)
    assert rec.fs == 12000 and rec.source_fs == 48000 and rec.data.shape == (1200, 1)
    np.testing.assert_array_equal(rec.data, resample(x, 48000, 12000))


# -- real CWRU files -----------------------------------------------------------------------
def _cwru_manifest(shared: Path) -> list[dict[str, str]]:
    with open(shared / "cwru" / "manifest.csv", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.data
def test_cwru_every_variable_matches_scipy(shared_data):
    rows = _cwru_manifest(shared_data)
    picks = [r for r in rows if "normal" in r["path"]][:1] + [
        r for r in rows if "normal" not in r["path"]][::max(1, len(rows) // 4)][:4]
    for row in picks:
        path = shared_data / row["path"]
        ref = sio.loadmat(path, mat_dtype=True)
        mf = MatFile(str(path))
        names = {v.name for v in mf.variables if v.supported}
        assert names == {k for k in ref if not k.startswith("__")}
        for name in names:
            got, want = mf.load(name), ref[name]
            assert got.dtype == want.dtype.newbyteorder("=")
            np.testing.assert_array_equal(got, want)
        rec = read_recording(path, fs=float(row["fs_hz"]))
        assert rec.data.shape == (int(row["n_samples"]), len(rec.channels))
        assert rec.rpm is not None and rec.rpm == pytest.approx(float(row["rpm"]), abs=1)


@pytest.mark.data
def test_cwru_normal_48k_resampled_to_12k(shared_data):
    path = shared_data / "cwru" / "normal_48k" / "0hp" / "normal.mat"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    full = read_recording(path, default_fs=48000)
    rec = read_recording(path, fs=12000, default_fs=48000)
    assert full.fs == 48000 and rec.fs == 12000 and rec.source_fs == 48000
    assert rec.channels == full.channels == ("DE", "FE")
    assert rec.data.shape == (math.ceil(full.data.shape[0] / 4), 2)
    np.testing.assert_array_equal(rec.data, resample(full.data, 48000, 12000))
    # energy below 4.8 kHz is kept: compare band power of both by FFT
    f_full = np.abs(np.fft.rfft(full.data[:, 0].astype(np.float64))) ** 2
    f_rec = np.abs(np.fft.rfft(rec.data[:, 0].astype(np.float64))) ** 2
    band_full = f_full[: int(4800 / 48000 * full.data.shape[0])].sum() / full.data.shape[0] ** 2
    band_rec = f_rec[: int(4800 / 12000 * rec.data.shape[0])].sum() / rec.data.shape[0] ** 2
    assert band_rec == pytest.approx(band_full, rel=0.02)


# -- WAV -------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype,scale", [
    (np.int16, 2.0**15), (np.int32, 2.0**31), (np.float32, 1.0), (np.float64, 1.0),
    (np.uint8, None),
])
@pytest.mark.parametrize("nch", [1, 3])
def test_wav_vs_scipy(tmp_path, dtype, scale, nch):
    p = tmp_path / "x.wav"
    if np.dtype(dtype).kind == "f":
        x = RNG.uniform(-1, 1, (1001, nch)).astype(dtype)
    else:
        info = np.iinfo(dtype)
        x = RNG.integers(info.min, info.max, (1001, nch), endpoint=True).astype(dtype)
    wavfile.write(p, 22050, x if nch > 1 else x[:, 0])
    fs, ref = wavfile.read(p)
    ref = ref.reshape(len(ref), -1)
    want = (ref.astype(np.float64) - 128) / 128 if scale is None else ref / scale
    rec = read_recording(p)
    _check_recording(rec)
    assert rec.fs == fs == 22050 and rec.channels == tuple(f"ch{i}" for i in range(nch))
    np.testing.assert_allclose(rec.data, want.astype(np.float32), rtol=0, atol=0)
    assert rec.data.min() >= -1 and rec.data.max() <= 1


def test_wav_24bit_via_wave_module(tmp_path):
    p = tmp_path / "s24.wav"
    ints = RNG.integers(-(2**23), 2**23, (777, 2))
    raw = bytearray()
    for v in ints.reshape(-1):
        raw += int(v).to_bytes(4, "little", signed=True)[:3]
    with wave.open(str(p), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(3)
        w.setframerate(48000)
        w.writeframes(bytes(raw))
    fs, ref = wavfile.read(p)  # scipy: 24-bit as int32, left-justified
    rec = read_recording(p, channels="1,ch0")
    assert rec.fs == fs == 48000 and rec.channels == ("ch1", "ch0")
    np.testing.assert_array_equal(rec.data, (ints[:, [1, 0]] / 2.0**23).astype(np.float32))
    np.testing.assert_array_equal(rec.data, (ref[:, [1, 0]] / 2.0**31).astype(np.float32))


def _extensible_wav(path: Path, data: np.ndarray, fs: int, subformat: int) -> None:
    n, nch = data.shape
    width = data.dtype.itemsize
    guid = struct.pack("<H", subformat) + b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
    fmt = struct.pack("<HHIIHHHHI", 0xFFFE, nch, fs, fs * nch * width, nch * width, 8 * width,
                      22, 8 * width, 0) + guid
    body = data.astype("<" + data.dtype.str[1:]).tobytes()
    riff = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    riff += b"LIST" + struct.pack("<I", 5) + b"abcde\x00"  # odd-sized chunk with pad byte
    riff += b"data" + struct.pack("<I", len(body)) + body
    path.write_bytes(b"RIFF" + struct.pack("<I", len(riff)) + riff)


@pytest.mark.parametrize("dtype,subformat", [(np.int16, 1), (np.float32, 3), (np.int32, 1)])
def test_wav_extensible(tmp_path, dtype, subformat):
    p = tmp_path / "ext.wav"
    x = (RNG.uniform(-0.9, 0.9, (300, 2)) * (2 ** (8 * np.dtype(dtype).itemsize - 1)
                                            if subformat == 1 else 1)).astype(dtype)
    _extensible_wav(p, x, 16000, subformat)
    fs, ref = wavfile.read(p)
    np.testing.assert_array_equal(ref, x)
    rec = read_recording(p)
    scale = 2.0 ** (8 * np.dtype(dtype).itemsize - 1) if subformat == 1 else 1.0
    assert rec.fs == 16000
    np.testing.assert_array_equal(rec.data, (x / scale).astype(np.float32))


def test_wav_truncated_and_bad(tmp_path):
    p = tmp_path / "t.wav"
    wavfile.write(p, 8000, np.zeros((1000, 2), np.int16))
    raw = p.read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(raw[:-101])
    with pytest.raises(InputError, match=r"truncated.*declares 4000 bytes.*3899.*4044 bytes"):
        read_recording(cut)
    (tmp_path / "junk.wav").write_bytes(b"hello world, not a wav")
    with pytest.raises(InputError, match="not a WAV"):
        read_recording(tmp_path / "junk.wav")
    alaw = bytearray(raw)
    alaw[20:22] = (6).to_bytes(2, "little")  # format tag 6 = A-law
    (tmp_path / "alaw.wav").write_bytes(bytes(alaw))
    with pytest.raises(InputError, match="format tag 0x0006.*not supported"):
        read_recording(tmp_path / "alaw.wav")
    zero = tmp_path / "zero.wav"
    wavfile.write(zero, 8000, np.zeros((0,), np.int16))
    with pytest.raises(InputError, match="zero-length"):
        read_recording(zero)
    with pytest.raises(InputError, match="no channel 'ch5'.*ch0, ch1"):
        read_recording(p, channels="ch5")


def test_wav_resampled_on_read(tmp_path):
    p = tmp_path / "r.wav"
    x = RNG.uniform(-1, 1, (4800, 1)).astype(np.float32)
    wavfile.write(p, 48000, x)
    rec = read_recording(p, fs=16000, default_fs=1234)  # the file's rate wins over default_fs
    assert rec.fs == 16000 and rec.source_fs == 48000
    np.testing.assert_array_equal(rec.data, resample(x, 48000, 16000))
    same = read_recording(p, fs=48000)
    assert same.source_fs is None and same.data.shape == (4800, 1)


# -- CSV -------------------------------------------------------------------------------------
def test_csv_header_time_and_delimiters(tmp_path):
    x = RNG.standard_normal((500, 2))
    t = np.arange(500) / 2560.0
    p = tmp_path / "a.csv"
    np.savetxt(p, np.column_stack([t, x]), delimiter=",", header="time_s,acc x,acc_y",
               comments="", fmt="%.9g")
    rec = read_recording(p)
    _check_recording(rec)
    assert rec.fs == 2560 and rec.channels == ("acc x", "acc_y")
    ref = np.loadtxt(p, delimiter=",", skiprows=1)
    np.testing.assert_array_equal(rec.data, ref[:, 1:].astype(np.float32))
    assert read_recording(p, channels="ACC_Y").channels == ("acc_y",)
    q = tmp_path / "b.csv"
    q.write_text("# exported\n1;2\n\n3;nan\n")
    rec = read_recording(q, fs=10)
    assert rec.channels == ("ch0", "ch1")
    np.testing.assert_array_equal(rec.data, np.array([[1, 2], [3, np.nan]], np.float32))
    w = tmp_path / "c.csv"
    w.write_text("1 2 3\n4 5 6\n")
    assert read_recording(w, fs=1).data.shape == (2, 3)
    tab = tmp_path / "d.csv"
    tab.write_text("t\tv\n0\t1\n0.5\t2\n1.0\t3\n")
    assert read_recording(tab).fs == 2


def test_csv_errors(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("a,b\n1,2\n3,4\n5,oops\n")
    with pytest.raises(InputError, match=r"line 4, column 2 \('b'\): 'oops' is not a number"):
        read_recording(p, fs=1)
    p.write_text("a,b\n1,2\n3\n")
    with pytest.raises(InputError, match="line 3: 1 values, expected 2"):
        read_recording(p, fs=1)
    p.write_text("t,a\n0,1\n0.1,1\n0.35,1\n0.4,1\n")
    with pytest.raises(InputError, match="not uniformly sampled"):
        read_recording(p)
    p.write_text("t,a\n0,1\n0.1,1\n0.1,1\n")
    with pytest.raises(InputError, match="does not increase at row 3"):
        read_recording(p)
    p.write_text("a,b\n")
    with pytest.raises(InputError, match="zero-length"):
        read_recording(p, fs=1)
    p.write_text("# nothing\n\n")
    with pytest.raises(InputError, match="holds no data"):
        read_recording(p, fs=1)
    p.write_text("a,A\n1,2\n")
    with pytest.raises(InputError, match="duplicate column"):
        read_recording(p, fs=1)


# -- NPY / NPZ -------------------------------------------------------------------------------
def test_npy(tmp_path):
    x = RNG.standard_normal((300, 2))
    p = tmp_path / "x.npy"
    np.save(p, x)
    rec = read_recording(p, default_fs=100)
    _check_recording(rec)
    np.testing.assert_array_equal(rec.data, np.load(p).astype(np.float32))
    np.save(p, np.arange(10, dtype=np.int16))
    # integers follow edgefault.samples (full scale 1.0), or an explicit input_scale
    assert read_recording(p, fs=5).data[:, 0].tolist() == [i / 32768 for i in range(10)]
    assert read_recording(p, fs=5, input_scale=1).data[:, 0].tolist() == list(range(10))
    np.save(p, x.T)
    with pytest.raises(InputError, match="transpose"):
        read_recording(p, fs=1)
    np.save(p, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match="pickle"):
        read_recording(p, fs=1)
    np.save(p, np.zeros((0,)))
    with pytest.raises(InputError, match="zero-length"):
        read_recording(p, fs=1)
    np.save(p, x)
    raw = p.read_bytes()
    p.write_bytes(raw[:-8])
    with pytest.raises(InputError, match=rf"truncated.*needs {len(raw)} bytes.*has {len(raw) - 8}"):
        read_recording(p, fs=1)
    np.save(p, np.zeros((3, 3), complex))
    with pytest.raises(InputError, match="complex"):
        read_recording(p, fs=1)


def test_npz_layouts(tmp_path):
    x = RNG.standard_normal((200, 3)).astype(np.float32)
    p = tmp_path / "d.npz"
    np.savez(p, data=x, fs=np.float64(2048), channels=np.array(["x", "y", "z"]))
    rec = read_recording(p, channels="z,x")
    assert rec.fs == 2048 and rec.channels == ("z", "x")
    np.testing.assert_array_equal(rec.data, x[:, [2, 0]])
    q = tmp_path / "c.npz"
    np.savez_compressed(q, DE=x[:, 0].astype(np.float64), FE=x[:, 1])
    assert available_channels(q) == ("DE", "FE")
    rec = read_recording(q, fs=100)
    np.testing.assert_array_equal(rec.data, x[:, :2])
    np.savez(q, DE=x[:, 0], FE=x[:50, 1])
    with pytest.raises(InputError, match="different lengths"):
        read_recording(q, fs=100)
    np.savez(q, data=x, fs=np.float64(np.nan))
    with pytest.raises(InputError, match="entry 'fs'.*positive finite"):
        read_recording(q)
    np.savez(q, data=x, channels=np.array(["a"]))
    with pytest.raises(InputError, match="'channels'.*3 strings"):
        read_recording(q, fs=1)
    np.savez(q, a=np.array([None, 1], dtype=object))
    with pytest.raises(InputError, match="pickle"):
        read_recording(q, fs=1)
    np.savez(q, a=np.ones((3, 3)))
    with pytest.raises(InputError, match="one numeric 1-D array per channel"):
        read_recording(q, fs=1)
    raw = p.read_bytes()
    p.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(InputError, match="truncated"):
        read_recording(p)


# -- Parquet ---------------------------------------------------------------------------------
def test_parquet(tmp_path):
    pa = pytest.importorskip("pyarrow", reason="pyarrow not installed (pip install edgefault[parquet])")
    pq = pytest.importorskip("pyarrow.parquet")
    x = RNG.standard_normal((400, 2))
    t = np.arange(400) / 1000.0
    table = pa.table({"time": t, "a": x[:, 0], "b": x[:, 1].astype(np.float32),
                      "label": ["n"] * 400, "k": np.arange(400, dtype=np.int32)})
    p = tmp_path / "x.parquet"
    pq.write_table(table, p)
    assert available_channels(p) == ("a", "b", "k")
    rec = read_recording(p, channels="a,b")
    ref = pq.read_table(p)
    assert rec.fs == 1000
    np.testing.assert_array_equal(rec.data[:, 0], ref["a"].to_numpy().astype(np.float32))
    np.testing.assert_array_equal(rec.data[:, 1], ref["b"].to_numpy())
    ts = pa.table({"time": pa.array((t * 1e9).astype("int64")).cast(pa.timestamp("ns")),
                   "v": pa.array([1.0, None] * 200)})
    q = tmp_path / "ts.pq"
    pq.write_table(ts, q)
    rec = read_recording(q)
    assert rec.fs == 1000 and np.isnan(rec.data[1, 0])
    p.write_bytes(p.read_bytes()[:100])
    with pytest.raises(InputError, match="Parquet"):
        read_recording(p)


def test_parquet_without_pyarrow(tmp_path, monkeypatch):
    p = tmp_path / "x.parquet"
    p.write_bytes(b"PAR1 not really")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(MissingDependencyError, match=r"pip install edgefault\[parquet\]"):
        read_recording(p, fs=1)


# -- common bad input ------------------------------------------------------------------------
@pytest.mark.parametrize("ext", [".mat", ".wav", ".csv", ".npy", ".npz", ".parquet"])
def test_empty_files(tmp_path, ext):
    p = tmp_path / f"e{ext}"
    p.write_bytes(b"")
    with pytest.raises(InputError, match=r"empty \(0 bytes\)"):
        read_recording(p, fs=1)


def test_paths_formats_and_arguments(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_recording(tmp_path / "missing.wav")
    with pytest.raises(InputError, match="extension '.xyz'"):
        read_recording(tmp_path / "a.xyz")
    with pytest.raises(InputError, match="directory"):
        read_recording(tmp_path, format="csv")
    p = tmp_path / "data.txt"
    p.write_text("1,2\n3,4\n")
    assert read_recording(p, format="CSV", fs=1).data.shape == (2, 2)
    with pytest.raises(InputError, match="format='xls'"):
        read_recording(p, format="xls")
    for bad in (0, -1, float("nan"), float("inf"), "fast"):
        with pytest.raises(InputError, match="fs must be a positive finite"):
            read_recording(p, format="csv", fs=bad)
        with pytest.raises(InputError, match="default_fs must be"):
            read_recording(p, format="csv", default_fs=bad)
    with pytest.raises(InputError, match="requested twice"):
        read_recording(p, format="csv", fs=1, channels="ch0,0")
    with pytest.raises(InputError, match="names no channel"):
        read_recording(p, format="csv", fs=1, channels=" , ")
    with pytest.raises(InputError, match="channels must be"):
        read_recording(p, format="csv", fs=1, channels=3.5)
    assert read_recording(p, format="csv", fs=1, channels=[1]).channels == ("ch1",)


# -- where the rate comes from (Recording.fs_source) and the spectral check (issue #18 item 1) ----
def test_rate_source_header(tmp_path):
    w = tmp_path / "a.wav"
    wavfile.write(w, 8000, (RNG.standard_normal(800) * 1000).astype(np.int16))
    rec = read_recording(w, model_fs=8000)  # the file's own rate: no refusal, no assumption
    assert rec.fs == 8000 and rec.fs_source == "header" and rec.rate_warning is None
    z = tmp_path / "a.npz"
    np.savez(z, data=RNG.standard_normal((100, 2)), fs=np.float64(2000))
    rec = read_recording(z, model_fs=1000, default_fs=500)  # header beats default_fs
    assert rec.fs == 1000 and rec.source_fs == 2000 and rec.fs_source == "header"


def test_rate_source_manifest_and_option(tmp_path):
    p = tmp_path / "a.npy"
    np.save(p, RNG.standard_normal((200, 1)))
    rec = read_recording(p, model_fs=1000, default_fs=2000, default_fs_source="manifest")
    assert rec.fs_source == "manifest" and rec.source_fs == 2000 and rec.fs == 1000
    rec = read_recording(p, model_fs=1000, default_fs=1000)
    assert rec.fs_source == "option" and rec.source_fs is None
    rec = read_recording(p, fs=500)  # fs alone is the file's rate
    assert rec.fs_source == "option" and rec.fs == 500
    with pytest.raises(InputError, match="default_fs_source"):
        read_recording(p, default_fs=1, default_fs_source="guess")
    with pytest.raises(InputError, match="not both"):
        read_recording(p, fs=1, model_fs=1)


def test_rate_source_model_needs_assume_flag(tmp_path):
    p = tmp_path / "a.npy"
    np.save(p, RNG.standard_normal((200, 1)))
    with pytest.raises(InputError) as e:
        read_recording(p, model_fs=1000)
    msg = str(e.value)
    assert str(p) in msg and "--fs" in msg and "--assume-model-rate" in msg and "assume_model_rate=True" in msg
    rec = read_recording(p, model_fs=1000, assume_model_rate=True)
    assert rec.fs == 1000 and rec.fs_source == "model" and rec.source_fs is None


def test_rate_source_cwru_naming(tmp_path):
    from edgefault.io.readers import cwru_rate_from_name

    d = tmp_path / "cwru" / "48k_drive_end" / "0hp"
    d.mkdir(parents=True)
    x = RNG.standard_normal((4800, 1)).astype(np.float32)
    sio.savemat(d / "109.mat", {"X109_DE_time": x, "X109RPM": np.array([[1797.0]])})
    rec = read_recording(d / "109.mat", model_fs=12000)  # resampled from the named 48 kHz
    assert rec.fs_source == "naming" and rec.source_fs == 48000 and rec.data.shape == (1200, 1)
    rec = read_recording(d / "109.mat", model_fs=12000, default_fs=12000)  # an explicit rate wins
    assert rec.fs_source == "option" and rec.source_fs is None
    sio.savemat(d / "normal_12k.mat", {"X097_DE_time": x})  # the file name beats the folder
    assert read_recording(d / "normal_12k.mat", model_fs=12000).fs_source == "naming"
    assert read_recording(d / "normal_12k.mat", model_fs=12000).source_fs is None
    sio.savemat(d / "vib.mat", {"vib": x})  # no CWRU variables: the rule does not apply
    with pytest.raises(InputError, match="--assume-model-rate"):
        read_recording(d / "vib.mat", model_fs=12000)
    np.save(d / "x.npy", x)  # nor to other formats
    with pytest.raises(InputError, match="--assume-model-rate"):
        read_recording(d / "x.npy", model_fs=12000)
    assert cwru_rate_from_name("/d/drive_end_12k/0hp/ball_007.mat") == 12000
    assert cwru_rate_from_name("/d/12k_fan_end/0hp/ball_007.mat") == 12000
    assert cwru_rate_from_name("/d/drive_end_12k/normal_48k.mat") == 48000
    assert cwru_rate_from_name("/d/112k/148kx/a.mat") is None  # tokens, not substrings
    assert cwru_rate_from_name("/d/12k_vs_48k/a.mat") is None  # the deciding part is ambiguous


@pytest.mark.data
def test_rate_source_cwru_naming_real(shared_data):
    rec = read_recording(shared_data / "cwru" / "normal_48k" / "0hp" / "normal.mat", channels="DE", model_fs=12000)
    assert rec.fs_source == "naming" and rec.source_fs == 48000 and rec.rate_warning is None
    assert read_recording(shared_data / "cwru" / "normal_48k" / "0hp" / "normal.mat").source_fs is None  # as is
    rec = read_recording(shared_data / "cwru" / "drive_end_12k" / "0hp" / "ball_007.mat", model_fs=12000)
    assert rec.fs_source == "naming" and rec.source_fs is None and rec.fs == 12000


@pytest.mark.data
def test_rate_fit_warns_on_48k_read_as_12k(shared_data):
    normal = shared_data / "cwru" / "normal_48k" / "0hp" / "normal.mat"
    wrong = read_recording(normal, channels="DE,FE", model_fs=12000, default_fs=12000)
    assert wrong.fs_source == "option" and wrong.rate_warning is not None
    assert "12000 Hz (option)" in wrong.rate_warning and "--fs" in wrong.rate_warning
    assert read_recording(normal, channels="DE", model_fs=12000, assume_model_rate=True,
                          default_fs=12000).rate_warning is not None
    right = read_recording(normal, channels="DE,FE", model_fs=12000)  # 48 kHz by its name
    assert right.rate_warning is None
    for f in sorted((shared_data / "cwru" / "drive_end_12k").glob("*/*.mat"))[::5]:
        assert read_recording(f, channels="DE,FE", model_fs=12000).rate_warning is None, f


def test_rate_fit_synthetic():
    from edgefault.io.readers import rate_fit

    x = RNG.standard_normal(65536)
    assert rate_fit(x, 12000) is None  # white: half the power in the upper half
    spec = np.fft.rfft(x)
    spec[len(spec) // 5:] = 0  # content up to 0.1 fs only, as a 48 kHz file read as 12 kHz
    low = np.fft.irfft(spec, n=x.size)
    assert rate_fit(low, 12000, "low.npy", "model") is not None
    assert rate_fit(low[:4000], 12000) is None  # too short to judge
    assert rate_fit(np.zeros(65536), 12000) is None
