"""Regression tests for the reader findings of bench/fuzz.py (issue #12): every refusal is an
InputError naming the file."""
from __future__ import annotations

import io
import math
import struct
import zipfile

import numpy as np
import pytest

from edgefault.errors import InputError
from edgefault.io.readers import available_channels, read_recording
from edgefault.io.resample import rational_ratio


def _npy_bytes(header: str, body: bytes = b"", version: tuple[int, int] = (1, 0)) -> bytes:
    h = header.encode("latin1")
    pad = 64 - (10 + len(h) + 1) % 64
    h = h + b" " * pad + b"\n"
    return b"\x93NUMPY" + bytes(version) + struct.pack("<H", len(h)) + h + body


def _npy_arr(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def _refused(path, match: str = "", **kw) -> InputError:
    with pytest.raises(InputError) as ei:
        read_recording(path, fs=100, **kw)
    assert str(path) in str(ei.value), ei.value
    assert match.lower() in str(ei.value).lower(), ei.value
    return ei.value


# -- NPY headers ---------------------------------------------------------------------------------
@pytest.mark.parametrize("header", [
    "{'descr': '<f8', 'fortran_order': False, 'shape': (3,",  # tokenize.TokenError (EOF in multi-line)
    "{'descr': '<f8', 'fortran_order': False, 'shape': (3,)) }",  # SyntaxError
    "{'descr': '<f8', 'fortran_order': False, 'shape': (-3,), }",  # negative dimension
    "{'descr': '<f8', 'fortran_order': False, 'shape': (2.5,), }",  # non-integer dimension
    "{'descr': '<f8', 'fortran_order': False, 'shape': (True,), }",
])
def test_npy_bad_header(tmp_path, header):
    p = tmp_path / "x.npy"
    p.write_bytes(_npy_bytes(header, b"\0" * 64))
    _refused(p, "valid .npy")
    q = tmp_path / "x.npz"
    with zipfile.ZipFile(q, "w") as zf:
        zf.writestr("a.npy", _npy_bytes(header, b"\0" * 64))
    _refused(q, "entry 'a'")


def test_npy_np_load_failure_after_the_header(tmp_path, monkeypatch):
    p = tmp_path / "x.npy"
    np.save(p, np.zeros((10, 2)))
    for exc in (ValueError("Cannot parse header"), SyntaxError("invalid syntax"), MemoryError("Unable to allocate")):
        def boom(*a, exc=exc, **k):
            raise exc
        monkeypatch.setattr(np, "load", boom)
        _refused(p, "valid .npy")


# -- NPZ members ---------------------------------------------------------------------------------
def _zip_member_patch(blob: bytes, offset_in_local: int, value: bytes) -> bytes:
    """Patch a field of the first local header and of its central directory entry."""
    b = bytearray(blob)
    b[offset_in_local:offset_in_local + len(value)] = value
    cd = b.rfind(b"PK\x01\x02")
    b[cd + offset_in_local + 2:cd + offset_in_local + 2 + len(value)] = value  # central header is 2 bytes longer
    return bytes(b)


def _npz(arrays: dict, compress: bool = False) -> bytes:
    buf = io.BytesIO()
    (np.savez_compressed if compress else np.savez)(buf, **arrays)
    return buf.getvalue()


@pytest.mark.parametrize("damage", ["method", "encrypted", "version", "zlib", "zlib-header"])
def test_npz_damaged_member(tmp_path, damage):
    x = np.random.default_rng(0).normal(size=(2000, 2))
    blob = _npz({"data": x, "fs": np.float64(100)}, compress=damage.startswith("zlib"))
    if damage == "method":
        blob = _zip_member_patch(blob, 8, struct.pack("<H", 99))
    elif damage == "encrypted":
        blob = _zip_member_patch(blob, 6, struct.pack("<H", 1))
    elif damage == "version":
        blob = _zip_member_patch(blob, 4, struct.pack("<H", 99))
    else:  # corrupt the deflate stream of the first member (inside its header, or after it)
        b = bytearray(blob)
        start = 30 + struct.unpack("<H", b[26:28])[0] + struct.unpack("<H", b[28:30])[0]
        at = start + (2 if damage == "zlib-header" else 200)
        b[at:at + 40] = b"\xff" * 40
        blob = bytes(b)
    p = tmp_path / "x.npz"
    p.write_bytes(blob)
    with pytest.raises(InputError) as ei:
        read_recording(p, fs=100)
    assert str(p) in str(ei.value)


def test_npz_member_not_npy(tmp_path):
    p = tmp_path / "x.npz"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("a.npy", _npy_arr(np.zeros(10)))
        zf.writestr("notes.txt", b"hello")
    _refused(p, "not .npy arrays")


def test_npz_duplicate_member_names(tmp_path):
    p = tmp_path / "x.npz"
    with zipfile.ZipFile(p, "w") as zf, pytest.warns(UserWarning, match="Duplicate"):
        zf.writestr("data.npy", _npy_arr(np.zeros((100, 3))))
        zf.writestr("data.npy", _npy_arr(np.zeros((100, 1))))
    _refused(p, "more than once")


def test_npz_channels_with_invalid_code_points(tmp_path):
    bad = _npy_arr(np.array(["ab", "cd"]))  # '<U2'
    bad = bad[:-8] + struct.pack("<I", 0x110000) + bad[-4:]  # beyond U+10FFFF
    fs_bad = _npy_arr(np.array(["x"]))
    fs_bad = fs_bad[:-4] + struct.pack("<I", 0xFFFFFFFF)
    p = tmp_path / "x.npz"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("data.npy", _npy_arr(np.zeros((100, 2))))
        zf.writestr("channels.npy", bad)
    _refused(p, "not valid text")
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("data.npy", _npy_arr(np.zeros((100, 2))))
        zf.writestr("fs.npy", fs_bad)
    _refused(p, "entry 'fs'")


# -- channel names that differ only in case ------------------------------------------------------------
def test_npz_channel_names_differing_in_case(tmp_path):
    p = tmp_path / "x.npz"
    a, b = np.zeros(100), np.ones(100)
    np.savez(p, a=a, A=b, fs=np.float64(100))
    assert available_channels(p) == ("a", "A")
    _refused(p, "differ only in case")
    assert read_recording(p, channels="A").data[0, 0] == 1.0  # the exact name wins
    assert read_recording(p, channels="a").data[0, 0] == 0.0
    np.savez(p, ab=a, AB=b, c=b)
    with pytest.raises(InputError, match="ambiguous") as ei:
        read_recording(p, channels="Ab", fs=100)  # matches both only case-insensitively
    assert str(p) in str(ei.value)
    assert read_recording(p, channels="C,AB", fs=100).channels == ("c", "AB")  # unique / exact
    e = _refused(p, "differ only in case")
    assert "'AB'" in str(e) and "'ab'" in str(e)


# -- resampling -------------------------------------------------------------------------------------
def test_rational_ratio_overflow():
    with pytest.raises(InputError, match="out of range"):
        rational_ratio(5e-324, 1000.0)
    with pytest.raises(InputError, match="out of range"):
        rational_ratio(1e308, 1e-300)


@pytest.mark.parametrize("file_fs,fs", [(5e-324, 1000.0), (1000.0, 1000.0 * math.sqrt(2))])
def test_resampling_refusal_names_the_file(tmp_path, file_fs, fs):
    p = tmp_path / "x.npz"
    np.savez(p, data=np.zeros((500, 1)), fs=np.float64(file_fs))
    with pytest.raises(InputError, match="cannot resample") as ei:
        read_recording(p, fs=fs)
    assert str(p) in str(ei.value)


# -- Parquet ------------------------------------------------------------------------------------------
def test_parquet_timestamp_out_of_ns_range(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    t = pa.array(np.arange(100, dtype=np.int64) + 253_402_000_000, pa.timestamp("s"))  # year ~9999
    p = tmp_path / "x.parquet"
    pq.write_table(pa.table({"time": t, "v": np.zeros(100)}), p)
    _refused(p, "Parquet")


def test_parquet_duplicate_columns(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    p = tmp_path / "x.parquet"
    tab = pa.Table.from_arrays([pa.array(np.arange(100) / 100.0), pa.array(np.arange(100) / 100.0),
                                pa.array(np.zeros(100))], names=["time", "time", "v"])
    pq.write_table(tab, p)
    _refused(p, "several columns")
    tab = pa.Table.from_arrays([pa.array(np.zeros(100)), pa.array(np.ones(100))], names=["v", "V"])
    pq.write_table(tab, p)
    _refused(p, "differ only in case")


def test_parquet_column_name_not_utf8(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    p = tmp_path / "x.parquet"
    pq.write_table(pa.table({"vvvvvvvvvvvvvvvv": np.zeros(100)}), p, store_schema=False)
    blob = p.read_bytes().replace(b"vvvvvvvvvvvvvvvv", b"v\xff\xfevvvvvvvvvvvvv")
    p.write_bytes(blob)
    with pytest.raises(InputError) as ei:
        read_recording(p, fs=100)
    assert str(p) in str(ei.value)


def test_npz_entry_announcing_more_than_it_holds_is_refused_before_allocating(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Found by fuzzing under ASan: an .npz entry whose header announces 2**63 - 1 elements made numpy
    try to allocate 8 EiB (a MemoryError without ASan, an abort under it). The announced size is
    now checked against the member's size first."""
    import io
    import zipfile

    import numpy as np
    import pytest

    from edgefault.errors import InputError
    from edgefault.io.readers import read_recording

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "|S1", "fortran_order": False,
                                               "shape": (2 ** 63 - 1,)})
    p = tmp_path / "big.npz"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("data.npy", _saved_npy(np.zeros((100, 1), np.float32)))
        z.writestr("channels.npy", buf.getvalue() + b"a")
    with pytest.raises(InputError, match=r"entry 'channels' of .*big\.npz.* announces"):
        read_recording(p, fs=1000.0)


def _saved_npy(a):  # type: ignore[no-untyped-def]
    import io

    import numpy as np

    b = io.BytesIO()
    np.save(b, a)
    return b.getvalue()


def test_wav_with_65535_channels_and_no_samples_is_refused_briefly(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Found by fuzzing (a slow input): a WAV header announcing 65535 channels took over a minute
    (a quadratic duplicate-name check) and the refusal listed every channel name."""
    import struct

    import pytest

    from edgefault.errors import InputError
    from edgefault.io.readers import read_recording

    nch, bits, fs = 65535, 8, 8000
    fmt = struct.pack("<HHIIHH", 1, nch, fs, fs * nch * bits // 8, nch * bits // 8, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", 0)
    p = tmp_path / "wide.wav"
    p.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    with pytest.raises(InputError, match=r"wide\.wav.*zero-length") as ei:
        read_recording(p)
    assert len(str(ei.value)) < 400 and "65535 channels" in str(ei.value)
