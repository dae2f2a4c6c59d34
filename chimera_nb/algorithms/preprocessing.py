"""Standardization computed from statistics that workers aggregate, never from raw rows.

Gradient descent on raw features converges slowly or diverges: wine-quality's sulfur dioxide
runs to 440 while its density stays near 1. Standardizing every feature to mean 0 and
variance 1 fixes that, but the mean and variance must be those of *all* workers' data. Each
worker sends three numbers per column (count, sum, sum of squared deviations from its own
mean); :meth:`ColumnStatistics.combine` merges them exactly (Chan et al.'s parallel variance),
without the cancellation of ``sum(x**2)/n - mean**2``.

The master then keeps its model in standardized coordinates, but workers still compute
gradients on their raw data: :class:`Standardizer` converts the weights it sends to raw units
and the gradients it gets back to standardized units (the chain rule through ``(x - mean) /
scale``). Workers stay as simple as the seed's: the true gradient of the shard at the weights
they are sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .._types import Matrix, Vector

__all__ = ["ColumnStatistics", "Standardizer"]


@dataclass(frozen=True)
class ColumnStatistics:
    """Count, sum and sum of squared deviations (``m2``) of each column of a shard."""

    count: int
    sum: Vector
    m2: Vector

    @classmethod
    def of(cls, values: np.ndarray) -> ColumnStatistics:
        """Statistics of the columns of ``values`` (1-D values are one column)."""
        values = np.asarray(values, dtype=np.float64)
        values = values.reshape(-1, 1) if values.ndim == 1 else values
        mean = values.mean(axis=0) if len(values) else np.zeros(values.shape[1])
        return cls(len(values), values.sum(axis=0), ((values - mean) ** 2).sum(axis=0))

    @property
    def mean(self) -> Vector:
        return self.sum / self.count

    @property
    def std(self) -> Vector:
        """Population standard deviation, as scikit-learn's ``StandardScaler`` uses."""
        return np.sqrt(self.m2 / self.count)

    @classmethod
    def combine(cls, parts: Sequence[ColumnStatistics]) -> ColumnStatistics:
        """Merge the statistics of disjoint shards into those of their union."""
        parts = [part for part in parts if part.count > 0]
        count = sum(part.count for part in parts)
        total = np.sum([part.sum for part in parts], axis=0)
        mean = total / count
        # Each shard's deviations are about its own mean; moving them to the global mean
        # adds count_k * (mean_k - mean)^2 per shard.
        m2 = np.sum([part.m2 + part.count * (part.mean - mean) ** 2 for part in parts], axis=0)
        return cls(count, total, m2)


def _safe_scale(std: Vector) -> Vector:
    """A constant column has std 0; scale it by 1 (it then stays 0 after centering)."""
    return np.where(std > 0.0, std, 1.0)


@dataclass(frozen=True)
class Standardizer:
    """The change of coordinates ``x_std = (x - feature_mean) / feature_scale`` (and the same
    for a regression target), with the conversions a parameter server needs.

    In standardized coordinates a linear model scores ``z = W x_std + b``; in raw units it is
    ``y_hat = target_scale * z + target_mean``. Classification leaves the target alone
    (``target_mean=0``, ``target_scale=1``).
    """

    feature_mean: Vector
    feature_scale: Vector
    target_mean: float = 0.0
    target_scale: float = 1.0

    @classmethod
    def from_statistics(
        cls, features: ColumnStatistics, target: ColumnStatistics | None = None
    ) -> Standardizer:
        if target is None:
            return cls(features.mean, _safe_scale(features.std))
        return cls(
            features.mean,
            _safe_scale(features.std),
            float(target.mean[0]),
            float(_safe_scale(target.std)[0]),
        )

    def transform(self, X: Matrix) -> Matrix:
        return (X - self.feature_mean) / self.feature_scale

    def transform_target(self, y: np.ndarray) -> np.ndarray:
        return (y - self.target_mean) / self.target_scale

    def weights_to_raw(self, weights: Matrix, bias: Vector) -> tuple[Matrix, Vector]:
        """The raw-unit model that predicts what ``(weights, bias)`` predicts on standardized
        features: ``W_raw = s_y W / s_x`` and ``b_raw = s_y (b - W (m_x / s_x)) + m_y``."""
        raw_weights = self.target_scale * weights / self.feature_scale
        raw_bias = self.target_scale * (bias - weights @ (self.feature_mean / self.feature_scale))
        return raw_weights, raw_bias + self.target_mean

    def gradient_from_raw(
        self, raw_weights_gradient: Matrix, raw_bias_gradient: Vector
    ) -> tuple[Matrix, Vector]:
        """Chain rule from the gradient a worker computed in raw units (at the raw weights of
        :meth:`weights_to_raw`) to the gradient of the standardized loss.

        ``dL/dW = (G_raw - g_raw m_x) / (s_x s_y)`` and ``dL/db = g_raw / s_y``; the loss of a
        regression in raw units is ``s_y^2`` times the standardized one.
        """
        shifted = raw_weights_gradient - np.outer(raw_bias_gradient, self.feature_mean)
        weights_gradient = shifted / (self.feature_scale * self.target_scale)
        return weights_gradient, raw_bias_gradient / self.target_scale

    def loss_from_raw(self, raw_loss: float) -> float:
        """The standardized loss; only the squared loss has a raw unit (``target_scale^2``)."""
        return raw_loss / self.target_scale**2
