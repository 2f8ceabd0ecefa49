"""Read sensor recordings from files: MATLAB v5 .mat, WAV, CSV, NPY/NPZ and Parquet.

Only numpy and the standard library are imported here (pyarrow lazily, for Parquet).

``read_recording(path, channels=None, fs=None, default_fs=None, format=None, input_scale=None)``
returns a :class:`Recording` whose ``data`` is ``(n_samples, n_channels)`` float32, C-contiguous.

Behaviour common to every format:

- the format comes from the file extension (``.mat``, ``.wav``/``.wave``, ``.csv``, ``.npy``,
  ``.npz``, ``.parquet``/``.pq``) unless ``format=`` names it;
- ``channels`` is ``None`` (the format's default set), a comma-separated string
  (``"DE,FE"``) or a sequence of names / integer indices; names match exactly, else
  case-insensitively (refused as ambiguous when several channels differ only in case; reading
  such channels together is refused), then a decimal string or an ``int`` is taken as a
  position in :func:`available_channels`;
- sample rate, recorded in ``Recording.fs_source``: the file's own rate where the format stores
  one (``"header"``: WAV; CSV/Parquet with a time column; NPZ with an ``fs`` entry), else
  ``default_fs`` (``"option"``, or ``"manifest"`` with ``default_fs_source="manifest"``), else the
  CWRU naming rule for .mat files with CWRU variable names (``"naming"``: a ``12k`` / ``48k``
  token in the file or folder name, :func:`cwru_rate_from_name`), else ``fs`` (``"option"``,
  then taken as the rate the file was recorded at), else ``model_fs`` with
  ``assume_model_rate=True`` (``"model"``); with none of them an :class:`InputError` names the
  file and the ways to give its rate.  When ``fs`` (or ``model_fs``) is given and differs from the
  file's rate the data is resampled to it with :func:`edgefault.io.resample.resample`, and
  ``Recording.source_fs`` keeps the file's rate.  A rate the file does not store goes through
  :func:`rate_fit` (a spectral sanity check); its message, if any, is ``Recording.rate_warning``;
- sample values follow :mod:`edgefault.samples`, the rule ``Runtime.push`` applies too: floats as
  stored; int8/16/32 divided by ``2**(bits - 1)``; uint8/16/32 as offset binary,
  ``(x - 2**(bits - 1)) / 2**(bits - 1)`` (8-bit WAV); bool as 0 / 1; int64 / uint64 refused
  unless ``input_scale=`` is given, which replaces the rule by ``x * input_scale`` for every
  channel.  ``Recording.input_scaling`` says which rule the data went through (``"full_scale"``
  when an integer channel was mapped, else ``"float"``); training stores it in the bundle;
- NaN in the data is returned as is (the runtime flags it); empty files, zero-length signals,
  non-finite rates, truncated files and unreadable cells raise :class:`InputError` naming the
  file and what was expected.

Format notes:

- **.mat** (CWRU style): channels are the vector variables ``<prefix>_DE_time``,
  ``<prefix>_FE_time``, ``<prefix>_BA_time`` (short names ``DE``/``FE``/``BA``) and the rpm
  ``<prefix>RPM``.  When a file holds several prefixes (CWRU's 99.mat holds X098 and X099) one
  *record* is preferred, ranked by, in order: its number appears among the numbers in the file
  name; it has an RPM variable; it has the most channels; it comes first in the file.  Its
  channels are named ``DE``, ``FE``, ``BA`` (their full variable names work too) and are the
  default; other records' channels are available under their full variable names.  In a file
  without CWRU names, every real numeric vector (more than one element) is a channel named
  after its variable, and all of them are the default.  Cell, struct, char, sparse, complex and
  object variables are skipped (and named as such if asked for).  The rpm is the RPM variable
  of the record the channels come from, or the file's only RPM variable.
- **WAV**: PCM 8/16/24/32-bit and IEEE float 32/64 (format 1, 3 or WAVE_FORMAT_EXTENSIBLE);
  integers are mapped to [-1, 1) by the rule below (24-bit as left-justified int32); channels
  ``ch0``, ``ch1``, ... (or
  ``"0"``, ``"1"``).  A data chunk size of 0xFFFFFFFF (streaming writers) means "to the end".
- **CSV**: delimiter ``,`` / ``;`` / tab / whitespace, guessed from the first line; a first
  line with any non-numeric cell is the header (else channels are ``ch0``, ...); lines
  starting with ``#`` and blank lines are skipped; a first column named ``t``, ``time`` or
  ``time_s`` is time in seconds and gives ``fs``.
- **time columns** (CSV, Parquet) must increase strictly and be uniform: every timestamp within
  0.1 sample period of the straight line through the first and last; the rate is that line's
  slope, snapped to the nearest integer Hz when within 1e-4 relative.
- **NPY**: 1-D ``(n,)`` or 2-D ``(n_samples, n_channels)``; an array with more columns than
  rows is refused as probably transposed.  **NPZ**: either a ``data`` array (as NPY) with
  optional ``channels`` (strings) and ``fs`` entries, or one 1-D array per channel (names =
  keys) plus an optional ``fs``.  Pickled objects are never loaded.
- **Parquet** (``pip install edgefault[parquet]``): numeric columns are the channels; a column
  named ``t``/``time``/``time_s`` (seconds, or a timestamp type) gives ``fs``.
"""

from __future__ import annotations

import io
import math
import os
import re
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Sequence, Union

import numpy as np

from edgefault.io.matv5 import MatFile
from edgefault.errors import InputError, MissingDependencyError, RateUnknownError
from edgefault.io.resample import check_rate, resample
from edgefault.samples import to_float

__all__ = ["Recording", "read_recording", "available_channels", "rate_fit", "upper_half_fraction", "cwru_rate_from_name", "file_rates",
           "FORMATS", "RATE_SOURCES"]

#: the values of Recording.fs_source, in the order read_recording tries them
RATE_SOURCES = ("header", "manifest", "option", "naming", "model")

#: extension -> format name
FORMATS = {
    ".mat": "mat", ".wav": "wav", ".wave": "wav", ".csv": "csv", ".npy": "npy",
    ".npz": "npz", ".parquet": "parquet", ".pq": "parquet",
}
_TIME_NAMES = ("t", "time", "time_s")
_CWRU_CHANNEL = re.compile(r"^(?P<prefix>.+?)_(?P<ch>DE|FE|BA)_time$", re.IGNORECASE)
_CWRU_RPM = re.compile(r"^(?P<prefix>.+?)RPM$", re.IGNORECASE)
_CWRU_ORDER = ("DE", "FE", "BA")

ChannelSpec = Union[None, str, Sequence[Union[str, int]]]


@dataclass(frozen=True)
class Recording:
    """A multi-channel recording read from a file."""

    data: np.ndarray  # (n_samples, n_channels) float32, C-contiguous
    fs: float  # Hz, after any resampling
    channels: tuple[str, ...]
    path: str
    rpm: float | None = None
    source_fs: float | None = None  # the file's own rate when resampled, else None
    #: the edgefault.samples rule the data went through: "full_scale" when an integer channel was
    #: mapped to [-1, 1), else "float" (float samples as stored, or scaled by an explicit input_scale)
    input_scaling: str = "float"
    #: where the file's rate came from (see RATE_SOURCES): "header" (the file stores it), "manifest",
    #: "option" (fs= / default_fs= / --fs), "naming" (CWRU folder / file names) or "model" (assumed
    #: from the model's rate, only with assume_model_rate=True)
    fs_source: str = "option"
    #: the spectral sanity check's message when the content does not fit the assumed rate, else None
    rate_warning: str | None = None

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.data.shape[0] / self.fs


@dataclass
class _Source:
    """What a format opener finds in a file, before any channel is decoded."""

    names: tuple[str, ...]  # canonical channel names, in order
    default: tuple[int, ...]  # indices read when channels=None
    columns: Callable[[list[int]], list[np.ndarray]]  # 1-D arrays for those indices
    fs: float | None = None
    aliases: dict[str, int] = field(default_factory=dict)  # extra lower-case names
    rpm: Callable[[list[int]], float | None] = lambda idx: None
    explain: Callable[[str], str | None] = lambda token: None  # why a name is not a channel
    close: Callable[[], None] = lambda: None  # release open files
    cwru: bool = False  # a .mat file with CWRU variable names (<prefix>_DE_time ...)


# -- public API ------------------------------------------------------------------------------
def _name_list(names: Sequence[str], most: int = 8) -> str:
    """Channel names for a message: the first few and how many there are."""
    if len(names) <= most:
        return ", ".join(names)
    return ", ".join(names[:most]) + f", ... ({len(names)} channels)"


def read_recording(
    path: str | os.PathLike[str],
    channels: ChannelSpec = None,
    fs: float | None = None,
    default_fs: float | None = None,
    format: str | None = None,
    input_scale: float | None = None,
    *,
    model_fs: float | None = None,
    assume_model_rate: bool = False,
    default_fs_source: str = "option",
    rate_check: bool = True,
) -> Recording:
    """Read a recording; see the module docstring for formats, channels and rates.

    input_scale : multiply every sample by this instead of the :mod:`edgefault.samples` rule
        (integers to [-1, 1), floats as stored); needed for 64-bit integer channels.
    model_fs : the rate of the model the data feeds, instead of ``fs``: the data is resampled to
        it, but it is taken as the rate of a file that stores none (and none is known from
        ``default_fs`` or CWRU naming) only with ``assume_model_rate=True`` (``fs_source`` "model");
        otherwise such a file is an :class:`InputError` naming it and the ways to give its rate.
    default_fs_source : what ``default_fs`` is: "option" (default) or "manifest".
    rate_check : run :func:`rate_fit` on a rate that the file does not store (``Recording.rate_warning``).
    """
    spath, fmt = _check_path(path, format)
    if model_fs is not None and fs is not None:
        raise InputError("give fs= (the rate to read at) or model_fs= (a model's rate), not both")
    if default_fs_source not in ("option", "manifest"):
        raise InputError(f"default_fs_source must be 'option' or 'manifest', got {default_fs_source!r}")
    target = _rate_arg(fs, "fs")
    model = _rate_arg(model_fs, "model_fs")
    fallback = _rate_arg(default_fs, "default_fs")
    if input_scale is not None:
        input_scale = _scale_arg(input_scale)
    src = _OPENERS[fmt](spath)
    try:
        idx = _select(src, channels, spath)
        cols = src.columns(idx)
        rpm = src.rpm(idx)
    finally:
        src.close()
    names = tuple(src.names[i] for i in idx)
    lower = Counter(n.lower() for n in names)  # not list.count: files may hold thousands of channels
    clash = sorted({n for n in names if lower[n.lower()] > 1})
    if clash:
        raise InputError(
            f"{spath!r} has channels whose names differ only in case ({', '.join(map(repr, clash))}); "
            f"channel names are matched case-insensitively: rename them, or pick one with channels="
        )
    lengths = {c.shape[0] for c in cols}
    if len(lengths) > 1:
        desc = ", ".join(f"{n}: {c.shape[0]}" for n, c in zip(names, cols))
        raise InputError(
            f"channels of {spath!r} have different lengths ({desc}); pick channels of one "
            f"length with channels="
        )
    n = cols[0].shape[0]
    if n == 0:
        raise InputError(f"{spath!r} holds a zero-length signal (channels {_name_list(names)})")
    data = np.empty((n, len(cols)), dtype=np.float32)
    scaled = False
    for j, c in enumerate(cols):
        c = np.asarray(c)
        if c.dtype.kind == "b":
            c = c.astype(np.float32)  # flags: 0 / 1
        try:
            data[:, j] = to_float(c, "full_scale", input_scale, what=f"channel {names[j]!r} of {spath!r}")
        except InputError as e:
            if c.dtype.kind in "iu" and c.dtype.itemsize == 8 and input_scale is None:
                raise InputError(f"{e}; or leave it out by naming the signal channels (channels= / --channels)") \
                    from None
            raise
        scaled = scaled or (c.dtype.kind in "iu" and input_scale is None)
    named = cwru_rate_from_name(spath) if src.cwru else None
    if src.fs is not None:
        rate, how = src.fs, "header"
    elif fallback is not None:
        rate, how = fallback, default_fs_source
    elif named is not None:
        rate, how = named, "naming"
    elif target is not None:
        rate, how = target, "option"  # fs alone: the rate the file was recorded at
    elif model is not None and assume_model_rate:
        rate, how = model, "model"
    elif model is not None:
        raise RateUnknownError(
            f"{spath!r} ({fmt}) does not store its sample rate, and neither a manifest fs column nor "
            f"its name tells it: give the rate it was recorded at with --fs <Hz> (fs=/default_fs= in "
            f"the API), or pass --assume-model-rate (assume_model_rate=True) to read it at the "
            f"model's {model:g} Hz", path=spath, format=fmt, model_fs=model
        )
    else:
        raise RateUnknownError(
            f"{spath!r} ({fmt}) does not store its sample rate: pass fs=<Hz> (the rate it was "
            f"recorded at), or default_fs=<recorded rate> together with a target fs (command line: "
            f"--fs, train: --file-fs or a manifest fs column)", path=spath, format=fmt, model_fs=None
        )
    fs_alone = how == "option" and fallback is None  # fs is both the file's rate and the target
    if target is None:
        target = model
    source_fs = None
    if target is not None and not math.isclose(target, rate, rel_tol=1e-9):
        try:
            data = np.ascontiguousarray(resample(data, rate, target, axis=0), dtype=np.float32)
        except InputError as exc:
            raise InputError(f"{spath!r} (recorded at {rate!r} Hz): {exc}") from None
        source_fs, rate = rate, target
    warning = None
    if rate_check and target is not None and how != "header" and not fs_alone:
        # judged at the rate the data is handed on at (the model's): there, a file read at its
        # right rate keeps the content the resampler passes; a faster file read too slowly does not
        warning = rate_fit(data, rate, spath, how, source_fs)
    return Recording(data, float(rate), names, spath, rpm, source_fs,
                     "full_scale" if scaled else "float", how, warning)


def file_rates(recordings: Sequence[Recording]) -> list[dict[str, object]]:
    """The training record's ``file_rates``: each recording's file name, the rate it was read at
    (before any resampling) and where that rate came from (``Recording.fs_source``)."""
    return [{"file": os.path.basename(r.path), "fs": float(r.source_fs or r.fs), "fs_source": r.fs_source}
            for r in recordings]


#: CWRU's sample-rate tokens: its data sets are "12k Drive End", "12k Fan End", "48k Drive End"
#: and the normal baseline (recorded at 48 kHz); /work/shared/data names them drive_end_12k/, normal_48k/
_CWRU_RATE_TOKEN = re.compile(r"(?<![0-9a-z])(12|48)k(?![0-9a-z])", re.IGNORECASE)


def cwru_rate_from_name(path: str | os.PathLike[str]) -> float | None:
    """The rate CWRU naming gives a path: a ``12k`` / ``48k`` token (delimited by anything but
    letters and digits: ``normal_48k``, ``12k_drive_end``, ``48k-DE``) in the file name or, failing
    that, the nearest folder name that has one.  None when no part of the path has one, or when the
    part that decides has both."""
    parts = [os.path.splitext(os.path.basename(os.fspath(path)))[0]]
    parts += list(reversed(os.path.normpath(os.path.dirname(os.path.abspath(os.fspath(path)))).split(os.sep)))
    for part in parts:
        found = {int(m.group(1)) for m in _CWRU_RATE_TOKEN.finditer(part)}
        if len(found) == 1:
            return float(found.pop()) * 1000.0
        if found:
            return None
    return None


#: rate_fit warns when less than this fraction of the power (DC left out) lies in the upper half of
#: the band, measured on the data as a 12 kHz model gets it.  On /work/shared/data/cwru: the 12 kHz
#: files at their own rate 0.033 .. 0.86 (DE, 60 files), 0.117 .. 0.87 (FE, 52); the 48 kHz normal
#: baseline resampled from 48 kHz 0.69; the same file read as 12 kHz 0.0018 (DE) / 0.0034 (FE).
RATE_FIT_UPPER_MIN = 0.01
_FIT_SEG = 1024
_FIT_MAX = 65536  # samples looked at (a few seconds at the rates in use)


def upper_half_fraction(data: np.ndarray) -> float | None:
    """rate_fit's statistic: the fraction of the power (DC left out) in the upper half of the band,
    from one Welch estimate (Hann, 1024-sample segments, half overlap) over the first 65536 samples,
    channels summed; None when too short (< 8 segments), constant or not finite."""
    x = np.asarray(data, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    x = x[:_FIT_MAX]
    if x.shape[0] < 8 * _FIT_SEG or not np.isfinite(x).all():
        return None
    x = x - x.mean(axis=0)
    w = np.hanning(_FIT_SEG)[:, None]
    hop = _FIT_SEG // 2
    psd = np.zeros(_FIT_SEG // 2 + 1)
    for i in range(0, x.shape[0] - _FIT_SEG + 1, hop):
        psd += (np.abs(np.fft.rfft(x[i:i + _FIT_SEG] * w, axis=0)) ** 2).sum(axis=1)
    total = psd[1:].sum()
    if not (total > 0 and math.isfinite(total)):
        return None
    return float(psd[_FIT_SEG // 4:].sum() / total)


def rate_fit(data: np.ndarray, fs: float, path: str = "the recording", source: str = "option",
             file_fs: float | None = None) -> str | None:
    """A cheap spectral sanity check of an assumed rate, on the data at the rate it is handed on at
    (``fs``, the model's; ``file_fs`` the assumed rate of the file when it was resampled): one Welch
    estimate (Hann, 1024-sample segments, half overlap) over the first 65536 samples, channels
    summed.  Returns a warning when the upper half of the band (fs/4 .. fs/2) is almost empty
    (< RATE_FIT_UPPER_MIN of the power): the file was then probably sampled faster than assumed (a
    48 kHz file read as 12 kHz shows its content squeezed into the lower quarter).  None when it
    fits, or when the signal is too short (< 8 segments), constant or not finite.

    The statistic does not depend on the rate assumed for the file, only on the data handed on: a
    48 kHz CWRU file has an almost empty upper half at 48 kHz too, and passes only once it is
    resampled to a 12 kHz model.  A file sampled slower than assumed is not flagged (its spectrum
    looks like a right one)."""
    upper = upper_half_fraction(data)
    if upper is None or upper >= RATE_FIT_UPPER_MIN:
        return None
    native = file_fs or fs
    return (f"{path!r} read at {native:g} Hz ({source})" + (f", resampled to {fs:g} Hz" if file_fs else "")
            + f": only {upper:.2%} of its power lies in the upper half of the band ({fs / 4:g}-{fs / 2:g} Hz); "
            f"recordings read at their own rate have more than {RATE_FIT_UPPER_MIN:.0%} there, so it was "
            f"probably sampled faster than {native:g} Hz: check its rate and give it with --fs <Hz> (fs=)")


def available_channels(path: str | os.PathLike[str], format: str | None = None) -> tuple[str, ...]:
    """Channel names ``read_recording`` accepts for this file, in order."""
    spath, fmt = _check_path(path, format)
    src = _OPENERS[fmt](spath)
    src.close()
    return src.names


# -- common helpers ----------------------------------------------------------------------------
def _check_path(path: object, format: str | None) -> tuple[str, str]:
    try:
        spath = os.fspath(path)  # type: ignore[arg-type]
    except TypeError:
        raise InputError(f"path must be a file path (str or os.PathLike), got {path!r}") from None
    if isinstance(spath, bytes):
        spath = os.fsdecode(spath)
    if format is not None:
        key = str(format).lower()
        key = key if key.startswith(".") else "." + key
        if key not in FORMATS:
            raise InputError(
                f"format={format!r} is not supported; expected one of "
                f"{', '.join(sorted(set(FORMATS.values())))}"
            )
        fmt = FORMATS[key]
    else:
        ext = os.path.splitext(spath)[1].lower()
        if ext not in FORMATS:
            raise InputError(
                f"cannot tell the format of {spath!r} from its extension {ext or '(none)'!r}; "
                f"expected one of {', '.join(sorted(FORMATS))}, or pass format="
            )
        fmt = FORMATS[ext]
    if not os.path.exists(spath):
        raise InputError(f"no such file: {spath!r}")
    if os.path.isdir(spath):
        raise InputError(f"{spath!r} is a directory, expected a {fmt} file")
    if os.path.getsize(spath) == 0:
        raise InputError(f"{spath!r} is empty (0 bytes), expected a {fmt} file")
    return spath, fmt


def _rate_arg(value: object, name: str) -> float | None:
    return None if value is None else check_rate(value, name)


def _scale_arg(value: object) -> float:
    try:
        f = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        f = math.nan
    if not math.isfinite(f) or f == 0:
        raise InputError(f"input_scale must be a finite non-zero number, got {value!r}")
    return f


def _file_rate(value: object, path: str, where: str) -> float:
    try:
        f = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        f = math.nan
    if not math.isfinite(f) or f <= 0:
        raise InputError(
            f"{path!r}: {where} gives the sample rate {value!r}; expected a positive finite "
            f"number of Hz (fix the file, or pass fs=)"
        )
    return f


def _select(src: _Source, channels: ChannelSpec, path: str) -> list[int]:
    if channels is None:
        idx = list(src.default)
        if not idx:
            raise InputError(f"{path!r} holds no signal channels")
        return idx
    if isinstance(channels, str):
        tokens: list[str | int] = [t.strip() for t in channels.split(",") if t.strip()]
    elif isinstance(channels, (list, tuple)):
        tokens = list(channels)
    else:
        raise InputError(
            f"channels must be None, a comma-separated string or a list of names, got "
            f"{channels!r}"
        )
    if not tokens:
        raise InputError(f"channels={channels!r} names no channel")
    exact = {n: i for i, n in enumerate(src.names)}
    lookup: dict[str, int | None] = {}
    for i, n in enumerate(src.names):  # None: several names differ only in case
        lookup[n.lower()] = None if n.lower() in lookup else i
    lookup.update(src.aliases)
    idx: list[int] = []
    for tok in tokens:
        i: int | None = None
        if isinstance(tok, str):
            i = exact.get(tok)
            if i is None and tok.lower() in lookup and lookup[tok.lower()] is None:
                raise InputError(
                    f"channel {tok!r} of {path!r} is ambiguous: several channels have that name in "
                    f"different case ({', '.join(n for n in src.names if n.lower() == tok.lower())}); "
                    f"give the exact name"
                )
            if i is None:
                i = lookup.get(tok.lower())
            if i is None and tok.isdecimal():
                i = int(tok) if int(tok) < len(src.names) else None
        elif isinstance(tok, (int, np.integer)) and not isinstance(tok, bool):
            i = int(tok) if 0 <= tok < len(src.names) else None
        if i is None:
            why = src.explain(tok) if isinstance(tok, str) else None
            raise InputError(
                f"{path!r} has no channel {tok!r}"
                + (f" ({why})" if why else "")
                + f"; available: {', '.join(src.names) or 'none'}"
            )
        if i in idx:
            raise InputError(f"channel {tok!r} is requested twice in channels={channels!r}")
        idx.append(i)
    return idx


def _read_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise InputError(f"cannot read {path!r}: {exc.strerror or exc}") from exc


def _numeric_2d(arr: np.ndarray, path: str, what: str) -> np.ndarray:
    if arr.dtype.kind not in "biuf":
        raise InputError(
            f"{what} in {path!r} has dtype {arr.dtype}; expected real numbers "
            f"(integer or float)"
        )
    if arr.ndim == 1:
        return arr.reshape(-1, 1)
    if arr.ndim != 2:
        raise InputError(
            f"{what} in {path!r} has shape {arr.shape}; expected (n_samples,) or "
            f"(n_samples, n_channels)"
        )
    if arr.shape[1] > arr.shape[0]:
        raise InputError(
            f"{what} in {path!r} has shape {arr.shape}: more channels than samples, so it is "
            f"probably (n_channels, n_samples); expected (n_samples, n_channels): transpose it"
        )
    return arr


def _fs_from_time(t: np.ndarray, path: str, col: str) -> float | None:
    t = np.asarray(t, dtype=np.float64)
    if t.size < 2:
        return None
    bad = np.flatnonzero(~np.isfinite(t))
    if bad.size:
        raise InputError(f"time column {col!r} of {path!r} is not finite at row {bad[0] + 1}")
    back = np.flatnonzero(np.diff(t) <= 0)
    if back.size:
        raise InputError(
            f"time column {col!r} of {path!r} does not increase at row {back[0] + 2} "
            f"({t[back[0]]!r} then {t[back[0] + 1]!r}); expected strictly increasing seconds"
        )
    fs = (t.size - 1) / (t[-1] - t[0])
    dev = float(np.max(np.abs(t - (t[0] + np.arange(t.size) / fs)))) * fs
    if dev > 0.1:
        raise InputError(
            f"time column {col!r} of {path!r} is not uniformly sampled (a timestamp is "
            f"{dev:.3g} sample periods off the uniform grid at {fs:.6g} Hz); resample it to a "
            f"uniform grid first"
        )
    r = round(fs)
    if r > 0 and abs(fs - r) <= 1e-4 * fs:
        fs = float(r)
    return _file_rate(fs, path, f"time column {col!r}")


# -- MATLAB ------------------------------------------------------------------------------------
def _open_mat(path: str) -> _Source:
    mf = MatFile(path)
    records: dict[str, dict[str, str]] = {}  # prefix -> {"DE": varname, ...}
    first_seen: dict[str, int] = {}
    rpm_vars: dict[str, str] = {}
    vectors: list[str] = []
    unsupported = {v.name.lower(): f"a {v.mclass} array: {v.reason}" for v in mf.variables
                   if not v.supported}
    for pos, v in enumerate(mf.variables):
        if not v.supported:
            continue
        is_vector = math.prod(v.shape) > 1 and sum(d > 1 for d in v.shape) == 1
        m = _CWRU_CHANNEL.match(v.name)
        if m and is_vector:
            rec = records.setdefault(m["prefix"], {})
            rec[m["ch"].upper()] = v.name
            first_seen.setdefault(m["prefix"], pos)
            continue
        m = _CWRU_RPM.match(v.name)
        if m and math.prod(v.shape) >= 1 and not is_vector:
            rpm_vars[m["prefix"]] = v.name
            continue
        if is_vector:
            vectors.append(v.name)
    used = {n for r in records.values() for n in r.values()} | set(rpm_vars.values())
    for v in mf.variables:  # numeric but not a vector: say so if asked for
        if v.supported and v.name not in used and v.name not in vectors:
            unsupported[v.name.lower()] = f"a {v.mclass} array of shape {v.shape}, not a vector"

    stem_numbers = {int(s) for s in re.findall(r"\d+", os.path.basename(path))}

    def rank(prefix: str) -> tuple[bool, bool, int, int]:
        num = re.search(r"\d+", prefix)
        return (
            num is not None and int(num.group()) in stem_numbers,
            prefix in rpm_vars,
            len(records[prefix]),
            -first_seen[prefix],
        )

    names: list[str] = []
    var_of: list[str] = []
    prefix_of: list[str | None] = []
    aliases: dict[str, int] = {}
    default: tuple[int, ...]
    ordered = sorted(records, key=rank, reverse=True)
    for k, prefix in enumerate(ordered):
        for ch in _CWRU_ORDER:
            if ch in records[prefix]:
                var = records[prefix][ch]
                aliases[var.lower()] = len(names)
                names.append(ch if k == 0 else var)
                var_of.append(var)
                prefix_of.append(prefix)
    n_preferred = len(records[ordered[0]]) if ordered else 0
    for var in vectors:
        names.append(var)
        var_of.append(var)
        prefix_of.append(None)
    default = tuple(range(n_preferred)) if ordered else tuple(range(len(names)))

    def columns(idx: list[int]) -> list[np.ndarray]:
        return [mf.load(var_of[i]).reshape(-1) for i in idx]

    def rpm(idx: list[int]) -> float | None:
        prefixes = {prefix_of[i] for i in idx}
        if len(prefixes) == 1 and next(iter(prefixes)) in rpm_vars:
            var = rpm_vars[next(iter(prefixes))]  # type: ignore[index]
        elif len(rpm_vars) == 1:
            var = next(iter(rpm_vars.values()))
        else:
            return None
        value = float(mf.load(var).reshape(-1)[0])
        return value if math.isfinite(value) else None

    def explain(token: str) -> str | None:
        return unsupported.get(token.lower())

    return _Source(tuple(names), default, columns, None, aliases, rpm, explain, cwru=bool(records))


# -- WAV ---------------------------------------------------------------------------------------
def _open_wav(path: str) -> _Source:
    buf = _read_bytes(path)
    if buf[:4] in (b"RIFX", b"RF64"):
        raise InputError(
            f"{path!r} is a {buf[:4].decode()} WAV file, which is not supported; convert it to "
            f"a standard little-endian RIFF WAV"
        )
    if len(buf) < 12 or buf[:4] != b"RIFF" or buf[8:12] != b"WAVE":
        raise InputError(f"{path!r} is not a WAV file (no RIFF/WAVE header)")
    size = len(buf)
    pos = 12
    fmt: tuple[int, int, int, int, int] | None = None
    data: tuple[int, int] | None = None
    while pos + 8 <= size:
        cid = buf[pos : pos + 4]
        csize = int.from_bytes(buf[pos + 4 : pos + 8], "little")
        body = pos + 8
        if cid == b"data":
            if csize == 0xFFFFFFFF:  # streaming writer that never patched the size
                csize = size - body
            if body + csize > size:
                raise InputError(
                    f"WAV file {path!r} is truncated: its data chunk declares {csize} bytes "
                    f"but only {size - body} follow (expected a file of at least "
                    f"{body + csize} bytes, got {size})"
                )
            data = (body, csize)
        elif cid == b"fmt ":
            if csize < 16 or body + csize > size:
                raise InputError(
                    f"WAV file {path!r} is truncated or corrupt: its fmt chunk has "
                    f"{min(csize, size - body)} bytes, expected at least 16"
                )
            f = buf[body : body + csize]
            tag, nch = int.from_bytes(f[0:2], "little"), int.from_bytes(f[2:4], "little")
            rate = int.from_bytes(f[4:8], "little")
            align, bits = int.from_bytes(f[12:14], "little"), int.from_bytes(f[14:16], "little")
            if tag == 0xFFFE:
                if csize < 40:
                    raise InputError(
                        f"WAV file {path!r}: WAVE_FORMAT_EXTENSIBLE fmt chunk has {csize} "
                        f"bytes, expected 40"
                    )
                tag = int.from_bytes(f[24:26], "little")  # sub-format GUID starts with it
            fmt = (tag, nch, rate, align, bits)
        pos = body + csize + (csize & 1)
        if data is not None and fmt is not None:
            break
    if fmt is None:
        raise InputError(f"WAV file {path!r} has no fmt chunk (truncated or not a WAV file)")
    if data is None:
        raise InputError(f"WAV file {path!r} has no data chunk (truncated or empty)")
    tag, nch, rate, align, bits = fmt
    if nch < 1 or align < nch or align % nch:
        raise InputError(
            f"WAV file {path!r} is corrupt: {nch} channels with {align}-byte frames"
        )
    width = align // nch
    kind = {(1, 1): "u1", (1, 2): "i2", (1, 3): "i3", (1, 4): "i4", (3, 4): "f4", (3, 8): "f8"}
    code = kind.get((tag, width))
    if code is None:
        raise InputError(
            f"WAV file {path!r} uses format tag 0x{tag:04x} with {bits}-bit samples "
            f"({width}-byte containers), which is not supported; expected PCM 8/16/24/32-bit "
            f"or IEEE float 32/64-bit (convert it, e.g. with sox or ffmpeg)"
        )
    fs = _file_rate(rate, path, "the WAV header")
    start, nbytes = data
    if nbytes % align:
        raise InputError(
            f"WAV file {path!r} is truncated: its data chunk has {nbytes} bytes, not a whole "
            f"number of {align}-byte frames (expected {nbytes // align * align + align})"
        )
    n = nbytes // align

    def columns(idx: list[int]) -> list[np.ndarray]:
        # Raw samples; read_recording maps them with edgefault.samples (24-bit: left-justified int32,
        # so the int32 full scale gives x / 2**23).
        if code == "i3":
            raw = np.frombuffer(buf, np.uint8, n * align, start).reshape(n, nch, 3)
            out = []
            for i in idx:
                b = np.zeros((n, 4), np.uint8)
                b[:, 1:] = raw[:, i, :]
                out.append(b.view("<i4").reshape(n))
            return out
        frames = np.frombuffer(buf, np.dtype("<" + code), n * nch, start).reshape(n, nch)
        return [frames[:, i] for i in idx]

    return _Source(tuple(f"ch{i}" for i in range(nch)), tuple(range(nch)), columns, fs)


# -- CSV ---------------------------------------------------------------------------------------
def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _open_csv(path: str) -> _Source:
    raw = _read_bytes(path)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"CSV file {path!r} is not UTF-8 text (byte {exc.start})") from None
    lines = text.split("\n")
    first = next(
        (i for i, ln in enumerate(lines) if ln.strip() and not ln.lstrip().startswith("#")), None
    )
    if first is None:
        raise InputError(f"CSV file {path!r} holds no data (only blank or comment lines)")
    head = lines[first].strip()
    delim = next((d for d in (",", ";", "\t") if d in head), None)

    def split(line: str) -> list[str]:
        return [c.strip().strip('"').strip() for c in line.strip().split(delim)]

    cells = split(lines[first])
    has_header = not all(_is_number(c) for c in cells)
    if has_header:
        header = [c or f"ch{i}" for i, c in enumerate(cells)]
        dup = {h for h in header if [x.lower() for x in header].count(h.lower()) > 1}
        if dup:
            raise InputError(
                f"CSV file {path!r} has duplicate column names {sorted(dup)} in its header"
            )
        body_start = first + 1
    else:
        header = [f"ch{i}" for i in range(len(cells))]
        body_start = first
    ncols = len(header)
    values: np.ndarray | None = np.zeros((0, ncols))
    if any(ln.strip() and not ln.lstrip().startswith("#") for ln in lines[body_start:]):
        try:
            values = np.loadtxt(
                io.StringIO("\n".join(lines[body_start:])), delimiter=delim, comments="#",
                ndmin=2, dtype=np.float64, quotechar='"',
            )
        except ValueError:
            values = None
    if values is None or (values.size and values.shape[1] != ncols):
        _csv_error(path, lines, body_start, delim, header, split)
    assert values is not None
    time_col = has_header and header[0].lower() in _TIME_NAMES
    fs = _fs_from_time(values[:, 0], path, header[0]) if time_col else None
    off = 1 if time_col else 0
    names = tuple(header[off:])
    if not names:
        raise InputError(f"CSV file {path!r} has a time column but no signal columns")

    def columns(idx: list[int]) -> list[np.ndarray]:
        return [values[:, i + off] for i in idx]

    return _Source(names, tuple(range(len(names))), columns, fs)


def _csv_error(path: str, lines: list[str], start: int, delim: str | None,
               header: list[str], split: Callable[[str], list[str]]) -> None:
    for i in range(start, len(lines)):
        line = lines[i]
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        cells = split(line)
        if len(cells) != len(header):
            raise InputError(
                f"CSV file {path!r}, line {i + 1}: {len(cells)} values, expected "
                f"{len(header)} (one per column: {', '.join(header)})"
            )
        for j, c in enumerate(cells):
            if not _is_number(c):
                raise InputError(
                    f"CSV file {path!r}, line {i + 1}, column {j + 1} ({header[j]!r}): "
                    f"{c!r} is not a number (expected numbers only; use nan for a missing value)"
                )
    raise InputError(f"CSV file {path!r} could not be parsed as numbers")


# -- NPY / NPZ ---------------------------------------------------------------------------------
def _npy_header(fh: io.BufferedIOBase, path: str, what: str) -> tuple[tuple[int, ...], np.dtype]:
    try:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
    except InputError:
        raise
    except Exception as exc:  # ValueError, EOFError, OSError, tokenize.TokenError, SyntaxError, zlib.error ...
        raise InputError(
            f"{what} in {path!r} is not a valid .npy array (its header: {type(exc).__name__}: {exc})"
        ) from None
    if not (isinstance(shape, tuple) and all(type(d) is int and d >= 0 for d in shape)):
        raise InputError(
            f"{what} in {path!r} is not a valid .npy array: its header gives the shape {shape!r}, "
            f"expected non-negative integer dimensions"
        )
    if dtype.hasobject:
        raise InputError(
            f"{what} in {path!r} holds Python objects (pickled data); only numeric arrays are "
            f"read, and pickles are never loaded"
        )
    return shape, dtype


def _open_npy(path: str) -> _Source:
    try:
        with open(path, "rb") as fh:
            shape, dtype = _npy_header(fh, path, "the array")
            offset = fh.tell()
    except OSError as exc:
        raise InputError(f"cannot read {path!r}: {exc.strerror or exc}") from exc
    expected = offset + math.prod(shape) * dtype.itemsize
    size = os.path.getsize(path)
    if size < expected:
        raise InputError(
            f".npy file {path!r} is truncated: its header announces shape {shape} {dtype}, "
            f"which needs {expected} bytes, but the file has {size}"
        )
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as exc:  # np.load parses the header its own way ('Cannot parse header', ...)
        raise InputError(f"the array in {path!r} is not a valid .npy array ({type(exc).__name__}: {exc})") from None
    if not isinstance(arr, np.ndarray) or arr.shape != tuple(shape) or arr.dtype != dtype:
        raise InputError(f"the array in {path!r} is not a valid .npy array (its header is inconsistent)")
    arr2 = _numeric_2d(arr, path, "the array")
    nch = arr2.shape[1]
    return _Source(tuple(f"ch{i}" for i in range(nch)), tuple(range(nch)),
                   lambda idx: [np.asarray(arr2[:, i]) for i in idx])


def _open_npz(path: str) -> _Source:
    # Open the file here: np.load leaks its own handle when the zip directory is unreadable.
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise InputError(f"cannot read {path!r}: {exc.strerror or exc}") from exc
    try:
        npz = np.load(fh, allow_pickle=False)
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise InputError(f"{path!r} is a .npy array, not an .npz archive: rename it to .npy")
        src = _npz_source(npz, path)
    except InputError:
        fh.close()
        raise
    except Exception as exc:  # zipfile / zlib / numpy errors of a damaged archive
        fh.close()
        raise InputError(
            f"{path!r} is not a valid .npz archive (truncated or corrupt?): {type(exc).__name__}: {exc}"
        ) from None
    except BaseException:
        fh.close()
        raise

    def close() -> None:
        npz.close()
        fh.close()

    src.close = close
    return src


def _npz_source(npz: np.lib.npyio.NpzFile, path: str) -> _Source:
    members = npz.zip.namelist()
    dup = sorted({m for m in members if members.count(m) > 1})
    if dup:
        raise InputError(f"{path!r} is not a valid .npz archive: members {dup} appear more than once")
    not_npy = [m for m in members if not m.endswith(".npy")]
    if not_npy:
        raise InputError(
            f"{path!r} holds members that are not .npy arrays ({', '.join(map(repr, not_npy[:5]))}); "
            f"expected an .npz archive of .npy arrays (np.savez)"
        )
    keys = [m[:-4] for m in members]
    if len(set(keys)) != len(keys):
        raise InputError(f"{path!r} is not a valid .npz archive: its entry names repeat")
    shapes: dict[str, tuple[tuple[int, ...], np.dtype]] = {}

    def get(key: str) -> np.ndarray:
        shape, dtype = shapes[key] if key in shapes else header(key)
        need = math.prod(shape) * dtype.itemsize
        held = npz.zip.getinfo(key + ".npy").file_size
        if need > held:  # refuse before numpy allocates what the header announces
            raise InputError(f"entry {key!r} of {path!r} is corrupt: its header announces {shape} {dtype} "
                             f"({need} bytes), the member holds {held} bytes")
        try:
            arr = npz[key]
        except ValueError as exc:
            if "pickle" in str(exc).lower() or "object" in str(exc).lower():
                raise InputError(
                    f"entry {key!r} of {path!r} holds Python objects (pickled data); only "
                    f"numeric arrays are read, and pickles are never loaded"
                ) from None
            raise InputError(f"entry {key!r} of {path!r} cannot be read: {exc}") from None
        except Exception as exc:  # zipfile / zlib / numpy errors of a damaged member
            raise InputError(
                f"entry {key!r} of {path!r} is truncated or corrupt: {type(exc).__name__}: {exc}"
            ) from None
        if not isinstance(arr, np.ndarray):
            raise InputError(f"entry {key!r} of {path!r} is not a .npy array")
        if key in shapes and (arr.shape, arr.dtype) != shapes[key]:
            raise InputError(f"entry {key!r} of {path!r} is corrupt: its data does not match its header")
        return arr

    def header(key: str) -> tuple[tuple[int, ...], np.dtype]:
        try:
            with npz.zip.open(key + ".npy") as fh:
                shapes[key] = _npy_header(fh, path, f"entry {key!r}")
                return shapes[key]
        except InputError:
            raise
        except Exception as exc:  # zipfile / zlib errors: compression method, encryption, CRC ...
            raise InputError(
                f"entry {key!r} of {path!r} is truncated or corrupt: {type(exc).__name__}: {exc}"
            ) from None

    def text(arr: np.ndarray, key: str) -> list[str]:
        try:
            out = [str(c.decode() if isinstance(c, bytes) else c) for c in arr.tolist()]
            for c in out:
                c.lower().encode("utf-8")  # SystemError / UnicodeError on code points beyond U+10FFFF
            return out
        except Exception:  # invalid code points in a 'U' array, non-UTF-8 bytes
            raise InputError(f"entry {key!r} of {path!r} holds strings that are not valid text") from None

    fs = None
    if "fs" in keys:
        f = get("fs")
        if f.dtype.kind not in "iuf" or f.size != 1:
            raise InputError(
                f"entry 'fs' of {path!r} must be one number (Hz), got an array of dtype {f.dtype} and "
                f"shape {f.shape}"
            )
        fs = _file_rate(f.reshape(-1)[0], path, "entry 'fs'")
    if "data" in keys:
        shape, dtype = header("data")
        if len(shape) not in (1, 2) or dtype.kind not in "biuf":
            raise InputError(
                f"entry 'data' in {path!r} has shape {shape} and dtype {dtype}; expected real "
                f"numbers of shape (n_samples,) or (n_samples, n_channels)"
            )
        nch = 1 if len(shape) == 1 else shape[1]
        names = tuple(f"ch{i}" for i in range(nch))
        if "channels" in keys:
            ch = get("channels")
            if ch.dtype.kind not in "US" or ch.ndim != 1 or ch.size != nch:
                raise InputError(
                    f"entry 'channels' of {path!r} must be {nch} strings (one per column of "
                    f"'data'), got {ch.dtype} of shape {ch.shape}"
                )
            names = tuple(text(ch, "channels"))
        cache: list[np.ndarray] = []

        def columns(idx: list[int]) -> list[np.ndarray]:
            if not cache:
                cache.append(_numeric_2d(get("data"), path, "entry 'data'"))
            return [cache[0][:, i] for i in idx]

        return _Source(names, tuple(range(nch)), columns, fs)
    chans = [k for k in keys if k not in ("fs",)]
    for k in chans:
        shape, dtype = header(k)
        if dtype.kind not in "biuf" or not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)):
            raise InputError(
                f"entry {k!r} of {path!r} has shape {shape} and dtype {dtype}; expected one "
                f"numeric 1-D array per channel, or a 'data' array of shape "
                f"(n_samples, n_channels)"
            )
    return _Source(tuple(chans), tuple(range(len(chans))),
                   lambda idx: [get(chans[i]).reshape(-1) for i in idx], fs)


# -- Parquet -----------------------------------------------------------------------------------
def _open_parquet(path: str) -> _Source:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise MissingDependencyError(
            f"reading Parquet ({path!r}) needs pyarrow: pip install edgefault[parquet]"
        ) from None
    try:
        schema = pq.read_schema(path)
        fields = [(f.name, f.type) for f in schema]  # names decode lazily: UnicodeDecodeError
    except (pa.ArrowException, OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{path!r} is not a readable Parquet file (truncated?): {exc}") from None
    all_names = [n for n, _ in fields]
    seen = Counter(all_names)
    dup = sorted({n for n in all_names if seen[n] > 1})
    if dup:
        raise InputError(f"Parquet file {path!r} has several columns named {', '.join(map(repr, dup))}; "
                         f"expected unique column names")
    time_col = next((n for n in all_names if n.lower() in _TIME_NAMES), None)
    names = tuple(
        n for n, t in fields
        if n != time_col and (pa.types.is_integer(t) or pa.types.is_floating(t))
    )

    def read(cols: list[str]) -> dict[str, np.ndarray]:
        try:
            table = pq.read_table(path, columns=cols)
            out = {}
            for c in cols:
                col = table.column(c)
                if pa.types.is_timestamp(col.type):
                    col = col.cast(pa.timestamp("ns")).cast(pa.int64())
                    out[c] = col.to_numpy().astype(np.float64) * 1e-9
                else:
                    out[c] = np.asarray(col.to_numpy(), dtype=np.float64 if col.null_count else None)
        except (pa.ArrowException, OSError, KeyError, UnicodeDecodeError, ValueError) as exc:
            raise InputError(f"cannot read Parquet file {path!r} (columns {cols}): {exc}") from None
        return out

    fs = None
    if time_col is not None:
        ttype = dict(fields)[time_col]
        if not (pa.types.is_integer(ttype) or pa.types.is_floating(ttype)
                or pa.types.is_timestamp(ttype)):
            raise InputError(
                f"time column {time_col!r} of {path!r} has type {ttype}; expected seconds "
                f"(numbers) or a timestamp"
            )
        fs = _fs_from_time(read([time_col])[time_col], path, time_col)

    def columns(idx: list[int]) -> list[np.ndarray]:
        got = read([names[i] for i in idx])
        return [got[names[i]] for i in idx]

    return _Source(names, tuple(range(len(names))), columns, fs)


_OPENERS: dict[str, Callable[[str], _Source]] = {
    "mat": _open_mat, "wav": _open_wav, "csv": _open_csv, "npy": _open_npy,
    "npz": _open_npz, "parquet": _open_parquet,
}
