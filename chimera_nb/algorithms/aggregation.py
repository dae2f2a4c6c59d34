"""Rules that combine what workers send back: gradients for a parameter server, predictions
for bagging. Pure functions of arrays; a master hands them what it gathered.

The rule is a separate object from the loop that drives the rounds (as in Flower), so a lab
that asks for a new rule (a median, a trimmed mean, top-k with error feedback) changes one
class and no master.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from .._types import ClassLabel, Matrix, Vector

__all__ = [
    "GradientAggregator",
    "WeightedMean",
    "mean_prediction",
    "soft_vote",
    "union_of_classes",
    "weighted_mean",
]


def weighted_mean(arrays: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """``sum_k w_k * a_k / sum_k w_k``.

    Notes
    -----
    Weighted by shard size, the mean of per-shard *mean* gradients is the mean gradient of
    the union of the shards, so one distributed round equals one step of full-batch gradient
    descent on all the data. An unweighted mean (the seed's) over-counts small shards.
    """
    weights = np.asarray(weights, dtype=np.float64)
    if len(arrays) == 0 or weights.sum() <= 0:
        raise ValueError("weighted_mean needs at least one array with a positive weight")
    stacked = np.stack([np.asarray(array, dtype=np.float64) for array in arrays])
    # Contract the worker axis against the normalized weights.
    return np.tensordot(weights / weights.sum(), stacked, axes=1)


class GradientAggregator(Protocol):
    """How a parameter server turns the workers' gradients into one."""

    def aggregate(
        self,
        weights_gradients: Sequence[Matrix],
        bias_gradients: Sequence[Vector],
        n_samples: Sequence[int],
    ) -> tuple[Matrix, Vector]: ...


class WeightedMean:
    """The default rule: each worker's gradient weighted by its number of samples."""

    def aggregate(
        self,
        weights_gradients: Sequence[Matrix],
        bias_gradients: Sequence[Vector],
        n_samples: Sequence[int],
    ) -> tuple[Matrix, Vector]:
        return weighted_mean(weights_gradients, n_samples), weighted_mean(bias_gradients, n_samples)

    def __repr__(self) -> str:
        return "WeightedMean()"


def mean_prediction(predictions: Sequence[Vector]) -> Vector:
    """Bagging for regression: the arithmetic mean of the members' predictions."""
    return np.mean(np.stack([np.asarray(p, dtype=np.float64) for p in predictions]), axis=0)


def union_of_classes(classes: Sequence[Sequence[ClassLabel]]) -> list[ClassLabel]:
    """The sorted union of several lists of class labels (numbers before strings)."""
    return sorted({label for member in classes for label in member}, key=_label_order)


def soft_vote(
    probabilities: Sequence[Matrix],
    classes: Sequence[Sequence[ClassLabel]],
    labels: Sequence[ClassLabel] | None = None,
) -> tuple[list[ClassLabel], Matrix]:
    """Bagging for classification: average the members' class probabilities.

    A member trained on a bootstrap sample may have seen only some classes, so each member's
    columns are first placed under the union of all classes (probability 0 for a class it
    never saw), or under ``labels`` if given (a superset of every member's classes).

    Returns
    -------
    classes : list
        ``labels``, else the sorted union of the members' classes.
    probabilities : ndarray of shape (n_samples, n_classes)
        The mean probability of each class; rows sum to 1.
    """
    union = list(labels) if labels is not None else union_of_classes(classes)
    column = {label: index for index, label in enumerate(union)}
    n_samples = np.asarray(probabilities[0]).shape[0]
    total = np.zeros((n_samples, len(union)))
    for member_probabilities, member_classes in zip(probabilities, classes):
        columns = [column[label] for label in member_classes]
        total[:, columns] += np.asarray(member_probabilities, dtype=np.float64)
    return union, total / len(probabilities)


def _label_order(label: ClassLabel) -> tuple[int, float | str]:
    """Sort numbers before strings, each in natural order, so mixed labels never crash."""
    return (0, label) if isinstance(label, numbers.Real) else (1, str(label))
