"""Ways to split a dataset's rows into shards, one shard per worker.

Each function returns a list of index arrays (one :data:`~chimera_nb._types.Shard` per
worker) that together cover every row exactly once; :func:`split` applies them to ``X, y``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Literal

import numpy as np

from .._types import Shard

__all__ = ["contiguous_shards", "hash_shards", "random_shards", "range_shards", "split"]


def _check_n_shards(n_samples: int, n_shards: int) -> None:
    if not 1 <= n_shards <= n_samples:
        raise ValueError(
            f"n_shards must be between 1 and the number of samples ({n_samples}), got {n_shards}"
        )


def contiguous_shards(
    n_samples: int, n_shards: int, proportions: Sequence[float] | None = None
) -> list[Shard]:
    """Consecutive blocks of rows: equal sizes, or sizes in the given ``proportions``
    (e.g. ``[0.5, 0.3, 0.2]``) to model unequal workers."""
    _check_n_shards(n_samples, n_shards)
    if proportions is None:
        return list(np.array_split(np.arange(n_samples), n_shards))
    proportions = np.asarray(proportions, dtype=np.float64)
    if len(proportions) != n_shards or np.any(proportions <= 0):
        raise ValueError(f"proportions must be {n_shards} positive numbers, got {proportions}")
    cuts = np.round(np.cumsum(proportions)[:-1] / proportions.sum() * n_samples).astype(int)
    shards = np.split(np.arange(n_samples), cuts)
    if any(len(shard) == 0 for shard in shards):
        raise ValueError(f"proportions {list(proportions)} leave a shard empty")
    return shards


def random_shards(n_samples: int, n_shards: int, random_state: int | None = None) -> list[Shard]:
    """A random permutation of the rows, cut into equal blocks (the IID split)."""
    _check_n_shards(n_samples, n_shards)
    permutation = np.random.default_rng(random_state).permutation(n_samples)
    return [np.sort(shard) for shard in np.array_split(permutation, n_shards)]


def hash_shards(keys: Sequence[object], n_shards: int) -> list[Shard]:
    """Each row goes to ``hash(key) mod n_shards``: the same key always lands on the same
    worker, in every run and every process (a stable hash, not Python's salted ``hash``)."""
    _check_n_shards(len(keys), n_shards)
    buckets = np.array(
        [
            int.from_bytes(hashlib.blake2b(str(key).encode(), digest_size=8).digest(), "big")
            % n_shards
            for key in keys
        ]
    )
    return [np.flatnonzero(buckets == shard) for shard in range(n_shards)]


def range_shards(values: Sequence[float], boundaries: Sequence[float]) -> list[Shard]:
    """Rows with ``values`` below ``boundaries[0]`` go to shard 0, then one shard per
    interval: ``len(boundaries) + 1`` shards, as a range-partitioned table (often non-IID)."""
    values = np.asarray(values)
    boundaries = np.asarray(boundaries)
    if np.any(np.diff(boundaries) <= 0):
        raise ValueError(f"boundaries must increase strictly, got {list(boundaries)}")
    bucket = np.searchsorted(boundaries, values, side="right")
    return [np.flatnonzero(bucket == shard) for shard in range(len(boundaries) + 1)]


def split(
    X,
    y,
    n_shards: int,
    method: Literal["contiguous", "random"] = "contiguous",
    *,
    proportions: Sequence[float] | None = None,
    random_state: int | None = None,
) -> list[tuple]:
    """Split ``X`` and ``y`` (arrays or pandas objects) into ``n_shards`` ``(X_k, y_k)`` pairs."""
    if method == "contiguous":
        shards = contiguous_shards(len(X), n_shards, proportions)
    elif method == "random":
        shards = random_shards(len(X), n_shards, random_state)
    else:
        raise ValueError(f"method must be 'contiguous' or 'random', got {method!r}")
    return [(_take(X, shard), _take(y, shard)) for shard in shards]


def _take(data, rows: Shard):
    return data.iloc[rows] if hasattr(data, "iloc") else np.asarray(data)[rows]
