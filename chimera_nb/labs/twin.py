"""The central twin of a fitted parameter server: the same rounds on one machine.

:func:`central_twin` reruns what a :class:`~chimera_nb.ParameterServerMaster` did, full-batch
gradient descent with the kit's loss, in this process, on the rows you give it: with the
master's own standardizer (the statistics its workers sent in step C), classes, learning
rate, number of rounds and tolerance. Given all the data, its coefficients equal the master's
to float rounding; given only the shards that answered, they show what a fit that left a worker
out really learned. Graders compare a student's distributed fit with it.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ..algorithms import gradient_descent, loss_for, make_schedule, n_outputs

__all__ = ["CentralTwin", "central_twin"]


class CentralTwin(NamedTuple):
    """The one-machine result, in the units and shapes of the master's ``coef_`` and
    ``intercept_``; ``losses`` has one standardized loss per round, as ``loss_curve_``."""

    coef: np.ndarray
    intercept: np.ndarray
    losses: list[float]


def central_twin(master: Any, X: Any, y: Any) -> CentralTwin:
    """Full-batch gradient descent on ``X, y`` with the fitted ``master``'s settings.

    Parameters
    ----------
    master : ParameterServerMaster
        Fitted, with ``batch_size=None`` (every round uses whole shards).
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)

    Examples
    --------
    >>> twin = central_twin(master, X, y)  # doctest: +SKIP
    >>> np.abs(master.coef_ - twin.coef).max()  # doctest: +SKIP
    3.1e-15
    """
    if getattr(master, "batch_size", None) is not None:
        raise ValueError(
            "the central twin is full-batch gradient descent; this master drew mini-batches "
            f"(batch_size={master.batch_size})"
        )
    standardizer = master.standardizer_
    features = standardizer.transform(np.asarray(X, dtype=np.float64))
    if master.model_type == "regressor":
        targets = standardizer.transform_target(np.asarray(y, dtype=np.float64))
        n_classes = 0
    else:
        position = {label: index for index, label in enumerate(master.classes_)}
        targets = np.array([position[label] for label in np.ravel(np.asarray(y))])
        n_classes = len(master.classes_)
    result = gradient_descent(
        features,
        targets,
        loss_for(master.model_type, n_classes),
        n_outputs(master.model_type, n_classes),
        schedule=make_schedule(master.learning_rate_schedule, master.learning_rate, master.power_t),
        max_iter=master.max_iter,
        tol=master.tol,
        alpha=master.alpha,
    )
    weights, bias = standardizer.weights_to_raw(result.weights, result.bias)
    coef = weights[0] if master.model_type == "regressor" else weights
    return CentralTwin(coef, bias, result.losses)
