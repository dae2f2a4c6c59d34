"""Losses of linear models and their gradients, in plain numpy.

Every loss here is a *mean* over the samples it is given. That is what makes data
parallelism exact: if worker ``k`` holds ``n_k`` of the ``n`` samples and returns the mean
gradient of its shard, then ``sum_k (n_k / n) * gradient_k`` is the gradient of the whole
dataset (see :func:`chimera_nb.algorithms.aggregation.weighted_mean`).

Shapes
------
``X`` is ``(n_samples, n_features)``. A linear model has ``weights`` of shape
``(n_outputs, n_features)`` and ``bias`` of shape ``(n_outputs,)``: one output for regression
and for binary classification, one per class for softmax.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from .._types import Matrix, Vector

__all__ = [
    "LossAndGradient",
    "LossAndResiduals",
    "LossFunction",
    "ResidualFunction",
    "l2_penalty",
    "logistic_loss",
    "logistic_residuals",
    "softmax_loss",
    "softmax_residuals",
    "squared_loss",
    "squared_residuals",
]


class LossAndGradient(NamedTuple):
    """A loss value and its gradient with respect to the weights and the bias."""

    loss: float
    weights_gradient: Matrix  # (n_outputs, n_features)
    bias_gradient: Vector  # (n_outputs,)


#: ``loss(weights, bias, X, y) -> LossAndGradient``; ``y`` holds targets or class indices.
LossFunction = Callable[[Matrix, Vector, Matrix, np.ndarray], LossAndGradient]


def _gradient_from_residuals(residuals: Matrix, X: Matrix) -> tuple[Matrix, Vector]:
    """Chain rule for a linear score ``z = X @ W.T + b``: given ``dL/dz`` per sample
    (``residuals``, shape ``(n_samples, n_outputs)``), return ``dL/dW`` and ``dL/db``
    averaged over the samples.

    Each worker runs this every round on its shard, so it is written for few numpy calls
    (``sum / n`` rather than ``mean``, which costs microseconds of Python on top)."""
    n_samples = X.shape[0]
    weights_gradient = residuals.T @ X
    weights_gradient /= n_samples
    return weights_gradient, residuals.sum(axis=0) / n_samples


class LossAndResiduals(NamedTuple):
    """A loss value, from the scores, and its derivative per sample and output ``dL/dz``
    (times the number of samples: the mean's ``1/n`` is applied where it is averaged)."""

    loss: float
    residuals: Matrix  # (n_samples, n_outputs)


#: ``residuals(scores, y) -> LossAndResiduals``: a loss seen from the scores ``z = X W^T + b``.
ResidualFunction = Callable[[Matrix, np.ndarray], LossAndResiduals]


def squared_residuals(scores: Matrix, y: np.ndarray) -> LossAndResiduals:
    """Half mean squared error ``mean((z - y)^2) / 2`` and ``dL/dz = z - y``."""
    residuals = scores - y.reshape(-1, 1)  # (n_samples, 1)
    return LossAndResiduals(0.5 * float(np.vdot(residuals, residuals)) / len(residuals), residuals)


def logistic_residuals(scores: Matrix, y: np.ndarray) -> LossAndResiduals:
    """Mean log-loss of ``p = sigmoid(z)`` for ``y`` in {0, 1}; ``dL/dz = p - y``."""
    targets = y.reshape(-1, 1).astype(np.float64)
    # log(1 + exp(z)) - y z, written with logaddexp so that large |z| cannot overflow.
    loss = float(np.mean(np.logaddexp(0.0, scores) - targets * scores))
    probabilities = 0.5 * (1.0 + np.tanh(0.5 * scores))  # the sigmoid, overflow-free
    return LossAndResiduals(loss, probabilities - targets)


def softmax_residuals(scores: Matrix, y: np.ndarray) -> LossAndResiduals:
    """Mean cross-entropy of ``P = softmax(z)`` row by row, ``y`` class indices;
    ``dL/dz = P - onehot(y)``."""
    scores = scores - scores.max(axis=1, keepdims=True)  # same softmax, no overflow
    log_normalizer = np.log(np.exp(scores).sum(axis=1, keepdims=True))
    log_probabilities = scores - log_normalizer
    rows = np.arange(scores.shape[0])
    loss = float(-np.mean(log_probabilities[rows, y]))
    residuals = np.exp(log_probabilities)
    residuals[rows, y] -= 1.0
    return LossAndResiduals(loss, residuals)


def _linear_loss(residuals: ResidualFunction) -> LossFunction:
    """The loss of a linear model ``z = X W^T + b`` whose loss of the scores is
    ``residuals``: the chain rule takes ``dL/dz`` to ``dL/dW`` and ``dL/db``."""

    def loss(weights: Matrix, bias: Vector, X: Matrix, y: np.ndarray) -> LossAndGradient:
        value, dz = residuals(X @ weights.T + bias, y)
        return LossAndGradient(value, *_gradient_from_residuals(dz, X))

    loss.__name__ = residuals.__name__.replace("residuals", "loss")
    loss.__doc__ = residuals.__doc__
    return loss


#: Half mean squared error of a linear regression, ``mean((X w + b - y)^2) / 2`` (the factor
#: 1/2 makes the gradient the plain mean of ``residual * x``).
squared_loss = _linear_loss(squared_residuals)
#: Mean log-loss of a binary logistic regression; ``y`` holds 0 or 1 (the class index).
logistic_loss = _linear_loss(logistic_residuals)
#: Mean cross-entropy of a multinomial (softmax) regression; ``y`` holds class indices.
softmax_loss = _linear_loss(softmax_residuals)


def l2_penalty(weights: Matrix, alpha: float) -> tuple[float, Matrix]:
    """Ridge penalty ``alpha / 2 * ||W||^2`` and its gradient ``alpha * W``.

    The bias is not penalized, as in scikit-learn.
    """
    return 0.5 * alpha * float(np.sum(weights**2)), alpha * weights
