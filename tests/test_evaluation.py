from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgefault.errors import InputError
from edgefault.evaluation.protocols import (
    ManifestRow,
    Segment,
    Split,
    assert_no_overlap,
    contiguous_blocks,
    cross_group_protocol,
    leave_one_group_out,
    load_manifest,
    split_protocol,
    windows_of,
)

# --------------------------------------------------------------------------- contiguous_blocks

fractions_st = st.lists(st.floats(0.02, 1.0), min_size=1, max_size=5).map(
    lambda xs: [x / sum(xs) for x in xs]
)


@given(n=st.integers(1, 2_000_000), fr=fractions_st, gap=st.integers(0, 5000),
       scale=st.sampled_from([1.0, 0.9, 0.5]))
@settings(max_examples=300, deadline=None)
def test_blocks_properties(n: int, fr: list[float], gap: int, scale: float) -> None:
    fr = [f * scale for f in fr]
    k = len(fr)
    usable = n - gap * (k - 1)
    if usable * min(fr) >= 2:  # every block has >= 1 sample even after rounding: must succeed
        blocks = contiguous_blocks(n, fr, gap=gap)
    else:
        try:
            blocks = contiguous_blocks(n, fr, gap=gap)
        except InputError as e:
            assert usable * min(fr) < 2 and ("min_len" in str(e) or "too short" in str(e))
            return
    assert [b[0] for b in blocks] == [f"block{i}" for i in range(k)]
    assert blocks[0][1] == 0
    for (_, s, e), f in zip(blocks, fr):
        assert 0 <= s < e <= n  # inside the recording, non-empty
        assert abs((e - s) - f * usable) <= 1.0 + 1e-9  # fraction honoured within one sample
    for (_, _, e0), (_, s1, _) in zip(blocks, blocks[1:]):
        assert s1 - e0 == gap  # exactly gap samples unused between neighbours: no overlap
    if scale == 1.0:
        assert blocks[-1][2] == n  # fractions summing to 1 use the whole recording


@given(n=st.integers(10, 100_000), gap=st.integers(0, 500), min_len=st.integers(1, 5000))
@settings(max_examples=200, deadline=None)
def test_blocks_min_len(n: int, gap: int, min_len: int) -> None:
    fr = [0.5, 0.2, 0.3]
    usable = n - 2 * gap
    smallest = 0.2 * usable  # the calib block
    try:
        blocks = contiguous_blocks(n, fr, gap=gap, names=["train", "calib", "test"], min_len=min_len)
    except InputError as e:
        assert "min_len" in str(e) or "too short" in str(e)
        assert smallest < min_len + 1  # raising is only allowed when a block is (about) too short
        return
    assert smallest > min_len - 1
    assert all(e - s >= min_len for _, s, e in blocks)


def test_blocks_examples_and_mapping() -> None:
    assert contiguous_blocks(100, [0.5, 0.2, 0.3], gap=0, names=["a", "b", "c"]) == [
        ("a", 0, 50), ("b", 50, 70), ("c", 70, 100)]
    assert contiguous_blocks(120, {"train": 0.5, "test": 0.5}, gap=20) == [
        ("train", 0, 50), ("test", 70, 120)]
    assert contiguous_blocks(100, [0.5], gap=7) == [("block0", 0, 50)]  # remainder unused


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n_samples=100, fractions=[]), "at least one"),
        (dict(n_samples=100, fractions=[0.6, 0.6]), "at most 1"),
        (dict(n_samples=100, fractions=[0.5, 0.0]), "positive"),
        (dict(n_samples=100, fractions=[0.5, float("nan")]), "positive"),
        (dict(n_samples=100, fractions=["a"]), "numbers"),
        (dict(n_samples=100, fractions=[0.5, 0.5], names=["x"]), "names"),
        (dict(n_samples=100, fractions=[0.5, 0.5], names=["x", "x"]), "distinct"),
        (dict(n_samples=100, fractions=[0.5, 0.5], gap=-1), "gap"),
        (dict(n_samples=100.0, fractions=[0.5, 0.5]), "integer"),
        (dict(n_samples=100, fractions=[0.5, 0.5], gap=99), "too short"),
        (dict(n_samples=100, fractions=[0.99, 0.01], min_len=2), "min_len=2"),
        (dict(n_samples=100, fractions={"a": 0.5}, names=["a"]), "not both"),
    ],
)
def test_blocks_bad_input(kwargs: dict, match: str) -> None:
    with pytest.raises(InputError, match=match):
        contiguous_blocks(**kwargs)


# --------------------------------------------------------------------------- windows_of


@given(start=st.integers(0, 10_000), length=st.integers(1, 10_000), window=st.integers(1, 3000),
       hop=st.integers(1, 3000))
@settings(max_examples=300, deadline=None)
def test_windows_stay_inside(start: int, length: int, window: int, hop: int) -> None:
    stop = start + length
    count, starts = windows_of((start, stop), window, hop)
    assert count == starts.size and starts.dtype == np.int64
    assert np.all(starts >= start) and np.all(starts + window <= stop)
    assert np.all(np.diff(starts) == hop)
    if count:
        assert starts[0] == start
        assert starts[-1] + hop + window > stop  # maximal: one more window would leave the segment
    else:
        assert length < window
    # brute-force reference
    ref = [s for s in range(start, stop) if (s - start) % hop == 0 and s + window <= stop]
    assert starts.tolist() == ref


def test_windows_bad_input() -> None:
    with pytest.raises(InputError, match="window"):
        windows_of((0, 10), 0, 1)
    with pytest.raises(InputError, match="hop"):
        windows_of((0, 10), 4, 0)
    with pytest.raises(InputError, match="segment"):
        windows_of((5,), 4, 1)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="stop"):
        windows_of((5, 2), 1, 1)


# --------------------------------------------------------------------------- manifest


def _touch(p: Path) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(b"x")
    return p


def test_manifest_aliases_groups_channels(tmp_path: Path) -> None:
    _touch(tmp_path / "d" / "a.npy")
    _touch(tmp_path / "d" / "b.npy")
    _touch(tmp_path / "d" / "c.npy")
    m = tmp_path / "d" / "m.csv"
    m.write_text(
        "path,fault,fs_hz,channels,load_hp,n_samples\n"
        "a.npy,normal,12000,DE+FE,0,1000\n"
        'b.npy,ball,48000.5,"DE, FE",1,\n'
        "\n"
        "c.npy,inner_race,,x;y;z,2,5\n",
        encoding="utf-8",
    )
    rows = load_manifest(m)
    assert [r.label for r in rows] == ["normal", "ball", "inner_race"]
    assert rows[0].path == (tmp_path / "d" / "a.npy").resolve() and rows[0].path.is_absolute()
    assert rows[0].fs == 12000.0 and rows[1].fs == 48000.5 and rows[2].fs is None
    assert rows[0].channels == ("DE", "FE") and rows[1].channels == ("DE", "FE")
    assert rows[2].channels == ("x", "y", "z")
    assert rows[0].groups == {"load_hp": "0"}
    assert rows[0].n_samples == 1000 and rows[1].n_samples is None
    assert rows[0].raw["fault"] == "normal"
    assert rows[2].line == 5
    assert isinstance(rows[0], ManifestRow)
    assert len({rows[0], rows[1]}) == 2  # hashable


def test_manifest_label_column_bom_and_no_optional(tmp_path: Path) -> None:
    _touch(tmp_path / "x.wav")
    m = tmp_path / "m.csv"
    m.write_bytes("\ufeffpath , label\nx.wav,ok\n".encode("utf-8"))
    (r,) = load_manifest(m)
    assert r.label == "ok" and r.fs is None and r.channels is None and r.groups == {}


def test_manifest_relative_resolution(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _touch(data / "cwru" / "drive" / "f.mat")
    m = data / "cwru" / "manifest.csv"
    m.write_text("path,label\ncwru/drive/f.mat,ball\n")
    (r,) = load_manifest(m)  # found one level up (like ../shared/data/cwru/manifest.csv)
    assert r.path == (data / "cwru" / "drive" / "f.mat").resolve()
    # explicit root wins and is the only place looked at
    other = tmp_path / "other"
    _touch(other / "cwru" / "drive" / "f.mat")
    (r,) = load_manifest(m, root=other)
    assert r.path == (other / "cwru" / "drive" / "f.mat").resolve()
    with pytest.raises(InputError, match=r"row 1 .*cwru/drive/f.mat"):
        load_manifest(m, root=tmp_path)
    # absolute paths are used as written
    m2 = tmp_path / "abs.csv"
    m2.write_text(f"path,label\n{data / 'cwru' / 'drive' / 'f.mat'},ball\n")
    assert load_manifest(m2)[0].path == (data / "cwru" / "drive" / "f.mat").resolve()


def test_manifest_three_levels_up_is_not_searched(tmp_path: Path) -> None:
    _touch(tmp_path / "f.mat")
    m = tmp_path / "a" / "b" / "c" / "m.csv"
    m.parent.mkdir(parents=True)
    m.write_text("path,label\nf.mat,x\n")
    with pytest.raises(InputError, match="not found"):
        load_manifest(m)
    m2 = tmp_path / "a" / "b" / "m.csv"
    m2.write_text("path,label\nf.mat,x\n")
    assert load_manifest(m2)[0].path == (tmp_path / "f.mat").resolve()


@pytest.mark.parametrize(
    "text, match",
    [
        ("", "empty"),
        ("path,label\n", "no recordings"),
        ("file,label\nf.mat,x\n", "missing column 'path'"),
        ("path,kind\nf.mat,x\n", "label column"),
        ("path,label,fault\nf.mat,x,y\n", "both give the label"),
        ("path,fs,fs_hz,label\nf.mat,1,1,x\n", "both give the sample rate"),
        ("path,label,path\nf.mat,x,f.mat\n", "duplicate column"),
        ("path,label\nf.mat,x\nmissing.mat,y\n", r"row 2 \(line 3\).*missing.mat.*not found"),
        ("path,label\nf.mat,\n", "row 1.*empty label"),
        ("path,label\n,x\n", "empty path"),
        ("path,label,fs\nf.mat,x,-5\n", "fs '-5'"),
        ("path,label,fs\nf.mat,x,fast\n", "fs 'fast'"),
        ("path,label,n_samples\nf.mat,x,1.5\n", "n_samples"),
        ("path,label,channels\nf.mat,x,DE++FE\n", "empty name"),
        ("path,label,channels\nf.mat,x,DE+DE\n", "twice"),
        ("path,label\nf.mat,x,extra\n", "3 fields"),
        ("path,label\nf.mat,x\n./f.mat,y\n", "already listed in row 1"),
    ],
)
def test_manifest_bad(tmp_path: Path, text: str, match: str) -> None:
    _touch(tmp_path / "f.mat")
    m = tmp_path / "m.csv"
    m.write_text(text)
    with pytest.raises(InputError, match=match):
        load_manifest(m)


def test_manifest_missing_or_binary(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        load_manifest(tmp_path / "nope.csv")
    b = tmp_path / "b.csv"
    b.write_bytes(b"path,label\n\xff\xfe\x00bad,x\n")
    with pytest.raises(InputError, match="UTF-8"):
        load_manifest(b)
    with pytest.raises(InputError, match="not a folder"):
        load_manifest(b, root=tmp_path / "nope")


# --------------------------------------------------------------------------- protocols


def _rows(tmp_path: Path, spec: list[tuple[str, str, int]]) -> list[ManifestRow]:
    """spec: (label, load, n_samples) per recording."""
    lines = ["path,label,load_hp,n_samples"]
    for i, (lab, load, n) in enumerate(spec):
        _touch(tmp_path / f"r{i}.npy")
        lines.append(f"r{i}.npy,{lab},{load},{n}")
    (tmp_path / "m.csv").write_text("\n".join(lines) + "\n")
    return load_manifest(tmp_path / "m.csv")


SPEC = [("normal", "0", 10_000), ("ball", "0", 9_000), ("ball", "1", 12_000),
        ("inner", "1", 8_000), ("inner", "2", 11_111), ("normal", "2", 7_777)]


def test_split_protocol_chronological(tmp_path: Path) -> None:
    rows = _rows(tmp_path, SPEC)
    split = split_protocol(rows, gap=256)
    assert_no_overlap(split, gap=256)
    assert len(split.train) == len(split.calib) == len(split.test) == len(rows)
    for tr, ca, te in zip(split.train, split.calib, split.test):
        assert tr.row is ca.row is te.row
        assert tr.stop + 256 == ca.start and ca.stop + 256 == te.start  # test is recorded later
        assert te.stop == tr.row.n_samples
    d = split.describe()
    json.dumps(d)
    assert d["protocol"] == "split_chronological"
    assert d["roles"]["test"]["n_recordings"] == 6
    assert d["roles"]["train"]["segments_per_label"] == {"ball": 2, "inner": 2, "normal": 2}
    # order of the mapping does not matter: train, calib, test is always the time order
    s2 = split_protocol(rows, {"test": 0.3, "train": 0.7}, gap=10)
    assert not s2.calib and all(a.stop < b.start for a, b in zip(s2.train, s2.test))


def test_split_protocol_random_is_seeded(tmp_path: Path) -> None:
    rows = _rows(tmp_path, SPEC)
    with pytest.raises(InputError, match="seed"):
        split_protocol(rows, order="random")
    a = split_protocol(rows, gap=64, order="random", seed=7)
    b = split_protocol(rows, gap=64, order="random", seed=7)
    c = split_protocol(rows, gap=64, order="random", seed=8)
    key = lambda s: [(x.row.key, x.start, x.role) for x in s.segments()]  # noqa: E731
    assert key(a) == key(b) and key(a) != key(c)
    assert_no_overlap(a, gap=64)
    per_rec = {}
    for s in a.segments():
        per_rec.setdefault(s.row.key, []).append(s.role)
    for roles in per_rec.values():
        assert sorted(roles).count("train") == 5 and roles.count("calib") == 2 and roles.count("test") == 3
    assert a.describe()["params"]["seed"] == 7


def test_cross_group_protocol(tmp_path: Path) -> None:
    rows = _rows(tmp_path, SPEC)
    split = cross_group_protocol(rows, "load_hp", train_values=[0], calib_fraction=0.25, gap=100)
    assert_no_overlap(split, gap=100)
    assert {s.row.groups["load_hp"] for s in split.train} == {"0"}
    assert {s.row.groups["load_hp"] for s in split.calib} == {"0"}
    assert {s.row.groups["load_hp"] for s in split.test} == {"1", "2"}
    for tr, ca in zip(split.train, split.calib):
        assert tr.row is ca.row and tr.start == 0 and ca.stop == tr.row.n_samples
        assert ca.start - tr.stop == 100
        assert abs(ca.n_samples - 0.25 * (tr.row.n_samples - 100)) <= 1
    assert all(s.start == 0 and s.stop == s.row.n_samples for s in split.test)
    d = split.describe()
    json.dumps(d)
    assert d["params"]["test_values"] == ["1", "2"]
    assert d["test_labels_not_in_train"] == ["inner"]
    only2 = cross_group_protocol(rows, "load_hp", ["0"], ["2"])
    assert not only2.calib and {s.row.groups["load_hp"] for s in only2.test} == {"2"}
    with pytest.raises(InputError, match="both"):
        cross_group_protocol(rows, "load_hp", [0, 1], [1, 2])
    with pytest.raises(InputError, match="no recording has load_hp in \\['7'\\]"):
        cross_group_protocol(rows, "load_hp", [7])
    with pytest.raises(InputError, match="group column 'speed'"):
        cross_group_protocol(rows, "speed", [0])
    with pytest.raises(InputError, match="calib_fraction"):
        cross_group_protocol(rows, "load_hp", [0], calib_fraction=1.0)


def test_leave_one_group_out(tmp_path: Path) -> None:
    rows = _rows(tmp_path, SPEC + [("ball", "10", 5000)])
    folds = list(leave_one_group_out(rows, "load_hp", calib_fraction=0.2, gap=50))
    assert [f.params["held_out"] for f in folds] == ["0", "1", "2", "10"]  # numeric order
    for f in folds:
        assert isinstance(f, Split)
        assert_no_overlap(f, gap=50)
        held = f.params["held_out"]
        assert {s.row.groups["load_hp"] for s in f.test} == {held}
        assert held not in {s.row.groups["load_hp"] for s in f.train}
        assert len(f.train) + len(f.test) == len(rows)
        json.dumps(f.describe())
    with pytest.raises(InputError, match="single value"):
        next(leave_one_group_out(rows[:2], "load_hp"))


def test_length_callable_and_mapping(tmp_path: Path) -> None:
    _touch(tmp_path / "a.npy")
    (tmp_path / "m.csv").write_text("path,label\na.npy,x\n")
    rows = load_manifest(tmp_path / "m.csv")
    with pytest.raises(InputError, match="n_samples"):
        split_protocol(rows)
    s = split_protocol(rows, length=lambda r: 1000)
    assert s.test[-1].stop == 1000
    s = split_protocol(rows, length={rows[0].path: 2000})
    assert s.test[-1].stop == 2000
    with pytest.raises(InputError, match="length of"):
        split_protocol(rows, length=lambda r: 0)
    with pytest.raises(InputError, match=r"a\.npy.*min_len"):
        split_protocol(rows, length=lambda r: 1000, gap=10, min_len=300)


def test_protocol_bad_args(tmp_path: Path) -> None:
    rows = _rows(tmp_path, SPEC)
    with pytest.raises(InputError, match="unknown roles"):
        split_protocol(rows, {"train": 0.5, "valid": 0.5})
    with pytest.raises(InputError, match="'train' and 'test'"):
        split_protocol(rows, {"train": 1.0})
    with pytest.raises(InputError, match="order"):
        split_protocol(rows, order="shuffled")
    with pytest.raises(InputError, match="at least one"):
        split_protocol([])
    with pytest.raises(InputError, match="ManifestRow"):
        split_protocol(["a.wav"])  # type: ignore[list-item]
    with pytest.raises(InputError, match="more than once"):
        split_protocol([rows[0], rows[0]])


# --------------------------------------------------------------------------- assert_no_overlap


def _row(tmp_path: Path, name: str) -> ManifestRow:
    p = _touch(tmp_path / name).resolve()
    return ManifestRow(path=p, label="x", fs=None, channels=None, groups={}, raw={})


@given(a=st.tuples(st.integers(0, 200), st.integers(1, 100)),
       b=st.tuples(st.integers(0, 200), st.integers(1, 100)), gap=st.integers(0, 20),
       same_role=st.booleans())
@settings(max_examples=300, deadline=None)
def test_assert_no_overlap_matches_interval_logic(tmp_path_factory: pytest.TempPathFactory,
                                                  a: tuple[int, int], b: tuple[int, int], gap: int,
                                                  same_role: bool) -> None:
    row = ROW_CACHE.setdefault("r", _row(tmp_path_factory.mktemp("r"), "rec.npy"))
    sa = Segment(row, a[0], a[0] + a[1], "train")
    sb = Segment(row, b[0], b[0] + b[1], "train" if same_role else "test")
    split = Split([sa] + ([sb] if same_role else []), [], [] if same_role else [sb], protocol="t")
    distance = max(sb.start - sa.stop, sa.start - sb.stop)  # < 0 means they share samples
    leak = (not same_role) and distance < gap
    if leak:
        with pytest.raises(InputError, match="leak"):
            assert_no_overlap(split, gap=gap)
    else:
        assert_no_overlap(split, gap=gap)


ROW_CACHE: dict[str, ManifestRow] = {}


def test_assert_no_overlap_catches_long_earlier_segment(tmp_path: Path) -> None:
    row = _row(tmp_path, "a.npy")
    other = _row(tmp_path, "b.npy")
    # a long train segment, then a short train segment, then a test inside the long one
    split = Split([Segment(row, 0, 1000, "train"), Segment(row, 10, 20, "train")], [],
                  [Segment(row, 500, 600, "test"), Segment(other, 0, 1000, "test")], protocol="t")
    with pytest.raises(InputError, match=r"test segment \[500, 600\) overlaps train segment \[0, 1000\)"):
        assert_no_overlap(split)
    ok = Split([Segment(row, 0, 100, "train")], [Segment(row, 100, 200, "calib")],
               [Segment(other, 0, 100, "test")], protocol="t")
    assert_no_overlap(ok)
    with pytest.raises(InputError, match="closer than gap=1"):
        assert_no_overlap(ok, gap=1)


def test_segment_validation(tmp_path: Path) -> None:
    row = _row(tmp_path, "a.npy")
    with pytest.raises(InputError, match="role"):
        Segment(row, 0, 10, "validation")
    with pytest.raises(InputError, match="start < stop"):
        Segment(row, 10, 10, "train")


# --------------------------------------------------------------------------- real CWRU manifest


@pytest.mark.data
def test_cwru_manifest(shared_data: Path) -> None:
    rows = load_manifest(shared_data / "cwru" / "manifest.csv")
    assert len(rows) == 61
    assert all(r.path.is_file() and r.path.is_absolute() for r in rows)
    labels = {r.label for r in rows}
    assert {"normal", "inner_race", "ball", "outer_race_6"} <= labels
    assert all("load_hp" in r.groups for r in rows)
    assert {r.groups["load_hp"] for r in rows} == {"0", "1", "2", "3"}
    assert all(r.n_samples and r.n_samples > 100_000 for r in rows)
    normal = [r for r in rows if r.label == "normal"]
    assert len(normal) == 1 and normal[0].fs == 48000.0
    assert {r.fs for r in rows if r.label != "normal"} == {12000.0}
    assert any(r.channels == ("DE", "FE") for r in rows) and any(r.channels == ("DE",) for r in rows)
    # explicit root gives the same files
    again = load_manifest(shared_data / "cwru" / "manifest.csv", root=shared_data)
    assert [r.path for r in again] == [r.path for r in rows]

    split = split_protocol(rows, gap=2048, min_len=2048)
    assert_no_overlap(split, gap=2048)
    folds = list(leave_one_group_out(rows, "load_hp", calib_fraction=0.2, gap=2048, min_len=2048))
    assert len(folds) == 4
    for f in folds:
        assert_no_overlap(f, gap=2048)
    # the only healthy recording is at 0 hp: holding out 0 hp leaves 'normal' untrained
    assert folds[0].describe()["test_labels_not_in_train"] == ["normal"]
