"""Feature-space Gaussian anomaly model: Mahalanobis distance with Ledoit-Wolf shrinkage.

Numpy only, so the whole train -> bundle -> device path works without torch or scikit-learn.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from edgefault.errors import InputError


def ledoit_wolf(x: np.ndarray) -> tuple[np.ndarray, float]:
    """Ledoit-Wolf shrunk covariance of centred data x (n, d), shrinking towards mu * I.

    Same estimator as sklearn.covariance.ledoit_wolf(assume_centered=True).
    Returns (covariance, shrinkage).
    """
    n, d = x.shape
    x2 = x * x
    emp = x.T @ x / n
    trace = float(np.trace(emp))
    mu = trace / d
    beta_ = float(np.sum(x2.T @ x2))
    delta_ = float(np.sum((x.T @ x) ** 2)) / (n * n)
    beta = (beta_ / n - delta_) / (d * n)
    delta = (delta_ - 2.0 * mu * trace + d * mu * mu) / d
    beta = min(beta, delta)
    shrinkage = 0.0 if beta == 0 else beta / delta
    cov = (1.0 - shrinkage) * emp
    cov.flat[:: d + 1] += shrinkage * mu
    return cov, float(shrinkage)


class GaussianAnomalyModel:
    """Anomaly score = squared Mahalanobis distance of standardised features.

    Parameters
    ----------
    min_scale : floor on each feature's standard deviation, relative to the median one, so a
        feature that never moves in training cannot dominate every score.
    """

    def __init__(self, min_scale: float = 1e-3) -> None:
        self.min_scale = min_scale

    def fit(self, X: np.ndarray, y: Any = None) -> "GaussianAnomalyModel":
        X = self._check(X, fitting=True)
        n, d = X.shape
        if n < 2:
            raise InputError(f"gaussian model: need at least 2 training windows, got {n}")
        mean = X.mean(axis=0)
        scale = X.std(axis=0)
        floor = self.min_scale * max(float(np.median(scale)), 1e-12)
        scale = np.maximum(scale, floor)
        z = (X - mean) / scale
        cov, shrink = ledoit_wolf(z)
        self.mean_ = mean.astype(np.float32)
        self.scale_ = scale.astype(np.float32)
        self.covariance_ = cov
        self.shrinkage_ = shrink
        prec = np.linalg.inv(cov)
        self.precision_ = ((prec + prec.T) / 2).astype(np.float32)
        self.n_features_in_ = d
        self.n_train_ = n
        return self

    def _check(self, X: np.ndarray, fitting: bool = False) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2:
            raise InputError(f"gaussian model: features must be 2-D (n_windows, n_features), got shape {X.shape}")
        if not fitting:
            if not hasattr(self, "mean_"):
                raise InputError("gaussian model is not fitted yet: call fit(X) first")
            if X.shape[1] != self.n_features_in_:
                raise InputError(f"gaussian model: expected {self.n_features_in_} features, got {X.shape[1]}")
        elif not np.all(np.isfinite(X)):
            bad = int(np.sum(~np.all(np.isfinite(X), axis=1)))
            raise InputError(f"gaussian model: {bad} training windows contain NaN/Inf; drop them first")
        return X

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        """Anomaly score per window (higher = more anomalous)."""
        X = self._check(X)
        z = (X - self.mean_) / self.scale_
        return np.einsum("ij,jk,ik->i", z, self.precision_.astype(np.float64), z)

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """Per-feature terms z_i (P z)_i, which sum to the score."""
        X = self._check(X)
        z = (X - self.mean_) / self.scale_
        return z * (z @ self.precision_.astype(np.float64).T)

    def bundle_arrays(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean_, "scale": self.scale_, "precision": self.precision_}
