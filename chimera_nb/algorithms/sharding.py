"""Ways to split a dataset's rows into shards, one shard per worker.

Each function returns a list of index arrays (one :data:`~chimera_nb._types.Shard` per
worker) that together cover every row exactly once; :func:`split` applies them to ``X, y``.

Federated learning's clients rarely hold IID data: :func:`dirichlet_shards` (label skew of
a tunable strength), :func:`label_shards` (each client sees only a few labels) and
:func:`quantity_skew` (clients of very different sizes) make the usual non-IID splits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Literal

import numpy as np

from .._types import Shard

__all__ = [
    "contiguous_shards",
    "dirichlet_shards",
    "hash_shards",
    "label_shards",
    "quantity_skew",
    "random_shards",
    "range_shards",
    "split",
]

_DIRICHLET_ATTEMPTS = 100  # draws before dirichlet_shards gives up on a split with no empty shard


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


def dirichlet_shards(
    y: Sequence[object], n_shards: int, alpha: float, random_state: int | None = None
) -> list[Shard]:
    """Label skew: for each class, the shares of its rows that go to each shard are drawn
    from ``Dirichlet(alpha, ..., alpha)`` (Hsu, Qi and Brown 2019, "Measuring the effects of
    non-identical data distribution for federated visual classification").

    Small ``alpha`` (0.1) gives most of a class to one or two shards; large ``alpha`` (100)
    gives every shard nearly the same share of every class, as an IID split. A draw that
    leaves a shard empty is drawn again (at most 100 times; then a ValueError).
    """
    labels = np.asarray(y)
    _check_n_shards(len(labels), n_shards)
    if not alpha > 0:
        raise ValueError(f"alpha must be a positive number, got {alpha}")
    rng = np.random.default_rng(random_state)
    for _ in range(_DIRICHLET_ATTEMPTS):
        parts: list[list[np.ndarray]] = [[] for _ in range(n_shards)]
        for label in np.unique(labels):
            rows = rng.permutation(np.flatnonzero(labels == label))
            shares = rng.dirichlet(np.full(n_shards, float(alpha)))
            cuts = (np.cumsum(shares)[:-1] * len(rows)).astype(int)
            for shard, block in enumerate(np.split(rows, cuts)):
                parts[shard].append(block)
        shards = [np.sort(np.concatenate(blocks)) for blocks in parts]
        if all(len(shard) for shard in shards):
            return shards
    raise ValueError(
        f"Dirichlet({alpha}) left a shard empty in {_DIRICHLET_ATTEMPTS} draws: use fewer "
        f"shards than {n_shards}, or a larger alpha"
    )


def label_shards(
    y: Sequence[object], n_shards: int, labels_per_worker: int, random_state: int | None = None
) -> list[Shard]:
    """Pathological non-IID: each shard holds rows of exactly ``labels_per_worker`` labels
    (McMahan et al. 2017, "Communication-efficient learning of deep networks from
    decentralized data", gave each client two digits of MNIST).

    The labels are shuffled and dealt round-robin, ``labels_per_worker`` to each shard, so
    every label has a holder when ``n_shards * labels_per_worker >= n_labels``; a label's rows
    are split evenly among the shards that hold it.
    """
    labels = np.asarray(y)
    _check_n_shards(len(labels), n_shards)
    classes = np.unique(labels)
    if not 1 <= labels_per_worker <= len(classes):
        raise ValueError(
            f"labels_per_worker must be between 1 and the number of labels ({len(classes)}), "
            f"got {labels_per_worker}"
        )
    if n_shards * labels_per_worker < len(classes):
        raise ValueError(
            f"{n_shards} shards of {labels_per_worker} labels each cannot hold all "
            f"{len(classes)} labels: raise labels_per_worker to at least "
            f"{-(-len(classes) // n_shards)}"
        )
    rng = np.random.default_rng(random_state)
    order = rng.permutation(classes)
    holders: dict[object, list[int]] = {label: [] for label in classes}
    for shard in range(n_shards):  # round-robin: shard k gets the next labels_per_worker
        for slot in range(labels_per_worker):
            holders[order[(shard * labels_per_worker + slot) % len(classes)]].append(shard)
    parts: list[list[np.ndarray]] = [[] for _ in range(n_shards)]
    for label, shards in holders.items():
        rows = rng.permutation(np.flatnonzero(labels == label))
        if len(rows) < len(shards):
            raise ValueError(
                f"label {label!r} has {len(rows)} rows for {len(shards)} shards that hold it: "
                "use fewer shards or fewer labels_per_worker"
            )
        for shard, block in zip(shards, np.array_split(rows, len(shards))):
            parts[shard].append(block)
    return [np.sort(np.concatenate(blocks)) for blocks in parts]


def quantity_skew(
    n_samples: int,
    n_shards: int,
    alpha: float | None = None,
    *,
    ratios: Sequence[float] | None = None,
    random_state: int | None = None,
) -> list[Shard]:
    """Rows dealt at random (IID labels) into shards of unequal sizes: sizes in the given
    ``ratios``, or drawn from ``Dirichlet(alpha)`` (small alpha: a few large clients and
    many small ones). Every shard gets at least one row."""
    _check_n_shards(n_samples, n_shards)
    if (alpha is None) == (ratios is None):
        raise ValueError("quantity_skew needs exactly one of alpha and ratios")
    rng = np.random.default_rng(random_state)
    if ratios is None:
        if not alpha > 0:
            raise ValueError(f"alpha must be a positive number, got {alpha}")
        sizes = 1 + rng.multinomial(n_samples - n_shards, rng.dirichlet(np.full(n_shards, alpha)))
        cuts = np.cumsum(sizes)[:-1]
        permutation = rng.permutation(n_samples)
        return [np.sort(shard) for shard in np.split(permutation, cuts)]
    permutation = rng.permutation(n_samples)
    blocks = contiguous_shards(n_samples, n_shards, ratios)
    return [np.sort(permutation[block]) for block in blocks]


Method = Literal["contiguous", "random", "dirichlet", "by_label", "quantity"]


def split(
    X,
    y,
    n_shards: int,
    method: Method = "contiguous",
    *,
    proportions: Sequence[float] | None = None,
    random_state: int | None = None,
    alpha: float | None = None,
    labels_per_worker: int | None = None,
) -> list[tuple]:
    """Split ``X`` and ``y`` (arrays or pandas objects) into ``n_shards`` ``(X_k, y_k)`` pairs.

    ``method``: ``"contiguous"`` (blocks, sized by ``proportions``), ``"random"`` (IID),
    ``"dirichlet"`` (label skew, needs ``alpha``), ``"by_label"`` (needs
    ``labels_per_worker``) or ``"quantity"`` (sizes from ``alpha`` or ``proportions``).
    """
    if method == "contiguous":
        shards = contiguous_shards(len(X), n_shards, proportions)
    elif method == "random":
        shards = random_shards(len(X), n_shards, random_state)
    elif method == "dirichlet":
        if alpha is None:
            raise ValueError("method='dirichlet' needs alpha (e.g. alpha=0.1: strong label skew)")
        shards = dirichlet_shards(y, n_shards, alpha, random_state)
    elif method == "by_label":
        if labels_per_worker is None:
            raise ValueError("method='by_label' needs labels_per_worker (e.g. 2)")
        shards = label_shards(y, n_shards, labels_per_worker, random_state)
    elif method == "quantity":
        shards = quantity_skew(
            len(X), n_shards, alpha, ratios=proportions, random_state=random_state
        )
    else:
        raise ValueError(
            f"method must be 'contiguous' or 'random', got {method!r} (or, for non-IID "
            "shards: 'dirichlet', 'by_label' or 'quantity')"
        )
    return [(_take(X, shard), _take(y, shard)) for shard in shards]


def _take(data, rows: Shard):
    return data.iloc[rows] if hasattr(data, "iloc") else np.asarray(data)[rows]
