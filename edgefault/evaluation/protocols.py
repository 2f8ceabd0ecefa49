"""Leak-safe evaluation building blocks: manifests, contiguous splits, windows.

The rule behind everything here: **a recording is cut into contiguous blocks
before it is windowed**, and each block belongs to exactly one role (train,
calib, test). Windows never cross a block end, and consecutive blocks are
separated by ``gap`` samples, so no test window shares a single sample with a
training window (which random window-level splits of overlapping windows do,
inflating accuracy). :func:`assert_no_overlap` checks a split at run time.

Typical use::

    rows = load_manifest("data/cwru/manifest.csv")
    split = split_protocol(rows, gap=1024)             # same recordings, later signal for test
    assert_no_overlap(split)
    for seg in split.test:
        n, starts = windows_of(seg, window=1024, hop=512)

    split = cross_group_protocol(rows, "load_hp", train_values=[0], calib_fraction=0.2, gap=1024)
    for fold in leave_one_group_out(rows, "load_hp", calib_fraction=0.2, gap=1024): ...

Lengths of recordings come from the manifest's optional ``n_samples`` column or
from a ``length`` callable (``length(row) -> int``, e.g. one that reads the file).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgefault.errors import InputError
from edgefault.io.manifest import ManifestRow, load_manifest

__all__ = [
    "ManifestRow",
    "load_manifest",
    "contiguous_blocks",
    "Segment",
    "Split",
    "split_protocol",
    "cross_group_protocol",
    "leave_one_group_out",
    "assert_no_overlap",
    "windows_of",
    "anomaly_folds",
    "classify_folds",
    "split_units",
    "assert_disjoint_units",
    "parse_fractions",
    "ROLES",
]

ROLES = ("train", "calib", "test")



# --------------------------------------------------------------------------- blocks


def _as_int(v: Any, name: str, minimum: int) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise InputError(f"{name}: expected an integer, got {v!r}")
    v = int(v)
    if v < minimum:
        raise InputError(f"{name}: expected an integer >= {minimum}, got {v}")
    return v


def contiguous_blocks(
    n_samples: int,
    fractions: Sequence[float] | Mapping[str, float],
    gap: int = 0,
    names: Sequence[str] | None = None,
    min_len: int = 1,
) -> list[tuple[str, int, int]]:
    """Cut ``[0, n_samples)`` into consecutive blocks ``(name, start, stop)``.

    ``gap`` samples are left unused between consecutive blocks (choose
    ``gap >= window`` so that even a window that ignored block ends could not
    join two blocks). The fractions are of the usable length
    ``n_samples - gap * (len(fractions) - 1)``; each must be > 0 and they may sum
    to at most 1 (a remainder is left unused at the end). Boundaries are rounded
    cumulatively, so every block length is within one sample of
    ``fraction * usable``. ``fractions`` may be a mapping ``{name: fraction}``
    (order kept); otherwise ``names`` defaults to ``block0, block1, ...``.
    Raises :class:`InputError` if any block would be shorter than ``min_len``.
    """
    if isinstance(fractions, Mapping):
        if names is not None:
            raise InputError("contiguous_blocks: give names either as the fractions' keys or as names, not both")
        names = [str(k) for k in fractions]
        fr = list(fractions.values())
    else:
        fr = list(fractions)
    n = _as_int(n_samples, "n_samples", 0)
    gap = _as_int(gap, "gap", 0)
    min_len = _as_int(min_len, "min_len", 1)
    k = len(fr)
    if k == 0:
        raise InputError("fractions: expected at least one block fraction")
    try:
        f = np.array([float(x) for x in fr], dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"fractions: expected numbers, got {fr!r}") from None
    if not np.all(np.isfinite(f)) or np.any(f <= 0):
        raise InputError(f"fractions: each must be a positive number, got {fr!r}")
    total = float(np.sum(f))
    if total > 1.0 + 1e-9:
        raise InputError(f"fractions: must sum to at most 1, got {total:.6g} ({fr!r})")
    if names is None:
        names = [f"block{i}" for i in range(k)]
    names = [str(s) for s in names]
    if len(names) != k:
        raise InputError(f"names: {len(names)} names for {k} fractions")
    if len(set(names)) != k:
        raise InputError(f"names: must be distinct, got {names}")
    usable = n - gap * (k - 1)
    if usable < k * min_len:
        raise InputError(
            f"a recording of {n} samples is too short for {k} blocks of at least {min_len} samples "
            f"with gaps of {gap}"
        )
    cum = np.minimum(np.cumsum(f), 1.0)
    bounds = np.concatenate([[0], np.rint(cum * usable).astype(np.int64)])
    out: list[tuple[str, int, int]] = []
    for i in range(k):
        start = int(bounds[i]) + i * gap
        stop = int(bounds[i + 1]) + i * gap
        if stop - start < min_len:
            raise InputError(
                f"block {names[i]!r} would have {stop - start} samples (fraction {f[i]:.4g} of {usable} "
                f"usable samples of {n}), fewer than min_len={min_len}"
            )
        out.append((names[i], start, stop))
    return out


# --------------------------------------------------------------------------- segments and splits


@dataclass(frozen=True)
class Segment:
    """Samples ``[start, stop)`` of recording ``row`` used in ``role`` (train / calib / test)."""

    row: ManifestRow
    start: int
    stop: int
    role: str

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise InputError(f"Segment role {self.role!r}: expected one of {ROLES}")
        if not (0 <= self.start < self.stop):
            raise InputError(f"Segment [{self.start}, {self.stop}): expected 0 <= start < stop")

    @property
    def n_samples(self) -> int:
        return self.stop - self.start

    @property
    def label(self) -> str:
        return self.row.label

    def describe(self) -> dict[str, Any]:
        return {"path": str(self.row.path), "label": self.row.label, "role": self.role,
                "start": self.start, "stop": self.stop}


@dataclass
class Split:
    """One train / calib / test assignment of segments, plus what produced it."""

    train: list[Segment]
    calib: list[Segment]
    test: list[Segment]
    protocol: str
    params: dict[str, Any] = field(default_factory=dict)

    def segments(self) -> Iterator[Segment]:
        yield from self.train
        yield from self.calib
        yield from self.test

    def role(self, name: str) -> list[Segment]:
        if name not in ROLES:
            raise InputError(f"role {name!r}: expected one of {ROLES}")
        return getattr(self, name)

    def describe(self) -> dict[str, Any]:
        """JSON-serialisable summary: protocol, parameters, and per role the segment,
        sample and label counts and the recordings used; plus the test labels that
        never occur in training (a model cannot be expected to name them)."""
        roles: dict[str, Any] = {}
        for name in ROLES:
            segs = self.role(name)
            labels: dict[str, int] = {}
            for s in segs:
                labels[s.label] = labels.get(s.label, 0) + 1
            roles[name] = {
                "n_segments": len(segs),
                "n_samples": int(sum(s.n_samples for s in segs)),
                "n_recordings": len({s.row.key for s in segs}),
                "segments_per_label": dict(sorted(labels.items())),
                "segments": [s.describe() for s in segs],
            }
        train_labels = {s.label for s in self.train}
        return {
            "protocol": self.protocol,
            "params": _jsonable(self.params),
            "roles": roles,
            "test_labels_not_in_train": sorted({s.label for s in self.test} - train_labels),
        }


def _jsonable(v: Any) -> Any:
    if isinstance(v, Mapping):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, set, frozenset)):
        return [_jsonable(x) for x in (sorted(v, key=str) if isinstance(v, (set, frozenset)) else v)]
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    return str(v)


LengthFn = Callable[[ManifestRow], int]


def _length_of(row: ManifestRow, length: LengthFn | Mapping[Any, int] | None) -> int:
    if length is None:
        n = row.n_samples
        if n is None:
            raise InputError(
                f"{row.path}: the manifest has no n_samples for this recording; "
                f"pass length=callable(row) -> number of samples"
            )
    elif isinstance(length, Mapping):
        n = length.get(row.path, length.get(str(row.path)))
        if n is None:
            raise InputError(f"{row.path}: missing from the length mapping")
    else:
        n = length(row)
    return _as_int(n, f"length of {row.path}", 1)


def _check_rows(rows: Iterable[ManifestRow]) -> list[ManifestRow]:
    rows = list(rows)
    if not rows:
        raise InputError("rows: expected at least one manifest row")
    for r in rows:
        if not isinstance(r, ManifestRow):
            raise InputError(f"rows: expected ManifestRow items (from load_manifest), got {type(r).__name__}")
    keys = [r.key for r in rows]
    if len(set(keys)) != len(keys):
        dup = sorted({k for k in keys if keys.count(k) > 1})
        raise InputError(f"rows: recordings listed more than once: {dup[:3]}")
    return rows


def _role_fractions(fractions: Mapping[str, float]) -> dict[str, float]:
    if not isinstance(fractions, Mapping):
        raise InputError(f"fractions: expected a mapping like {{'train': 0.5, 'calib': 0.2, 'test': 0.3}}, "
                         f"got {fractions!r}")
    bad = [k for k in fractions if k not in ROLES]
    if bad:
        raise InputError(f"fractions: unknown roles {bad}; expected keys among {ROLES}")
    if "train" not in fractions or "test" not in fractions:
        raise InputError(f"fractions: need at least 'train' and 'test', got {list(fractions)}")
    out = {k: float(fractions[k]) for k in fractions}
    if any(not (v >= 0 and math.isfinite(v)) for v in out.values()):
        raise InputError(f"fractions: must be non-negative numbers, got {dict(fractions)}")
    # chronological order is always train, calib, test; calib 0 = no calibration block
    return {k: out[k] for k in ROLES if k in out and (out[k] > 0 or k != "calib")}


def split_protocol(
    rows: Iterable[ManifestRow],
    fractions: Mapping[str, float] | None = None,
    gap: int = 0,
    *,
    length: LengthFn | Mapping[Any, int] | None = None,
    min_len: int = 1,
    order: str = "chronological",
    n_blocks: int = 10,
    seed: int | None = None,
) -> Split:
    """Same-recording split: every recording contributes to train, calib and test.

    ``order="chronological"`` (default) cuts each recording into contiguous
    blocks in the order the fractions are given (train, calib, test by default),
    so test signal is always recorded later than training signal.

    ``order="random"`` cuts each recording into ``n_blocks`` equal blocks (with
    ``gap`` between them) and assigns whole blocks to roles at random, in
    proportions as close to ``fractions`` as the block count allows (at least one
    block per role). It needs an explicit integer ``seed``.
    """
    rows = _check_rows(rows)
    fr = _role_fractions(fractions if fractions is not None else {"train": 0.5, "calib": 0.2, "test": 0.3})
    gap = _as_int(gap, "gap", 0)
    params: dict[str, Any] = {"fractions": fr, "gap": gap, "order": order, "min_len": min_len}
    out: dict[str, list[Segment]] = {r: [] for r in ROLES}
    if order == "chronological":
        for row in rows:
            n = _length_of(row, length)
            try:
                blocks = contiguous_blocks(n, fr, gap=gap, min_len=min_len)
            except InputError as e:
                raise InputError(f"{row.path}: {e}") from None
            for name, s, e in blocks:
                out[name].append(Segment(row, s, e, name))
    elif order == "random":
        if seed is None or isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise InputError("order='random' needs an explicit integer seed (for a reproducible split)")
        nb = _as_int(n_blocks, "n_blocks", len(fr))
        counts = _block_counts(fr, nb)
        params.update({"n_blocks": nb, "seed": int(seed), "blocks_per_role": counts})
        rng = random.Random(int(seed))
        for row in rows:
            n = _length_of(row, length)
            try:
                blocks = contiguous_blocks(n, [1.0 / nb] * nb, gap=gap, min_len=min_len)
            except InputError as e:
                raise InputError(f"{row.path}: {e}") from None
            roles = [name for name, c in counts.items() for _ in range(c)]
            rng.shuffle(roles)
            for (_, s, e), name in zip(blocks, roles):
                out[name].append(Segment(row, s, e, name))
    else:
        raise InputError(f"order {order!r}: expected 'chronological' or 'random'")
    return Split(out["train"], out["calib"], out["test"], protocol=f"split_{order}", params=params)


def _block_counts(fr: Mapping[str, float], nb: int) -> dict[str, int]:
    """Largest-remainder apportionment of nb blocks to roles, at least one each."""
    total = sum(fr.values())
    ideal = {k: nb * v / total for k, v in fr.items()}
    counts = {k: max(1, int(math.floor(x))) for k, x in ideal.items()}
    while sum(counts.values()) < nb:
        k = max(ideal, key=lambda r: ideal[r] - counts[r])
        counts[k] += 1
    while sum(counts.values()) > nb:
        cands = [k for k in counts if counts[k] > 1]
        if not cands:
            raise InputError(f"n_blocks={nb} is too few for roles {list(fr)}")
        k = min(cands, key=lambda r: ideal[r] - counts[r])
        counts[k] -= 1
    return counts


def _group_value(row: ManifestRow, group: str) -> str:
    if group not in row.groups:
        raise InputError(f"{row.path}: no group column {group!r} (group columns: {sorted(row.groups)})")
    return row.groups[group]


def _train_calib(row: ManifestRow, n: int, calib_fraction: float, gap: int, min_len: int) -> list[Segment]:
    if calib_fraction == 0:
        if n < min_len:
            raise InputError(f"{row.path}: {n} samples, fewer than min_len={min_len}")
        return [Segment(row, 0, n, "train")]
    try:
        blocks = contiguous_blocks(n, {"train": 1.0 - calib_fraction, "calib": calib_fraction},
                                   gap=gap, min_len=min_len)
    except InputError as e:
        raise InputError(f"{row.path}: {e}") from None
    return [Segment(row, s, e, name) for name, s, e in blocks]


def _check_calib_fraction(calib_fraction: float) -> float:
    try:
        cf = float(calib_fraction)
    except (TypeError, ValueError):
        raise InputError(f"calib_fraction: expected a number in [0, 1), got {calib_fraction!r}") from None
    if not (0.0 <= cf < 1.0):
        raise InputError(f"calib_fraction: expected a number in [0, 1), got {calib_fraction!r}")
    return cf


def cross_group_protocol(
    rows: Iterable[ManifestRow],
    group: str,
    train_values: Iterable[Any],
    test_values: Iterable[Any] | None = None,
    *,
    calib_fraction: float = 0.0,
    gap: int = 0,
    length: LengthFn | Mapping[Any, int] | None = None,
    min_len: int = 1,
) -> Split:
    """Cross-condition split: train on recordings whose ``group`` is in
    ``train_values``, test on whole recordings whose value is in ``test_values``
    (default: every other value). Values are compared as strings (``0`` matches
    ``"0"``). With ``calib_fraction > 0`` the last part of each training
    recording (after ``gap`` samples) becomes the calibration block. Rows in
    neither set are left out.
    """
    rows = _check_rows(rows)
    cf = _check_calib_fraction(calib_fraction)
    gap = _as_int(gap, "gap", 0)
    tv = {str(v) for v in ([train_values] if isinstance(train_values, (str, int, float)) else train_values)}
    present = sorted({_group_value(r, group) for r in rows})
    if not tv:
        raise InputError("train_values: expected at least one value")
    if test_values is None:
        sv = set(present) - tv
    else:
        sv = {str(v) for v in ([test_values] if isinstance(test_values, (str, int, float)) else test_values)}
    both = tv & sv
    if both:
        raise InputError(f"values {sorted(both)} of {group!r} are in both train_values and test_values")
    out: dict[str, list[Segment]] = {r: [] for r in ROLES}
    for row in rows:
        v = _group_value(row, group)
        n = None
        if v in tv:
            n = _length_of(row, length)
            for seg in _train_calib(row, n, cf, gap, min_len):
                out[seg.role].append(seg)
        elif v in sv:
            n = _length_of(row, length)
            if n < min_len:
                raise InputError(f"{row.path}: {n} samples, fewer than min_len={min_len}")
            out["test"].append(Segment(row, 0, n, "test"))
    if not out["train"]:
        raise InputError(f"no recording has {group} in {sorted(tv)} (values present: {present})")
    if not out["test"]:
        raise InputError(f"no recording has {group} in {sorted(sv)} (values present: {present})")
    params = {"group": group, "train_values": sorted(tv), "test_values": sorted(sv),
              "calib_fraction": cf, "gap": gap, "min_len": min_len}
    return Split(out["train"], out["calib"], out["test"], protocol="cross_group", params=params)


def leave_one_group_out(
    rows: Iterable[ManifestRow],
    group: str,
    *,
    calib_fraction: float = 0.0,
    gap: int = 0,
    length: LengthFn | Mapping[Any, int] | None = None,
    min_len: int = 1,
) -> Iterator[Split]:
    """Yield one :func:`cross_group_protocol` split per distinct value of ``group``
    (sorted, numerically where all values are numbers): test on that value, train
    on all the others. Needs at least two distinct values."""
    rows = _check_rows(rows)
    values = sorted({_group_value(r, group) for r in rows}, key=_sort_key)
    if len(values) < 2:
        raise InputError(f"leave_one_group_out: {group!r} has a single value {values}: nothing to hold out")
    for v in values:
        split = cross_group_protocol(rows, group, [x for x in values if x != v], [v],
                                     calib_fraction=calib_fraction, gap=gap, length=length, min_len=min_len)
        split.protocol = "leave_one_group_out"
        split.params["held_out"] = v
        yield split


def _sort_key(v: str) -> tuple[int, float, str]:
    try:
        return (0, float(v), v)
    except ValueError:
        return (1, 0.0, v)


def assert_no_overlap(split: Split, gap: int = 0) -> None:
    """Raise :class:`InputError` if two segments of the same recording in different
    roles share a sample, or lie closer than ``gap`` samples to each other.

    Segments within one role may touch or overlap (that is not a leak). Returns
    ``None`` when the split is clean.
    """
    gap = _as_int(gap, "gap", 0)
    by_rec: dict[str, list[Segment]] = {}
    for s in split.segments():
        by_rec.setdefault(s.row.key, []).append(s)
    for key, segs in by_rec.items():
        segs.sort(key=lambda s: (s.start, s.stop))
        # Sweep: compare each segment with the furthest-reaching earlier segment of every other role.
        reach: dict[str, Segment] = {}
        for s in segs:
            for role, prev in reach.items():
                if role != s.role and s.start < prev.stop + gap:
                    what = "overlaps" if s.start < prev.stop else f"is closer than gap={gap} to"
                    raise InputError(
                        f"leak: {key}: {s.role} segment [{s.start}, {s.stop}) {what} "
                        f"{prev.role} segment [{prev.start}, {prev.stop})"
                    )
            if s.role not in reach or s.stop > reach[s.role].stop:
                reach[s.role] = s


def windows_of(segment: Segment | tuple[int, int], window: int, hop: int) -> tuple[int, np.ndarray]:
    """Windows of ``window`` samples every ``hop`` samples inside a segment.

    Returns ``(count, starts)`` where ``starts`` (int64) are sample indices in
    the recording (``segment.start + k * hop``); every window
    ``[start, start + window)`` lies inside ``[segment.start, segment.stop)``.
    A segment shorter than ``window`` has no windows. ``segment`` may also be a
    ``(start, stop)`` pair.
    """
    if isinstance(segment, Segment):
        start, stop = segment.start, segment.stop
    else:
        try:
            start, stop = segment
        except (TypeError, ValueError):
            raise InputError(f"segment: expected a Segment or (start, stop), got {segment!r}") from None
        start = _as_int(start, "segment start", 0)
        stop = _as_int(stop, "segment stop", start)
    window = _as_int(window, "window", 1)
    hop = _as_int(hop, "hop", 1)
    length = stop - start
    count = 0 if length < window else (length - window) // hop + 1
    starts = start + hop * np.arange(count, dtype=np.int64)
    return int(count), starts


# --------------------------------------------------------------------------- eval folds
# The folds `edgefault eval` runs. Every fold is a Split checked by assert_no_overlap (gap = one
# window) before anything is trained, so a leak stops the evaluation with an error.


def _checked(split: Split, gap: int) -> Split:
    assert_no_overlap(split, gap=gap)
    return split


def _whole(row: ManifestRow, length: LengthFn | Mapping[Any, int], role: str) -> Segment:
    return Segment(row, 0, _length_of(row, length), role)


def _values(text: str | None) -> set[str] | None:
    return {v.strip() for v in text.split(",")} if text else None


def anomaly_folds(rows: Sequence[ManifestRow], healthy: Sequence[bool], protocol: str, *, group: str,
                  fractions: Sequence[float], window: int, length: LengthFn | Mapping[Any, int],
                  train_groups: str | None = None, test_groups: str | None = None
                  ) -> list[tuple[str, Split | str]]:
    """Folds of an anomaly evaluation as (name, Split) or (name, reason it is skipped).

    Healthy training recordings are cut in time order into train | calib | test blocks
    (``fractions``, gap of one window): the model sees train + calib, the later test block is
    scored. Fault recordings and healthy recordings of held-out groups are tested whole.

    * ``split``: every healthy recording trains, every fault recording is tested;
    * ``cross-group``: healthy recordings with ``group`` in ``train_groups`` train; recordings in
      ``test_groups`` (default: every other value) are tested;
    * ``logo``: one fold per ``group`` value: healthy recordings of the other values train, the
      value's recordings are tested.
    """
    fr = dict(zip(ROLES, fractions))
    idx = list(range(len(rows)))
    gval = [str(r.groups.get(group, "")) for r in rows]

    def fold(name: str, train: list[int], test: list[int]) -> Split:
        cut = split_protocol([rows[i] for i in train], fr, gap=window, length=length, min_len=window)
        whole = [_whole(rows[i], length, "test") for i in test]  # healthy ones first, as given
        return _checked(Split(cut.train, cut.calib, cut.test + whole,
                              protocol=f"anomaly_{protocol}", params={**cut.params, "fold": name}), window)

    h = [i for i in idx if healthy[i]]
    f = [i for i in idx if not healthy[i]]
    if protocol == "split":
        return [("all", fold("all", h, f))]
    if protocol == "cross-group":
        tg, sg = _values(train_groups), _values(test_groups)
        if not tg:
            raise InputError("--protocol cross-group needs --train-groups (e.g. --train-groups 0)")
        in_test = [(gval[i] in sg) if sg else (gval[i] not in tg) for i in idx]
        train_h = [i for i in h if gval[i] in tg]
        if not train_h:
            raise InputError(f"no healthy recordings with {group} in {sorted(tg)}")
        test = [i for i in h if in_test[i] and gval[i] not in tg] + [i for i in f if in_test[i]]
        return [("cross", fold("cross", train_h, test))]
    if protocol != "logo":
        raise InputError(f"--protocol {protocol!r}: expected split, cross-group or logo")
    out: list[tuple[str, Split | str]] = []
    for g in sorted(set(gval)):
        train_h = [i for i in h if gval[i] != g]
        if not train_h:
            out.append((g, f"no healthy recordings outside {group}={g}"))
            continue
        test_f = [i for i in f if gval[i] == g]
        if not test_f:
            out.append((g, f"no fault recordings with {group}={g}"))
            continue
        out.append((g, fold(g, train_h, [i for i in h if gval[i] == g] + test_f)))
    return out


def classify_folds(rows: Sequence[ManifestRow], healthy: Sequence[bool], protocol: str, *, group: str,
                   window: int, length: LengthFn | Mapping[Any, int], per_group: bool = False,
                   train_groups: str | None = None, test_groups: str | None = None) -> list[tuple[str, Split]]:
    """Folds of a classification evaluation as (name, Split) with train and test roles.

    * ``split``: every recording cut into [first half train | gap of one window | second half
      test]; with ``per_group`` one fold per value of ``group``;
    * ``cross-group``: whole recordings with ``group`` in ``train_groups`` train, whole
      recordings in ``test_groups`` (default: the rest) are tested;
    * ``logo``: one fold per ``group`` value of the non-healthy recordings (or ``test_groups``):
      the others train, that value is tested; healthy recordings (no group value of their own)
      are split in halves in every fold, first half train, second half test.
    """
    idx = list(range(len(rows)))
    gval = [str(r.groups.get(group, "")) for r in rows]

    def halves(i: int) -> tuple[Segment, Segment]:
        (_, s0, e0), (_, s1, e1) = contiguous_blocks(_length_of(rows[i], length), [0.5, 0.5], gap=window,
                                                     min_len=window)
        return Segment(rows[i], s0, e0, "train"), Segment(rows[i], s1, e1, "test")

    def split(name: str, train: list[Segment], test: list[Segment]) -> tuple[str, Split]:
        return name, _checked(Split(train, [], test, protocol=f"classify_{protocol}", params={"fold": name}), window)

    if protocol == "split":
        out = []
        for g in (sorted(set(gval)) if per_group else ["all"]):
            hv = [halves(i) for i in idx if not per_group or gval[i] == g]
            out.append(split(g, [a for a, _ in hv], [b for _, b in hv]))
        return out
    if protocol == "cross-group":
        tg, sg = _values(train_groups), _values(test_groups)
        if not tg:
            raise InputError("--protocol cross-group needs --train-groups (e.g. --train-groups 0)")
        train = [_whole(rows[i], length, "train") for i in idx if gval[i] in tg]
        test = [_whole(rows[i], length, "test") for i in idx if gval[i] not in tg and (sg is None or gval[i] in sg)]
        if not train or not test:
            raise InputError(f"cross-group: {len(train)} training and {len(test)} test recordings with "
                             f"{group} in {sorted(tg)} / {sorted(sg) if sg else 'the rest'}")
        return [split(f"train {','.join(sorted(tg))}", train, test)]
    if protocol != "logo":
        raise InputError(f"--protocol {protocol!r}: expected split, cross-group or logo")
    values = sorted({gval[i] for i in idx if not healthy[i]})
    if test_groups:
        values = [v.strip() for v in test_groups.split(",")]
    hv = {i: halves(i) for i in idx if healthy[i]}
    out = []
    for v in values:
        test_f = [_whole(rows[i], length, "test") for i in idx if not healthy[i] and gval[i] == v]
        if not test_f:
            raise InputError(f"logo: no recording with {group}={v}")
        train = [_whole(rows[i], length, "train") for i in idx if not healthy[i] and gval[i] != v]
        out.append(split(v, train + [a for a, _ in hv.values()], test_f + [b for _, b in hv.values()]))
    return out


def split_units(unit_ids: Sequence[int], fractions: Sequence[float], seed: int = 0,
                max_units: int | None = None) -> dict[str, list[int]]:
    """Split whole units (engines, machines) into train / calib / test: ids shuffled with
    ``seed`` and cut by ``fractions``; every role gets at least one unit and no unit is in two
    roles (checked by :func:`assert_disjoint_units`)."""
    ids = np.asarray(list(unit_ids), dtype=np.int64)
    if len(np.unique(ids)) != ids.size:
        raise InputError("unit split: duplicate unit ids")
    if len(fractions) != 3 or min(fractions) <= 0:
        raise InputError(f"unit split: expected three positive fractions, got {list(fractions)}")
    rng = np.random.default_rng(seed)
    ids = ids[rng.permutation(ids.size)]
    if max_units is not None:
        if max_units < 3:
            raise InputError(f"--max-units must be >= 3 (one unit per role), got {max_units}")
        ids = ids[:max_units]
    n = ids.size
    if n < 3:
        raise InputError(f"unit split: need at least 3 units, got {n}")
    f = np.asarray(fractions, dtype=np.float64) / float(np.sum(fractions))
    n_train = max(1, int(round(f[0] * n)))
    n_calib = max(1, int(round(f[1] * n)))
    n_train = min(n_train, n - 2)
    n_calib = min(n_calib, n - n_train - 1)
    out = {"train": sorted(ids[:n_train].tolist()), "calib": sorted(ids[n_train:n_train + n_calib].tolist()),
           "test": sorted(ids[n_train + n_calib:].tolist())}
    assert_disjoint_units(out)
    return out


def assert_disjoint_units(split: dict[str, list[int]]) -> None:
    """Raise InputError if any unit id is in two roles."""
    seen: dict[int, str] = {}
    for role, ids in split.items():
        for u in ids:
            if u in seen and seen[u] != role:
                raise InputError(f"leak: unit {u} is in both the {seen[u]} and the {role} units")
            seen[u] = role


def parse_fractions(s: str) -> list[float]:
    """--fractions: three positive numbers summing to 1 (train, calib, test)."""
    try:
        f = [float(v) for v in s.split(",")]
    except ValueError:
        raise InputError(f"--fractions {s!r}: expected three numbers like 0.5,0.2,0.3") from None
    if len(f) != 3 or min(f) <= 0 or abs(sum(f) - 1.0) > 1e-6:
        raise InputError(f"--fractions {s!r}: expected three positive fractions summing to 1")
    return f
