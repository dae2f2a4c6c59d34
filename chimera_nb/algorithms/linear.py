"""Linear models: which loss a model type uses, and how its weights predict."""

from __future__ import annotations

import numpy as np

from .._types import Matrix, ModelType, Vector
from .losses import (
    LossFunction,
    ResidualFunction,
    logistic_loss,
    logistic_residuals,
    softmax_loss,
    softmax_residuals,
    squared_loss,
    squared_residuals,
)

__all__ = [
    "decision_function",
    "loss_for",
    "n_outputs",
    "predict_proba",
    "probabilities",
    "residuals_for",
]


def loss_for(model_type: ModelType, n_classes: int = 0) -> LossFunction:
    """Squared loss for a regressor; logistic for two classes; softmax for more."""
    if model_type == "regressor":
        return squared_loss
    return logistic_loss if n_classes == 2 else softmax_loss


def residuals_for(model_type: ModelType, n_classes: int = 0) -> ResidualFunction:
    """The same choice as :func:`loss_for`, seen from the scores: the loss and ``dL/dz``
    (what a label holder computes when the scores are summed from feature blocks)."""
    if model_type == "regressor":
        return squared_residuals
    return logistic_residuals if n_classes == 2 else softmax_residuals


def n_outputs(model_type: ModelType, n_classes: int = 0) -> int:
    """Rows of the weight matrix: 1 for a regressor or a binary classifier, else one per class."""
    return n_classes if model_type == "classifier" and n_classes > 2 else 1


def decision_function(weights: Matrix, bias: Vector, X: Matrix) -> Matrix:
    """Linear scores ``X @ W.T + b``, shape ``(n_samples, n_outputs)``."""
    return X @ weights.T + bias


def predict_proba(weights: Matrix, bias: Vector, X: Matrix) -> Matrix:
    """Class probabilities, shape ``(n_samples, n_classes)``; a binary model has one output,
    the score of the second class."""
    return probabilities(decision_function(weights, bias, X))


def probabilities(scores: Matrix) -> Matrix:
    """Class probabilities of linear scores ``(n_samples, n_outputs)``: the sigmoid of one
    output (two classes), else the softmax."""
    if scores.shape[1] == 1:
        positive = 0.5 * (1.0 + np.tanh(0.5 * scores[:, 0]))
        return np.column_stack([1.0 - positive, positive])
    scores = scores - scores.max(axis=1, keepdims=True)
    exponentials = np.exp(scores)
    return exponentials / exponentials.sum(axis=1, keepdims=True)
