"""A small MATLAB v5 MAT-file reader (numeric arrays only), numpy + stdlib.

Format (MathWorks, "MAT-File Format", level 5):

- a 128-byte header: 116 bytes of text (``MATLAB 5.0 MAT-file ...``), an 8-byte subsystem
  offset, a 2-byte version (0x0100) and a 2-byte endian indicator, ``IM`` for a little-endian
  file and ``MI`` for a big-endian one;
- then data elements, each with an 8-byte tag (uint32 type, uint32 byte count) or, in the
  small-element format, a 4-byte tag (uint16 byte count in the high half, uint16 type in the
  low half) with up to 4 bytes of data packed beside it; sub-elements are padded to 8 bytes;
- a top-level element is ``miMATRIX`` (14) or ``miCOMPRESSED`` (15: a zlib stream that
  holds one ``miMATRIX``);
- an ``miMATRIX`` holds array flags (class in the low byte, complex / global / logical bits),
  dimensions (int32), the name (int8 text), then the real part; the real part may be stored in
  a narrower type than its class (MATLAB saves space that way) and is cast to the class.

Read here: numeric classes double, single, int8 .. uint64 and logical (real, any number of dimensions,
returned in MATLAB's shape, column-major order respected).  Listed but not decoded: cell,
struct, object, char, sparse, function, opaque and complex arrays (``MatVariable.supported``
is False and ``reason`` says why).  MATLAB v7.3 files are HDF5 and v4 files have another
layout: both are refused with an :class:`~edgefault.errors.InputError` saying what to do.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np

from edgefault.errors import InputError

__all__ = ["MatVariable", "MatFile", "loadmat"]

MI_INT8, MI_UINT32, MI_INT32, MI_MATRIX, MI_COMPRESSED, MI_UTF8 = 1, 6, 5, 14, 15, 16

_MI_DTYPES = {
    1: "i1", 2: "u1", 3: "i2", 4: "u2", 5: "i4", 6: "u4", 7: "f4", 9: "f8", 12: "i8", 13: "u8",
}
_MX_NUMERIC = {
    6: ("double", "f8"), 7: ("single", "f4"), 8: ("int8", "i1"), 9: ("uint8", "u1"),
    10: ("int16", "i2"), 11: ("uint16", "u2"), 12: ("int32", "i4"), 13: ("uint32", "u4"),
    14: ("int64", "i8"), 15: ("uint64", "u8"),
}
_MX_OTHER = {
    1: "cell", 2: "struct", 3: "object", 4: "char", 5: "sparse", 16: "function", 17: "opaque",
}
_BYTEORDER = {"little": "<", "big": ">"}
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_FLAG_COMPLEX = 0x0800
_FLAG_LOGICAL = 0x0200
_PEEK_BYTES = 1024  # decompressed bytes enough for a matrix header when listing


@dataclass(frozen=True)
class MatVariable:
    """One top-level variable of a MAT-file, as listed (data not decoded)."""

    name: str
    mclass: str  # "double", "single", "int8", ..., "cell", "struct", "char", ...
    shape: tuple[int, ...]
    supported: bool  # True when loadmat() can return it as a numeric array
    reason: str = ""  # why it is not supported, "" when it is


@dataclass(frozen=True)
class _Element:
    var: MatVariable
    offset: int  # of the top-level tag in the file
    start: int  # of the element's data
    nbytes: int
    compressed: bool


class _Truncated(Exception):
    """Internal: a structure ran past the end of the bytes available."""

    def __init__(self, needed: int) -> None:
        super().__init__(needed)
        self.needed = needed


class _Corrupt(Exception):
    """Internal: bytes present but not a valid structure."""


def _raw_tag(buf: bytes, pos: int, order: str) -> tuple[int, int]:
    """``(type, nbytes)`` of a regular 8-byte tag; the caller checks there are 8 bytes."""
    return (
        int.from_bytes(buf[pos : pos + 4], order),
        int.from_bytes(buf[pos + 4 : pos + 8], order),
    )


def _tag(buf: bytes, pos: int, end: int, order: str) -> tuple[int, int, int, int]:
    """Read a data-element tag at ``pos``: ``(type, nbytes, data_start, next_pos)``.

    ``next_pos`` is padded to 8 bytes (sub-element rule).
    """
    if pos + 4 > end:
        raise _Truncated(pos + 8)
    w0 = int.from_bytes(buf[pos : pos + 4], order)
    if w0 >> 16:  # small data element: data packed in the 4 bytes after the tag word
        nbytes, typ = w0 >> 16, w0 & 0xFFFF
        if nbytes > 4:
            raise _Corrupt(f"small data element at byte {pos} claims {nbytes} bytes (max 4)")
        if pos + 8 > end:
            raise _Truncated(pos + 8)
        return typ, nbytes, pos + 4, pos + 8
    if pos + 8 > end:
        raise _Truncated(pos + 8)
    typ = w0
    nbytes = int.from_bytes(buf[pos + 4 : pos + 8], order)
    start = pos + 8
    if start + nbytes > end:
        raise _Truncated(start + nbytes)
    return typ, nbytes, start, start + ((nbytes + 7) & ~7)


def _matrix_header(
    buf: bytes, start: int, end: int, order: str
) -> tuple[MatVariable, str, int]:
    """Parse an miMATRIX's flags, dims and name.

    Returns ``(variable, numpy dtype of its class or "" when not numeric, pos of real part)``.
    """
    if start == end:  # empty miMATRIX (seen inside cells; harmless at top level)
        return MatVariable("", "empty", (0, 0), False, "empty matrix element"), "", end
    typ, nbytes, dstart, pos = _tag(buf, start, end, order)
    if typ != MI_UINT32 or nbytes != 8:
        raise _Corrupt(f"array flags sub-element expected at byte {start}, found type {typ}")
    flags = int.from_bytes(buf[dstart : dstart + 4], order)
    code = flags & 0xFF
    shape: tuple[int, ...] = ()
    if code != 17:  # dims (opaque objects go straight to the name)
        typ, nbytes, dstart, npos = _tag(buf, pos, end, order)
        if typ not in (MI_INT32, MI_UINT32) or nbytes % 4:
            raise _Corrupt(
                f"dimensions sub-element expected at byte {pos}, found type {typ} "
                f"with {nbytes} bytes"
            )
        dims = np.frombuffer(buf, dtype=_BYTEORDER[order] + "i4", count=nbytes // 4, offset=dstart)
        if (dims < 0).any():
            raise _Corrupt(f"negative dimension {dims.tolist()} at byte {pos}")
        shape = tuple(int(d) for d in dims)
        pos = npos
    typ, nbytes, dstart, npos = _tag(buf, pos, end, order)
    if typ not in (MI_INT8, MI_UTF8, 2):
        raise _Corrupt(f"array name sub-element expected at byte {pos}, found type {typ}")
    name = bytes(buf[dstart : dstart + nbytes]).decode("utf-8", errors="replace")
    pos = npos
    if code in _MX_NUMERIC:
        mclass, dtype = _MX_NUMERIC[code]
        if flags & _FLAG_LOGICAL:
            mclass, dtype = "logical", "?"
        if flags & _FLAG_COMPLEX:
            return MatVariable(name, mclass, shape, False, "complex values"), dtype, pos
        return MatVariable(name, mclass, shape, True), dtype, pos
    mclass = _MX_OTHER.get(code, f"class {code}")
    return MatVariable(name, mclass, shape, False, f"{mclass} arrays are not read"), "", pos


def _decode_real(
    buf: bytes, var: MatVariable, dtype: str, pos: int, end: int, order: str
) -> np.ndarray:
    typ, nbytes, dstart, _ = _tag(buf, pos, end, order)
    if typ not in _MI_DTYPES:
        raise _Corrupt(f"real part of {var.name!r} has unknown storage type {typ}")
    stored = np.dtype(_BYTEORDER[order] + _MI_DTYPES[typ])
    count = math.prod(var.shape)
    if nbytes != count * stored.itemsize:
        raise _Corrupt(
            f"real part of {var.name!r} has {nbytes} bytes; shape {var.shape} as "
            f"{stored.name} needs {count * stored.itemsize}"
        )
    raw = np.frombuffer(buf, dtype=stored, count=count, offset=dstart)
    out = raw.astype(np.dtype(dtype))  # native order, owns its memory
    return out.reshape(var.shape, order="F")


class MatFile:
    """An opened MAT-file: ``variables`` lists what it holds; ``load`` decodes arrays.

    The whole file is read into memory once (CWRU files are a few MB).
    """

    def __init__(self, path: str) -> None:
        self.path = str(path)
        try:
            with open(path, "rb") as fh:
                self._buf = fh.read()
        except OSError as exc:
            raise InputError(f"cannot read MAT-file {self.path!r}: {exc.strerror or exc}") from exc
        self._order = self._check_header()
        self._elements: dict[str, _Element] = {}
        self.variables: tuple[MatVariable, ...] = self._index()

    # -- header and index ---------------------------------------------------------------
    def _check_header(self) -> str:
        buf, path = self._buf, self.path
        if not buf:
            raise InputError(f"MAT-file {path!r} is empty (0 bytes)")
        if buf[:8] == _HDF5_MAGIC or buf[512:520] == _HDF5_MAGIC or (
            len(buf) >= 128 and buf[124:126] in (b"\x00\x02", b"\x02\x00")
        ):
            raise InputError(
                f"{path!r} is a MATLAB v7.3 MAT-file, which is HDF5-based and not supported: "
                f"re-save it in MATLAB with save(..., '-v7') (or convert it to .npz / .wav)"
            )
        if len(buf) < 128:
            raise InputError(
                f"{path!r} is too short to be a MATLAB v5 MAT-file: {len(buf)} bytes, expected "
                f"at least the 128-byte header (the file is truncated, or a MATLAB v4 file: "
                f"re-save it with save(..., '-v7'))"
            )
        indicator = buf[126:128]
        if indicator == b"IM":
            order = "little"
        elif indicator == b"MI":
            order = "big"
        else:
            raise InputError(
                f"{path!r} is not a MATLAB v5 MAT-file (no 'IM'/'MI' endian indicator at byte "
                f"126; MATLAB v4 files are not supported): re-save it with save(..., '-v7')"
            )
        if int.from_bytes(buf[124:126], order) != 0x0100:
            raise InputError(
                f"{path!r}: unknown MAT-file version 0x{int.from_bytes(buf[124:126], order):04x}"
                f" (expected 0x0100, MATLAB v5/v7)"
            )
        return order

    def _truncated(self, what: str, needed: int) -> InputError:
        return InputError(
            f"MAT-file {self.path!r} is truncated: {what} needs {needed} bytes but the file has "
            f"{len(self._buf)}; the file was cut short (re-copy or re-export it)"
        )

    def _corrupt(self, what: str, detail: str) -> InputError:
        return InputError(f"MAT-file {self.path!r} is corrupt: {what}: {detail}")

    def _index(self) -> tuple[MatVariable, ...]:
        buf, order = self._buf, self._order
        size = len(buf)
        pos = 128
        out: list[MatVariable] = []
        while pos < size:
            if size - pos < 8:
                if not any(buf[pos:]):  # trailing zero padding
                    break
                raise self._truncated(f"the data element at byte {pos}", pos + 8)
            typ, nbytes = _raw_tag(buf, pos, order)
            start = pos + 8
            if typ not in (MI_MATRIX, MI_COMPRESSED):
                if typ >> 16 or typ == 0 or start + nbytes > size:
                    if not any(buf[pos:]):
                        break
                    raise self._corrupt(f"data element at byte {pos}", f"unexpected type {typ}")
                pos = start + nbytes  # some other top-level element: skip it
                continue
            compressed = typ == MI_COMPRESSED
            if start + nbytes > size:
                name = self._peek_name(start, size, compressed)
                what = f"variable {name!r}" if name else f"the variable at byte {pos}"
                raise self._truncated(f"{what} (data element at byte {pos})", start + nbytes)
            var = self._header_of(pos, start, nbytes, compressed)
            if var.name:
                self._elements[var.name] = _Element(var, pos, start, nbytes, compressed)
                out = [v for v in out if v.name != var.name]  # a later duplicate wins
                out.append(var)
            pos = start + nbytes
        return tuple(out)

    def _peek_name(self, start: int, end: int, compressed: bool) -> str:
        """Best-effort name of a (truncated) variable, '' if its header is unreadable."""
        try:
            if compressed:
                inner = zlib.decompressobj().decompress(self._buf[start:end], _PEEK_BYTES)
                return _matrix_header(inner, 8, len(inner), self._order)[0].name
            return _matrix_header(self._buf, start, end, self._order)[0].name
        except (_Truncated, _Corrupt, zlib.error, ValueError):
            return ""

    def _header_of(self, pos: int, start: int, nbytes: int, compressed: bool) -> MatVariable:
        order = self._order
        try:
            if not compressed:
                return _matrix_header(self._buf, start, start + nbytes, order)[0]
            # Decompress only the first bytes: enough for flags, dims and name.
            dec = zlib.decompressobj()
            inner = dec.decompress(self._buf[start : start + nbytes], _PEEK_BYTES)
            if len(inner) < 8:
                raise _Corrupt("compressed element too short to hold a variable")
            typ, inbytes = _raw_tag(inner, 0, order)
            if typ != MI_MATRIX:
                raise _Corrupt(f"compressed element holds type {typ}, expected miMATRIX (14)")
            try:
                return _matrix_header(inner, 8, min(len(inner), 8 + inbytes), order)[0]
            except _Truncated:  # header longer than the peek: decompress it all
                inner = self._inflate(pos, start, nbytes)
                return _matrix_header(inner, 8, len(inner), order)[0]
        except _Truncated as exc:
            raise self._truncated(f"the variable at byte {pos}", exc.needed) from None
        except _Corrupt as exc:
            raise self._corrupt(f"the variable at byte {pos}", str(exc)) from None
        except zlib.error as exc:
            raise self._corrupt(f"the compressed variable at byte {pos}", str(exc)) from None

    def _inflate(self, pos: int, start: int, nbytes: int) -> bytes:
        dec = zlib.decompressobj()
        try:
            inner = dec.decompress(self._buf[start : start + nbytes])
        except zlib.error as exc:
            raise self._corrupt(f"the compressed variable at byte {pos}", str(exc)) from None
        if not dec.eof:
            raise self._corrupt(
                f"the compressed variable at byte {pos}",
                f"its zlib stream is incomplete within its {nbytes} bytes",
            )
        if len(inner) < 8:
            raise self._corrupt(f"the compressed variable at byte {pos}", "no element inside")
        typ, inbytes = _raw_tag(inner, 0, self._order)
        if typ != MI_MATRIX or 8 + inbytes > len(inner):
            raise self._corrupt(
                f"the compressed variable at byte {pos}",
                f"inner element type {typ} with {inbytes} bytes in {len(inner) - 8}",
            )
        return inner[: 8 + inbytes]

    # -- data ---------------------------------------------------------------------------
    def load(self, name: str) -> np.ndarray:
        """Decode the numeric variable ``name`` (native byte order, MATLAB shape)."""
        el = self._elements.get(name)
        if el is None:
            raise InputError(
                f"MAT-file {self.path!r} has no variable {name!r}; it has "
                f"{', '.join(v.name for v in self.variables) or 'no variables'}"
            )
        if not el.var.supported:
            raise InputError(
                f"variable {name!r} in MAT-file {self.path!r} is a {el.var.mclass} array "
                f"({el.var.reason}); only real numeric arrays can be read"
            )
        if el.compressed:
            buf = self._inflate(el.offset, el.start, el.nbytes)
            start, end = 8, len(buf)
        else:
            buf, start, end = self._buf, el.start, el.start + el.nbytes
        order = self._order
        try:
            var, dtype, pos = _matrix_header(buf, start, end, order)
            return _decode_real(buf, var, dtype, pos, end, order)
        except _Truncated as exc:
            raise self._corrupt(
                f"variable {name!r}", f"data runs past its element ({exc.needed} > {end} bytes)"
            ) from None
        except _Corrupt as exc:
            raise self._corrupt(f"variable {name!r}", str(exc)) from None


def loadmat(path: str) -> dict[str, np.ndarray]:
    """Every real numeric variable of a v5 MAT-file, by name (others are left out)."""
    mf = MatFile(path)
    return {v.name: mf.load(v.name) for v in mf.variables if v.supported}
