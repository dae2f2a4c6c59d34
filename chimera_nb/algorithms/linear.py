"""Linear models: which loss a model type uses, and how its weights predict."""

from __future__ import annotations

import numpy as np

from .._types import Matrix, ModelType, Vector
from .losses import LossFunction, logistic_loss, softmax_loss, squared_loss

__all__ = ["decision_function", "loss_for", "n_outputs", "predict_proba"]


def loss_for(model_type: ModelType, n_classes: int = 0) -> LossFunction:
    """Squared loss for a regressor; logistic for two classes; softmax for more."""
    if model_type == "regressor":
        return squared_loss
    return logistic_loss if n_classes == 2 else softmax_loss


def n_outputs(model_type: ModelType, n_classes: int = 0) -> int:
    """Rows of the weight matrix: 1 for a regressor or a binary classifier, else one per class."""
    return n_classes if model_type == "classifier" and n_classes > 2 else 1


def decision_function(weights: Matrix, bias: Vector, X: Matrix) -> Matrix:
    """Linear scores ``X @ W.T + b``, shape ``(n_samples, n_outputs)``."""
    return X @ weights.T + bias


def predict_proba(weights: Matrix, bias: Vector, X: Matrix) -> Matrix:
    """Class probabilities, shape ``(n_samples, n_classes)``; a binary model has one output,
    the score of the second class."""
    scores = decision_function(weights, bias, X)
    if scores.shape[1] == 1:
        positive = 0.5 * (1.0 + np.tanh(0.5 * scores[:, 0]))
        return np.column_stack([1.0 - positive, positive])
    scores = scores - scores.max(axis=1, keepdims=True)
    exponentials = np.exp(scores)
    return exponentials / exponentials.sum(axis=1, keepdims=True)
