"""Model kinds (bundle ``model.kind``), registered once each.

The CLI (`train --method`, `eval --method`), the evaluation experiments, the Runtime and the
daemon ask this registry; no other module names a kind. Built-in kinds are the modules named in
``BUILTIN`` (imported on first use, so a device loading a Gaussian bundle never imports the VAE
module); :func:`register` adds a kind defined elsewhere.
"""
from __future__ import annotations

import importlib

from edgefault.errors import BundleError, InputError
from edgefault.kinds.base import DeviceModel, ModelKind, ScoreBatch, TrainData, Trained

BUILTIN = ("gaussian", "vae", "sfdsc")   # modules edgefault.kinds.<name>, in the order the CLI lists them
_REGISTRY: dict[str, ModelKind] = {}

__all__ = ["ModelKind", "DeviceModel", "ScoreBatch", "TrainData", "Trained", "register", "get", "kinds",
           "names", "device_model", "BUILTIN"]


def register(kind: ModelKind) -> ModelKind:
    """Register a kind under ``kind.name`` (once; a second kind of the same name is refused)."""
    if not kind.name or kind.task not in ("anomaly", "classify"):
        raise ValueError(f"model kind {kind!r}: needs a name and a task of 'anomaly' or 'classify'")
    old = _REGISTRY.get(kind.name)
    if old is not None and type(old) is not type(kind):
        raise ValueError(f"model kind {kind.name!r} is already registered by {type(old).__module__}")
    _REGISTRY[kind.name] = kind
    return kind


def _load(name: str) -> ModelKind | None:
    if name not in _REGISTRY and name in BUILTIN:
        importlib.import_module(f"edgefault.kinds.{name}")
    return _REGISTRY.get(name)


def kinds(task: str | None = None) -> list[ModelKind]:
    """Every registered kind (built-ins first, in BUILTIN order), optionally of one task."""
    for n in BUILTIN:
        _load(n)
    order = list(BUILTIN) + sorted(set(_REGISTRY) - set(BUILTIN))
    return [_REGISTRY[n] for n in order if n in _REGISTRY and (task is None or _REGISTRY[n].task == task)]


def names(task: str | None = None) -> list[str]:
    return [k.name for k in kinds(task)]


def get(name: str, task: str | None = None) -> ModelKind:
    """The kind called ``name``; InputError naming the choices when there is none (of ``task``)."""
    kind = _load(name)
    if kind is None or (task is not None and kind.task != task):
        what = f"{task} " if task else ""
        raise InputError(f"--method {name}: no {what}model kind of that name (available: "
                         f"{', '.join(names(task))})")
    return kind


def device_model(bundle) -> DeviceModel:  # type: ignore[no-untyped-def]
    """The device model of a verified bundle, by its ``model.kind``."""
    kind = _load(bundle.kind)
    if kind is None:
        raise BundleError(f"bundle {bundle.path or bundle.bundle_id}: model kind {bundle.kind!r} is not supported "
                          f"by this edgefault (knows {names()}); upgrade edgefault")
    return kind.device_model(bundle)
