"""Full-batch gradient descent in one process: the central twin of the parameter server.

:class:`~chimera_nb.ParameterServerMaster` runs the same rounds over workers; with the same
data, learning rate and number of rounds its weights equal these to float tolerance. Tests,
notebooks and labs use this function as the trusted reference.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .._types import Matrix, Vector
from .losses import LossFunction, l2_penalty
from .schedules import Constant, LearningRateSchedule

__all__ = ["GradientDescentResult", "gradient_descent", "update_step"]


def update_step(
    weights: Matrix,
    bias: Vector,
    weights_gradient: Matrix,
    bias_gradient: Vector,
    learning_rate: float,
) -> tuple[Matrix, Vector, float]:
    """One gradient step; returns the new weights, bias and the norm of the update.

    A diverging fit overflows to ``inf`` here; the caller sees it in the loss and says so,
    so numpy's overflow warning would only repeat it."""
    with np.errstate(over="ignore", invalid="ignore"):
        weights_update = -learning_rate * weights_gradient
        bias_update = -learning_rate * bias_gradient
        norm = float(np.sqrt(np.sum(weights_update**2) + np.sum(bias_update**2)))
    return weights + weights_update, bias + bias_update, norm


@dataclass
class GradientDescentResult:
    weights: Matrix
    bias: Vector
    losses: list[float] = field(default_factory=list)
    n_iter: int = 0
    converged: bool = False


def gradient_descent(
    X: Matrix,
    y: np.ndarray,
    loss: LossFunction,
    n_outputs: int = 1,
    *,
    schedule: LearningRateSchedule | float = 0.1,
    max_iter: int = 100,
    tol: float = 0.0,
    alpha: float = 0.0,
) -> GradientDescentResult:
    """Minimize ``loss`` (+ ``alpha/2 ||W||^2``) from zero weights.

    Round ``t`` computes the gradient at the current weights; if the update it proposes is
    shorter than ``tol``, or ``max_iter`` updates were made, it stops without updating, so
    the last loss recorded is the loss of the returned weights. This is exactly the round
    structure of the parameter server's flowchart (steps D-K).
    """
    schedule = Constant(schedule) if isinstance(schedule, (int, float)) else schedule
    weights, bias = np.zeros((n_outputs, X.shape[1])), np.zeros(n_outputs)
    result = GradientDescentResult(weights, bias)
    for round_number in range(1, max_iter + 2):
        value, weights_gradient, bias_gradient = loss(weights, bias, X, y)
        penalty, penalty_gradient = l2_penalty(weights, alpha)
        result.losses.append(value + penalty)
        learning_rate = schedule(round_number)
        new_weights, new_bias, norm = update_step(
            weights, bias, weights_gradient + penalty_gradient, bias_gradient, learning_rate
        )
        if norm < tol or round_number > max_iter:
            result.converged = norm < tol
            break
        weights, bias = new_weights, new_bias
        result.n_iter = round_number
    result.weights, result.bias = weights, bias
    return result
