"""The model-kind protocol: what a kind provides to training, the CLI, evaluation and the device.

A kind is one module under ``edgefault/kinds/`` that subclasses :class:`ModelKind` and calls
:func:`edgefault.kinds.register` at import; ``docs/adding-a-model-kind.md`` walks through it.
The device only ever calls :meth:`ModelKind.device_model`; everything that needs training
packages (torch, scikit-learn) is imported inside :meth:`ModelKind.train`.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np

from edgefault.device.bundle import Bundle
from edgefault.errors import BundleError, MissingDependencyError

TASKS = ("anomaly", "classify")


@dataclass
class ScoreBatch:
    scores: np.ndarray                 # (m,) float32, NaN for invalid windows
    contrib: np.ndarray | None = None  # (m, n_contrib) terms that sum to the score ("<channel>.*" names),
    #                                    then extra views named "<group>.*" (VAE: time, latent) that do not
    proba: np.ndarray | None = None    # (m, n_labels)
    latent: np.ndarray | None = None   # (m, n_latent) model's latent mean (drift monitors), if any


class DeviceModel(Protocol):
    """What the Runtime needs of a kind's device model (built from a verified bundle).

    Optional attributes: ``core_scorer`` (a core scorer the Runtime fuses into one
    ``_core.ScoredStream`` call per push), ``latent_dim`` (width of ``ScoreBatch.latent`` for the
    latent drift monitor), ``labels`` (classifiers)."""

    needs_features: bool   # score() wants the spec's feature rows
    needs_raw: bool        # score() wants the raw windows (m, n_channels, window)
    contrib_names: Sequence[str]

    def score(self, features: np.ndarray | None, raw: np.ndarray | None) -> ScoreBatch: ...


@dataclass
class TrainData:
    """What a kind trains on, at one sample rate and channel set.

    recordings : training recordings (:class:`edgefault.io.readers.Recording`). Anomaly kinds:
        healthy signal, each recording cut in time order into training and a later calibration
        block by the kind itself (``calib_fraction``), unless ``calib`` is given. Classify kinds:
        one label per recording in ``labels``.
    calib : separate healthy calibration blocks ``(n, n_channels)`` (other engines, later
        sessions); the threshold is calibrated on them instead.
    spec : a feature spec to use instead of the kind's default for the options.
    train_hop : hop of training windows (default: the kind's).
    info : entries added to the bundle's training record (dataset, units, ...).
    """

    recordings: Sequence[Any]
    fs: float
    channels: list[str]
    labels: Sequence[str] | None = None
    calib: Sequence[np.ndarray] | None = None
    spec: Any = None
    train_hop: int | None = None
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class Trained:
    """A trained, packed model: the bundle, what `edgefault train` prints, and what
    `edgefault eval` reports about the model beside its metrics."""

    bundle: Bundle
    summary: dict[str, Any]
    threshold: float | None = None
    calibration: str | None = None
    n_train_windows: int | None = None
    n_calib_windows: int | None = None
    eval_info: dict[str, Any] = field(default_factory=dict)
    calib_scores: np.ndarray | None = None  # healthy calibration scores in time order (anomaly kinds)


class ModelKind:
    """One model kind. Subclasses set ``name``, ``task``, ``help`` and implement
    :meth:`device_model` and :meth:`train`."""

    name: str = ""
    task: str = "anomaly"       # one of TASKS
    help: str = ""              # one line for --method help
    train_extra: str | None = None  # pip extra that training needs (checked by require_training)
    train_modules: tuple[str, ...] = ()  # modules training imports, for a clear error when missing
    takes_feature_spec: bool = False  # train() honours a caller's TrainData.spec (else builds its own input)
    reference: str | None = None  # a kind `edgefault eval` also runs on the same folds, for comparison

    def device_model(self, bundle: Bundle) -> DeviceModel:
        raise NotImplementedError

    def add_arguments(self, group: Any) -> None:
        """Add this kind's own options (shared by `train` and `eval`) to an argparse group.
        Options every kind reads (--window, --hop, --target-far, --seed, ...) belong to the CLI."""

    def train(self, data: TrainData, opts: argparse.Namespace, out: Path) -> Trained:
        raise NotImplementedError

    def eval_description(self, opts: argparse.Namespace) -> dict[str, Any]:
        """The kind's options as `edgefault eval` reports them beside its figures."""
        return {}

    def scoring_graph(self, bundle: Bundle) -> Any:
        """A differentiable (PyTorch) graph of the bundle's score for gradient attribution
        (`edgefault explain`), or None when the kind has none."""
        return None

    def require_training(self) -> None:
        """Raise MissingDependencyError naming the install when training packages are missing."""
        import importlib.util

        missing = [m for m in self.train_modules if importlib.util.find_spec(m) is None]
        if missing:
            extra = f"`pip install edgefault[{self.train_extra}]`" if self.train_extra else "installing them"
            hint = (" (install the CPU build of PyTorch first, pinned: `pip install torch==2.13.0`)"
                    if "torch" in missing else "")
            raise MissingDependencyError(f"training {self.name!r} models needs {', '.join(missing)}: {extra}{hint}")

    def __repr__(self) -> str:
        return f"<model kind {self.name!r} ({self.task})>"


def bundle_where(bundle: Bundle) -> str:
    """How errors name a bundle: ``bundle <path>`` (or its id when it was loaded from bytes)."""
    return f"bundle {bundle.path or bundle.bundle_id}"


def _dims(shape: Sequence[int | None]) -> str:
    return "(" + ", ".join("n" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def checked_array(bundle: Bundle, name: str, shape: Sequence[int | None], *, integer: bool = False,
                  lo: float | None = None, hi: float | None = None, positive: bool = False,
                  kind: str = "") -> np.ndarray:
    """Array ``name`` of a verified bundle, checked before a device model uses it: ``shape`` (None
    = any length), a numeric dtype (an integer dtype when ``integer``), every value finite, within
    [lo, hi] and > 0 when ``positive``. Returns it as int64 (``integer``) or float64. Raises
    BundleError naming the bundle, the array and what was expected (``kind``: the model kind, for
    the message)."""
    a = bundle.array(name)
    what = f"{bundle_where(bundle)}: {kind + ' ' if kind else ''}array {name!r}"
    if a.ndim != len(shape) or any(w is not None and n != w for n, w in zip(a.shape, shape)):
        raise BundleError(f"{what} has shape {tuple(a.shape)}, expected {_dims(shape)}")
    if integer and a.dtype.kind not in "iu":
        raise BundleError(f"{what} must hold integers, got dtype {a.dtype}")
    if not integer and a.dtype.kind not in "iuf":
        raise BundleError(f"{what} must hold numbers, got dtype {a.dtype}")
    with np.errstate(over="ignore", invalid="ignore"):
        v = a.astype(np.int64 if integer else np.float64)
        if not integer and not np.all(np.isfinite(v)):
            raise BundleError(f"{what} has non-finite values (NaN or infinity)")
        bad = None
        if integer and a.dtype.kind == "u" and a.size and int(a.max()) > np.iinfo(np.int64).max:
            bad = "an entry beyond int64"
        elif lo is not None and v.size and v.min() < lo:
            bad = f"{v.min():g}"
        elif hi is not None and v.size and v.max() > hi:
            bad = f"{v.max():g}"
        elif positive and v.size and v.min() <= 0:
            bad = f"{v.min():g}"
    if bad is not None:
        want = " and ".join(x for x in (f">= {lo:g}" if lo is not None else "", f"<= {hi:g}" if hi is not None else "",
                                        "> 0" if positive else "") if x)
        raise BundleError(f"{what} must hold values {want}, got {bad}")
    return v


def model_number(bundle: Bundle, key: str, *, integer: bool = False, lo: float | None = None,
                 hi: float | None = None, above: float | None = None, default: Any = None,
                 kind: str = "") -> Any:
    """Number ``model[key]`` of a bundle (``default`` when absent and a default is given): a finite
    int (``integer``) or float (ints allowed), >= lo, <= hi, > above; BundleError naming the bundle,
    the entry and the range otherwise."""
    m = bundle.model
    if key not in m and default is not None:
        return default
    v: Any = m.get(key)
    ok = isinstance(v, int) if integer else isinstance(v, (int, float))
    ok = ok and not isinstance(v, bool)
    if ok and not integer:
        try:
            f = float(v)
        except OverflowError:  # an integer beyond float range
            ok = False
        else:
            ok = np.isfinite(f)
            v = f
    if ok:
        ok = (lo is None or v >= lo) and (hi is None or v <= hi) and (above is None or v > above)
    if not ok:
        parts = (f">= {lo:g}" if lo is not None else "", f"> {above:g}" if above is not None else "",
                 f"<= {hi:g}" if hi is not None else "")
        rng = " and ".join(x for x in parts if x)
        r = repr(v)
        raise BundleError(f"{bundle_where(bundle)}: {kind + ' ' if kind else ''}model entry {key!r} must be "
                          f"{'an integer' if integer else 'a finite number'}{' ' + rng if rng else ''}, "
                          f"got {r if len(r) <= 60 else r[:57] + '...'}")
    return v


def drift_summary(d: dict[str, Any] | None) -> dict[str, Any]:
    """The drift settings of a training result as `edgefault train` prints them."""
    if not d:
        return {"drift_far": None}
    return {"drift_far": d["target_far"], "drift_score_h": d["score"]["h"],
            "drift_latent_limit": (d.get("latent") or {}).get("limit"),
            "adaptive_threshold": bool(d["adaptive"]["enabled"])}


def onnx_session(onnx_bytes: bytes):  # type: ignore[no-untyped-def]
    """An onnxruntime session as the device runs it: one thread, no spinning, sequential."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise MissingDependencyError("this bundle runs in onnxruntime, which is not installed: "
                                     "`pip install edgefault[vae]`") from None
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.add_session_config_entry("session.inter_op.allow_spinning", "0")
    so.log_severity_level = 3
    return ort.InferenceSession(onnx_bytes, sess_options=so, providers=["CPUExecutionProvider"])
