#!/usr/bin/env python3
"""Coverage-guided fuzzing of edgefault's input boundaries (issue #12 item 10).

Targets (``--targets``, comma-separated; ``readers`` = the six reader targets, ``all`` = every one):

  mat wav csv npy npz parquet   ``edgefault.io.readers.read_recording`` on a generated file (the first
                                two input bytes pick ``channels=`` and ``fs=`` / ``default_fs=``)
  bundle                        ``edgefault.device.bundle.load_bundle`` on a .efb, then ``Runtime`` on the
                                loaded bundle and one push; mutations start from bundles trained
                                in-process (Gaussian with and without drift, VAE, SFDSC): zip members,
                                manifest JSON values, .npy arrays, ONNX bytes, usually re-sealed (sizes,
                                sha256, bundle_id, digest recomputed) so they get past the integrity checks
  framing                       ``edgefault.daemon.framing``: ``decode`` (bytes and memoryview), the TCP
                                ``StreamDecoder`` fed in random pieces (checked against one whole feed),
                                ``SequenceTracker``, plus the daemon's stdin/serial ``RawParser``
  push                          ``edgefault.Runtime.push`` on the trained bundles: dtypes, shapes, memory
                                layouts, NaN/inf/extremes, empty and huge chunks, constructor options,
                                ``set_state`` with damaged states; every event must serialise as the
                                daemon writes it (``json.dumps(allow_nan=False)``)

Engines: ``atheris`` (libFuzzer, coverage of the instrumented edgefault Python code, structure-aware
custom mutators) or ``plain`` (the same mutators without coverage; used when atheris is missing).
Each target runs in its own worker process until ``--runs`` inputs or ``--seconds`` (per target; a
plain number or ``target=value,...``). A native crash (signal, ASan / UBSan report, libFuzzer timeout
or out-of-memory) ends the worker: it is recorded with its log and libFuzzer artifact, and the
worker is restarted on the remaining budget (at most ``--max-restarts`` times).

Outcome of one input: accepted; refused with an EdgefaultError (InputError / BundleError ...) whose
message names the input (else an ``unnamed`` finding); or a finding: any other exception (IndexError,
struct.error, zipfile.BadZipFile, numpy's ValueError, ...) or a broken invariant (AssertionError).
Findings listed in ``KNOWN`` (reported, owned elsewhere) are printed but do not fail the run.

Per target it prints: inputs run, seconds, accepted / refused, distinct refusal messages (numbers,
quoted values and the temp path normalised), findings, crashes and sanitizer reports; ``--json``
writes everything, with example inputs under ``<workdir>/findings`` (replay one with
``--replay FILE --target T``).

ASan / UBSan: build the core with ``EDGEFAULT_SANITIZE`` in its own folder and pass ``--core``::

  cmake -S . -B build/asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSKBUILD_PROJECT_NAME=edgefault \\
    -DSKBUILD_PROJECT_VERSION="$(sed -nE 's/^__version__ = "([0-9.]+).*/\\1/p' edgefault/__init__.py)" \\
    -DEDGEFAULT_BUILD_TESTS=OFF -DEDGEFAULT_SANITIZE=ON \\
    "-DCMAKE_CXX_FLAGS=-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \\
    -DCMAKE_MODULE_LINKER_FLAGS=-fsanitize=address,undefined -Dpybind11_DIR=$(python -m pybind11 --cmakedir)
  cmake --build build/asan
  python bench/fuzz.py --targets all --seconds 300 --workdir build/fuzz        # 1. coverage-guided
  LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libstdc++.so)" \\
    ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1 \\
    python bench/fuzz.py --core build/asan/_core*.so --targets all --runs 100000 --workdir build/fuzz  # 2.

Under the preloaded sanitizer runtime atheris's coverage counters are not the ones libFuzzer reads
(atheris warns "Coverage symbols are being provided by a library other than libFuzzer"), so a
sanitizer run is not coverage-guided: run the guided campaign first (1.), then the sanitizer run
on the same work folder (2.), which starts by executing the whole guided corpus and then mutates
it with the structure-aware mutators. ``allocator_may_return_null=1`` keeps malloc's production
behaviour (a refused huge allocation is numpy's MemoryError, not an ASan abort).

Seeds (trained bundles, sample files) are made once per work folder in a subprocess without the
sanitizer preload; libFuzzer keeps its growing corpus in ``<workdir>/corpus/<target>``.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import os
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
import zipfile
import zlib
from collections import Counter
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve()
PKG = ROOT / "edgefault"
READERS = ("mat", "wav", "csv", "npy", "npz", "parquet")
TARGETS = READERS + ("bundle", "framing", "push")
GROUPS = {"all": TARGETS, "readers": READERS}
EXT = {"mat": ".mat", "wav": ".wav", "csv": ".csv", "npy": ".npy", "npz": ".npz", "parquet": ".parquet"}
MAX_LEN = {"mat": 1 << 16, "wav": 1 << 16, "csv": 1 << 14, "npy": 1 << 15, "npz": 1 << 16, "parquet": 1 << 16,
           "bundle": 1 << 20, "framing": 1 << 13, "push": 1 << 12}
SEED_VERSION = 4
FINDING_KINDS = ("exception", "invariant", "unnamed", "slow")

# Findings in code owned by others, reported in issue #12 and not fixed here: (targets, kind, exception
# type, "file:function" of the innermost edgefault frame (a regex), message regex, note). Printed as KNOWN;
# they do not fail the run. Remove an entry when its owner fixes it. Empty: every finding of issue #12 fixed.
KNOWN: list[tuple[tuple[str, ...], str, str, str, str, str]] = []


# Files whose escapes (and refusals that do not name the input) are known as "reported" while their owners
# work through them, so a short run stays stable; the full report still lists every distinct finding.
# Every finding counts: the readers, runtime, state, daemon and model-kind findings reported here were
# fixed by their owners (issue #12), so nothing is owned elsewhere any more.
OWNED_ELSEWHERE: tuple[str, ...] = ()


def known_note(target: str, kind: str, typ: str, where: str, message: str) -> str | None:
    for targets, k, types, wrx, mrx, note in KNOWN:
        if target in targets and k == kind and re.fullmatch(types, typ) and re.match(wrx, where) \
                and re.search(mrx, message):
            return note
    f = where.split(":")[0]
    if kind in ("exception", "unnamed", "slow") and f in OWNED_ELSEWHERE:
        return f"{f} (owned elsewhere; reported)"
    return None


# ================================================================================================
# small helpers shared by mutators and targets
# ================================================================================================
class Provider:
    """Consumes an input byte string as a sequence of small decisions (zeros once it runs out)."""

    def __init__(self, data: bytes) -> None:
        self.d = data
        self.i = 0

    def byte(self) -> int:
        if self.i < len(self.d):
            self.i += 1
            return self.d[self.i - 1]
        return 0

    def uint(self, nbytes: int) -> int:
        return int.from_bytes(self.take(nbytes).ljust(nbytes, b"\0"), "little")

    def take(self, n: int) -> bytes:
        b = self.d[self.i:self.i + n]
        self.i += len(b)
        return b

    def choice(self, seq: Any) -> Any:
        return seq[self.byte() % len(seq)]

    def rest(self) -> bytes:
        return self.take(len(self.d) - self.i)

    @property
    def left(self) -> int:
        return len(self.d) - self.i


INTERESTING8 = [0, 1, 2, 0x7F, 0x80, 0xFE, 0xFF, 0x10, 0x20, 0x40]
INTERESTING32 = [0, 1, 2, 3, 4, 7, 8, 15, 16, 17, 64, 255, 256, 1023, 1024, 1025, 4096, 65535, 65536,
                 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFFFE, 1 << 24]


def byte_mutate(data: bytes, max_size: int, rng: random.Random, tokens: tuple[bytes, ...] = ()) -> bytes:
    """libFuzzer-like byte mutations in pure Python (the plain engine; atheris uses its own)."""
    b = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 3, 4, 8))):
        op = rng.randrange(10)
        n = len(b)
        if op == 0 and n:
            i = rng.randrange(n)
            b[i] ^= 1 << rng.randrange(8)
        elif op == 1 and n:
            b[rng.randrange(n)] = rng.choice(INTERESTING8) if rng.random() < 0.5 else rng.randrange(256)
        elif op == 2 and n >= 4:
            i = rng.randrange(n - 3)
            v = rng.choice(INTERESTING32)
            if rng.random() < 0.3:
                v = (v + rng.randint(-2, 2)) & 0xFFFFFFFF
            b[i:i + 4] = v.to_bytes(4, rng.choice(("little", "big")))
        elif op == 3:
            i = rng.randint(0, n)
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif op == 4 and n:
            i = rng.randrange(n)
            del b[i:i + rng.randint(1, max(1, min(64, n - i)))]
        elif op == 5 and n:
            i = rng.randrange(n)
            j = min(n, i + rng.randint(1, 64))
            k = rng.randint(0, n)
            b[k:k] = b[i:j]
        elif op == 6 and tokens:
            t = rng.choice(tokens)
            i = rng.randint(0, n)
            if rng.random() < 0.5:
                b[i:i] = t
            else:
                b[i:i + len(t)] = t
        elif op == 7 and n:
            del b[rng.randint(0, n - 1):]
        elif op == 8 and n >= 2:
            i, j = sorted(rng.sample(range(n), 2))
            b[i], b[j] = b[j], b[i]
        elif op == 9 and n:
            i = rng.randrange(n)
            b[i] = (b[i] + rng.choice((1, -1, 16, -16))) & 0xFF
    return bytes(b[:max_size])


def norm_message(msg: str, path: str | None = None) -> str:
    """A refusal message with its variable parts (temp path, quoted values, numbers) blanked."""
    if path:
        msg = msg.replace(path, "<file>").replace(os.path.basename(path), "<file>")
    msg = re.sub(r"b'(?:[^'\\]|\\.)*'|b\"(?:[^\"\\]|\\.)*\"", "b'..'", msg)
    msg = re.sub(r"'(?:[^'\\]|\\.)*'", "'..'", msg)
    msg = re.sub(r"\[[^\[\]]{40,}\]", "[..]", msg)
    msg = re.sub(r"0x[0-9a-fA-F]+|[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?", "N", msg)
    return msg[:240]


# ================================================================================================
# file builders (seeds and structure-aware mutations)
# ================================================================================================
def mat_element(typ: int, payload: bytes, order: str, small: bool = False) -> bytes:
    e = "<" if order == "little" else ">"
    if small and len(payload) <= 4:
        return struct.pack(e + "I", (len(payload) << 16) | typ) + payload.ljust(4, b"\0")
    return struct.pack(e + "II", typ, len(payload)) + payload + b"\0" * (-len(payload) % 8)


MX_CODE = {"f8": 6, "f4": 7, "i1": 8, "u1": 9, "i2": 10, "u2": 11, "i4": 12, "u4": 13, "i8": 14, "u8": 15}
MI_CODE = {"i1": 1, "u1": 2, "i2": 3, "u2": 4, "i4": 5, "u4": 6, "f4": 7, "f8": 9, "i8": 12, "u8": 13}


def mat_matrix(name: str, arr: Any, order: str = "little", cls: str | None = None, stored: str | None = None,
               logical: bool = False, compress: bool = False) -> bytes:
    """One top-level MAT v5 variable (numeric), optionally stored narrower than its class."""
    import numpy as np

    e = "<" if order == "little" else ">"
    a = np.asarray(arr)
    if a.ndim < 2:
        a = a.reshape(1, -1) if a.ndim == 1 else a.reshape(1, 1)
    cls = cls or a.dtype.str[1:]
    stored = stored or cls
    flags = MX_CODE[cls] | (0x0200 if logical else 0)
    body = mat_element(6, struct.pack(e + "II", flags, 0), order)
    body += mat_element(5, struct.pack(e + "%di" % a.ndim, *a.shape), order)
    body += mat_element(1, name.encode(), order, small=len(name) <= 4)
    body += mat_element(MI_CODE[stored], a.astype(e + stored).tobytes(order="F"), order, small=a.size * 8 <= 4)
    el = mat_element(14, body, order)
    if compress:
        z = zlib.compress(el)
        return struct.pack(e + "II", 15, len(z)) + z
    return el


def mat_file(elements: list[bytes], order: str = "little") -> bytes:
    text = b"MATLAB 5.0 MAT-file, Platform: fuzz, Created on: Thu Jan  1 00:00:00 1970".ljust(116, b" ")
    ver = (0x0100).to_bytes(2, order)
    return text + b"\0" * 8 + ver + (b"IM" if order == "little" else b"MI") + b"".join(elements)


def wav_file(frames: Any, tag: int = 1, width: int = 2, rate: int = 1000, extensible: bool = False,
             extra: bytes = b"", data_size: int | None = None) -> bytes:
    import numpy as np

    x = np.asarray(frames)
    n, nch = x.shape
    if tag == 3:
        raw = x.astype("<f%d" % width).tobytes()
    elif width == 1:
        raw = (np.clip(x, -1, 1) * 127 + 128).astype("u1").tobytes()
    elif width == 3:
        v = (np.clip(x, -1, 1) * (2 ** 23 - 1)).astype("<i4")
        raw = b"".join(int(s).to_bytes(4, "little", signed=True)[:3] for s in v.reshape(-1))
    else:
        raw = (np.clip(x, -1, 1) * (2 ** (8 * width - 1) - 1)).astype("<i%d" % width).tobytes()
    align = nch * width
    fmt = struct.pack("<HHIIHH", 0xFFFE if extensible else tag, nch, rate, rate * align, align, 8 * width)
    if extensible:
        fmt += struct.pack("<HHI", 22, 8 * width, 0) + struct.pack("<H", tag) + bytes(14)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + extra
    body += b"data" + struct.pack("<I", len(raw) if data_size is None else data_size) + raw
    return b"RIFF" + struct.pack("<I", len(body)) + body


def zip_bytes(members: list[tuple[str, bytes]], compression: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are written on purpose
        with zipfile.ZipFile(buf, "w", compression) as zf:
            for name, data in members:
                zf.writestr(name, data)
    return buf.getvalue()


def unzip(data: bytes) -> tuple[list[tuple[str, bytes]], int]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        infos = zf.infolist()
        return [(i.filename, zf.read(i)) for i in infos], (infos[0].compress_type if infos else 0)


def npy_bytes(arr: Any, version: tuple[int, int] | None = None) -> bytes:
    import numpy as np

    buf = io.BytesIO()
    if version is None:
        np.save(buf, arr, allow_pickle=True)
    else:
        np.lib.format.write_array(buf, np.asanyarray(arr), version=version, allow_pickle=True)
    return buf.getvalue()


def noise(n: int, nch: int, fs: float = 4000.0, seed: int = 0) -> Any:
    import numpy as np

    rng = np.random.default_rng(seed)
    t = np.arange(n) / fs
    cols = [np.convolve(rng.normal(size=n + 7), np.ones(8) / 8, mode="valid")[:n]
            + 0.5 * np.sin(2 * np.pi * (50 + 30 * c) * t) for c in range(nch)]
    return np.ascontiguousarray(np.stack(cols, axis=1), dtype=np.float32)


# ================================================================================================
# seeds (run once per work folder, in a subprocess without the sanitizer preload)
# ================================================================================================
def use_source_tree(always: bool = False) -> None:
    """Import edgefault from this checkout when its core is built in place (tools/devbuild.sh) or
    ``always``; else the installed package is used (CI: `pip install .`, tests from the root)."""
    if always or any((ROOT / "edgefault").glob("_core*.so")) or any((ROOT / "edgefault").glob("_core*.pyd")):
        sys.path.insert(0, str(ROOT))


def make_seeds(workdir: Path) -> None:
    """Trained bundles in <workdir>/bundles and a seed corpus per target in <workdir>/seeds/<target>."""
    import numpy as np

    use_source_tree()
    seeds = {t: {} for t in TARGETS}  # type: dict[str, dict[str, bytes]]
    opt = bytes([0, 0])

    # -- MAT
    x = noise(300, 3, seed=1).astype(np.float64)
    cw = [mat_matrix("X097_DE_time", x[:, :1]), mat_matrix("X097_FE_time", x[:, 1:2]),
          mat_matrix("X097RPM", np.array([[1796.0]]))]
    seeds["mat"]["cwru"] = opt + mat_file(cw)
    seeds["mat"]["cwru_z"] = opt + mat_file([mat_matrix("X097_DE_time", x[:, :1], compress=True),
                                             mat_matrix("X097RPM", np.array([[1796.0]]), compress=True)])
    seeds["mat"]["two_records"] = bytes([0, 4]) + mat_file(
        cw + [mat_matrix("X099_DE_time", x[:, 2:3], compress=True), mat_matrix("X099_BA_time", x[:, :1])])
    seeds["mat"]["plain_be"] = opt + mat_file([mat_matrix("a", x[:, 0], order="big"),
                                               mat_matrix("b", x[:, 1], order="big", stored="i2",
                                                          cls="f8")], order="big")
    seeds["mat"]["narrow"] = opt + mat_file([mat_matrix("sig", (x[:, :2] * 100), stored="i2", cls="f8"),
                                             mat_matrix("lg", np.ones((1, 5)), cls="u1", logical=True),
                                             mat_matrix("m", x[:20].reshape(2, 3, 10), cls="f4")])
    try:
        import scipy.io

        for comp in (False, True):
            b = io.BytesIO()
            scipy.io.savemat(b, {"X105_DE_time": x[:, :1], "X105_FE_time": x[:, 1:2].astype(np.float32),
                                 "X105RPM": np.array([[1797]], dtype=np.int16), "name": "fuzz",
                                 "cells": np.array([[1.0], "a"], dtype=object),
                                 "st": {"f": np.arange(3.0)}, "cplx": np.array([1 + 2j, 3j]),
                                 "sp": __import__("scipy.sparse").sparse.eye(3).tocsc(),
                                 "empty": np.zeros((0, 0))}, do_compression=comp)
            seeds["mat"][f"scipy_{comp}"] = opt + b.getvalue()
    except ImportError:
        pass
    seeds["mat"]["v73"] = opt + b"\x89HDF\r\n\x1a\n" + bytes(200)

    # -- WAV
    w = noise(200, 2, seed=2) * 0.3
    for tag, width in ((1, 1), (1, 2), (1, 3), (1, 4), (3, 4), (3, 8)):
        seeds["wav"][f"t{tag}w{width}"] = opt + wav_file(w, tag, width)
    seeds["wav"]["ext"] = opt + wav_file(w[:, :1], 1, 2, extensible=True, rate=12000)
    seeds["wav"]["list"] = opt + wav_file(w, 1, 2, extra=b"LIST" + struct.pack("<I", 5) + b"INFOx\0")
    seeds["wav"]["stream"] = opt + wav_file(w, 3, 4, data_size=0xFFFFFFFF)

    # -- CSV
    r = noise(60, 2, seed=3)
    t = np.arange(60) / 1000.0
    seeds["csv"]["time"] = opt + ("time,a,b\n" + "".join(f"{t[i]:.6f},{r[i, 0]:.5f},{r[i, 1]:.5f}\n"
                                                          for i in range(60))).encode()
    seeds["csv"]["noheader_semicolon"] = opt + "".join(f"{r[i, 0]:.4f};{r[i, 1]:.4f}\n" for i in range(60)).encode()
    seeds["csv"]["tab_comments"] = bytes([6, 0]) + ("# recorded\nch0\tch1\n" + "".join(
        f"{r[i, 0]:.3g}\t{'nan' if i == 7 else r[i, 1]}\n" for i in range(60)) + "\n").encode()
    seeds["csv"]["quoted_ws"] = opt + ('"t" "x"\n' + "".join(f"{i / 500} {r[i, 0]:.3e}\n" for i in range(60))).encode()

    # -- NPY
    for name, arr in {"f4_2d": r, "f8_1d": r[:, 0].astype(np.float64), "i2": (r * 1000).astype(np.int16),
                      "be": r.astype(">f8"), "fortran": np.asfortranarray(r), "u1": (r * 50 + 100).astype(np.uint8),
                      "bool": r > 0, "scalar": np.float32(3), "empty": np.zeros((0, 2), np.float32),
                      "transposed": r.T.copy(), "c8": r[:, 0].astype(np.complex64), "f2": r.astype(np.float16),
                      "obj": np.array([1.0, "a"], dtype=object), "U": np.array(["ab", "c"]),
                      "rec": np.zeros(4, dtype=[("a", "<f4"), ("b", "<i2")]), "dt": np.arange(4).astype("M8[s]"),
                      "3d": r[:48].reshape(16, 3, 2)}.items():
        seeds["npy"][name] = opt + npy_bytes(arr)
    seeds["npy"]["v2"] = opt + npy_bytes(r, version=(2, 0))
    seeds["npy"]["v3"] = opt + npy_bytes(r, version=(3, 0))

    # -- NPZ
    def npz(members: dict[str, Any], comp: int = zipfile.ZIP_STORED) -> bytes:
        return zip_bytes([(k + ".npy", npy_bytes(v)) for k, v in members.items()], comp)

    seeds["npz"]["data_fs_channels"] = opt + npz({"data": r, "fs": np.float64(1000), "channels": np.array(["a", "b"])})
    seeds["npz"]["per_channel"] = opt + npz({"x": r[:, 0], "y": r[:, 1], "fs": np.array([2000])}, zipfile.ZIP_DEFLATED)
    seeds["npz"]["col"] = opt + npz({"x": r[:, :1], "fs": np.float32(np.nan)})
    seeds["npz"]["bytes_channels"] = opt + npz({"data": r, "channels": np.array([b"a", b"b"]), "fs": np.int64(-5)})
    seeds["npz"]["obj"] = opt + npz({"data": np.array([1, "a"], dtype=object)})
    seeds["npz"]["npy_inside"] = opt + npy_bytes(r)

    # -- Parquet
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq

        def pqb(table: Any, **kw: Any) -> bytes:
            b = io.BytesIO()
            pq.write_table(table, b, **kw)
            return b.getvalue()

        seeds["parquet"]["floats"] = opt + pqb(pa.table({"a": r[:, 0], "b": r[:, 1].astype(np.float64)}))
        seeds["parquet"]["time"] = opt + pqb(pa.table({"time": t, "a": r[:, 0], "i": (r[:, 1] * 100).astype(np.int32)}),
                                             compression="none")
        ts = pa.array((np.arange(60) * 1_000_000).astype("datetime64[ns]"))
        seeds["parquet"]["timestamp"] = opt + pqb(pa.table({"t": ts, "a": r[:, 0], "s": [str(i) for i in range(60)]}))
        seeds["parquet"]["nulls"] = opt + pqb(pa.table({"a": pa.array([1.0, None, 3.0] * 20), "b": r[:, 1]}),
                                              row_group_size=16, use_dictionary=False)
    except ImportError:
        pass

    # -- framing: [max selector][cut seed][stream]
    from edgefault.daemon import framing

    pk = [framing.encode(i, noise(5 + i, 1 + i % 3, seed=i), "float32" if i % 2 else "int16",
                         1_764_800_000_000_000_000 + i if i >= 2 else None) for i in range(4)]
    seeds["framing"]["packets"] = bytes([4, 1]) + b"".join(pk)
    seeds["framing"]["garbage"] = bytes([5, 7]) + b"xx" + pk[0] + b"EFS" + pk[1] + b"\0" * 9 + pk[2][:20]
    seeds["framing"]["one"] = bytes([3, 0]) + pk[3]
    seeds["framing"]["empty_packet"] = bytes([4, 3]) + framing.encode(9, np.zeros((0, 2), np.float32))
    seeds["framing"]["raw_csv"] = bytes([4, 2, 0x80]) + b"1,2\n3,4\nnan,inf\n# c\n5;6\n"

    # -- bundles (trained here) -> bundle and push seeds
    from edgefault.device.spec import FeatureSpec
    from edgefault.io.readers import Recording
    from edgefault.train.anomaly import pack_gaussian, train_gaussian

    bdir = workdir / "bundles"
    bdir.mkdir(parents=True, exist_ok=True)
    rec = Recording(noise(40000, 2, seed=5), 4000.0, ("a", "b"), "noise")
    spec = FeatureSpec.for_anomaly(rec.fs, rec.channels, window=256, hop=128, n_bands=8)
    pack_gaussian(train_gaussian([rec], spec, target_far=0.02), bdir / "gaussian_drift.efb", k=2, n=3, name="fuzz")
    rec1 = Recording(noise(20000, 1, seed=6), 2000.0, ("x",), "noise1")
    spec1 = FeatureSpec.for_anomaly(rec1.fs, rec1.channels, window=64, hop=16, n_bands=4)
    pack_gaussian(train_gaussian([rec1], spec1, target_far=0.05, drift_far=None), bdir / "gaussian_1ch.efb", k=1, n=1)
    try:
        from edgefault.train.vae import pack_vae, train_vae, vae_spec

        vspec = vae_spec(rec.fs, rec.channels, window=256, hop=128, n_bands=16)
        pack_vae(train_vae([Recording(rec.data[:24000], rec.fs, rec.channels, "v")], vspec, epochs=3, seed=1,
                           target_far=0.02), bdir / "vae.efb", k=2, n=3)
    except Exception as e:  # no torch (ImportError), or a training extra too old here (armhf's Debian packages)
        print(f"fuzz seeds: no VAE bundle ({type(e).__name__}: {e})", file=sys.stderr)
    try:
        from edgefault.io.synth import bearing_signal
        from edgefault.train.sfdsc import pack_sfdsc, sfdsc_spec, train_sfdsc

        fs = 12000.0
        blocks = [(bearing_signal(3.0, fs, fault=f, severity=1.0, seed=i) if f else bearing_signal(3.0, fs, seed=i),
                   f or "normal", f or "normal") for i, f in enumerate((None, "inner_race", "outer_race"))]
        blocks = [(b.reshape(-1, 1) if b.ndim == 1 else b, lab, src) for b, lab, src in blocks]
        sspec = sfdsc_spec(fs, ["DE"], window=1024, representation="log_power")
        pack_sfdsc(train_sfdsc(blocks, sspec, n_atoms_per_class=4, max_iter=3), bdir / "sfdsc.efb")
    except Exception as e:  # no scikit-learn, or one older than the classifier needs (armhf's Debian 1.2)
        print(f"fuzz seeds: no SFDSC bundle ({type(e).__name__}: {e})", file=sys.stderr)
    for p in sorted(bdir.glob("*.efb")):
        seeds["bundle"][p.stem] = p.read_bytes()
    n_b = len(list(bdir.glob("*.efb")))

    def chunk(size: int, dtype: int = 0, fill: int = 0, layout: int = 0, seed: int = 5) -> list[int]:
        # PushTarget._chunk: kind, size index (SIZES), channels index, dtype index (DTYPES), ndim index, fill,
        # layout, rng seed; then the state byte of the push loop
        return [0, size, 0, dtype, 0, fill, layout, seed, 0]

    for i in range(n_b):
        # push: [bundle][ctor: 0 = new Runtime with options, else the cached one][pushes - 1] then the chunks
        seeds["push"][f"b{i}_plain"] = bytes([i, 1, 2] + chunk(13) + chunk(11) + chunk(3))
        seeds["push"][f"b{i}_nan"] = bytes([i, 1, 0] + chunk(11, fill=3))
        seeds["push"][f"b{i}_i16_F"] = bytes([i, 1, 1] + chunk(13, dtype=2, fill=10, layout=1) + chunk(7, dtype=1))
        seeds["push"][f"b{i}_ctor"] = bytes([i, 0, 1, 0, 3, 0, 5, 0, 0, 0, 0] + chunk(12) + chunk(11))
    for t, d in seeds.items():
        sd = workdir / "seeds" / t
        sd.mkdir(parents=True, exist_ok=True)
        for name, data in d.items():
            (sd / name).write_bytes(data[:MAX_LEN[t]])
    dicts = workdir / "dicts"
    dicts.mkdir(exist_ok=True)
    for t, toks in TOKENS.items():
        (dicts / f"{t}.dict").write_text("".join('"%s"\n' % "".join("\\x%02x" % c for c in tok) for tok in toks))
    (workdir / "seeds" / "VERSION").write_text(str(SEED_VERSION))


TOKENS: dict[str, tuple[bytes, ...]] = {
    "mat": (b"IM", b"MI", b"\x0e\x00\x00\x00", b"\x0f\x00\x00\x00", b"\x06\x00\x00\x00\x08\x00\x00\x00",
            b"\x05\x00\x00\x00", b"_DE_time", b"_FE_time", b"RPM", b"\x00\x01IM", b"x\x9c"),
    "wav": (b"RIFF", b"WAVE", b"fmt ", b"data", b"LIST", b"\xfe\xff", b"\x01\x00", b"\x03\x00", b"\xff\xff\xff\xff",
            b"RIFX", b"RF64"),
    "csv": (b"nan", b"inf", b"-inf", b"1e309", b"time", b"t,", b"time_s", b"#", b"\r\n", b'"', b";", b"\t", b",,",
            b"0x10", b"1_0", b"\xef\xbb\xbf", b"-0", b"1e-320"),
    "npy": (b"\x93NUMPY", b"\x01\x00", b"\x02\x00", b"'descr': '<f4'", b"'descr': '|O'", b"'descr': '>f8'",
            b"'fortran_order': True", b"'shape': ()", b"'shape': (0,)", b"'shape': (1, 2, 3)",
            b"'shape': (9223372036854775807,)", b"'<U4'", b"'<c16'", b"'|b1'", b"'<M8[s]'", b"'<f2'", b"'|V8'"),
    "npz": (b"PK\x03\x04", b"PK\x01\x02", b"PK\x05\x06", b"data.npy", b"fs.npy", b"channels.npy", b"\x93NUMPY",
            b"'descr': '<f8'", b"'shape': ()"),
    "parquet": (b"PAR1", b"\x15\x00", b"\x19\x1c", b"time", b"\x00\x00\x00\x00"),
    "bundle": (b"PK\x03\x04", b"PK\x01\x02", b"PK\x05\x06", b"manifest.json", b"arrays/", b".npy", b"models/",
               b".onnx", b'"schema_version"', b'"kind"', b"\x93NUMPY"),
    "framing": (b"EFS1", b"EFS1\x01\x01", b"EFS1\x01\x02", b"\x01\x00", b"\x00\x04", b"\xff\xff\xff\xff"),
    "push": (),
}


# ================================================================================================
# structure-aware mutators: mut(data, max_size, rng, bytemut) -> bytes | None (None: fall back)
# ================================================================================================
def mutate_mat(data: bytes, rng: random.Random, bm: Callable[[bytes], bytes]) -> bytes | None:
    head, body = data[:130], data[130:]
    if len(body) < 16:
        return None
    order = "big" if head[128:130] == b"MI" else "little"
    e = "<" if order == "little" else ">"
    els = []
    pos = 0
    while pos + 8 <= len(body):
        typ, n = struct.unpack_from(e + "II", body, pos)
        if pos + 8 + n > len(body):
            break
        els.append([typ, body[pos + 8:pos + 8 + n]])
        pos += 8 + n
    if not els:
        return None
    op = rng.randrange(5)
    k = rng.randrange(len(els))
    if op <= 1:  # mutate inside an element (inflated when compressed)
        typ, payload = els[k]
        if typ == 15:
            try:
                inner = zlib.decompress(payload)
            except zlib.error:
                return None
            payload = zlib.compress(bm(inner), rng.choice((0, 1, 6, 9)))
        else:
            payload = bm(payload)
        els[k][1] = payload
    elif op == 2:
        els.insert(rng.randint(0, len(els)), list(els[k]))  # duplicate variable
    elif op == 3 and len(els) > 1:
        del els[k]
    else:  # compress or inflate a variable
        typ, payload = els[k]
        if typ == 14:
            els[k] = [15, zlib.compress(struct.pack(e + "II", 14, len(payload)) + payload)]
        elif typ == 15:
            try:
                inner = zlib.decompress(payload)
                els[k] = [struct.unpack_from(e + "I", inner)[0], inner[8:]]
            except (zlib.error, struct.error):
                return None
    return head + b"".join(struct.pack(e + "II", t, len(p)) + p for t, p in els)


def mutate_wav(data: bytes, rng: random.Random, bm: Callable[[bytes], bytes]) -> bytes | None:
    if len(data) < 14 or data[2:6] not in (b"RIFF", b"RIFX", b"RF64"):
        return None
    opt, buf = data[:2], data[2:]
    chunks = []
    pos = 12
    while pos + 8 <= len(buf):
        cid, n = buf[pos:pos + 4], int.from_bytes(buf[pos + 4:pos + 8], "little")
        chunks.append([cid, buf[pos + 8:pos + 8 + n]])
        pos += 8 + n + (n & 1)
    if not chunks:
        return None
    k = rng.randrange(len(chunks))
    op = rng.randrange(6)
    cid, body = chunks[k]
    sizes: dict[int, int] = {}
    if op == 0 and cid == b"fmt " and len(body) >= 16:
        f = bytearray(body)
        field = rng.choice(((0, 2), (2, 2), (4, 4), (12, 2), (14, 2), (24, 2)))
        v = rng.choice((0, 1, 2, 3, 4, 6, 8, 0xFFFE, 0xFFFF, 24, 32, 64, 0x7FFFFFFF, 0xFFFFFFFF))
        if field[0] + field[1] <= len(f):
            f[field[0]:field[0] + field[1]] = (v & ((1 << (8 * field[1])) - 1)).to_bytes(field[1], "little")
        chunks[k][1] = bytes(f)
    elif op == 1:
        chunks[k][1] = bm(body)
    elif op == 2:
        chunks.insert(rng.randint(0, len(chunks)), [rng.choice((b"LIST", b"fact", b"data", b"fmt ", b"junk")),
                                                   bytes(rng.randrange(256) for _ in range(rng.randint(0, 9)))])
    elif op == 3 and len(chunks) > 1:
        del chunks[k]
    elif op == 4:
        sizes[k] = rng.choice((0, 1, len(body) + 1, len(body) - 1, 0xFFFFFFFF, 0x7FFFFFFF))
    else:
        chunks[k], chunks[-1] = chunks[-1], chunks[k]
    out = b""
    for i, (cid, body) in enumerate(chunks):
        out += cid + (sizes.get(i, len(body)) & 0xFFFFFFFF).to_bytes(4, "little") + body + b"\0" * (len(body) & 1)
    return opt + buf[:4] + (len(out) + 4).to_bytes(4, "little") + buf[8:12] + out


CSV_CELLS = ("nan", "NaN", "inf", "-inf", "1e309", "-1e309", "", "x", "1_0", "0x10", "  ", '"1"', "1e-320",
             "-0", "1.", ".5", "+3", "١", "1,5", "\t")


def mutate_csv(data: bytes, rng: random.Random, bm: Callable[[bytes], bytes]) -> bytes | None:
    opt, text = data[:2], data[2:]
    lines = text.split(b"\n")
    if not lines:
        return None
    op = rng.randrange(7)
    k = rng.randrange(len(lines))
    if op == 0:
        lines.insert(k, lines[rng.randrange(len(lines))])
    elif op == 1 and len(lines) > 1:
        del lines[k]
    elif op == 2:  # replace a cell
        delim = next((d for d in (b",", b";", b"\t", b" ") if d in lines[k]), b",")
        cells = lines[k].split(delim)
        cells[rng.randrange(len(cells))] = rng.choice(CSV_CELLS).encode()
        lines[k] = delim.join(cells)
    elif op == 3:  # header games
        lines.insert(0, rng.choice((b"time,a,b", b"t;x", b"TIME\ta", b"time_s", b"a,a", b"A,a,b", b"time,", b",",
                                    b"# only", b"\xef\xbb\xbft,x")))
    elif op == 4:  # non-uniform / non-increasing time
        if len(lines) > 3:
            lines[k], lines[(k + 1) % len(lines)] = lines[(k + 1) % len(lines)], lines[k]
    elif op == 5:
        lines[k] = lines[k] + rng.choice((b"\r", b",", b",1", b" #c", b'"', b";"))
    else:
        return opt + bm(text)
    return opt + b"\n".join(lines)


NPY_DESCR = ("'<f4'", "'<f8'", "'>f4'", "'<i2'", "'|u1'", "'|i1'", "'<u8'", "'|b1'", "'<c8'", "'<f2'", "'|O'",
             "'<U3'", "'|S2'", "'<M8[s]'", "'<m8[s]'", "'|V4'", "[('a', '<f4')]", "'<f16'", "'<g'", "'float32'",
             "'xx'", "''", "1", "None")
NPY_SHAPES = ("()", "(0,)", "(1,)", "(5,)", "(60, 2)", "(2, 60)", "(0, 2)", "(2, 0)", "(1, 1, 1)", "(3, 2, 1, 1)",
              "(-1,)", "(9223372036854775807,)", "(4611686018427387904, 4)", "('a',)", "(1.5,)", "[3]", "(True,)",
              "(60, 1)", "(30, 4)")


def _npy_mutate(data: bytes, rng: random.Random, bm: Callable[[bytes], bytes]) -> bytes | None:
    if not data.startswith(b"\x93NUMPY") or len(data) < 10:
        return None
    major = data[6]
    hl_size = 2 if major == 1 else 4
    hlen = int.from_bytes(data[8:8 + hl_size], "little")
    start = 8 + hl_size
    header = data[start:start + hlen].decode("latin1")
    payload = data[start + hlen:]
    op = rng.randrange(5)
    if op == 0:
        header = re.sub(r"'descr':\s*('[^']*'|\[[^\]]*\])", "'descr': " + rng.choice(NPY_DESCR), header)
    elif op == 1:
        header = re.sub(r"'shape':\s*\([^)]*\)", "'shape': " + rng.choice(NPY_SHAPES), header)
    elif op == 2:
        header = header.replace("False", "True") if "False" in header else header.replace("True", "False")
    elif op == 3:
        payload = bm(payload) if payload else payload
    else:
        cut = rng.randint(0, len(payload))
        payload = payload[:cut] if rng.random() < 0.5 else payload + payload[:cut]
    hb = header.encode("latin1")
    if rng.random() < 0.8:  # keep the header length honest (padding to 64 as numpy writes it)
        hb = hb.rstrip(b"\n ")
        pad = -(start + len(hb) + 1) % 64
        hb = hb + b" " * pad + b"\n"
    size = len(hb) if rng.random() < 0.95 else rng.choice((0, len(hb) + 3, 65535))
    return data[:8] + (size & ((1 << (8 * hl_size)) - 1)).to_bytes(hl_size, "little") + hb + payload


def mutate_npy(data: bytes, rng: random.Random, bm: Callable[[bytes], bytes]) -> bytes | None:
    out = _npy_mutate(data[2:], rng, bm)
    return None if out is None else data[:2] + out


def _npz_extra(rng: random.Random) -> tuple[str, bytes]:
    import numpy as np

    choice = rng.randrange(8)
    if choice == 0:
        return "fs.npy", npy_bytes(rng.choice([np.float64(500), np.array([1.0, 2.0]), np.float64(np.inf), np.int8(-1),
                                               np.array("1000"), np.bool_(True), np.complex64(1), np.zeros(0)]))
    if choice == 1:
        return "channels.npy", npy_bytes(rng.choice([np.array(["a"]), np.array(["a", "b", "c"]), np.arange(2),
                                                     np.array([b"x", b"y"]), np.array([["a", "b"]]), np.array("ab")]))
    if choice == 2:
        return "data.npy", npy_bytes(rng.choice([np.zeros((3, 2, 2)), np.zeros((0, 2)), np.ones((2, 7)),
                                                 np.arange(5, dtype=np.uint64), np.array([np.nan, np.inf])]))
    if choice == 3:
        return rng.choice(("z.npy", "data", "x/y.npy", "../q.npy", "fs", "DATA.npy")), npy_bytes(np.arange(60.0))
    if choice == 4:
        return "w.npy", npy_bytes(np.arange(rng.randint(0, 100), dtype=rng.choice(("<f4", ">i4", "<i8", "|b1"))))
    if choice == 5:
        return "o.npy", npy_bytes(np.array([1, None], dtype=object))
    if choice == 6:
        return "t.npy", b"\x93NUMPY\x01\x00" + bytes(rng.randrange(256) for _ in range(rng.randint(0, 30)))
    return "e.npy", b""


def mutate_npz(data: bytes, rng: random.Random, bm: Callable[[bytes], bytes]) -> bytes | None:
    opt = data[:2]
    try:
        members, comp = unzip(data[2:])
    except Exception:
        return None
    op = rng.randrange(6)
    if members and op <= 1:
        k = rng.randrange(len(members))
        name, b = members[k]
        nb = _npy_mutate(b, rng, bm) if op == 0 else bm(b)
        members[k] = (name, nb if nb is not None else bm(b))
    elif op == 2:
        members.append(_npz_extra(rng))
    elif op == 3 and members:
        del members[rng.randrange(len(members))]
    elif op == 4 and members:
        k = rng.randrange(len(members))
        members[k] = (rng.choice(("data.npy", "fs.npy", "channels.npy", "a.npy", "data", "A.npy")), members[k][1])
    else:
        comp = zipfile.ZIP_DEFLATED if comp == zipfile.ZIP_STORED else zipfile.ZIP_STORED
    return opt + zip_bytes(members, comp)


def mutate_parquet(data: bytes, rng: random.Random, bm: Callable[[bytes], bytes]) -> bytes | None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(io.BytesIO(data[2:]))
    except Exception:
        return None
    cols = {f.name: table.column(i) for i, f in enumerate(table.schema)}
    names = list(cols)
    n = table.num_rows
    op = rng.randrange(7)
    if names and op == 0:  # cast a column
        c = rng.choice(names)
        typ = rng.choice((pa.int8(), pa.uint64(), pa.int64(), pa.float16(), pa.float32(), pa.float64(), pa.bool_(),
                          pa.string(), pa.timestamp("ms"), pa.timestamp("s", tz="UTC"), pa.date32(), pa.null(),
                          pa.decimal128(10, 3), pa.dictionary(pa.int8(), pa.float64()), pa.binary()))
        try:
            cols[c] = cols[c].cast(typ, safe=False)
        except Exception:
            cols[c] = pa.nulls(n, typ) if rng.random() < 0.5 else cols[c]
    elif op == 1 and names:  # values: nulls / NaN / inf / huge
        c = rng.choice(names)
        try:
            v = np.asarray(cols[c].cast(pa.float64(), safe=False).to_numpy(zero_copy_only=False), dtype=np.float64).copy()
        except Exception:
            v = np.zeros(n)
        if n:
            v[rng.randrange(n)] = rng.choice((np.nan, np.inf, -np.inf, 1e308, -0.0, 5e-324))
        mask = np.array([rng.random() < 0.1 for _ in range(n)]) if rng.random() < 0.5 else None
        cols[c] = pa.chunked_array([pa.array(v, mask=mask)])
    elif op == 2:  # rename: time columns, duplicates
        if names:
            c = rng.randrange(len(names))
            names[c] = rng.choice(("t", "time", "TIME", "time_s", names[0], "", "a"))
    elif op == 3:  # add a column
        names.append(rng.choice(("t", "z", "time")))
        cols[names[-1] + "\0new"] = pa.chunked_array([pa.array(
            rng.choice((np.arange(n, dtype=np.float64) / rng.choice((1000, 3, 1e-9, -1)), np.zeros(n, np.int16),
                        np.array([str(i) for i in range(n)]), np.arange(n)[::-1].astype(np.float64))))])
    elif op == 4 and names:
        del cols[names.pop(rng.randrange(len(names)))]
    elif op == 5:  # rows
        k = rng.choice((0, 1, 2, max(0, n - 1), n // 2))
        cols = {c: v.slice(0, k) for c, v in cols.items()}
    else:
        return data[:2] + bm(data[2:])
    arrays = list(cols.values())
    if len(arrays) != len(names):
        names = names[:len(arrays)] + [f"c{i}" for i in range(len(names), len(arrays))]
    try:
        t2 = pa.Table.from_arrays(arrays, names=names)
        b = io.BytesIO()
        pq.write_table(t2, b, compression=rng.choice(("none", "snappy", "gzip", "zstd")),
                       row_group_size=rng.choice((None, 1, 7)), use_dictionary=rng.random() < 0.5,
                       data_page_version=rng.choice(("1.0", "2.0")))
        return data[:2] + b.getvalue()
    except Exception:
        return None


def mutate_framing(data: bytes, rng: random.Random, bm: Callable[[bytes], bytes]) -> bytes | None:
    import numpy as np

    from edgefault.daemon import framing

    head, stream = data[:2], bytearray(data[2:])
    op = rng.randrange(4)
    if op == 0:  # splice in a packet with edge-case fields
        n = rng.choice((0, 1, 2, 7, 100))
        nch = rng.choice((1, 2, 3, 1024))
        fmt = rng.choice(("int16", "float32"))
        t_ns = rng.choice((None, None, 0, 1, 1_764_800_000_000_000_000, -1, (1 << 63) - 1))
        pkt = bytearray(framing.encode(rng.getrandbits(32), np.zeros((n, nch)) + rng.random(), fmt, t_ns))
        if rng.random() < 0.5:
            field = rng.choice(((4, 1), (5, 1), (6, 2), (8, 4), (12, 4)) + (((16, 8),) if t_ns is not None else ()))
            v = rng.choice((0, 1, 2, 3, 255, 1024, 1025, 65535, 0xFFFFFFFF, 0x80000000))
            pkt[field[0]:sum(field)] = (v & ((1 << (8 * field[1])) - 1)).to_bytes(field[1], "little")
        i = rng.randint(0, len(stream))
        stream[i:i] = pkt
    elif op == 1:  # damage a header in place
        pos = [m.start() for m in re.finditer(re.escape(framing.MAGIC), bytes(stream))]
        if not pos:
            return None
        p = rng.choice(pos)
        j = p + rng.randrange(16)
        if j < len(stream):
            stream[j] = rng.randrange(256)
    elif op == 2:
        head = bytes([rng.randrange(256), rng.randrange(256)])
    else:
        return None
    return head + bytes(stream)


INTERESTING_JSON = [None, True, False, 0, -1, 1, 2, 3, 7, 2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 53 + 1, 2 ** 63, 2 ** 64,
                    -2 ** 63, 10 ** 30, 0.0, -0.0, 0.5, 1e-300, 1e300, float("nan"), float("inf"), float("-inf"), "",
                    "x", "a" * 300, "../../x", "\u0000", "é", [], [0], [[]], {}, {"a": 1}, "gaussian", "vae", "sfdsc",
                    "anomaly", "classify", "features", "raw", "latent", "waveform", "spectrum", "band_energy", "hann",
                    "float32", "<f4", [1, 2], [0.0, 1e9], [-1], [256, 2]]


def _json_nodes(obj: Any, path: tuple = ()) -> list[tuple]:
    out = [path]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _json_nodes(v, path + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:50]):
            out += _json_nodes(v, path + (i,))
    return out


def _json_keys(obj: Any, acc: set) -> set:
    if isinstance(obj, dict):
        for k, v in obj.items():
            acc.add(k)
            _json_keys(v, acc)
    elif isinstance(obj, list):
        for v in obj[:50]:
            _json_keys(v, acc)
    return acc


def mutate_json(obj: Any, rng: random.Random) -> Any:
    import copy

    obj = copy.deepcopy(obj)
    keys = sorted(_json_keys(obj, set()), key=str)
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        nodes = _json_nodes(obj)
        path = rng.choice(nodes[1:] or nodes)
        parent = obj
        for p in path[:-1]:
            parent = parent[p]
        cur = parent[path[-1]] if path else obj
        op = rng.randrange(6)
        if op == 0 or not path:
            new: Any = rng.choice(INTERESTING_JSON)
        elif op == 1 and isinstance(cur, (int, float)) and not isinstance(cur, bool):
            new = rng.choice((cur * 2, cur - 1, cur + 1, -cur, cur * 1e6, cur / 3, int(cur) if math.isfinite(cur) else 0,
                              float(cur)))
        elif op == 2 and isinstance(cur, list):
            new = list(cur)
            r = rng.randrange(4)
            if r == 0 and new:
                new.append(copy.deepcopy(rng.choice(new)))
            elif r == 1 and new:
                del new[rng.randrange(len(new))]
            elif r == 2:
                new = new[: rng.randint(0, len(new))]
            else:
                rng.shuffle(new)
        elif op == 3 and isinstance(cur, dict):
            new = dict(cur)
            if new and rng.random() < 0.5:
                del new[rng.choice(list(new))]
            else:
                new[rng.choice(keys) if keys else "k"] = rng.choice(INTERESTING_JSON)
        elif op == 4 and isinstance(parent, dict):
            del parent[path[-1]]
            continue
        elif op == 5 and isinstance(cur, str):
            new = rng.choice((cur + "x", cur[:-1], cur.upper(), "", cur * 2))
        else:
            new = rng.choice(INTERESTING_JSON)
        if path:
            parent[path[-1]] = new
        else:
            obj = new
    return obj


def mutate_array(b: bytes, rng: random.Random, bm: Callable[[bytes], bytes]) -> bytes:
    import numpy as np

    try:
        a = np.load(io.BytesIO(b), allow_pickle=False)
    except Exception:
        return bm(b)
    op = rng.randrange(7)
    try:
        if op == 0:
            a = a.astype(rng.choice(("<f4", "<f8", ">f8", "<i8", "<i2", "|b1", "<c8", "<f2", "<u4")))
        elif op == 1:
            r = rng.randrange(6)
            a = (a.reshape(-1) if r == 0 else a.T if r == 1 else a[None] if r == 2 else a[..., :-1] if r == 3
                 else a[:0] if r == 4 else a.reshape(-1)[:1].reshape(()))
        elif op == 2 and a.size:
            a = np.array(a, dtype=np.float64 if a.dtype.kind != "f" else a.dtype)
            flat = a.reshape(-1)
            for _ in range(rng.randint(1, 3)):
                flat[rng.randrange(flat.size)] = rng.choice((np.nan, np.inf, -np.inf, 0, 1e38, -1e38, 1e300, -1))
        elif op == 3:
            a = np.asfortranarray(a)
        elif op == 4 and a.size:
            a = a * rng.choice((0, -1, 1e6, 1e-6, np.nan))
        elif op == 5:
            a = np.concatenate([a, a]) if a.ndim else a
        else:
            return _npy_mutate(b, rng, bm) or bm(b)
    except Exception:
        return bm(b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return npy_bytes(np.asarray(a))


def mutate_onnx(b: bytes, rng: random.Random, bm: Callable[[bytes], bytes]) -> bytes:
    try:
        import onnx
        from onnx import numpy_helper

        m = onnx.load_from_string(b)
    except Exception:
        return bm(b)
    g = m.graph
    op = rng.randrange(5)
    try:
        if op == 0 and g.initializer:
            init = rng.choice(list(g.initializer))
            arr = numpy_helper.to_array(init).copy()
            if arr.size and arr.dtype.kind == "f":
                arr.reshape(-1)[rng.randrange(arr.size)] = rng.choice((float("nan"), float("inf"), 0.0, 1e30))
            elif arr.size:
                arr = arr.reshape(-1)[:-1] if rng.random() < 0.5 else arr * 2
            init.CopyFrom(numpy_helper.from_array(arr, init.name))
        elif op == 1 and g.input:
            dims = g.input[0].type.tensor_type.shape.dim
            if len(dims):
                d = rng.choice(list(dims))
                d.ClearField("dim_param")
                d.dim_value = rng.choice((1, 2, 3, 7, 1024))
        elif op == 2 and g.node:
            n = rng.choice(list(g.node))
            n.op_type = rng.choice(("Relu", "Identity", "Add", "Foo", n.op_type))
        elif op == 3 and g.output:
            g.output[rng.randrange(len(g.output))].name = rng.choice(("x", "score", "latent", ""))
        else:
            return bm(b)
        return m.SerializeToString()
    except Exception:
        return bm(b)


def mutate_bundle(data: bytes, rng: random.Random, bm: Callable[[bytes], bytes]) -> bytes | None:
    from edgefault.device.bundle import MANIFEST, bundle_id_of, manifest_digest

    try:
        members, comp = unzip(data)
        mi = next(i for i, (n, _) in enumerate(members) if n == MANIFEST)
        manifest = json.loads(members[mi][1])
    except Exception:
        return None
    others = [(n, b) for n, b in members if n != MANIFEST]
    op = rng.randrange(10)
    if op <= 3:
        manifest = mutate_json(manifest, rng)
    elif op <= 5 and others:
        arrays = [i for i, (n, _) in enumerate(others) if n.endswith(".npy")]
        if arrays:
            k = rng.choice(arrays)
            others[k] = (others[k][0], mutate_array(others[k][1], rng, bm))
    elif op == 6 and others:
        onnx_k = [i for i, (n, _) in enumerate(others) if n.endswith(".onnx")]
        k = rng.choice(onnx_k) if onnx_k else rng.randrange(len(others))
        name, b = others[k]
        others[k] = (name, mutate_onnx(b, rng, bm) if name.endswith(".onnx") else bm(b))
    elif op == 7:  # member set
        r = rng.randrange(4)
        if r == 0 and others:
            del others[rng.randrange(len(others))]
        elif r == 1:
            others.append((rng.choice(("arrays/x.npy", "models/m.onnx", "../evil.npy", "arrays/../a.npy", "a/b",
                                       "arrays/mean.npy", "/abs.npy", "arrays/.npy", MANIFEST)),
                           npy_bytes(__import__("numpy").arange(4.0))))
        elif r == 2 and others:
            k = rng.randrange(len(others))
            others[k] = (rng.choice(("arrays/y.npy", "models/y.onnx", "arrays/Y.NPY", others[0][0])), others[k][1])
        else:
            comp = zipfile.ZIP_DEFLATED if comp == zipfile.ZIP_STORED else zipfile.ZIP_STORED
    elif op == 8:
        return bm(data)
    else:
        members_b = json.dumps(manifest).encode()
        return zip_bytes([(MANIFEST, bm(members_b))] + others, comp)
    if rng.random() < 0.92 and isinstance(manifest, dict):  # re-seal: sizes, hashes, bundle_id, digest
        decl = manifest.get("members") if isinstance(manifest.get("members"), dict) else {}
        new = {}
        for name, b in others:
            d = dict(decl[name]) if isinstance(decl.get(name), dict) else {}
            d.update(sha256=hashlib.sha256(b).hexdigest(), size=len(b))
            if name.endswith(".npy") and ("shape" in d or "dtype" in d) and rng.random() < 0.9:
                try:
                    import numpy as np

                    a = np.load(io.BytesIO(b), allow_pickle=False, mmap_mode=None)
                    d["shape"], d["dtype"] = list(a.shape), str(a.dtype)
                except Exception:
                    pass
            new[name] = d
        if rng.random() < 0.97:
            manifest["members"] = new
        try:
            manifest["bundle_id"] = bundle_id_of(manifest["members"]) if isinstance(manifest.get("members"), dict) \
                else manifest.get("bundle_id")
        except Exception:
            pass
        try:
            manifest["digest"] = manifest_digest(manifest)
        except Exception:
            pass
    try:
        mb = json.dumps(manifest).encode()
    except (TypeError, ValueError):
        return None
    return zip_bytes([(MANIFEST, mb)] + others, comp)


def mutate_reader_options(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data.ljust(2, b"\0"))
    b[rng.randrange(2)] = rng.randrange(256)
    return bytes(b)


STRUCT_MUTATORS: dict[str, Callable[..., bytes | None]] = {
    "mat": mutate_mat, "wav": mutate_wav, "csv": mutate_csv, "npy": mutate_npy, "npz": mutate_npz,
    "parquet": mutate_parquet, "bundle": mutate_bundle, "framing": mutate_framing,
}
SEED_POOL: list[bytes] = []  # the target's seeds, for the mutators (set in the worker)
STRUCT_SHARE = {"bundle": 0.85, "parquet": 0.6, "npz": 0.6, "mat": 0.5, "push": 0.0}


def make_mutator(target: str, engine_mutate: Callable[[bytes, int], bytes] | None) -> Callable[[bytes, int, int], bytes]:
    tokens = TOKENS.get(target, ())

    def mut(data: bytes, max_size: int, seed: int) -> bytes:
        rng = random.Random(seed)

        def bm(b: bytes) -> bytes:
            if engine_mutate is not None:
                return engine_mutate(b, max(len(b) + 64, 64))
            return byte_mutate(b, max(len(b) + 64, 64), rng, tokens)

        out = None
        try:
            if target in READERS and rng.random() < 0.05:
                out = mutate_reader_options(data, rng)
            elif target in STRUCT_MUTATORS and rng.random() < STRUCT_SHARE.get(target, 0.4):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    out = STRUCT_MUTATORS[target](data, rng, bm)
                    if out is None and SEED_POOL and rng.random() < 0.5:
                        # unparseable (byte mutations broke the structure): start again from a seed, so
                        # broken containers do not breed only broken containers
                        out = STRUCT_MUTATORS[target](rng.choice(SEED_POOL), rng, bm)
        except Exception:  # a mutator problem must not stop fuzzing
            out = None
        if out is None:
            out = engine_mutate(data, max_size) if engine_mutate is not None else byte_mutate(data, max_size, rng, tokens)
        return out[:max_size]

    return mut


# ================================================================================================
# targets
# ================================================================================================
class Refusal(Exception):
    """Raised by a harness to report an expected refusal it caught itself (composite targets)."""


class SlowInput(BaseException):
    """An input used more than --input-timeout seconds of CPU (a BaseException, so that the
    ``except Exception`` clauses of the code under test do not turn it into a refusal)."""


def _nonfinite(obj: Any, path: str = "") -> list[str]:
    if isinstance(obj, float):
        return [] if math.isfinite(obj) else [f"{path or '.'} = {obj}"]
    if isinstance(obj, dict):
        return [p for k, v in obj.items() for p in _nonfinite(v, f"{path}.{k}")]
    if isinstance(obj, (list, tuple)):
        return [p for i, v in enumerate(obj) for p in _nonfinite(v, f"{path}[{i}]")]
    return []


def check_event_json(ev: Any) -> None:
    """The event serialises as the daemon writes it: json.dumps(..., allow_nan=False)."""
    d = ev.to_dict()
    try:
        json.dumps(d, allow_nan=False)
    except ValueError:
        bad = _nonfinite(d)
        fields = sorted({re.sub(r"\.(contrib\.\w+)\..*", r".\1.*", b.split(" = ")[0]) for b in bad})
        raise AssertionError(f"event fields {', '.join(fields)} not finite: not JSON as the daemon writes events "
                             f"(allow_nan=False; its scoring thread would stop) | {bad[:4]}") from None


CHANNELS = [None] * 6 + ["0", "1,0", "ch0", "DE", "DE,FE", "x", [0], [1, 0], "", "time", "X097_DE_time", "ch1,ch1",
                         [5], [True], "de", ("a", "b"), [-1], 3.5]
RATES = [(None, 1000.0)] * 5 + [(None, None), (2000.0, None), (1000.0, 1000.0), (500.0, 1000.0), (1500.0, None),
                                (float("nan"), None), (-1.0, None), (None, 0.0), (12000.0, 48000.0), ("x", None),
                                (None, float("inf")), (1000.0, 999.9999999)]
ARG_WORDS = re.compile(r"\b(fs|default_fs|channels?|format|path)\b")


class ReaderTarget:
    def __init__(self, fmt: str, tmpdir: str) -> None:
        self.fmt = fmt
        self.path = os.path.join(tmpdir, "input" + EXT[fmt])

    def names_input(self, msg: str) -> bool:
        return self.path in msg or bool(ARG_WORDS.search(msg))

    def __call__(self, data: bytes) -> None:
        import numpy as np

        from edgefault.io.readers import available_channels, read_recording

        b0, b1 = (data[0], data[1]) if len(data) >= 2 else (0, 0)
        with open(self.path, "wb") as fh:
            fh.write(data[2:])
        channels = CHANNELS[b0 % len(CHANNELS)]
        fs, dfs = RATES[b1 % len(RATES)]
        if b1 & 0x80:
            names = available_channels(self.path)
            assert isinstance(names, tuple) and all(isinstance(n, str) for n in names)
        rec = read_recording(self.path, channels=channels, fs=fs, default_fs=dfs)
        d = rec.data
        assert isinstance(d, np.ndarray) and d.dtype == np.float32 and d.ndim == 2 and d.flags.c_contiguous, \
            f"data {type(d)} {getattr(d, 'dtype', None)} {getattr(d, 'shape', None)}"
        assert d.shape[0] >= 1 and d.shape[1] == len(rec.channels) >= 1, (d.shape, rec.channels)
        assert isinstance(rec.fs, float) and math.isfinite(rec.fs) and rec.fs > 0, rec.fs
        assert rec.rpm is None or (isinstance(rec.rpm, float) and math.isfinite(rec.rpm)), rec.rpm
        assert len(set(c.lower() for c in rec.channels)) == len(rec.channels) or self.fmt in ("mat", "parquet"), \
            rec.channels


class BundleTarget:
    def __init__(self, tmpdir: str) -> None:
        import numpy as np

        self.path = os.path.join(tmpdir, "input.efb")
        self.x = noise(2200, 2, seed=9)
        self.x[700:710] = np.nan

    @staticmethod
    def names_input(msg: str) -> bool:
        return "bundle" in msg

    def __call__(self, data: bytes) -> None:
        import numpy as np

        from edgefault.device.bundle import load_bundle
        from edgefault.device.runtime import Runtime

        if data[-1:] == b"\x07":  # the path form now and then
            with open(self.path, "wb") as fh:
                fh.write(data)
            b = load_bundle(self.path)
        else:
            b = load_bundle(data)
        json.dumps(b.describe())
        rt = Runtime(b)
        nc = rt.spec.n_channels
        x = np.ascontiguousarray(np.resize(self.x, (max(2 * rt.spec.window + rt.spec.hop, 2200), nc)), np.float32)
        for ev in rt.push(x):
            check_event_json(ev)


class FramingTarget:
    MAXES = (16, 17, 31, 64, 100, 1024, 4096, 65536, 1 << 20, 1 << 31, 0, -1)
    REASONS = ("malformed", "truncated", "oversized", "channels")

    def __init__(self, note: Callable[[Exception], None]) -> None:
        self.note = note

    @staticmethod
    def names_input(msg: str) -> bool:
        return "packet" in msg

    def __call__(self, data: bytes) -> None:
        import numpy as np

        from edgefault.daemon import framing
        from edgefault.daemon.sources import RawParser

        p = Provider(data)
        mx = self.MAXES[p.byte() % len(self.MAXES)]
        cut_seed = p.byte()
        buf = p.rest()
        # 1. one whole packet (UDP datagram / MQTT message), bytes and memoryview
        res = []
        for b in (buf, memoryview(buf)):
            try:
                h, arr = framing.decode(b, mx)
            except framing.PacketError as e:
                assert e.reason in self.REASONS, e.reason
                self.note(e)
                res.append(("err", e.reason, str(e)))
                continue
            assert arr.shape == (h.n_frames, h.n_channels) and arr.dtype == framing.FORMATS[h.format]
            assert h.size + arr.nbytes == len(buf) <= mx
            again = framing.encode(h.seq, arr, "int16" if h.format == 1 else "float32",
                                   h.t_ns if h.version == 2 else None)
            assert again == bytes(buf), "decode -> encode does not give the packet back"
            res.append(("ok", h, arr.tobytes()))
        assert res[0] == res[1], "bytes and memoryview decode differently"
        # 2. TCP stream in random pieces == one feed; packets are in the stream, in order
        rng = random.Random(cut_seed)
        whole = framing.StreamDecoder(mx)
        one = whole.feed(buf)
        errs_one = whole.take_errors()
        dec = framing.StreamDecoder(mx)
        got = []
        errs = []
        i = 0
        while i < len(buf):
            step = max(rng.choice((1, 2, 3, 5, 16, 17, 64, 1000)), len(buf) // 150)
            got += dec.feed(buf[i:i + step])
            errs += dec.take_errors()
            i += step
        assert [(h, a.tobytes()) for h, a in got] == [(h, a.tobytes()) for h, a in one], \
            "feeding in pieces gives other packets than one feed"
        assert all(r in self.REASONS for r in errs + errs_one), errs
        pos = 0
        for h, a in one:
            assert a.shape == (h.n_frames, h.n_channels)
            pk = framing.encode(h.seq, a, "int16" if h.format == 1 else "float32", h.t_ns if h.version == 2 else None)
            at = buf.find(pk, pos)
            assert at >= 0, "a packet that is not in the stream (in order)"
            pos = at + len(pk)
        left = dec.close()
        assert left in (None, "truncated")
        assert len(dec.buf) == 0
        # 3. sequence tracker on the packet numbers and on raw words
        tr = framing.SequenceTracker(reorder_window=1 + cut_seed * 4)
        seqs = [h.seq for h, _ in one] + [int.from_bytes(buf[j:j + 4], "little") for j in range(0, min(len(buf), 64), 4)]
        for s in seqs:
            ok, lost = tr.check(s)
            assert isinstance(ok, bool) and 0 <= lost <= 1 << 24
        assert tr.lost >= 0 and tr.gaps + tr.late + tr.restarts <= len(seqs)
        # 4. the daemon's stdin / serial parser (raw int16 / float32 frames or CSV lines)
        fmt = ("int16", "float32", "csv")[cut_seed % 3]
        nc = 1 + cut_seed % 5
        rp = RawParser(fmt, nc, 64)
        step = max(7 + cut_seed % 50, len(buf) // 60)
        for j in range(0, len(buf), step):
            for arr in rp.feed(buf[j:j + step]):
                assert arr.ndim == 2 and arr.shape[1] == nc and arr.dtype in (np.float32, np.int16, np.dtype("<i2"),
                                                                              np.dtype("<f4"))
        rp.close()


AVOID: set[str] = set()  # --avoid: input classes left out (after their finding was reported)
DTYPES = ("<f4", "<f8", "<i2", "<i4", "|i1", "|u1", "<u2", "<u4", "<i8", "<u8", "<f2", "|b1", "<c8", "<c16", ">f4",
          ">f8", ">i2", ">i4", "<U3", "|S2", "|O", "<M8[s]", "<m8[s]", "|V4", "<g", "[('a','<f4')]")
SIZES = (0, 1, 2, -1, -2, -3, -4, -5, -6, 7, 100, 1000, 5000, -7, 3, 64)


class PushTarget:
    def __init__(self, workdir: Path, tmpdir: str, note: Callable[[Exception], None]) -> None:
        from edgefault.device.bundle import load_bundle
        from edgefault.device.runtime import Runtime

        self.note = note
        paths = sorted((workdir / "bundles").glob("*.efb"))
        self.bundles = [load_bundle(p) for p in paths]
        self.names = [p.stem for p in paths]
        self.trace: list[str] = []
        assert self.bundles, f"no bundles in {workdir / 'bundles'}"
        self.rts = [Runtime(b) for b in self.bundles]
        self.state_path = os.path.join(tmpdir, "state.npz")

    @staticmethod
    def names_input(msg: str) -> bool:
        return bool(re.search(r"\b(chunk|input_scale|alarm|alarm_k|alarm_n|drift|adaptive_threshold|retrain_after|"
                              r"top_features|start_time|state|t_wall|t_received|push_gap)\b", msg))

    def _kwargs(self, p: Provider) -> dict[str, Any]:
        kw: dict[str, Any] = {}
        floats = (0.0, -1.0, 1.0, 1e30, 1e-30, float("nan"), float("inf"), -float("inf"), 3.0517578125e-05, 5e-324)
        ints = (0, -1, 1, 2, 3, 7, 200, 2 ** 31, 2 ** 40, 2 ** 64)
        flags = (None, True, False)
        for key, vals in (("input_scale", floats), ("start_time", floats), ("alarm_k", ints), ("alarm_n", ints),
                          ("top_features", ints), ("drift", flags), ("adaptive_threshold", flags),
                          ("retrain_after", ints)):
            b = p.byte()
            if b & 1:  # type-correct values only: wrong types are a Python TypeError by design
                kw[key] = vals[(b >> 1) % len(vals)]
        return kw

    def _chunk(self, p: Provider, rt: Any) -> Any:
        import numpy as np

        nc, w, hop = rt.spec.n_channels, rt.spec.window, rt.spec.hop
        kind = p.byte()
        s = SIZES[p.byte() % len(SIZES)]
        n = {-1: hop - 1, -2: hop, -3: hop + 1, -4: w - 1, -5: w, -6: w + 1, -7: 3 * w + hop}.get(s, s)
        if kind == 0xA5 and p.byte() == 0x5A:
            n = 1 << 22  # a huge chunk (4M frames)
        ch = (nc, nc, nc, nc, nc + 1, nc - 1, 0, 1)[p.byte() % 8]
        dt = DTYPES[p.byte() % len(DTYPES)]
        ndim = (2, 2, 2, 1, 0, 3)[p.byte() % 6]
        fill = p.byte() % 11
        layout = p.byte() % 11
        rng = np.random.default_rng(p.byte())
        shape = {2: (n, ch), 1: (n,), 0: (), 3: (n, ch, 1)}[ndim]
        size = int(np.prod(shape))
        if fill == 1:  # raw input bytes reinterpreted (NaN payloads, denormals, anything)
            raw = (p.take(min(4 * size, 4096)) or b"\0").ljust(4, b"\0")
            v = np.resize(np.frombuffer(raw[: len(raw) // 4 * 4], dtype="<f4"), size).astype(np.float64)
        else:
            v = rng.normal(size=size)
            if fill == 2:
                v[:] = 0
            elif fill == 3 and size:
                v[rng.integers(0, size, max(1, size // 50))] = np.nan
            elif fill == 4 and size:
                v[rng.integers(0, size, max(1, size // 50))] = rng.choice([np.inf, -np.inf])
            elif fill == 5:
                v[:] = np.nan
            elif fill == 6:
                v[:] = 3.4e38
            elif fill == 7:
                v[:] = -1.8e308
            elif fill == 8:
                v[:] = 1e-42
            elif fill == 9:
                v[:] = np.where(np.arange(size) % 2, 1e300, -1e300)
            elif fill == 10:
                v *= 30000
        self.trace.append(f"{dt} {shape} fill={fill} layout={layout}")
        v = v.reshape(shape)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                if dt == "|O":
                    x = v.astype(object)
                elif dt.startswith("["):
                    x = np.zeros(shape, dtype=[("a", "<f4")])
                elif dt[1] in "iu":
                    info = np.iinfo(np.dtype(dt))
                    x = np.clip(np.nan_to_num(v), info.min, info.max).astype(dt)
                else:
                    x = v.astype(dt)
            except (ValueError, TypeError, OverflowError):
                x = v.astype(np.float32)
        if layout == 1 and x.ndim == 2:
            x = np.asfortranarray(x)
        elif layout == 2 and x.ndim:
            x = np.repeat(x, 2, axis=0)[::2]
        elif layout == 3 and x.ndim:
            x = x[::-1]
        elif layout == 4 and x.ndim == 2 and x.shape[0]:
            x = np.broadcast_to(x[:1], x.shape)
        elif layout == 5 and x.dtype.kind in "fiu" and x.ndim and "misaligned" not in AVOID:
            buf = bytearray(x.nbytes + 1)
            y = np.frombuffer(buf, dtype=x.dtype, offset=1, count=x.size).reshape(x.shape)
            y[...] = x
            x = y
        elif layout == 6:
            x = x.copy()
            x.setflags(write=False)
        elif layout == 7 and x.size < 20000:
            x = x.tolist()
        elif layout == 8 and x.ndim == 2:
            wide = np.zeros((x.shape[0], x.shape[1] + 1), dtype=x.dtype)
            wide[:, :-1] = x
            x = wide[:, :-1]
        elif layout == 9:
            x = [x] if p.byte() & 1 else (None if p.byte() & 1 else "abc")
        elif layout == 10 and x.ndim == 2:
            x = np.ascontiguousarray(x.T).T
        return x

    def __call__(self, data: bytes) -> None:
        from edgefault.device.runtime import Runtime
        from edgefault.errors import InputError

        p = Provider(data)
        i = p.byte() % len(self.bundles)
        self.trace = [f"bundle {self.names[i]}"]
        if p.byte() % 8 == 0:
            kw = self._kwargs(p)
            self.trace.append(f"Runtime(**{kw})")
            rt = Runtime(self.bundles[i], **kw)
        else:
            rt = self.rts[i]
            rt.reset()
        w, hop = rt.spec.window, rt.spec.hop
        frames = events = 0
        exact = True
        for _ in range(1 + p.byte() % 4):
            op = p.byte()
            if op % 16 == 3:  # lost samples: a gap, never a splice
                n_gap = (0, 1, hop - 1, hop, w, 3 * w + 1, 10 ** 6, 2 ** 40, -1, 2.5)[p.byte() % 10]
                self.trace.append(f"push_gap({n_gap})")
                before = rt.samples_seen
                try:
                    evs = rt.push_gap(n_gap)  # type: ignore[arg-type]
                except InputError as e:
                    assert rt.samples_seen == before, "a refused gap moved the sample counter"
                    self.note(e)
                    continue
                assert rt.samples_seen == before + n_gap
                assert all(ev.flags == ("gap",) and ev.score is None for ev in evs)
                exact = False  # push_gap returns at most MAX_GAP_EVENTS windows
                continue
            x = self._chunk(p, rt)
            t_wall = (None, None, 1.8e9, 0.0, -1e12, float("nan"), float("inf"), 1e300)[op % 8]
            before = rt.samples_seen
            try:
                evs = rt.push(x, t_wall)
            except InputError as e:
                assert rt.samples_seen == before, "a refused chunk moved the sample counter"
                self.note(e)
                continue
            n = rt.samples_seen - before
            assert n >= 0
            frames += n
            events += len(evs)
            for ev in evs:
                assert (ev.score is None) == (not ev.valid)
                assert ev.score is None or math.isfinite(ev.score), f"non-finite score {ev.score} | {self.trace}"
                assert math.isfinite(ev.t) and math.isfinite(ev.threshold), \
                    f"non-finite event time or threshold | {ev.t}, {ev.threshold}, {self.trace}"
                assert ev.t_wall_source == ("receive" if t_wall is None else "source")
            # as the daemon writes them (allow_nan=False); a sample of a long run
            for ev in evs[:24] + evs[24:-24:max(1, len(evs) // 16)] + evs[-24:]:
                check_event_json(ev)
            if p.byte() % 16 == 1:
                self.trace.append("set_state")
                self._state(p, rt)
                exact = False
        if exact:
            want = 0 if frames < w else (frames - w) // hop + 1
            assert events == want, f"wrong number of events | {events} for {frames} frames (window {w}, hop {hop}): " \
                                   f"expected {want}; {self.trace}"

    def _state(self, p: Provider, rt: Any) -> None:
        import numpy as np

        from edgefault.errors import InputError

        st = rt.get_state()
        op = p.byte() % 8
        vals = (None, -1, 0, 2 ** 63, 2 ** 64, float("nan"), float("inf"), "x", [], {}, [1.0, 2.0], 1e30, True)
        if op == 0:
            st["tail"] = np.zeros((p.byte() % 5 * 100, p.byte() % 4), np.float32)
        elif op == 1:
            st["frames_seen"] = vals[p.byte() % len(vals)]
        elif op == 2 and isinstance(st.get("alarm"), dict):
            st["alarm"][p.choice(sorted(st["alarm"]))] = vals[p.byte() % len(vals)]
        elif op == 3 and isinstance(st.get("drift"), dict):
            st["drift"][p.choice(sorted(st["drift"]))] = vals[p.byte() % len(vals)]
        elif op == 4:
            st["drift"] = vals[p.byte() % len(vals)]
        elif op == 5:
            st[p.choice(sorted(st))] = vals[p.byte() % len(vals)]
        elif op == 6:
            rt.save_state(self.state_path)
            raw = bytearray(Path(self.state_path).read_bytes())
            for _ in range(p.byte() % 4):
                if raw:
                    raw[p.uint(4) % len(raw)] = p.byte()
            Path(self.state_path).write_bytes(bytes(raw))
            try:
                rt.load_state(self.state_path)
            except InputError:
                pass
            return
        try:
            rt.set_state(st)
        except InputError:
            pass


# ================================================================================================
# worker: runs one target until its budget is spent
# ================================================================================================
class Worker:
    def __init__(self, target: str, workdir: Path, runs: int | None, seconds: float | None, tag: str) -> None:
        self.target, self.workdir, self.runs, self.seconds, self.tag = target, workdir, runs, seconds, tag
        self.tmp = tempfile.mkdtemp(prefix=f"efz-{target}-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
        self.n = self.accepted = self.refused = 0
        self.messages: Counter = Counter()
        self.examples: dict[str, str] = {}
        self.findings: dict[str, dict[str, Any]] = {}
        self.warnings: Counter = Counter()
        self.slowest = (0.0, "")
        self.t0 = time.monotonic()
        self.last_flush = 0.0
        self.novel = False  # the last input gave something new (plain engine feedback)
        self.stats_path = workdir / "stats" / f"{target}.{tag}.json"
        self.stats_path.parent.mkdir(parents=True, exist_ok=True)
        self.fdir = workdir / "findings" / target
        self.fn: Callable[[bytes], None]
        self.names_input: Callable[[str], bool]
        self.path_hint: str | None = None
        self.cur = b""
        self.input_timeout = 0.0

    def arm_watchdog(self, seconds: float) -> None:
        """CPU-time limit per input (SIGVTALRM; libFuzzer's own -timeout uses SIGALRM)."""
        self.input_timeout = seconds

        def fire(signum: int, frame: Any) -> None:
            raise SlowInput(f"input took more than {seconds:g} s of CPU time")

        signal.signal(signal.SIGVTALRM, fire)

    def setup(self) -> None:
        if self.target in READERS:
            t: Any = ReaderTarget(self.target, self.tmp)
            self.path_hint = t.path
        elif self.target == "bundle":
            t = BundleTarget(self.tmp)
            self.path_hint = t.path
        elif self.target == "framing":
            t = FramingTarget(self._refusal)
        else:
            t = PushTarget(self.workdir, self.tmp, self._refusal)
        self.fn, self.names_input = t, t.names_input

    # -- outcomes
    def _refusal(self, e: BaseException) -> None:
        self.refused += 1
        msg = str(e)
        key = type(e).__name__ + ": " + norm_message(msg, self.path_hint)
        if key not in self.messages:
            self.novel = True
            self.examples[key] = msg[:400]
        self.messages[key] += 1
        if not self.names_input(msg):
            self._finding("unnamed", e, self.cur, msg)

    def _finding(self, kind: str, e: BaseException, data: bytes | None, msg: str | None = None) -> None:
        tb = traceback.extract_tb(e.__traceback__)
        # where edgefault let it through: the innermost frame in the package (else the raising frame)
        ours = [f for f in tb if PKG in Path(f.filename).resolve().parents]
        frames = ours or [f for f in tb if Path(f.filename).resolve() != HERE] or list(tb)
        where = f"{Path(frames[-1].filename).name}:{frames[-1].name}" if frames else "?"
        line = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"
        raised = f"{Path(tb[-1].filename).name}:{tb[-1].lineno}" if tb else "?"
        if kind == "unnamed":
            key = f"unnamed {type(e).__name__} {norm_message(msg or '', self.path_hint)}"
        elif kind == "slow":
            key = f"slow {where}"
        elif kind == "invariant":  # the part of the message before " | " says what broke
            key = f"invariant {line} {norm_message(str(e).split(' | ')[0], self.path_hint)[:120]}"
        else:
            key = f"exception {type(e).__name__} {where}"
        f = self.findings.get(key)
        if f is None:
            self.novel = True
            f = self.findings[key] = {"kind": kind, "type": type(e).__name__, "where": where, "line": line,
                                      "raised": raised,
                                      "message": str(e)[:600], "count": 0, "input": None,
                                      "traceback": "".join(traceback.format_exception(type(e), e, e.__traceback__))[-4000:],
                                      "known": known_note(self.target, kind, type(e).__name__, where, str(e))}
            if data is not None:
                self.fdir.mkdir(parents=True, exist_ok=True)
                p = self.fdir / f"{kind}-{type(e).__name__}-{hashlib.sha1(data).hexdigest()[:10]}.bin"
                p.write_bytes(data)
                f["input"] = str(p)
            self.flush()
        f["count"] += 1

    def one(self, data: bytes) -> None:
        from edgefault.errors import EdgefaultError

        t = time.perf_counter()
        self.novel = False
        self.cur = data
        with warnings.catch_warnings(record=True) as wl:
            warnings.simplefilter("always")
            try:
                if self.input_timeout:
                    signal.setitimer(signal.ITIMER_VIRTUAL, self.input_timeout)
                try:
                    self.fn(data)
                finally:
                    if self.input_timeout:
                        signal.setitimer(signal.ITIMER_VIRTUAL, 0)
                self.accepted += 1
            except SlowInput as e:
                self._finding("slow", e, data)
            except Refusal as r:
                self._refusal(r.args[0])
            except EdgefaultError as e:
                self._refusal(e)
            except AssertionError as e:
                self._finding("invariant", e, data)
            except (Exception, SystemExit, GeneratorExit) as e:
                self._finding("exception", e, data)
        for w in wl:
            key = f"{w.category.__name__}: {norm_message(str(w.message), self.path_hint)} ({Path(w.filename).name}:{w.lineno})"
            if key not in self.warnings:
                self.novel = True
            self.warnings[key] += 1
        dt = time.perf_counter() - t
        self.n += 1
        if dt > self.slowest[0]:
            p = self.workdir / "findings" / f"slowest-{self.target}.bin"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
            self.slowest = (dt, str(p))
        now = time.monotonic()
        if (self.runs is not None and self.n >= self.runs) or (self.seconds is not None and now - self.t0 >= self.seconds):
            self.flush(done=True)
            os._exit(0)  # libFuzzer never returns; the stats are on disk
        if now - self.last_flush > 2.0 or self.novel:
            self.flush()

    def flush(self, done: bool = False) -> None:
        core = sys.modules.get("edgefault._core")
        st = {"target": self.target, "inputs": self.n, "accepted": self.accepted, "refused": self.refused,
              "seconds": time.monotonic() - self.t0, "messages": dict(self.messages), "examples": self.examples,
              "findings": self.findings, "warnings": dict(self.warnings), "slowest": self.slowest, "done": done,
              "core": getattr(core, "__file__", None), "asan": _asan_loaded()}
        tmp = self.stats_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(st, default=str))
        os.replace(tmp, self.stats_path)
        self.last_flush = time.monotonic()


def _asan_loaded() -> bool:
    try:
        with open("/proc/self/maps") as fh:
            return "libasan" in fh.read()
    except OSError:
        return False


def load_core(path: str | None) -> None:
    """Import edgefault with its core taken from ``path`` (e.g. a sanitizer build: the source
    tree's Python package then runs on it)."""
    use_source_tree(always=bool(path))
    if path:
        import importlib.util

        spec = importlib.util.spec_from_file_location("edgefault._core", path)
        if spec is None or spec.loader is None:
            raise SystemExit(f"fuzz: cannot load the core from {path}")
        mod = importlib.util.module_from_spec(spec)
        sys.modules["edgefault._core"] = mod
        spec.loader.exec_module(mod)


def import_targets() -> None:
    import edgefault  # noqa: F401
    import edgefault.daemon.framing  # noqa: F401
    import edgefault.daemon.sources  # noqa: F401
    import edgefault.device.bundle  # noqa: F401
    import edgefault.device.runtime  # noqa: F401
    import edgefault.io.readers  # noqa: F401
    import edgefault.kinds  # noqa: F401
    for mod in ("edgefault.kinds.gaussian", "edgefault.kinds.vae", "edgefault.kinds.sfdsc", "edgefault.device.state"):
        try:
            __import__(mod)
        except ImportError:
            pass
    if "edgefault._core" in sys.modules:
        edgefault._core = sys.modules["edgefault._core"]  # type: ignore[attr-defined]


def run_worker(args: argparse.Namespace) -> None:
    import numpy  # noqa: F401  (imported before instrumentation: not instrumented)
    import numpy.lib.format  # noqa: F401

    try:
        import pyarrow.parquet  # noqa: F401
        import onnxruntime  # noqa: F401
        import onnx  # noqa: F401
    except ImportError:
        pass
    workdir = Path(args.workdir)
    AVOID.update(a for a in (args.avoid or "").split(",") if a)
    load_core(args.core)
    w = Worker(args.worker, workdir, args.runs_n, args.seconds_n, args.tag)
    if args.input_timeout:
        w.arm_watchdog(args.input_timeout)
    seeds = sorted((workdir / "seeds" / args.worker).iterdir())
    SEED_POOL.extend(p.read_bytes() for p in seeds if p.is_file())
    corpus = workdir / "corpus" / args.worker
    corpus.mkdir(parents=True, exist_ok=True)
    if args.engine == "atheris":
        import atheris

        with atheris.instrument_imports(include=["edgefault"]):
            import_targets()
        w.setup()
        # atheris.Mutate is a stub until Fuzz() runs and replaces it: look it up at each call
        mut = make_mutator(args.worker, lambda d, m: atheris.Mutate(d, m))
        argv = [sys.argv[0], f"-max_len={MAX_LEN[args.worker]}", f"-timeout={int(3 * args.input_timeout + 30)}",
                "-rss_limit_mb=6144",
                f"-artifact_prefix={workdir / 'crashes' / args.worker}{os.sep}", f"-seed={args.seed}",
                f"-max_total_time={int((args.seconds_n or 10 ** 7) + 600)}", "-print_final_stats=1",
                f"-dict={workdir / 'dicts' / (args.worker + '.dict')}", str(corpus), str(workdir / "seeds" / args.worker)]
        if not TOKENS.get(args.worker):
            argv = [a for a in argv if not a.startswith("-dict=")]
        (workdir / "crashes" / args.worker).mkdir(parents=True, exist_ok=True)
        atheris.Setup(argv, w.one, custom_mutator=mut)
        atheris.Fuzz()
    else:
        import_targets()
        w.setup()
        mut = make_mutator(args.worker, None)
        rng = random.Random(args.seed)
        pool = [p.read_bytes() for p in seeds if p.is_file()] + [p.read_bytes() for p in sorted(corpus.iterdir())[:500]]
        for d in list(pool):
            w.one(d)
        while True:
            base = rng.choice(pool)
            data = mut(base, MAX_LEN[args.worker], rng.getrandbits(32))
            w.one(data)
            if w.novel and len(pool) < 5000:  # poor man's feedback: keep inputs that did something new
                pool.append(data)


# ================================================================================================
# orchestrator
# ================================================================================================
def parse_budget(text: str | None, targets: tuple[str, ...], cast: Callable[[str], float]) -> dict[str, float | None]:
    out: dict[str, float | None] = {t: None for t in targets}
    if not text:
        return out
    for part in text.split(","):
        if "=" in part:
            k, v = part.split("=", 1)
            for t in GROUPS.get(k, (k,)):
                if t not in out:
                    raise SystemExit(f"fuzz: unknown target {t!r} in {text!r}")
                out[t] = cast(v)
        else:
            for t in targets:
                out[t] = cast(part)
    return out


def ensure_seeds(workdir: Path) -> None:
    vf = workdir / "seeds" / "VERSION"
    if vf.exists() and vf.read_text().strip() == str(SEED_VERSION):
        return
    if (workdir / "seeds").exists():
        shutil.rmtree(workdir / "seeds")
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS")}
    t = time.monotonic()  # the child picks the source tree or the installed package (use_source_tree)
    r = subprocess.run([sys.executable, str(HERE), "--make-seeds", "--workdir", str(workdir)], env=env,
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"fuzz: making the seeds failed:\n{r.stdout[-3000:]}\n{r.stderr[-6000:]}")
    print(f"seeds: trained {len(list((workdir / 'bundles').glob('*.efb')))} bundles and wrote the seed corpora "
          f"in {time.monotonic() - t:.0f} s", flush=True)


SAN_PATTERNS = (("asan", re.compile(r"ERROR: AddressSanitizer")), ("ubsan", re.compile(r"runtime error:")),
                ("leak", re.compile(r"ERROR: LeakSanitizer")))


def classify_crash(log: str) -> tuple[str, bool]:
    if "AddressSanitizer: CHECK failed" in log and "cxa_throw" in log:
        # the sanitizer's own check, not a report: libstdc++ was loaded after libasan (preload it too)
        return "asan-setup (LD_PRELOAD libstdc++ after libasan)", False
    for name, rx in SAN_PATTERNS:
        if rx.search(log):
            return name, True
    for name, needle in (("timeout", "ERROR: libFuzzer: timeout"), ("oom", "out-of-memory"),
                         ("signal", "deadly signal"), ("python", "Uncaught Python exception")):
        if needle in log:
            return name, False
    return "exit", False


def run_target(t: str, args: argparse.Namespace, runs: float | None, seconds: float | None,
               workdir: Path) -> dict[str, Any]:
    agg: dict[str, Any] = {"target": t, "inputs": 0, "accepted": 0, "refused": 0, "seconds": 0.0, "messages": Counter(),
                           "examples": {}, "findings": {}, "warnings": Counter(), "crashes": [], "slowest": (0.0, ""),
                           "asan": None, "core": None}
    logs = workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    for attempt in range(args.max_restarts + 1):
        left_runs = None if runs is None else int(runs) - agg["inputs"]
        left_s = None if seconds is None else seconds - agg["seconds"]
        if (left_runs is not None and left_runs <= 0) or (left_s is not None and left_s <= 1):
            break
        tag = f"{os.getpid()}-{attempt}"
        cmd = [sys.executable, str(HERE), "--worker", t, "--workdir", str(workdir), "--engine", args.engine,
               "--tag", tag, "--seed", str(args.seed + attempt), "--input-timeout", str(args.input_timeout),
               "--avoid", args.avoid]
        if left_runs is not None:
            cmd += ["--runs", str(left_runs)]
        if left_s is not None:
            cmd += ["--seconds", str(left_s)]
        if args.core:
            cmd += ["--core", args.core]
        logf = logs / f"{t}.{tag}.log"
        t0 = time.monotonic()
        with open(logf, "w") as fh:
            rc = subprocess.call(cmd, stdout=fh, stderr=subprocess.STDOUT)
        wall = time.monotonic() - t0
        sp = workdir / "stats" / f"{t}.{tag}.json"
        st = json.loads(sp.read_text()) if sp.exists() else {}
        agg["inputs"] += st.get("inputs", 0)
        agg["accepted"] += st.get("accepted", 0)
        agg["refused"] += st.get("refused", 0)
        agg["seconds"] += st.get("seconds", wall) if st.get("done") else wall
        agg["messages"].update(st.get("messages", {}))
        agg["warnings"].update(st.get("warnings", {}))
        agg["examples"].update(st.get("examples", {}))
        agg["asan"], agg["core"] = st.get("asan", agg["asan"]), st.get("core", agg["core"])
        for k, f in st.get("findings", {}).items():
            if k in agg["findings"]:
                agg["findings"][k]["count"] += f["count"]
            else:
                agg["findings"][k] = f
        if st.get("slowest") and st["slowest"][0] > agg["slowest"][0]:
            agg["slowest"] = tuple(st["slowest"])
        if rc == 0 and st.get("done"):
            break
        text = logf.read_text(errors="replace")
        kind, san = classify_crash(text)
        arts = sorted(str(p) for p in (workdir / "crashes" / t).glob("*")
                      if p.stat().st_mtime >= t0 - 1) if (workdir / "crashes" / t).exists() else []
        m = re.search(r"(==\d+==ERROR.*?)(?:\n\n|\Z)", text, re.S) or re.search(r"(.*runtime error:.*)", text)
        agg["crashes"].append({"kind": kind, "sanitizer": san, "rc": rc, "log": str(logf), "artifacts": arts,
                               "excerpt": (m.group(1) if m else text[-1500:])[:3000]})
        print(f"  {t}: worker ended with {kind} (rc {rc}); log {logf}", flush=True)
    return agg


def report(results: list[dict[str, Any]], verbose: int) -> int:
    hdr = (f"{'target':<9} {'inputs':>9} {'seconds':>8} {'exec/s':>7} {'accepted':>9} {'refusals':>9} "
           f"{'distinct':>8} {'findings':>8} {'known':>5} {'crashes':>7} {'sanitizer':>9}")
    print(hdr)
    print("-" * len(hdr))
    tot = Counter()
    bad = 0
    for r in results:
        fs = list(r["findings"].values())
        for f in fs:  # against the KNOWN table of this script (not the one the workers had)
            f["known"] = known_note(r["target"], f["kind"], f["type"], f["where"], f["message"])
        known = sum(1 for f in fs if f.get("known"))
        new = len(fs) - known
        san = sum(c["sanitizer"] for c in r["crashes"])
        print(f"{r['target']:<9} {r['inputs']:>9,} {r['seconds']:>8.0f} {r['inputs'] / max(r['seconds'], 1e-9):>7.0f} "
              f"{r['accepted']:>9,} {r['refused']:>9,} {len(r['messages']):>8} {new:>8} {known:>5} "
              f"{len(r['crashes']):>7} {san:>9}")
        tot.update(inputs=r["inputs"], seconds=r["seconds"], accepted=r["accepted"], refused=r["refused"],
                   distinct=len(r["messages"]), findings=new, known=known, crashes=len(r["crashes"]), sanitizer=san)
        bad += new + len(r["crashes"])
    print("-" * len(hdr))
    print(f"{'total':<9} {tot['inputs']:>9,} {tot['seconds']:>8.0f} {tot['inputs'] / max(tot['seconds'], 1e-9):>7.0f} "
          f"{tot['accepted']:>9,} {tot['refused']:>9,} {tot['distinct']:>8} {tot['findings']:>8} {tot['known']:>5} "
          f"{tot['crashes']:>7} {tot['sanitizer']:>9}")
    cores = {(r["core"], r["asan"]) for r in results if r["core"]}
    for core, asan in sorted(cores, key=str):
        print(f"core: {core} (ASan runtime loaded: {'yes' if asan else 'no'})")
    for r in results:
        for f in r["findings"].values():
            tag = f"KNOWN ({f['known']})" if f.get("known") else "FINDING"
            print(f"\n{tag} [{r['target']}] {f['kind']}: {f['type']} at {f['line']} ({f['where']}; raised at "
                  f"{f.get('raised')}), {f['count']} inputs")
            print(f"  message: {f['message'][:300]}")
            if f.get("input"):
                print(f"  input: {f['input']}  (replay: python bench/fuzz.py --replay {f['input']} --target {r['target']})")
            if verbose:
                print("  " + f["traceback"].replace("\n", "\n  "))
        for c in r["crashes"]:
            print(f"\nCRASH [{r['target']}] {c['kind']} (rc {c['rc']}), sanitizer report: {c['sanitizer']}; log {c['log']}")
            print(f"  artifacts: {c['artifacts']}")
            print("  " + c["excerpt"][:1500].replace("\n", "\n  "))
        if verbose:
            print(f"\n[{r['target']}] refusals ({len(r['messages'])} distinct):")
            for k, n in r["messages"].most_common(verbose * 15):
                print(f"  {n:>8}  {k[:170]}")
        if r["warnings"]:
            print(f"\n[{r['target']}] warnings (not findings; {len(r['warnings'])} distinct):")
            for k, n in Counter(r["warnings"]).most_common(8):
                print(f"  {n:>8}  {k[:170]}")
        if verbose and r["slowest"][0]:
            print(f"[{r['target']}] slowest input {r['slowest'][0] * 1e3:.1f} ms: {r['slowest'][1]}")
    return bad


def replay(args: argparse.Namespace) -> int:
    load_core(args.core)
    import_targets()
    w = Worker(args.target, Path(args.workdir), None, None, "replay")
    w.setup()
    data = Path(args.replay).read_bytes()
    try:
        w.fn(data)
        print("accepted")
    except Refusal as r:
        print(f"refused: {type(r.args[0]).__name__}: {r.args[0]}")
    except Exception as e:
        from edgefault.errors import EdgefaultError

        if isinstance(e, EdgefaultError):
            print(f"refused: {type(e).__name__}: {e}")
        else:
            traceback.print_exc()
            return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--targets", default="all", help="comma-separated targets or groups: " + ", ".join(TARGETS)
                    + "; readers, all")
    ap.add_argument("--runs", help="inputs per target: N or target=N,... (groups allowed)")
    ap.add_argument("--seconds", help="seconds per target: S or target=S,...; with --runs, whichever comes first "
                                      "(default 10 s when neither is given)")
    ap.add_argument("--engine", choices=("auto", "atheris", "plain"), default="auto")
    ap.add_argument("--core", help="path of an edgefault._core build to load instead of the in-place one")
    ap.add_argument("--workdir", default=str(ROOT / "build" / "fuzz"))
    ap.add_argument("--fresh", action="store_true", help="forget the corpus, stats and findings of earlier runs")
    ap.add_argument("--json", help="write the full results here")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--input-timeout", type=float, default=10.0,
                    help="CPU seconds one input may take before it is a 'slow' finding (0: no limit; libFuzzer's "
                         "own wall-clock timeout is 3x this + 30 s and ends the worker)")
    ap.add_argument("--max-restarts", type=int, default=5)
    ap.add_argument("--avoid", default="", help="input classes to leave out, comma-separated: misaligned "
                                                 "(push: chunks whose data pointer is not aligned to the dtype)")
    ap.add_argument("-v", "--verbose", action="count", default=0)
    ap.add_argument("--replay", help="run one input file through --target and print the outcome")
    ap.add_argument("--target")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--tag", default="0", help=argparse.SUPPRESS)
    ap.add_argument("--make-seeds", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    workdir = Path(args.workdir).resolve()
    args.workdir = str(workdir)
    if args.core:
        args.core = str(Path(args.core).resolve())
    if args.make_seeds:
        make_seeds(workdir)
        return 0
    if args.engine == "auto":
        try:
            import atheris  # noqa: F401

            args.engine = "atheris"
        except ImportError:
            args.engine = "plain"
    if args.worker:
        args.runs_n = int(args.runs) if args.runs else None
        args.seconds_n = float(args.seconds) if args.seconds else None
        run_worker(args)
        return 0
    if args.replay:
        if args.target not in TARGETS:
            raise SystemExit(f"fuzz: --replay needs --target, one of {', '.join(TARGETS)}")
        ensure_seeds(workdir)
        return replay(args)
    targets: list[str] = []
    for part in args.targets.split(","):
        for t in GROUPS.get(part.strip(), (part.strip(),)):
            if t not in TARGETS:
                raise SystemExit(f"fuzz: unknown target {t!r}; expected {', '.join(TARGETS)}, readers or all")
            if t not in targets:
                targets.append(t)
    runs = parse_budget(args.runs, tuple(targets), lambda v: float(int(float(v))))
    secs = parse_budget(args.seconds, tuple(targets), float)
    if not args.runs and not args.seconds:
        secs = {t: 10.0 for t in targets}
    if args.fresh:
        for sub in ("corpus", "stats", "findings", "crashes", "logs"):
            shutil.rmtree(workdir / sub, ignore_errors=True)
    workdir.mkdir(parents=True, exist_ok=True)
    ensure_seeds(workdir)
    print(f"fuzz: engine {args.engine}, core {args.core or 'in place'}, work folder {workdir}", flush=True)
    t0 = time.monotonic()
    results = []
    for t in targets:
        if runs[t] is None and secs[t] is None:
            continue
        print(f"- {t}: runs {runs[t] and int(runs[t])}, seconds {secs[t]}", flush=True)
        results.append(run_target(t, args, runs[t], secs[t], workdir))
    print(f"\nfuzz finished in {time.monotonic() - t0:.0f} s wall ({args.engine})\n")
    bad = report(results, args.verbose)
    if args.json:
        Path(args.json).write_text(json.dumps({"engine": args.engine, "core": args.core, "results": results},
                                              default=lambda o: dict(o) if isinstance(o, Counter) else str(o), indent=1))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
