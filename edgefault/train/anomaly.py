"""Train a feature-space Gaussian anomaly model on healthy recordings and pack a bundle.

Leak-safe by construction: each healthy recording is cut into a training block and a later
calibration block (with a gap of one window) before any windowing, so no calibration window
overlaps training signal, and the threshold is set on healthy data recorded after the data the
model was fitted on.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from edgefault.errors import InputError
from edgefault.evaluation.protocols import contiguous_blocks
from edgefault.io.readers import Recording
from edgefault.device.spec import FeatureSpec, health_for_training
from edgefault.samples import training_scaling
from edgefault.io.readers import file_rates
from edgefault.device.thresholds import Calibration, calibrate, evidence
from edgefault.train.gaussian import GaussianAnomalyModel


@dataclass
class AnomalyTraining:
    model: GaussianAnomalyModel
    calibration: Calibration
    spec: FeatureSpec
    train_scores: np.ndarray
    calib_scores: np.ndarray
    info: dict[str, Any]
    drift: dict[str, Any] | None = None  # thresholds["drift"] (edgefault.device.drift.calibrate_drift)


def block_features(spec: FeatureSpec, data: np.ndarray) -> np.ndarray:
    """Features of the finite windows of one contiguous block."""
    feats, _, finite = spec.transform(data)
    return feats[finite]


def fingerprint(recordings: Sequence[Recording]) -> str:
    h = hashlib.sha256()
    for r in recordings:
        h.update(Path(r.path).name.encode())
        h.update(np.ascontiguousarray(r.data).tobytes())
    return h.hexdigest()[:16]


def train_gaussian(recordings: Sequence[Recording], spec: FeatureSpec, *, target_far: float = 0.01,
                   calib_fraction: float = 0.3, calibration: str = "auto",
                   hysteresis: float = 0.9, drift_far: float | None = 1e-4,
                   adaptive_threshold: bool = False, calib_blocks: Sequence[np.ndarray] | None = None,
                   info: dict[str, Any] | None = None) -> AnomalyTraining:
    """Fit on the earlier block of each healthy recording, calibrate the threshold on the later one.

    calib_blocks : separate healthy calibration blocks (n, n_channels), e.g. other machines or a
        later session: the model is then fitted on every window of the recordings and calibrated
        (threshold and drift limits, one session per block) on these.
    info : entries added to the training record.

    drift_far : target false-drift onsets per window of the drift monitors (score CUSUM + MEWMA of
        the feature vector), calibrated on the calibration block against the training block's
        feature distribution (:func:`edgefault.device.drift.calibrate_drift`); None: no drift monitors.
        With several recordings (sessions) their spread sets the between-session offset the
        limits allow for; give healthy data from several sessions when you have it.
    adaptive_threshold : the bundle enables the per-machine adaptive threshold by default.
    """
    if not recordings:
        raise InputError("no healthy recordings to train on")
    if calib_blocks is None and not 0.05 <= calib_fraction <= 0.7:
        raise InputError(f"calibration fraction must be in [0.05, 0.7], got {calib_fraction}")
    spec = health_for_training(spec, [r.data for r in recordings if r.fs == spec.fs], "train gaussian")
    train_parts: list[np.ndarray] = []
    calib_parts: list[np.ndarray] = []
    calib_groups: list[np.ndarray] = []  # recording index of each calibration window (drift: between-session spread)
    train_owner: list[int] = []  # recording index of each training block
    blocks_info = []
    for ri, r in enumerate(recordings):
        if r.fs != spec.fs:
            raise InputError(f"{r.path}: sample rate {r.fs} Hz differs from the spec's {spec.fs} Hz")
        blocks = [("train", 0, r.data.shape[0])] if calib_blocks is not None else contiguous_blocks(
            r.data.shape[0], [1.0 - calib_fraction, calib_fraction], gap=spec.window, names=["train", "calib"],
            min_len=spec.window)
        for name, start, stop in blocks:
            f = block_features(spec, r.data[start:stop])
            (train_parts if name == "train" else calib_parts).append(f)
            if name == "train":
                train_owner.append(ri)
            if name == "calib":
                calib_groups.append(np.full(f.shape[0], ri))
            blocks_info.append({"file": Path(r.path).name, "block": name, "start": int(start), "stop": int(stop)})
    for bi, b in enumerate(calib_blocks or ()):
        f = block_features(spec, b)
        calib_parts.append(f)
        calib_groups.append(np.full(f.shape[0], bi))
        blocks_info.append({"file": f"calibration block {bi}", "block": "calib", "start": 0, "stop": int(b.shape[0])})
    if not calib_parts:
        raise InputError("no calibration windows: give calibration blocks or longer recordings")
    X_train = np.concatenate(train_parts)
    X_calib = np.concatenate(calib_parts)
    if X_train.shape[0] < max(16, spec.feature_dim // 4):
        raise InputError(f"only {X_train.shape[0]} healthy training windows for {spec.feature_dim} features: "
                         f"record more healthy data or use a smaller hop")
    model = GaussianAnomalyModel().fit(X_train)
    train_scores = model.score_samples(X_train)
    calib_scores = model.score_samples(X_calib)
    groups = np.concatenate(calib_groups)
    cross = calibration == "robust" and calib_blocks is None and len(set(train_owner)) >= 2
    if cross:
        # Leave one session out: each recording's calibration block scored by a model fitted on the
        # other recordings, so the threshold sees how far a session the model never saw lands.
        loso = np.empty_like(calib_scores)
        for ri in sorted(set(train_owner)):
            others = np.concatenate([p for p, o in zip(train_parts, train_owner) if o != ri])
            loso[groups == ri] = GaussianAnomalyModel().fit(others).score_samples(X_calib[groups == ri])
        cal = calibrate(loso, target_far=target_far, method=calibration, hysteresis=hysteresis, groups=groups)
        cal.details["leave_one_session_out"] = True
    else:
        cal = calibrate(calib_scores, target_far=target_far, method=calibration, hysteresis=hysteresis,
                        groups=groups)
    drift = None
    if drift_far is not None:
        from edgefault.device.drift import calibrate_drift

        drift = calibrate_drift(calib_scores, latent=X_calib, latent_ref=X_train, latent_source="features",
                                groups=np.concatenate(calib_groups), target_far=drift_far, adaptive=adaptive_threshold)
    info = {
        "n_train_windows": int(X_train.shape[0]), "n_calib_windows": int(X_calib.shape[0]),
        "shrinkage": model.shrinkage_, "blocks": blocks_info,
        "files": [Path(r.path).name for r in recordings], "fingerprint": fingerprint(recordings),
        "input_scaling": training_scaling(r.input_scaling for r in recordings),
        "file_rates": file_rates(recordings),
        "train_far_at_threshold": float(np.mean(train_scores > cal.threshold)),
        # what the calibration windows support: independent windows, smallest supported target
        **evidence(loso if cross else calib_scores, target_far), **(info or {}),
    }
    return AnomalyTraining(model=model, calibration=cal, spec=spec, train_scores=train_scores,
                           calib_scores=calib_scores, info=info, drift=drift)


def pack_gaussian(result: AnomalyTraining, out: str | Path, *, k: int = 3, n: int = 5, name: str | None = None):  # type: ignore[no-untyped-def]
    from edgefault.export import pack_bundle

    cal = result.calibration
    return pack_bundle(
        out, spec=result.spec,
        model={"kind": "gaussian", "task": "anomaly", "score": "squared Mahalanobis distance",
               "shrinkage": result.model.shrinkage_},
        arrays=result.model.bundle_arrays(),
        thresholds={"threshold": cal.threshold, "clear_threshold": cal.clear_threshold, "k": k, "n": n,
                    "method": cal.method, "target_far": cal.target_far, "calibration": cal.to_dict(),
                    **({"drift": result.drift} if result.drift else {})},
        training=result.info, name=name)
