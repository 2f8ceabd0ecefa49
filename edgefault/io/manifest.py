"""Dataset manifests: one CSV row per recording (path, label, optional fs / channels / n_samples
and any group columns such as load_hp)."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from edgefault.errors import InputError

__all__ = ["ManifestRow", "load_manifest", "select_rows", "is_healthy", "HEALTHY_LABELS"]

HEALTHY_LABELS = ("normal", "healthy")  # manifest labels of healthy recordings unless told otherwise

_LABEL_COLS = ("label", "fault")
_FS_COLS = ("fs", "fs_hz")
_LENGTH_COLS = ("n_samples",)
_SEARCH_PARENTS = 2


# --------------------------------------------------------------------------- manifest


@dataclass(frozen=True)
class ManifestRow:
    """One recording listed in a manifest.

    ``path`` is resolved and exists; ``groups`` holds every column that is not
    path / label / fs / channels / n_samples (e.g. ``load_hp``, ``diameter_in``),
    values as the strings written in the file; ``raw`` is the row as read.
    ``line`` is the row's line number in the CSV (header = line 1).
    """

    path: Path
    label: str
    fs: float | None
    channels: tuple[str, ...] | None
    groups: dict[str, str]
    raw: dict[str, str] = field(repr=False)
    n_samples: int | None = None
    line: int = 0

    def __hash__(self) -> int:  # dict fields are unhashable; the path identifies a recording
        return hash(self.path)

    @property
    def key(self) -> str:
        """Identity of the recording (its resolved path) used for overlap checks."""
        return str(self.path)


def _pick(header: list[str], names: tuple[str, ...], what: str, src: Path) -> str | None:
    found = [n for n in names if n in header]
    if len(found) > 1:
        raise InputError(f"{src}: columns {found} both give the {what}; keep only one of them")
    return found[0] if found else None


def _split_channels(v: str, where: str) -> tuple[str, ...] | None:
    v = v.strip()
    if not v:
        return None
    for sep in ("+", ";"):
        v = v.replace(sep, ",")
    parts = tuple(p.strip() for p in v.split(","))
    if any(not p for p in parts):
        raise InputError(f"{where}: channels {v!r} has an empty name (expected e.g. 'DE+FE')")
    if len(set(parts)) != len(parts):
        raise InputError(f"{where}: channels {v!r} lists a channel twice")
    return parts


def _resolve(rel: str, bases: list[Path], where: str) -> Path:
    p = Path(rel).expanduser()
    if p.is_absolute():
        if p.is_file():
            return p.resolve()
        raise InputError(f"{where}: file {str(p)!r} not found")
    for b in bases:
        cand = b / p
        if cand.is_file():
            return cand.resolve()
    looked = ", ".join(str(b) for b in bases)
    raise InputError(f"{where}: file {rel!r} not found (looked relative to: {looked})")


def load_manifest(path: str | Path, root: str | Path | None = None) -> list[ManifestRow]:
    """Read a recordings manifest (CSV with a header row).

    Columns: ``path`` (required); ``label`` or its alias ``fault`` (required);
    ``fs`` or ``fs_hz`` (optional, Hz); ``channels`` (optional, names separated
    by ``+``, ``;`` or ``,`` inside quotes); ``n_samples`` (optional, used as the
    recording length by the split protocols); every other column is a group
    column kept as a string in ``row.groups``.

    Relative paths resolve against ``root`` when given; otherwise against the
    manifest's folder, then its parent and grandparent (the first that holds the
    file wins). Raises :class:`InputError` for an unreadable or empty manifest,
    missing columns, bad values, a missing file (naming row and path) or a
    recording listed twice (which would let one file land in train and test).
    """
    src = Path(path).expanduser()
    if not src.is_file():
        raise InputError(f"manifest {str(src)!r} not found")
    if root is not None:
        r = Path(root).expanduser()
        if not r.is_dir():
            raise InputError(f"manifest root {str(r)!r} is not a folder")
        bases = [r.resolve()]
    else:
        d = src.resolve().parent
        bases = [d, *list(d.parents)[:_SEARCH_PARENTS]]

    try:
        with open(src, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            try:
                header = next(reader)
            except StopIteration:
                raise InputError(f"manifest {src} is empty: expected a header row with 'path' and 'label'") from None
            header = [h.strip() for h in header]
            if len(set(header)) != len(header):
                dup = sorted({h for h in header if header.count(h) > 1})
                raise InputError(f"manifest {src}: duplicate column names {dup}")
            if "path" not in header:
                raise InputError(f"manifest {src}: missing column 'path' (columns: {header})")
            label_col = _pick(header, _LABEL_COLS, "label", src)
            if label_col is None:
                raise InputError(f"manifest {src}: missing a label column 'label' or 'fault' (columns: {header})")
            fs_col = _pick(header, _FS_COLS, "sample rate", src)
            len_col = _pick(header, _LENGTH_COLS, "length", src)
            special = {"path", label_col, fs_col, len_col, "channels"}
            group_cols = [h for h in header if h not in special]

            rows: list[ManifestRow] = []
            seen: dict[Path, int] = {}
            for i, values in enumerate(reader, start=1):
                if not values or all(not v.strip() for v in values):
                    continue  # blank line
                where = f"manifest {src} row {i} (line {reader.line_num})"
                if len(values) != len(header):
                    raise InputError(f"{where}: {len(values)} fields, the header has {len(header)}")
                raw = {h: v.strip() for h, v in zip(header, values)}
                if not raw["path"]:
                    raise InputError(f"{where}: empty path")
                label = raw[label_col]
                if not label:
                    raise InputError(f"{where}: empty {label_col}")
                fs: float | None = None
                if fs_col and raw[fs_col]:
                    try:
                        fs = float(raw[fs_col])
                    except ValueError:
                        fs = math.nan
                    if not (math.isfinite(fs) and fs > 0):
                        raise InputError(f"{where}: {fs_col} {raw[fs_col]!r} is not a positive number of Hz")
                n_samples: int | None = None
                if len_col and raw[len_col]:
                    try:
                        n_samples = int(raw[len_col])
                    except ValueError:
                        n_samples = -1
                    if n_samples <= 0:
                        raise InputError(f"{where}: {len_col} {raw[len_col]!r} is not a positive integer")
                channels = _split_channels(raw.get("channels", ""), where)
                p = _resolve(raw["path"], bases, where)
                if p in seen:
                    raise InputError(f"{where}: {raw['path']!r} is already listed in row {seen[p]}; "
                                     f"a recording listed twice could end up in both train and test")
                seen[p] = i
                rows.append(ManifestRow(path=p, label=label, fs=fs, channels=channels,
                                        groups={g: raw[g] for g in group_cols}, raw=raw,
                                        n_samples=n_samples, line=reader.line_num))
    except UnicodeDecodeError as e:
        raise InputError(f"manifest {src} is not UTF-8 text: {e}") from None
    except csv.Error as e:
        raise InputError(f"manifest {src}: malformed CSV: {e}") from None
    if not rows:
        raise InputError(f"manifest {src} lists no recordings (only a header)")
    return rows


def is_healthy(label: str, healthy: Sequence[str] = HEALTHY_LABELS) -> bool:
    """Whether a manifest label marks a healthy recording (case-insensitive)."""
    return label.lower() in {h.lower() for h in healthy}


def select_rows(rows: Sequence[ManifestRow], *, include_labels: str | None = None, where: Sequence[str] | None = None,
                label_columns: str | None = None, healthy: Sequence[str] = HEALTHY_LABELS
                ) -> tuple[list[ManifestRow], list[str]]:
    """Rows kept by ``include_labels`` (comma-separated labels) and ``where`` (``COLUMN=V1,V2``
    filters, all must hold), and their class labels: the label column, or for non-healthy rows
    the ``label_columns`` (comma-separated; ``label``/``fault`` = the label) joined with '@'."""
    keep = {v.strip() for v in include_labels.split(",")} if include_labels else None
    conds: list[tuple[str, set[str]]] = []
    for w in where or []:
        if "=" not in w:
            raise InputError(f"--where {w!r}: expected COLUMN=V1,V2,...")
        col, vals = w.split("=", 1)
        conds.append((col.strip(), {v.strip() for v in vals.split(",")}))
    cols = [c.strip() for c in label_columns.split(",")] if label_columns else []
    out_rows, labels = [], []
    for r in rows:
        if keep is not None and r.label not in keep:
            continue
        ok = True
        for col, vals in conds:
            v = r.label if col in ("label", "fault") and col not in r.groups else r.groups.get(col)
            if v is None:
                raise InputError(f"--where: {r.path.name} has no column {col!r} (columns: {sorted(r.groups)})")
            ok &= v in vals
        if not ok:
            continue
        lab = r.label
        if cols and not is_healthy(r.label, healthy):
            parts = []
            for c in cols:
                if c in ("label", "fault"):
                    parts.append(r.label)
                elif c in r.groups:
                    parts.append(r.groups[c])
                else:
                    raise InputError(f"--label-columns: {r.path.name} has no column {c!r} "
                                     f"(columns: {sorted(r.groups)})")
            lab = "@".join(parts)
        out_rows.append(r)
        labels.append(lab)
    if not out_rows:
        raise InputError("no manifest rows left after --include-labels / --where")
    return out_rows, labels
