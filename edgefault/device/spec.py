"""Feature specification: what the device computes from each window.

A :class:`FeatureSpec` is stored in every bundle, and both training and the device turn
signals into features through the same C++ pipeline built from it, so they compute identical
numbers.
"""
from __future__ import annotations

import copy
import json
import logging
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import numpy as np

from edgefault import _core
from edgefault.errors import InputError

_SPEC_KEYS = {"fs", "window", "hop", "channels", "taper", "blocks", "health"}


def default_anomaly_blocks(fs: float, window: int, n_bands: int = 16,
                           fmax: float | None = None) -> list[dict[str, Any]]:
    """Features for the Gaussian anomaly model: scale-free shape statistics, RMS, log-spaced band
    energies in dB up to 0.45 fs (clear of the anti-aliasing roll-off) and the spectral shape.
    With ``fmax`` the bands end there and the spectral shape (which spans every bin up to fs/2)
    is left out, so no feature sees content above ``fmax``."""
    fmin = max(4.0 * fs / window, 20.0)
    blocks: list[dict[str, Any]] = [
        {"kind": "time_stats", "stats": ["rms", "kurtosis", "crest_factor", "skewness",
                                         "shape_factor", "impulse_factor"]},
        {"kind": "band_energy", "n_bands": int(n_bands), "spacing": "log", "fmin": float(fmin),
         "fmax": float(0.45 * fs if fmax is None else fmax), "log": True},
    ]
    if fmax is None:
        blocks.append({"kind": "spectral_shape"})
    return blocks


@dataclass(frozen=True)
class FeatureSpec:
    """Sample rate, framing, channels, feature blocks and sensor-health checks of a model's input.

    ``blocks`` follow the schema in docs/features.md; the core validates them strictly.
    ``health`` is the optional sensor-health section (docs/features.md, "Sensor health"); None
    (the default, and every bundle written before it existed) runs the checks with their
    conservative defaults, and is not written by :meth:`to_dict`.
    """

    fs: float
    window: int
    hop: int
    channels: tuple[str, ...]
    blocks: tuple[dict[str, Any], ...] = field(default_factory=tuple)
    taper: str = "hann"
    health: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if not (isinstance(self.fs, (int, float)) and np.isfinite(self.fs) and self.fs > 0):
            raise InputError(f"feature spec: fs must be a positive number of Hz, got {self.fs!r}")
        for name in ("window", "hop"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise InputError(f"feature spec: {name} must be a positive integer, got {v!r}")
        if self.hop > self.window:
            raise InputError(f"feature spec: hop ({self.hop}) must not exceed window ({self.window})")
        chans = tuple(self.channels)
        if not chans or not all(isinstance(c, str) and c for c in chans):
            raise InputError(f"feature spec: channels must be non-empty names, got {self.channels!r}")
        if len(set(chans)) != len(chans):
            raise InputError(f"feature spec: duplicate channel names in {list(chans)}")
        object.__setattr__(self, "channels", chans)
        object.__setattr__(self, "fs", float(self.fs))
        object.__setattr__(self, "window", int(self.window))
        object.__setattr__(self, "hop", int(self.hop))
        object.__setattr__(self, "blocks", tuple(copy.deepcopy(dict(b)) for b in self.blocks))
        # Validate blocks now (and cache names) so a bad spec fails at construction.
        if self.health is not None:
            if not isinstance(self.health, dict):
                raise InputError(f"feature spec: health must be an object of sensor-health settings, got "
                                 f"{type(self.health).__name__}")
            object.__setattr__(self, "health", copy.deepcopy(dict(self.health)))
        try:
            ex = _core.FeatureExtractor(self.fs, self.window, [dict(b) for b in self.blocks], self.taper)
            _core.Pipeline(len(chans), self.hop, ex, self.health)  # validates the health section
        except (ValueError, TypeError) as e:
            raise InputError(f"feature spec: {e}") from None
        object.__setattr__(self, "_names", tuple(ex.feature_names))

    # -- construction -----------------------------------------------------------------------
    @classmethod
    def for_anomaly(cls, fs: float, channels: Sequence[str], window: int = 1024,
                    hop: int | None = None, n_bands: int = 16, fmax: float | None = None) -> "FeatureSpec":
        return cls(fs=fs, window=window, hop=hop or window // 2, channels=tuple(channels),
                   blocks=tuple(default_anomaly_blocks(fs, window, n_bands, fmax)))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "FeatureSpec":
        if not isinstance(d, dict):
            raise InputError(f"feature spec must be a JSON object, got {type(d).__name__}")
        unknown = set(d) - _SPEC_KEYS
        if unknown:
            raise InputError(f"feature spec: unknown keys {sorted(unknown)}; allowed: {sorted(_SPEC_KEYS)}")
        missing = {"fs", "window", "hop", "channels", "blocks"} - set(d)
        if missing:
            raise InputError(f"feature spec: missing keys {sorted(missing)}")
        if not isinstance(d["blocks"], list) or not all(isinstance(b, dict) for b in d["blocks"]):
            raise InputError("feature spec: blocks must be a list of objects")
        if not isinstance(d["channels"], list):
            raise InputError("feature spec: channels must be a list of names")
        return cls(fs=d["fs"], window=d["window"], hop=d["hop"], channels=tuple(d["channels"]),
                   blocks=tuple(d["blocks"]), taper=d.get("taper", "hann"), health=d.get("health"))

    def to_dict(self) -> dict[str, Any]:
        d = {"fs": self.fs, "window": self.window, "hop": self.hop, "channels": list(self.channels),
             "taper": self.taper, "blocks": [copy.deepcopy(b) for b in self.blocks]}
        if self.health is not None:  # absent = defaults, so specs without one serialise as before
            d["health"] = copy.deepcopy(self.health)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    # -- derived ----------------------------------------------------------------------------
    @property
    def n_channels(self) -> int:
        return len(self.channels)

    @property
    def per_channel_names(self) -> tuple[str, ...]:
        return self._names  # type: ignore[attr-defined, no-any-return]

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Channel-qualified names in pipeline order, e.g. ``DE.rms``."""
        return tuple(f"{c}.{n}" for c in self.channels for n in self.per_channel_names)

    @property
    def feature_dim(self) -> int:
        return self.n_channels * len(self.per_channel_names)

    def extractor(self) -> _core.FeatureExtractor:
        return _core.FeatureExtractor(self.fs, self.window, [dict(b) for b in self.blocks], self.taper)

    @property
    def health_settings(self) -> dict[str, Any]:
        """The sensor-health settings the pipeline runs, every default filled in."""
        return self.pipeline().health

    def fit_health(self, signals: Sequence[np.ndarray]) -> tuple["FeatureSpec", list[str]]:
        """This spec without the sensor-health checks that fire on the given healthy training
        signals, and the names of those checks.

        The training data defines a healthy sensor: a channel that is constant there (C-MAPSS's
        constant sensors) would read FLAT on every window, so no window would ever be scored. The
        checks are per spec, so such a check is left out for every channel (the bundle's spec
        then lists the checks that run)."""
        fired = 0
        for sig in signals:
            x = np.ascontiguousarray(sig, dtype=np.float32)
            if x.ndim == 1:
                x = x[:, None]
            if x.ndim != 2 or x.shape[1] != self.n_channels or x.shape[0] < self.window:
                continue  # the trainer refuses it with its own message
            _, _, finite, _, health = self.pipeline().push(x, 1.0, False, False, health=True)
            if health.shape[0]:
                fired |= int(np.bitwise_or.reduce(health[finite].ravel(), initial=0))
        if not fired:
            return self, []
        settings = self.health_settings
        bits = {"flat": _core.FLAG_HEALTH_FLAT, "clip": _core.FLAG_HEALTH_CLIP,
                "dropout": _core.FLAG_HEALTH_DROPOUT, "dc_jump": _core.FLAG_HEALTH_DC_JUMP}
        off = [c for c in settings["checks"] if fired & bits[c]]
        health = dict(self.health or {})
        health["checks"] = [c for c in settings["checks"] if c not in off]
        return replace(self, health=health), off

    def pipeline(self) -> _core.Pipeline:
        """The core pipeline: framing, features and the sensor-health checks of this spec."""
        return _core.Pipeline(self.n_channels, self.hop, self.extractor(), self.health)

    def transform(self, signal: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Features of every window of a whole signal, through the streaming pipeline.

        Returns ``(features (m, feature_dim), end_sample (m,), finite (m,))``.
        """
        x = np.asarray(signal)
        if x.ndim == 1:
            x = x[:, None]
        if x.ndim != 2 or x.shape[1] != self.n_channels:
            raise InputError(f"signal has shape {np.shape(signal)}, expected (n_samples, {self.n_channels}) "
                             f"for channels {list(self.channels)}")
        if x.dtype not in (np.float32, np.float64, np.int16, np.int32):
            x = x.astype(np.float32)
        feats, ends, finite, _ = self.pipeline().push(x)
        return feats, ends.astype(np.int64), finite


def health_for_training(spec: FeatureSpec, signals: Sequence[np.ndarray], what: str) -> FeatureSpec:
    """The spec without the sensor-health checks that fire on the healthy training data (logged)."""
    fitted, off = spec.fit_health(signals)
    if off:
        logging.getLogger("edgefault.train").warning(
            "%s: the sensor-health check%s %s fire%s on the training data (e.g. a constant channel), so the "
            "bundle runs without %s: windows are still scored, but such sensor faults are not caught",
            what, "s" if len(off) > 1 else "", ", ".join(off), "" if len(off) > 1 else "s",
            "them" if len(off) > 1 else "it")
    return fitted
