"""Device-side models: turn a window's features (or raw samples) into a score, contributions
and, for classifiers, class probabilities. One class per bundle ``model.kind``."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import _core
from .bundle import Bundle
from .errors import BundleError


@dataclass
class ScoreBatch:
    scores: np.ndarray                 # (m,) float32, NaN for invalid windows
    contrib: np.ndarray | None = None  # (m, n_contrib) terms that sum to the score
    proba: np.ndarray | None = None    # (m, n_labels)


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
            raise BundleError(f"bundle {bundle.path}: gaussian arrays have shapes mean {mean.shape}, "
                              f"scale {scale.shape}, precision {prec.shape}; the feature spec gives "
                              f"{d} features")
        try:
            self.core_scorer = _core.GaussianScorer(mean, scale, prec)
        except ValueError as e:
            raise BundleError(f"bundle {bundle.path}: {e}") from None
        self.contrib_names = bundle.spec.feature_names

    def score(self, features: np.ndarray, raw: np.ndarray | None) -> ScoreBatch:
        scores, contrib = self.core_scorer.score(features, True)
        return ScoreBatch(scores=scores, contrib=contrib)


MODEL_KINDS: dict[str, Callable[[Bundle], object]] = {
    "gaussian": GaussianDeviceModel,
}


def device_model(bundle: Bundle):  # type: ignore[no-untyped-def]
    try:
        factory = MODEL_KINDS[bundle.kind]
    except KeyError:
        raise BundleError(f"bundle {bundle.path}: model kind {bundle.kind!r} is not supported by this "
                          f"edgefault (knows {sorted(MODEL_KINDS)}); upgrade edgefault") from None
    return factory(bundle)
