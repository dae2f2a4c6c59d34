"""Aggregation rules that a few bad answers cannot drag anywhere: the coordinate-wise median,
the trimmed mean and Krum.

A mean moves as far as its worst input wants: one Byzantine worker (a bug, a bad disk, an
attacker) that sends ``-100 x`` its gradient turns a parameter server's descent into ascent.
These rules are :class:`~chimera_nb.algorithms.aggregation.GradientAggregator` objects, for
``ParameterServerMaster(aggregator=...)`` and for a federated master's client updates alike
(an update, new weights minus global weights, is combined as a gradient is). Each flattens an
answer's weights and bias into one vector, combines the vectors, and reshapes the result.

The price: they ignore (median, trimmed mean) or choose among (Krum) the answers rather than
weigh every sample, so on honest, unequal or non-IID shards they are not the full-batch
gradient that :class:`~chimera_nb.algorithms.aggregation.WeightedMean` is.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .aggregation import Gradient, ShardGradient, weighted_mean

__all__ = [
    "BYZANTINE_SCALE",
    "CoordinateMedian",
    "Krum",
    "TrimmedMean",
    "byzantine_answer",
    "krum_scores",
]

#: What ``scale`` is for each kind of Byzantine answer when none is given.
BYZANTINE_SCALE = {"sign-flip": 1.0, "scaled": 10.0, "noise": 1.0}


def byzantine_answer(
    vector: np.ndarray, kind: str, scale: float | None, rng: np.random.Generator
) -> np.ndarray:
    """What a Byzantine worker sends instead of its honest ``vector`` (a gradient or a
    client's update; never raw weights, whose sign means nothing):

    * ``"sign-flip"``: ``-scale * vector``, ascent instead of descent. Once ``scale`` exceeds
      the number of honest workers (equal shards), the mean points uphill.
    * ``"scaled"``: ``scale * vector``, one worker shouting (a mean's step grows with it).
    * ``"noise"``: Gaussian noise of standard deviation ``scale``, ignoring ``vector``: the
      "Gaussian Byzantine worker" of Blanchard et al. 2017.
    """
    if kind not in BYZANTINE_SCALE:
        raise ValueError(f"kind must be 'sign-flip', 'noise' or 'scaled', got {kind!r}")
    scale = BYZANTINE_SCALE[kind] if scale is None else scale
    if kind == "sign-flip":
        return -scale * vector
    if kind == "scaled":
        return scale * vector
    return rng.normal(0.0, scale, size=np.shape(vector))  # "noise"


def _stacked(gradients: Mapping[str, ShardGradient]) -> np.ndarray:
    """One row per answer: its weights, flattened, then its bias."""
    if not gradients:
        raise ValueError("a robust aggregator needs at least one answer")
    return np.stack(
        [np.append(np.ravel(answer.weights), answer.bias) for answer in gradients.values()]
    ).astype(np.float64)


def _as_gradient(vector: np.ndarray, like: ShardGradient) -> Gradient:
    """``vector`` cut back into weights and bias of the shapes of ``like``."""
    n_bias = len(like.bias)
    return Gradient(vector[:-n_bias].reshape(np.shape(like.weights)), vector[-n_bias:])


def _first(gradients: Mapping[str, ShardGradient]) -> ShardGradient:
    return next(iter(gradients.values()))


class CoordinateMedian:
    """Each coordinate of the result is the median of that coordinate over the answers
    (of an even count: the mean of the two middle values).

    Yin, Chen, Ramchandran and Bartlett 2018, "Byzantine-robust distributed learning:
    towards optimal statistical rates" (ICML): it tolerates fewer than half bad answers
    per coordinate. Every answer counts once, whatever its shard size.

    Examples
    --------
    >>> import numpy as np
    >>> from chimera_nb.algorithms import ShardGradient
    >>> CoordinateMedian().aggregate({
    ...     name: ShardGradient(np.array([[value]]), np.array([0.0]), 1, 0.0)
    ...     for name, value in {"a": 1.0, "b": 2.0, "c": -100.0}.items()
    ... })
    Gradient(weights=array([[1.]]), bias=array([0.]))
    """

    def aggregate(self, gradients: Mapping[str, ShardGradient]) -> Gradient:
        return _as_gradient(np.median(_stacked(gradients), axis=0), _first(gradients))

    def __repr__(self) -> str:
        return "CoordinateMedian()"


class TrimmedMean:
    """Per coordinate, drop the ``k`` largest and the ``k`` smallest values, and average
    the rest (Yin et al. 2018, as :class:`CoordinateMedian`).

    Parameters
    ----------
    trim : float in [0, 0.5) or int, default=0.1
        A float: the fraction of the answers cut from each side, ``k = floor(trim * n)``.
        An int: ``k`` itself. With ``k`` at least the number of bad answers, none of them
        reaches the mean; ``n`` must exceed ``2 k``.
    """

    def __init__(self, trim: float | int = 0.1) -> None:
        if isinstance(trim, bool) or not isinstance(trim, (int, float)):
            raise ValueError(f"trim must be a fraction in [0, 0.5) or a count, got {trim!r}")
        if isinstance(trim, float) and not 0 <= trim < 0.5:
            raise ValueError(f"trim as a fraction must be in [0, 0.5), got {trim}")
        if isinstance(trim, int) and trim < 0:
            raise ValueError(f"trim as a count must be 0 or more, got {trim}")
        self.trim = trim

    def cut(self, n_answers: int) -> int:
        """``k``: how many values go from each side when ``n_answers`` answered."""
        k = int(np.floor(self.trim * n_answers)) if isinstance(self.trim, float) else self.trim
        if n_answers <= 2 * k:
            raise ValueError(
                f"TrimmedMean(trim={self.trim}) cuts {k} answers from each side, which leaves "
                f"none of {n_answers}: lower trim, or have more workers answer"
            )
        return k

    def aggregate(self, gradients: Mapping[str, ShardGradient]) -> Gradient:
        vectors = _stacked(gradients)
        k = self.cut(len(vectors))
        ordered = np.sort(vectors, axis=0)  # each coordinate sorted on its own
        return _as_gradient(ordered[k : len(vectors) - k].mean(axis=0), _first(gradients))

    def __repr__(self) -> str:
        return f"TrimmedMean(trim={self.trim!r})"


def krum_scores(vectors: np.ndarray, n_byzantine: int) -> np.ndarray:
    """Krum's score of each row: the sum of its squared distances to its ``n - f - 2``
    nearest other rows (an honest answer has many close neighbours; a bad one is far)."""
    n = len(vectors)
    neighbours = n - n_byzantine - 2
    if neighbours < 1:
        raise ValueError(
            f"Krum with n_byzantine={n_byzantine} needs at least {n_byzantine + 3} answers "
            f"(n > 2f + 2 for its guarantee), got {n}: lower n_byzantine or add workers"
        )
    squared = ((vectors[:, None, :] - vectors[None, :, :]) ** 2).sum(axis=2)
    np.fill_diagonal(squared, np.inf)  # a row is not its own neighbour
    return np.sort(squared, axis=1)[:, :neighbours].sum(axis=1)


class Krum:
    """Keep the answer whose ``n - f - 2`` nearest neighbours are closest (Multi-Krum: the
    ``multi`` best, averaged weighted by their samples).

    Blanchard, El Mhamdi, Guerraoui and Stainer 2017, "Machine learning with adversaries:
    Byzantine tolerant gradient descent" (NeurIPS): with ``n > 2 f + 2`` answers, at most
    ``f`` of them Byzantine, the chosen one stays close to the honest gradients. Ties go to
    the first answer in the order given. ``selected_`` names the answers the last call kept.

    Parameters
    ----------
    n_byzantine : int, default=1
        ``f``, the bad answers to tolerate.
    multi : int, default=1
        ``m``, how many of the best-scored answers to average (1: Krum itself).
    """

    def __init__(self, n_byzantine: int = 1, multi: int = 1) -> None:
        if isinstance(n_byzantine, bool) or not isinstance(n_byzantine, int) or n_byzantine < 0:
            raise ValueError(f"n_byzantine must be an int >= 0, got {n_byzantine!r}")
        if isinstance(multi, bool) or not isinstance(multi, int) or multi < 1:
            raise ValueError(f"multi must be an int >= 1, got {multi!r}")
        self.n_byzantine = n_byzantine
        self.multi = multi
        self.selected_: list[str] = []

    def aggregate(self, gradients: Mapping[str, ShardGradient]) -> Gradient:
        vectors = _stacked(gradients)
        if self.multi > len(vectors):
            raise ValueError(
                f"Krum(multi={self.multi}) averages more answers than the {len(vectors)} given"
            )
        scores = krum_scores(vectors, self.n_byzantine)
        best = np.argsort(scores, kind="stable")[: self.multi]
        names, answers = list(gradients), list(gradients.values())
        self.selected_ = [names[index] for index in best]
        chosen = weighted_mean(
            [vectors[index] for index in best], [answers[i].n_samples for i in best]
        )
        return _as_gradient(chosen, _first(gradients))

    def __repr__(self) -> str:
        return f"Krum(n_byzantine={self.n_byzantine}, multi={self.multi})"
