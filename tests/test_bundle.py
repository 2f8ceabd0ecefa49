from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from edgefault.device.bundle import MANIFEST, load_bundle
from edgefault.errors import BundleError


def _rewrite(src: Path, dst: Path, edit) -> Path:  # type: ignore[no-untyped-def]
    """Copy a bundle, letting `edit(name, data) -> bytes | None` change or drop members."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = edit(info.filename, zin.read(info.filename))
            if data is not None:
                zout.writestr(info.filename, data)
    return dst


def _edit_manifest(fn):  # type: ignore[no-untyped-def]
    def edit(name: str, data: bytes) -> bytes:
        if name != MANIFEST:
            return data
        m = json.loads(data)
        fn(m)
        return json.dumps(m).encode()
    return edit


def test_roundtrip_describes_model(small_bundle: Path) -> None:
    b = load_bundle(small_bundle)
    assert b.kind == "gaussian" and b.task == "anomaly"
    assert b.spec.channels == ("a", "b") and b.spec.window == 256
    d = b.spec.feature_dim
    assert b.array("mean").shape == (d,) and b.array("precision").shape == (d, d)
    info = b.describe()
    assert info["thresholds"]["threshold"] > 0 and info["thresholds"]["k"] == 2
    assert set(info["members"]) == {"arrays/mean.npy", "arrays/scale.npy", "arrays/precision.npy"}
    # load from bytes gives the same content id
    assert load_bundle(small_bundle.read_bytes()).bundle_id == b.bundle_id


def test_members_are_plain_npy_without_pickle(small_bundle: Path) -> None:
    with zipfile.ZipFile(small_bundle) as zf:
        for name in zf.namelist():
            if name.endswith(".npy"):
                arr = np.load(io.BytesIO(zf.read(name)), allow_pickle=False)
                assert arr.dtype == np.float32


@pytest.mark.parametrize("case, match", [
    ("empty", "empty"),
    ("truncated", "not a zip|corrupted|cannot be read"),
    ("not_zip", "not a zip"),
    ("missing", "not found"),
])
def test_unreadable_files(tmp_path: Path, small_bundle: Path, case: str, match: str) -> None:
    p = tmp_path / "bad.efb"
    raw = small_bundle.read_bytes()
    if case == "empty":
        p.write_bytes(b"")
    elif case == "truncated":
        p.write_bytes(raw[: len(raw) // 2])
    elif case == "not_zip":
        p.write_text("hello")
    else:
        p = tmp_path / "nope.efb"
    with pytest.raises(BundleError, match=match):
        load_bundle(p)


def test_tampered_array_is_detected(tmp_path: Path, small_bundle: Path) -> None:
    def edit(name: str, data: bytes) -> bytes:
        if name == "arrays/mean.npy":
            arr = np.load(io.BytesIO(data))
            arr[0] += 1.0
            buf = io.BytesIO()
            np.save(buf, arr)
            return buf.getvalue()
        return data
    with pytest.raises(BundleError, match="arrays/mean.npy does not match its sha256"):
        load_bundle(_rewrite(small_bundle, tmp_path / "t.efb", edit))


def test_edited_threshold_is_detected(tmp_path: Path, small_bundle: Path) -> None:
    def lower(m: dict) -> None:
        m["thresholds"]["threshold"] = 1e9
    with pytest.raises(BundleError, match="edited after packing"):
        load_bundle(_rewrite(small_bundle, tmp_path / "t.efb", _edit_manifest(lower)))


def test_unknown_schema_version(tmp_path: Path, small_bundle: Path) -> None:
    def bump(m: dict) -> None:
        m["schema_version"] = 99
    with pytest.raises(BundleError, match="schema version 99 is newer"):
        load_bundle(_rewrite(small_bundle, tmp_path / "t.efb", _edit_manifest(bump)))


def test_extra_and_missing_members(tmp_path: Path, small_bundle: Path) -> None:
    with pytest.raises(BundleError, match="lacks it"):
        load_bundle(_rewrite(small_bundle, tmp_path / "m.efb",
                             lambda n, d: None if n == "arrays/scale.npy" else d))
    extra = tmp_path / "x.efb"
    _rewrite(small_bundle, extra, lambda n, d: d)
    with zipfile.ZipFile(extra, "a") as zf:
        zf.writestr("arrays/evil.npy", b"123")
    with pytest.raises(BundleError, match="not listed in the manifest"):
        load_bundle(extra)


def test_pickled_array_is_refused(tmp_path: Path, small_bundle: Path) -> None:
    """Even with a matching hash, an object array (pickle) must not be loaded."""
    import hashlib

    buf = io.BytesIO()
    np.save(buf, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    evil = buf.getvalue()

    def fix(m: dict) -> None:
        from edgefault.device.bundle import bundle_id_of, manifest_digest

        m["members"]["arrays/mean.npy"].update(sha256=hashlib.sha256(evil).hexdigest(), size=len(evil))
        m["bundle_id"] = bundle_id_of(m["members"])
        m["digest"] = manifest_digest(m)

    def edit(name: str, data: bytes) -> bytes:
        if name == "arrays/mean.npy":
            return evil
        return _edit_manifest(fix)(name, data)

    with pytest.raises(BundleError, match="not a plain numeric .npy"):
        load_bundle(_rewrite(small_bundle, tmp_path / "p.efb", edit))


def test_bad_manifest_json(tmp_path: Path, small_bundle: Path) -> None:
    with pytest.raises(BundleError, match="not valid JSON"):
        load_bundle(_rewrite(small_bundle, tmp_path / "j.efb",
                             lambda n, d: b"{not json" if n == MANIFEST else d))


# -- found by bench/fuzz.py (issue #12 item 10): every refusal is a BundleError naming the bundle --------
def _sealed(fn):  # type: ignore[no-untyped-def]
    """_edit_manifest, then the digest recomputed: the edit gets past the integrity checks."""
    from edgefault.device.bundle import manifest_digest

    def both(m: dict) -> None:
        fn(m)
        m["digest"] = manifest_digest(m)
    return _edit_manifest(both)


def _set(path: str, value):  # type: ignore[no-untyped-def]
    def fn(m: dict) -> None:
        *head, last = path.split(".")
        d = m
        for k in head:
            d = d[k]
        d[last] = value
    return fn


@pytest.mark.parametrize("path, value, match", [
    ("thresholds", [1, 2], "'thresholds' must be an object"),
    ("thresholds.threshold", "x", "thresholds.threshold must be a float32 number"),
    ("thresholds.threshold", 1e39, "thresholds.threshold must be a float32 number"),
    ("thresholds.clear_threshold", float("nan"), "thresholds.clear_threshold must be a finite"),
    ("thresholds.k", 0, r"thresholds.k \(k-of-n alarm\) must be an integer in 1..64"),
    ("thresholds.n", 2 ** 40, r"thresholds.n \(k-of-n alarm\) must be an integer in 1..64"),
    ("thresholds.k", 9, "thresholds.k = 9 is more than thresholds.n = 3"),
    ("thresholds.drift", "on", "thresholds.drift must be an object or null"),
    ("labels", "abc", "'labels' must be a list of strings or null"),
    ("model.task", 3, "model.task must be a string"),
    ("features.fs", 10 ** 30, "feature spec is invalid"),
])
def test_manifest_values_of_the_wrong_type_are_bundle_errors(tmp_path: Path, small_bundle: Path, path: str,
                                                             value: object, match: str) -> None:
    """Found by fuzzing: these passed load_bundle (or raised TypeError inside it) and then failed in the
    Runtime with ValueError / TypeError, or in Bundle.thresholds / labels."""
    from edgefault.device.runtime import Runtime

    p = _rewrite(small_bundle, tmp_path / "v.efb", _sealed(_set(path, value)))
    with pytest.raises(BundleError, match=match) as ei:
        Runtime(p)
    assert str(p) in str(ei.value)


def test_array_shape_declared_as_a_number_is_a_bundle_error(tmp_path: Path, small_bundle: Path) -> None:
    """list(decl["shape"]) raised TypeError for a shape that is not a list."""
    def fn(m: dict) -> None:
        m["members"]["arrays/mean.npy"]["shape"] = 7
    with pytest.raises(BundleError, match="arrays/mean.npy has shape"):
        load_bundle(_rewrite(small_bundle, tmp_path / "d.efb", _sealed(fn)))


@pytest.mark.parametrize("text", [b"[" * 100000 + b"]" * 100000, b'{"a": ' + b"9" * 5000 + b"}"],
                         ids=["too-deep", "int-too-long"])
def test_manifest_json_python_cannot_parse_is_a_bundle_error(tmp_path: Path, small_bundle: Path, text: bytes) -> None:
    """RecursionError / ValueError (integer string limit) from json.loads used to escape."""
    with pytest.raises(BundleError, match="not valid JSON"):
        load_bundle(_rewrite(small_bundle, tmp_path / "j.efb", lambda n, d: text if n == MANIFEST else d))


def test_zip_archives_zipfile_cannot_open_are_bundle_errors(small_bundle: Path) -> None:
    """zipfile raises NotImplementedError for a newer 'version needed to extract' and
    UnicodeDecodeError for a member name flagged UTF-8 that is not; both used to escape."""
    raw = small_bundle.read_bytes()
    cd = raw.index(b"PK\x01\x02")
    newer = raw[:cd + 6] + bytes([97, 0]) + raw[cd + 8:]  # central directory: version needed 9.7
    with pytest.raises(BundleError, match=r"cannot read.*NotImplementedError.*version 9.7"):
        load_bundle(newer)
    name_len = int.from_bytes(raw[cd + 28:cd + 30], "little")
    flags = int.from_bytes(raw[cd + 8:cd + 10], "little") | 0x800  # "name is UTF-8"
    bad = bytearray(raw[:cd + 8] + flags.to_bytes(2, "little") + raw[cd + 10:])
    bad[cd + 46] = 0xFF  # first byte of the name: not UTF-8
    assert name_len > 0
    with pytest.raises(BundleError, match=r"<bytes>: is a zip archive this loader cannot read.*UnicodeDecodeError"):
        load_bundle(bytes(bad))
