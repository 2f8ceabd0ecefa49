"""Runtime state files: the one writer and reader of the ``.npz`` state format.

A state file is an uncompressed npz archive with two members:

``tail``
    the pipeline's buffered samples (the partial window), a numeric array;
``meta``
    everything else of :meth:`edgefault.Runtime.get_state` as UTF-8 JSON bytes (a uint8 array):
    version, bundle_id, seq, frames_seen, alarm, drift. Writers may add sections of their own
    (the daemon adds ``daemon``: event seq, dropped frames, boot count); readers ignore what
    they do not know.

:meth:`Runtime.save_state` / :meth:`Runtime.load_state` and the daemon's sensor workers both go
through :func:`write_state` / :func:`read_state`, so either can read the other's files.
"""
from __future__ import annotations

import io
import json
import zipfile
import zlib
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from edgefault._fileio import write_atomic
from edgefault.errors import InputError

MEMBERS = ("tail", "meta")


def write_state(path: str | Path, state: Mapping[str, Any]) -> None:
    """Write ``state`` (a :meth:`Runtime.get_state` dict, holding ``tail``, plus any extra
    JSON-serialisable sections) to ``path`` atomically: a reader sees the old file or the new one."""
    if "tail" not in state:
        raise ValueError("state has no 'tail'")
    meta = {k: v for k, v in state.items() if k != "tail"}
    buf = io.BytesIO()
    np.savez(buf, tail=np.asarray(state["tail"]), meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))
    write_atomic(path, buf.getvalue())


def read_state(path: str | Path) -> dict[str, Any]:
    """Read a state file: the ``meta`` JSON object with ``tail`` (an array) added.

    Raises InputError naming the file and what is wrong: not found, not readable, not an npz
    archive, missing members, a member that cannot be read, ``meta`` not a JSON object. The
    content is not checked against a runtime here (:meth:`Runtime.set_state` does that)."""
    def bad(what: str) -> InputError:
        return InputError(f"state file {path} is not a readable edgefault state: {what}")

    try:
        z = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise InputError(f"state file {path} not found") from None
    except IsADirectoryError:
        raise bad("it is a directory") from None
    except OSError as e:
        raise InputError(f"state file {path} cannot be read: {e}") from None
    except Exception as e:  # numpy: ValueError / UnpicklingError / EOFError for anything else
        raise bad(f"not an npz archive ({type(e).__name__}: {e})") from None
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise bad("a single .npy array, not an npz archive")
    with z:
        missing = [m for m in MEMBERS if m not in z.files]
        if missing:
            raise bad(f"missing member{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))} "
                      f"(has {', '.join(map(repr, z.files)) or 'none'})")
        try:
            tail = z["tail"]
            raw = z["meta"]
        except (ValueError, OSError, EOFError, zipfile.BadZipFile, NotImplementedError, RuntimeError, zlib.error,
                SyntaxError, MemoryError) as e:  # NotImplementedError: a compression method zipfile lacks
            raise bad(f"a member cannot be read ({type(e).__name__}: {e})") from None
    if tail.dtype.kind not in "fiu":
        raise bad(f"member 'tail' holds {tail.dtype} data, expected numbers")
    try:
        meta = json.loads(raw.tobytes().decode())
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise bad(f"member 'meta' is not UTF-8 JSON ({type(e).__name__}: {e})") from None
    if not isinstance(meta, dict):
        raise bad(f"member 'meta' is a JSON {type(meta).__name__}, expected an object")
    meta["tail"] = tail
    return meta


__all__ = ("read_state", "write_state")
