"""Pack a verified bundle (see edgefault.device.bundle for the format)."""
from __future__ import annotations

import datetime as _dt
import io
import json
import zipfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from edgefault import __version__
from edgefault._fileio import write_atomic
from edgefault.device.bundle import FORMAT, MANIFEST, SCHEMA_VERSION, Bundle, bundle_id_of, load_bundle, manifest_digest, sha256_bytes
from edgefault.device.spec import FeatureSpec
from edgefault.samples import RULES, check_rule

# Fixed timestamp inside the zip so identical content packs to identical bytes.
_ZIP_TIME = (2020, 1, 1, 0, 0, 0)


def _npy_bytes(arr: np.ndarray) -> bytes:
    a = np.asarray(arr)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"bundle arrays must be numeric, got dtype {a.dtype}")
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(a), allow_pickle=False)
    return buf.getvalue()


def pack_bundle(path: str | Path, *, spec: FeatureSpec, model: Mapping[str, Any],
                arrays: Mapping[str, np.ndarray] | None = None,
                onnx: Mapping[str, bytes] | None = None, labels: list[str] | None = None,
                thresholds: Mapping[str, Any] | None = None, training: Mapping[str, Any] | None = None,
                name: str | None = None, input_scaling: str | None = None) -> Bundle:
    """Write a bundle atomically (temp file + rename) and return it re-read and verified.

    input_scaling : the rule the training samples went through (edgefault.samples): "full_scale"
        (integer samples mapped to [-1, 1)) or "float" (taken as is); default: the training record's
        ``input_scaling`` entry, else "float". Runtime applies the same rule to integer chunks.
    """
    rule = check_rule(input_scaling if input_scaling is not None else (training or {}).get("input_scaling", "float"))
    if rule not in RULES:
        raise ValueError(f"input_scaling must be one of {RULES}, got {rule!r}")
    members: dict[str, bytes] = {}
    decl: dict[str, dict[str, Any]] = {}
    for key, arr in (arrays or {}).items():
        member = f"arrays/{key}.npy"
        members[member] = _npy_bytes(arr)
        a = np.asarray(arr)
        decl[member] = {"shape": list(a.shape), "dtype": str(a.dtype)}
    for key, blob in (onnx or {}).items():
        members[f"models/{key}.onnx"] = bytes(blob)
        decl[f"models/{key}.onnx"] = {}
    for member, data in members.items():
        decl[member].update({"sha256": sha256_bytes(data), "size": len(data)})
    manifest = {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "bundle_id": bundle_id_of(decl),
        "name": name,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "edgefault_version": __version__,
        "features": spec.to_dict(),
        "model": dict(model),
        "labels": list(labels) if labels else None,
        "thresholds": dict(thresholds or {}),
        "training": dict(training or {}),
        "input_scaling": rule,
        "members": decl,
    }
    manifest["digest"] = manifest_digest(manifest)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(zipfile.ZipInfo(MANIFEST, _ZIP_TIME), json.dumps(manifest, indent=2, sort_keys=True),
                    zipfile.ZIP_DEFLATED)
        for member in sorted(members):
            zf.writestr(zipfile.ZipInfo(member, _ZIP_TIME), members[member], zipfile.ZIP_DEFLATED)
    write_atomic(out, buf.getvalue())
    return load_bundle(out)
