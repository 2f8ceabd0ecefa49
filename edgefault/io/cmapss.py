"""Reader for NASA C-MAPSS turbofan run-to-failure files (``train_FD00x.txt``, ``test_FD00x.txt``,
``RUL_FD00x.txt``).

Each data row is one operating cycle of one engine: 26 space-separated numbers, ``unit cycle
setting1 setting2 setting3 s1 .. s21``. Rows of one unit are contiguous and their cycles run
1, 2, 3, ... without gaps. In a training file every unit runs until failure (its last cycle is
the failure, remaining useful life 0); in a test file each unit stops some cycles before failure
and ``RUL_FD00x.txt`` holds that remaining life, one integer per line, in unit order.

Every rule above is checked; a malformed file raises :class:`~edgefault.errors.InputError`
naming the file, the line and what was expected. Blank lines are ignored.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from edgefault.errors import InputError

SETTING_NAMES: tuple[str, ...] = ("setting1", "setting2", "setting3")
SENSOR_NAMES: tuple[str, ...] = tuple(f"s{i}" for i in range(1, 22))
N_COLUMNS = 2 + len(SETTING_NAMES) + len(SENSOR_NAMES)

# FD001 sensor behaviour over the engines' lives (Saxena et al. 2008 and the literature that uses it):
# these rise or fall towards failure ...
FD001_TRENDING: tuple[str, ...] = ("s2", "s3", "s4", "s7", "s11", "s12", "s15", "s17", "s20", "s21")
# ... these are constant (or quantisation noise around a constant) ...
FD001_CONSTANT: tuple[str, ...] = ("s1", "s5", "s6", "s10", "s16", "s18", "s19")
# ... and these four (fan / core speeds and corrected speeds) drift in an engine-dependent direction.
FD001_MIXED: tuple[str, ...] = ("s8", "s9", "s13", "s14")


@dataclass
class CmapssUnit:
    """One engine's trajectory.

    ``sensors`` is (n_cycles, 21) in the order of :data:`SENSOR_NAMES`, ``settings`` is
    (n_cycles, 3); ``rul_end`` is the remaining useful life after the last cycle (0 for a
    run-to-failure trajectory, from the RUL file for a test trajectory, None when unknown).
    """

    unit: int
    cycles: np.ndarray
    settings: np.ndarray
    sensors: np.ndarray
    rul_end: int | None = None
    source: str = ""

    @property
    def n_cycles(self) -> int:
        return int(self.cycles.shape[0])

    @property
    def life(self) -> int | None:
        """Total life in cycles (last cycle + remaining life), when the remaining life is known."""
        return None if self.rul_end is None else self.n_cycles + int(self.rul_end)

    def rul(self) -> np.ndarray:
        """Remaining useful life after each cycle (needs ``rul_end``)."""
        if self.rul_end is None:
            raise InputError(f"unit {self.unit} of {self.source}: its remaining life is unknown")
        return (self.n_cycles - self.cycles + int(self.rul_end)).astype(np.int64)

    def channels(self, names: Sequence[str]) -> np.ndarray:
        """The named columns (sensors and/or settings) as a (n_cycles, len(names)) float64 array."""
        cols = []
        for n in names:
            if n in SENSOR_NAMES:
                cols.append(self.sensors[:, SENSOR_NAMES.index(n)])
            elif n in SETTING_NAMES:
                cols.append(self.settings[:, SETTING_NAMES.index(n)])
            else:
                raise InputError(f"C-MAPSS has no column {n!r}: expected one of "
                                 f"{list(SETTING_NAMES) + list(SENSOR_NAMES)}")
        return np.column_stack(cols) if cols else np.zeros((self.n_cycles, 0))


def _int_field(tok: str, path: str, lineno: int, what: str) -> int:
    try:
        v = float(tok)
    except ValueError:
        raise InputError(f"{path}, line {lineno}: {what} {tok!r} is not a number") from None
    if not np.isfinite(v) or v != int(v) or v < 1 or v >= 2**53:
        raise InputError(f"{path}, line {lineno}: {what} must be a positive integer, got {tok!r}")
    return int(v)


def read_cmapss(path: str | os.PathLike[str], rul: str | os.PathLike[str] | np.ndarray | None = None,
                run_to_failure: bool | None = None) -> list[CmapssUnit]:
    """Read one C-MAPSS trajectory file into a list of units in file order.

    ``rul``: the matching ``RUL_FD00x.txt`` (or its values) for a test file. ``run_to_failure``:
    whether every unit ends at failure (``rul_end`` = 0); default: True for a file named
    ``train_*`` when no ``rul`` is given.
    """
    p = str(path)
    try:
        text = Path(p).read_text(encoding="ascii")
    except FileNotFoundError:
        raise InputError(f"{p}: no such C-MAPSS file") from None
    except UnicodeDecodeError as e:
        raise InputError(f"{p}: not a C-MAPSS text file (non-ASCII byte at offset {e.start})") from None
    except OSError as e:
        raise InputError(f"{p}: cannot read: {e.strerror}") from None
    rows: list[list[float]] = []
    linenos: list[int] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        toks = line.split()
        if not toks:
            continue
        if len(toks) != N_COLUMNS:
            raise InputError(f"{p}, line {lineno}: expected {N_COLUMNS} numbers (unit, cycle, 3 settings, "
                             f"21 sensors), got {len(toks)}")
        unit = _int_field(toks[0], p, lineno, "unit number")
        cycle = _int_field(toks[1], p, lineno, "cycle")
        vals: list[float] = [float(unit), float(cycle)]
        for j, t in enumerate(toks[2:], start=2):
            try:
                v = float(t)
            except ValueError:
                raise InputError(f"{p}, line {lineno}: column {j + 1} "
                                 f"({(SETTING_NAMES + SENSOR_NAMES)[j - 2]}) {t!r} is not a number") from None
            if not np.isfinite(v):
                raise InputError(f"{p}, line {lineno}: column {j + 1} "
                                 f"({(SETTING_NAMES + SENSOR_NAMES)[j - 2]}) is {t!r}; expected a finite number")
            vals.append(v)
        rows.append(vals)
        linenos.append(lineno)
    if not rows:
        raise InputError(f"{p}: no data rows (expected lines of {N_COLUMNS} numbers)")
    a = np.asarray(rows, dtype=np.float64)
    units_col = a[:, 0].astype(np.int64)
    cycles_col = a[:, 1].astype(np.int64)
    # Units contiguous, each seen once; cycles 1, 2, 3, ... inside a unit.
    starts = np.r_[0, np.flatnonzero(np.diff(units_col)) + 1]
    stops = np.r_[starts[1:], units_col.size]
    seen: set[int] = set()
    out: list[CmapssUnit] = []
    name = Path(p).name
    for s, stop in zip(starts, stops):
        u = int(units_col[s])
        if u in seen:
            raise InputError(f"{p}, line {linenos[s]}: unit {u} appears again after other units "
                             f"(the rows of a unit must be contiguous)")
        seen.add(u)
        cyc = cycles_col[s:stop]
        expect = np.arange(1, stop - s + 1)
        bad = np.flatnonzero(cyc != expect)
        if bad.size:
            k = int(bad[0])
            raise InputError(f"{p}, line {linenos[s + k]}: unit {u} has cycle {int(cyc[k])}, expected "
                             f"{int(expect[k])} (cycles must run 1, 2, 3, ... without gaps)")
        out.append(CmapssUnit(unit=u, cycles=cyc.copy(), settings=a[s:stop, 2:5].copy(),
                              sensors=a[s:stop, 5:].copy(), source=name))
    if rul is not None:
        r = read_rul(rul) if not isinstance(rul, np.ndarray) else np.asarray(rul, dtype=np.int64)
        if r.shape != (len(out),):
            raise InputError(f"{p}: {len(out)} units but {r.size} remaining-life values"
                             f"{' in ' + str(rul) if not isinstance(rul, np.ndarray) else ''}")
        for cu, v in zip(out, r):
            cu.rul_end = int(v)
    else:
        rtf = name.lower().startswith("train") if run_to_failure is None else bool(run_to_failure)
        if rtf:
            for cu in out:
                cu.rul_end = 0
    return out


def read_rul(path: str | os.PathLike[str]) -> np.ndarray:
    """Remaining useful life per test unit: one non-negative integer per line (blank lines ignored)."""
    p = str(path)
    try:
        text = Path(p).read_text(encoding="ascii")
    except FileNotFoundError:
        raise InputError(f"{p}: no such RUL file") from None
    except (UnicodeDecodeError, OSError) as e:
        raise InputError(f"{p}: cannot read the RUL file: {e}") from None
    vals = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        toks = line.split()
        if not toks:
            continue
        if len(toks) != 1:
            raise InputError(f"{p}, line {lineno}: expected one remaining-life value, got {len(toks)} fields")
        try:
            v = float(toks[0])
        except ValueError:
            raise InputError(f"{p}, line {lineno}: remaining life {toks[0]!r} is not a number") from None
        if not np.isfinite(v) or v != int(v) or v < 0:
            raise InputError(f"{p}, line {lineno}: remaining life must be a non-negative integer, got {toks[0]!r}")
        vals.append(int(v))
    if not vals:
        raise InputError(f"{p}: no remaining-life values")
    return np.asarray(vals, dtype=np.int64)


def load_subset(root: str | os.PathLike[str], subset: str = "FD001") -> tuple[list[CmapssUnit], list[CmapssUnit]]:
    """``(train units, test units)`` of one sub-dataset in folder ``root``: ``train_<subset>.txt``
    (run to failure) and ``test_<subset>.txt`` with ``RUL_<subset>.txt`` (test is empty when the
    test files are absent)."""
    d = Path(root)
    if not d.is_dir():
        raise InputError(f"{d}: not a folder (expected the C-MAPSS folder with train_{subset}.txt)")
    train = read_cmapss(d / f"train_{subset}.txt", run_to_failure=True)
    test: list[CmapssUnit] = []
    if (d / f"test_{subset}.txt").exists():
        if not (d / f"RUL_{subset}.txt").exists():
            raise InputError(f"{d}: test_{subset}.txt without RUL_{subset}.txt")
        test = read_cmapss(d / f"test_{subset}.txt", rul=d / f"RUL_{subset}.txt")
    return train, test
