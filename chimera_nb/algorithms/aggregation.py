"""Rules that turn the workers' gradients into one: what a parameter server applies each round.

A rule is an object with one method, ``aggregate(gradients)``, that receives the round's
answers **by worker name** and returns one :class:`Gradient`. The master picks the workers,
sends, gathers the replies and hands them to the rule; the rule never opens a connection (as
Flower's strategies). Keyed by name, a rule can keep state per worker (error feedback,
reputation for Krum) and a lab that asks for a new rule changes one class and no master.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple, Protocol

import numpy as np

from .._types import Matrix, Vector

__all__ = ["Gradient", "GradientAggregator", "ShardGradient", "WeightedMean", "weighted_mean"]


class ShardGradient(NamedTuple):
    """One worker's answer to a round: the mean gradient of its shard, and how many samples
    that mean was taken over (its weight in the aggregate).

    ``weights`` has shape ``(n_outputs, n_features)``, ``bias`` shape ``(n_outputs,)``.
    """

    weights: Matrix
    bias: Vector
    n_samples: int
    loss: float


class Gradient(NamedTuple):
    """The round's gradient, the one step the master takes."""

    weights: Matrix
    bias: Vector


class GradientAggregator(Protocol):
    """How a parameter server turns the workers' gradients into one."""

    def aggregate(self, gradients: Mapping[str, ShardGradient]) -> Gradient:
        """``gradients``: worker name -> its answer, for the workers that answered."""
        ...


def weighted_mean(arrays: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """``sum_k w_k * a_k / sum_k w_k``.

    Notes
    -----
    Weighted by shard size, the mean of per-shard *mean* gradients is the mean gradient of
    the union of the shards, so one distributed round equals one step of full-batch gradient
    descent on all the data. An unweighted mean (the seed's) over-counts small shards.
    """
    total = float(sum(weights))
    if len(arrays) == 0 or total <= 0:
        raise ValueError("weighted_mean needs at least one array with a positive weight")
    # A plain sum over the few workers: stacking them for one tensordot costs more per round
    # than the arithmetic itself.
    return sum(
        (weight / total) * np.asarray(array, dtype=np.float64)
        for weight, array in zip(weights, arrays)
    )


class WeightedMean:
    """The default rule: each worker's gradient weighted by its number of samples.

    Examples
    --------
    >>> import numpy as np
    >>> rule = WeightedMean()
    >>> rule.aggregate({
    ...     "worker1": ShardGradient(np.array([[1.0]]), np.array([0.0]), 1, 0.0),
    ...     "worker2": ShardGradient(np.array([[4.0]]), np.array([3.0]), 2, 0.0),
    ... })
    Gradient(weights=array([[3.]]), bias=array([2.]))
    """

    def aggregate(self, gradients: Mapping[str, ShardGradient]) -> Gradient:
        answers = list(gradients.values())
        n_samples = [answer.n_samples for answer in answers]
        return Gradient(
            weighted_mean([answer.weights for answer in answers], n_samples),
            weighted_mean([answer.bias for answer in answers], n_samples),
        )

    def __repr__(self) -> str:
        return "WeightedMean()"
