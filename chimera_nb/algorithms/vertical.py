"""Vertical sharding: each worker holds some *columns* of every row, and the weights of them.

The course calls this model parallelism for a linear model (and vertical federated learning
when the columns belong to different parties): the model ``z = X W^T + b`` is split by
feature blocks ``X = [X_1 | X_2 | ... ]`` and ``W = [W_1 | W_2 | ... ]``, so

* the scores are a **sum of partial scores**, ``z = sum_b X_b W_b^T + b``: each worker
  computes its own term, and whoever holds the label ``y`` adds them up;
* the gradient **splits by block**: ``dL/dW_b = r^T X_b / n`` with ``r = dL/dz`` (the
  residuals), so the label holder sends ``r`` back and each worker computes the gradient of
  its own weights, with its own columns.

Nothing is approximated: one round is exactly one step of full-batch gradient descent on
all the columns (:func:`~chimera_nb.algorithms.gradient_descent`, the central twin).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .._types import Matrix, Shard

__all__ = ["block_gradient", "feature_blocks", "partial_scores", "split_columns"]


def feature_blocks(
    n_features: int, n_blocks: int | None = None, blocks: Sequence[Sequence[int]] | None = None
) -> list[Shard]:
    """The columns of each worker: ``n_blocks`` contiguous blocks of (nearly) equal size, or
    the given ``blocks`` of column indices, checked to cover every column exactly once."""
    if (n_blocks is None) == (blocks is None):
        raise ValueError("give n_blocks (contiguous blocks) or blocks (column indices), not both")
    if blocks is None:
        if not 1 <= n_blocks <= n_features:
            raise ValueError(
                f"n_blocks must be between 1 and the number of features ({n_features}), "
                f"got {n_blocks}"
            )
        return list(np.array_split(np.arange(n_features), n_blocks))
    shards = [np.asarray(block, dtype=np.intp) for block in blocks]
    if any(len(shard) == 0 for shard in shards):
        raise ValueError(f"every block needs at least one column, got {list(map(list, shards))}")
    every = np.sort(np.concatenate(shards))
    if not np.array_equal(every, np.arange(n_features)):
        raise ValueError(
            f"the blocks must hold each of the {n_features} columns exactly once, got "
            f"{[shard.tolist() for shard in shards]}"
        )
    return shards


def split_columns(X: Any, blocks: Sequence[Shard]) -> list[Any]:
    """The column blocks of ``X`` (an array, or a DataFrame that keeps its column names)."""
    if hasattr(X, "iloc"):
        return [X.iloc[:, block] for block in blocks]
    X = np.asarray(X)
    return [X[:, block] for block in blocks]


def partial_scores(X_block: Matrix, weights_block: Matrix) -> Matrix:
    """One worker's term of the scores, ``X_b W_b^T``, shape ``(n_samples, n_outputs)``."""
    return X_block @ weights_block.T


def block_gradient(
    X_block: Matrix, residuals: Matrix, weights_block: Matrix, alpha: float = 0.0
) -> Matrix:
    """The mean gradient of a block's weights over these rows, ``r^T X_b / n``, plus the L2
    term ``alpha W_b`` (the penalty splits by block too)."""
    return residuals.T @ X_block / X_block.shape[0] + alpha * weights_block
