"""Model bundle format v1: one zip file (``*.efb``).

Members: ``manifest.json`` (schema version, signal and feature spec, model kind, labels,
thresholds, training fingerprint, and the size and sha256 of every other member), numeric arrays
as ``arrays/<name>.npy`` (never pickled) and ONNX models as ``models/<name>.onnx``.
Loading verifies all of it and raises :class:`BundleError` naming what is wrong.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgefault.errors import BundleError, InputError
from edgefault.device.spec import FeatureSpec

FORMAT = "edgefault-bundle"
SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
MAX_MANIFEST_BYTES = 4 << 20
MAX_MEMBER_BYTES = 1 << 30
_F32_MAX = 3.4028234663852886e38
_REQUIRED = ("format", "schema_version", "bundle_id", "created", "features", "model", "members", "digest")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Bundle:
    """A verified model bundle held in memory."""

    manifest: dict[str, Any]
    spec: FeatureSpec
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    onnx: dict[str, bytes] = field(default_factory=dict)
    path: str | None = None

    @property
    def bundle_id(self) -> str:
        return str(self.manifest["bundle_id"])

    @property
    def model(self) -> dict[str, Any]:
        return self.manifest["model"]  # type: ignore[no-any-return]

    @property
    def kind(self) -> str:
        return str(self.model["kind"])

    @property
    def task(self) -> str:
        return str(self.model.get("task", "anomaly"))

    @property
    def labels(self) -> list[str] | None:
        labels = self.manifest.get("labels")
        return list(labels) if labels else None

    @property
    def thresholds(self) -> dict[str, Any]:
        return dict(self.manifest.get("thresholds") or {})

    def array(self, name: str) -> np.ndarray:
        try:
            return self.arrays[name]
        except KeyError:
            raise BundleError(f"bundle {self.path or self.bundle_id}: model needs array {name!r}, "
                              f"bundle has {sorted(self.arrays)}") from None

    def describe(self) -> dict[str, Any]:
        m = self.manifest
        return {
            "path": self.path, "bundle_id": self.bundle_id, "schema_version": m["schema_version"],
            "created": m["created"], "edgefault_version": m.get("edgefault_version"),
            "name": m.get("name"), "task": self.task, "kind": self.kind,
            "fs": self.spec.fs, "channels": list(self.spec.channels), "window": self.spec.window,
            "hop": self.spec.hop, "n_features": self.spec.feature_dim, "labels": self.labels,
            "thresholds": self.thresholds, "training": m.get("training"),
            "members": {k: v["size"] for k, v in m["members"].items()},
        }


def _fail(where: str, msg: str) -> BundleError:
    return BundleError(f"bundle {where}: {msg}")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check_fields(where: str, manifest: dict[str, Any]) -> None:
    """Types of the manifest keys every model kind and the runtime read: labels, thresholds, input_scaling, model."""
    labels = manifest.get("labels")
    if labels is not None and not (isinstance(labels, list) and all(isinstance(x, str) for x in labels)):
        raise _fail(where, f"manifest 'labels' must be a list of strings or null, got {_short(labels)}")
    th = manifest.get("thresholds")
    if th is not None and not isinstance(th, dict):
        raise _fail(where, f"manifest 'thresholds' must be an object or null, got {_short(th)}")
    th = th or {}
    for key in ("threshold", "clear_threshold"):
        if key not in th:
            continue
        v = th[key]
        if not _is_number(v) or math.isnan(v) or (math.isfinite(v) and abs(v) > _F32_MAX) or (
                key == "clear_threshold" and not math.isfinite(v)):
            what = "a finite float32 number" if key == "clear_threshold" else "a float32 number or infinity"
            raise _fail(where, f"thresholds.{key} must be {what}, got {_short(v)}")
    ub = th.get("unknown_below", 0.0)
    if not (_is_number(ub) and 0.0 <= ub <= 1.0):
        raise _fail(where, f"thresholds.unknown_below (classifier confidence) must be a number in [0, 1], got "
                           f"{_short(ub)}")
    kn = {}
    for key in ("k", "n"):
        v = th.get(key, 1)
        if not (isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 64):
            raise _fail(where, f"thresholds.{key} (k-of-n alarm) must be an integer in 1..64, got {_short(v)}")
        kn[key] = v
    if kn["k"] > kn["n"]:
        raise _fail(where, f"thresholds.k = {kn['k']} is more than thresholds.n = {kn['n']} (k-of-n alarm)")
    if th.get("drift") is not None and not isinstance(th["drift"], dict):
        raise _fail(where, f"thresholds.drift must be an object or null, got {_short(th['drift'])}")
    if "input_scaling" in manifest and manifest["input_scaling"] not in ("full_scale", "float"):
        raise _fail(where, f"manifest 'input_scaling' (the rule the training samples went through, see "
                           f"edgefault.samples) must be 'full_scale' or 'float', got {_short(manifest['input_scaling'])}")
    lat = (th.get("drift") or {}).get("latent")
    if lat is not None and not isinstance(lat, dict):  # the runtime reads latent.source before the monitor checks
        raise _fail(where, f"thresholds.drift.latent must be an object or null, got {_short(lat)}")
    model = manifest["model"]
    if not isinstance(model, dict) or not isinstance(model.get("kind"), str):
        raise _fail(where, "manifest 'model' must be an object with a string 'kind'")
    if not isinstance(model.get("task", "anomaly"), str):
        raise _fail(where, f"manifest model.task must be a string, got {_short(model.get('task'))}")


def _short(v: Any) -> str:
    r = repr(v)
    return r if len(r) <= 80 else r[:77] + "..."


def _load_npy(where: str, name: str, data: bytes, decl: dict[str, Any]) -> np.ndarray:
    try:
        arr = np.load(io.BytesIO(data), allow_pickle=False)
    except ValueError as e:
        raise _fail(where, f"member {name} is not a plain numeric .npy array ({e})") from None
    except Exception as e:  # truncated header etc.
        raise _fail(where, f"member {name} is not a readable .npy file ({type(e).__name__}: {e})") from None
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "biuf":
        raise _fail(where, f"member {name} must hold a numeric array, got dtype {getattr(arr, 'dtype', '?')}")
    if "shape" in decl and (not isinstance(decl["shape"], list) or list(arr.shape) != decl["shape"]):
        raise _fail(where, f"member {name} has shape {list(arr.shape)}, manifest declares {decl['shape']}")
    if "dtype" in decl and str(arr.dtype) != decl["dtype"]:
        raise _fail(where, f"member {name} has dtype {arr.dtype}, manifest declares {decl['dtype']}")
    return arr


def load_bundle(source: str | Path | bytes) -> Bundle:
    """Read and verify a bundle from a path or bytes. Raises BundleError on any problem."""
    where = "<bytes>" if isinstance(source, (bytes, bytearray)) else str(source)
    if isinstance(source, (bytes, bytearray)):
        raw = bytes(source)
    else:
        p = Path(source)
        if not p.exists():
            raise _fail(where, "file not found; pass the path of a .efb file made by `edgefault train`")
        if p.is_dir():
            raise _fail(where, "is a directory, expected a .efb file")
        raw = p.read_bytes()
    if not raw:
        raise _fail(where, "file is empty")
    try:
        zf = zipfile.ZipFile(io.BytesIO(raw))
    except zipfile.BadZipFile:
        raise _fail(where, "is not a zip archive (truncated, corrupted, or not a bundle)") from None
    except Exception as e:  # NotImplementedError (zip version, compression), UnicodeDecodeError (names), ...
        raise _fail(where, f"is a zip archive this loader cannot read: corrupted or not a bundle "
                           f"({type(e).__name__}: {e})") from None
    with zf:
        infos = zf.infolist()
        names = [i.filename for i in infos]
        if len(set(names)) != len(names):
            raise _fail(where, "contains duplicate member names")
        if MANIFEST not in names:
            raise _fail(where, f"has no {MANIFEST}; members are {names[:10]}")
        for info in infos:
            if info.file_size > MAX_MEMBER_BYTES:
                raise _fail(where, f"member {info.filename} declares {info.file_size} bytes, over the limit")

        def read(name: str) -> bytes:
            try:
                return zf.read(name)
            except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
                raise _fail(where, f"member {name} cannot be read: corrupted ({e})") from None
            except Exception as e:  # zlib.error and friends
                raise _fail(where, f"member {name} cannot be read: corrupted ({type(e).__name__}: {e})") from None

        mraw = read(MANIFEST)
        if len(mraw) > MAX_MANIFEST_BYTES:
            raise _fail(where, f"{MANIFEST} is {len(mraw)} bytes, over the {MAX_MANIFEST_BYTES} limit")
        try:
            manifest = json.loads(mraw.decode("utf-8"))
        except (ValueError, RecursionError) as e:  # UnicodeDecodeError, JSONDecodeError, int too long, too deep
            raise _fail(where, f"{MANIFEST} is not valid JSON ({type(e).__name__}: {e})") from None
        if not isinstance(manifest, dict):
            raise _fail(where, f"{MANIFEST} must be a JSON object")
        if manifest.get("format") != FORMAT:
            raise _fail(where, f"{MANIFEST} format is {manifest.get('format')!r}, expected {FORMAT!r}")
        version = manifest.get("schema_version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise _fail(where, f"schema_version must be an integer, got {version!r}")
        if version > SCHEMA_VERSION:
            raise _fail(where, f"schema version {version} is newer than this edgefault supports "
                               f"({SCHEMA_VERSION}); upgrade edgefault to load it")
        if version < 1:
            raise _fail(where, f"schema version {version} is not a known version (expected {SCHEMA_VERSION})")
        missing = [k for k in _REQUIRED if k not in manifest]
        if missing:
            raise _fail(where, f"{MANIFEST} lacks required keys {missing}")
        members = manifest["members"]
        if not isinstance(members, dict):
            raise _fail(where, "manifest 'members' must be an object of name -> {sha256, size}")
        extra = sorted(set(names) - set(members) - {MANIFEST})
        if extra:
            raise _fail(where, f"has members not listed in the manifest: {extra} (tampered?)")
        arrays: dict[str, np.ndarray] = {}
        onnx: dict[str, bytes] = {}
        for name, decl in members.items():
            if name not in names:
                raise _fail(where, f"manifest lists member {name} but the archive lacks it")
            if not isinstance(decl, dict) or not isinstance(decl.get("sha256"), str) or not isinstance(
                    decl.get("size"), int) or isinstance(decl["size"], bool):
                raise _fail(where, f"manifest entry for {name} must have sha256 (a string) and size (an integer)")
            data = read(name)
            if len(data) != decl["size"]:
                raise _fail(where, f"member {name} is {len(data)} bytes, manifest says {decl['size']}")
            if sha256_bytes(data) != decl["sha256"]:
                raise _fail(where, f"member {name} does not match its sha256: the bundle was corrupted "
                                   f"or modified after packing; re-export it")
            if name.startswith("arrays/") and name.endswith(".npy"):
                arrays[name[len("arrays/"):-len(".npy")]] = _load_npy(where, name, data, decl)
            elif name.startswith("models/") and name.endswith(".onnx"):
                onnx[name[len("models/"):-len(".onnx")]] = data
            else:
                raise _fail(where, f"member {name} is of an unknown kind (expected arrays/*.npy or models/*.onnx)")
        if manifest.get("bundle_id") != bundle_id_of(members):
            raise _fail(where, "bundle_id does not match its members (tampered?)")
        if manifest.get("digest") != manifest_digest(manifest):
            raise _fail(where, f"{MANIFEST} does not match its digest: it was edited after packing "
                               f"(thresholds, spec or labels changed?); re-export the bundle")
        try:
            spec = FeatureSpec.from_dict(manifest["features"])
        except InputError as e:
            raise _fail(where, str(e)) from None
        except Exception as e:  # e.g. TypeError for an integer fs beyond int64 (spec.py's own checks miss it)
            raise _fail(where, f"feature spec is invalid ({type(e).__name__}: {e})") from None
        _check_fields(where, manifest)
    return Bundle(manifest=manifest, spec=spec, arrays=arrays, onnx=onnx,
                  path=None if isinstance(source, (bytes, bytearray)) else str(source))


def manifest_digest(manifest: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of the manifest without its own digest."""
    body = {k: v for k, v in manifest.items() if k != "digest"}
    return sha256_bytes(json.dumps(body, sort_keys=True, separators=(",", ":")).encode())


def bundle_id_of(members: dict[str, Any]) -> str:
    """Content id: hash of the member hashes (sorted), so equal contents give equal ids."""
    h = hashlib.sha256()
    for name in sorted(members):
        h.update(name.encode())
        h.update(str(members[name]["sha256"]).encode())
    return h.hexdigest()[:16]
