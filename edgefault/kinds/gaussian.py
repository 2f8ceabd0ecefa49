"""Kind ``gaussian``: squared Mahalanobis distance of a window's features to the healthy
distribution (Ledoit-Wolf covariance), scored in the C++ core with per-feature contributions.
Training: :mod:`edgefault.train.anomaly` (numpy only)."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from edgefault import _core
from edgefault.device.bundle import Bundle
from edgefault.errors import BundleError
from edgefault.kinds import register
from edgefault.kinds.base import ModelKind, ScoreBatch, TrainData, Trained, bundle_where, drift_summary


class GaussianDeviceModel:
    """Mahalanobis distance in the bundle's feature space, scored in the C++ core."""

    needs_features = True
    needs_raw = False

    def __init__(self, bundle: Bundle) -> None:
        """``core_scorer`` lets the runtime fuse framing, features, scoring and alarm state into
        one core call per push."""
        d = bundle.spec.feature_dim
        mean, scale, prec = bundle.array("mean"), bundle.array("scale"), bundle.array("precision")
        if mean.shape != (d,) or scale.shape != (d,) or prec.shape != (d, d):
            raise BundleError(f"{bundle_where(bundle)}: gaussian arrays have shapes mean {mean.shape}, "
                              f"scale {scale.shape}, precision {prec.shape}; the feature spec gives "
                              f"{d} features")
        try:
            self.core_scorer = _core.GaussianScorer(mean, scale, prec)
        except ValueError as e:
            raise BundleError(f"{bundle_where(bundle)}: {e}") from None
        self.contrib_names = bundle.spec.feature_names

    def score(self, features: np.ndarray, raw: np.ndarray | None) -> ScoreBatch:
        scores, contrib = self.core_scorer.score(features, True)
        return ScoreBatch(scores=scores, contrib=contrib)


class GaussianKind(ModelKind):
    name = "gaussian"
    task = "anomaly"
    takes_feature_spec = True
    help = "Mahalanobis distance of per-channel time statistics and log band energies (numpy only)"

    def device_model(self, bundle: Bundle) -> GaussianDeviceModel:
        return GaussianDeviceModel(bundle)

    def add_arguments(self, group: Any) -> None:
        group.add_argument("--bands", type=int, default=16, help="gaussian: log-spaced band energies per channel "
                                                                 "(default 16)")

    def train(self, data: TrainData, opts: argparse.Namespace, out: Path) -> Trained:
        from edgefault.device.spec import FeatureSpec
        from edgefault.train.anomaly import pack_gaussian, train_gaussian

        spec = data.spec or FeatureSpec.for_anomaly(data.fs, data.channels, window=opts.window,
                                                    hop=opts.hop or opts.window // 2, n_bands=opts.bands,
                                                    fmax=getattr(opts, "fmax", None))
        result = train_gaussian(data.recordings, spec, target_far=opts.target_far, calib_fraction=opts.calib_fraction,
                                calibration=opts.calibration, drift_far=opts.drift_far,
                                adaptive_threshold=opts.adaptive_threshold, calib_blocks=data.calib, info=data.info)
        bundle = pack_gaussian(result, out, k=opts.k, n=opts.n, name=getattr(opts, "name", None))
        cal = result.calibration
        info = result.info
        summary = {
            "out": str(out), "bundle_id": bundle.bundle_id, "fs": spec.fs, "channels": list(spec.channels),
            "window": spec.window, "hop": spec.hop, "n_features": spec.feature_dim,
            "n_train_windows": info["n_train_windows"], "n_calib_windows": info["n_calib_windows"],
            "threshold": cal.threshold, "calibration": cal.method, "target_far": cal.target_far,
            "far_on_calibration": cal.far_on_calibration, **drift_summary(result.drift),
        }
        return Trained(bundle=bundle, summary=summary, threshold=cal.threshold, calibration=cal.method,
                       n_train_windows=info["n_train_windows"], n_calib_windows=info["n_calib_windows"],
                       eval_info={"far_on_calibration": cal.far_on_calibration, "features": list(spec.feature_names)},
                       calib_scores=result.calib_scores)


register(GaussianKind())
