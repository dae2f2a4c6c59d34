"""Consistent hashing: which parameter shard holds which block of the model.

A model's parameters are cut into *blocks* (:class:`ParameterBlocks`: groups of weight
columns, and the bias); S parameter-shard servers hold them. Placing block ``b`` on server
``hash(b) mod S`` would move almost every block when S changes. A **hash ring** moves few:

1. every server is hashed to ``virtual_nodes`` points on a circle of 2**64 positions
   (``"shard-2#0"``, ``"shard-2#1"``, ...);
2. a block is hashed to a point too, and belongs to the first server point clockwise.

A new server takes over only the arcs just before its own points, so adding a fifth server
to four moves about a fifth of the blocks, all of them to the new server; removing a server
hands only its blocks to its neighbours. Many virtual nodes per server even out the arcs
(with one point each, a server's share varies wildly).

The hash is BLAKE2b of the name's UTF-8 bytes, never Python's ``hash()``, which is salted
per process: the master and every worker must compute the same placement.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .._types import Matrix, Vector

__all__ = ["BIAS_BLOCK", "HashRing", "Move", "ParameterBlocks", "stable_hash"]

#: The name of the block that holds the bias (the intercepts).
BIAS_BLOCK = "bias"


def stable_hash(name: str) -> int:
    """A point on the ring for ``name``: the same in every process and on every machine."""
    return int.from_bytes(hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest(), "big")


class Move(NamedTuple):
    """A block that changed server when the ring changed."""

    block: str
    source: str
    target: str


class HashRing:
    """A consistent-hash ring of servers, with ``virtual_nodes`` points per server.

    Parameters
    ----------
    servers : iterable of str
        The servers' names (at least one before :meth:`owner` is asked).
    virtual_nodes : int, default=64
        Points per server on the ring: more points, more even shares.
    blocks : iterable of str, optional
        The blocks the ring places; :meth:`add` and :meth:`remove` say which of them moved.

    Examples
    --------
    >>> ring = HashRing(["shard1", "shard2"], blocks=[f"w{i}" for i in range(6)])
    >>> ring.owner("w0") == ring.placement()["w0"]
    True
    >>> all(move.target == "shard3" for move in ring.add("shard3"))
    True
    """

    def __init__(
        self, servers: Iterable[str] = (), virtual_nodes: int = 64, blocks: Iterable[str] = ()
    ) -> None:
        if virtual_nodes < 1:
            raise ValueError(f"virtual_nodes must be at least 1, got {virtual_nodes}")
        self.virtual_nodes = virtual_nodes
        self.blocks = list(blocks)
        self._points: list[tuple[int, str]] = []  # (position, server), sorted
        self._servers: list[str] = []
        for server in servers:
            self._insert(server)

    @property
    def servers(self) -> list[str]:
        """The servers on the ring, in the order they joined."""
        return list(self._servers)

    def _insert(self, server: str) -> None:
        if server in self._servers:
            raise ValueError(f"server {server!r} is on the ring already")
        self._servers.append(server)
        for index in range(self.virtual_nodes):
            bisect.insort(self._points, (stable_hash(f"{server}#{index}"), server))

    def owner(self, block: str) -> str:
        """The server holding ``block``: the first server point clockwise of its hash."""
        if not self._points:
            raise ValueError("the ring has no servers: add one first")
        position = bisect.bisect_right(self._points, (stable_hash(block), ""))
        return self._points[position % len(self._points)][1]

    def placement(self, blocks: Iterable[str] | None = None) -> dict[str, str]:
        """``{block: server}`` for ``blocks`` (by default the ring's own)."""
        return {block: self.owner(block) for block in (self.blocks if blocks is None else blocks)}

    def add(self, server: str) -> list[Move]:
        """Put ``server`` on the ring; returns the ring's blocks that moved (all to it)."""
        before = self.placement()
        self._insert(server)
        return _moves(before, self.placement())

    def remove(self, server: str) -> list[Move]:
        """Take ``server`` off the ring; returns its blocks, each with its new server."""
        if server not in self._servers:
            raise ValueError(f"server {server!r} is not on the ring ({self._servers})")
        if len(self._servers) == 1:
            raise ValueError(f"cannot remove {server!r}: it is the ring's last server")
        before = self.placement()
        self._servers.remove(server)
        self._points = [point for point in self._points if point[1] != server]
        return _moves(before, self.placement())

    def __repr__(self) -> str:
        return (
            f"HashRing({len(self._servers)} servers, {self.virtual_nodes} virtual nodes each, "
            f"{len(self.blocks)} blocks)"
        )


def _moves(before: Mapping[str, str], after: Mapping[str, str]) -> list[Move]:
    return [
        Move(block, before[block], after[block]) for block in after if before[block] != after[block]
    ]


@dataclass(frozen=True)
class ParameterBlocks:
    """How a linear model's ``(n_outputs, n_features)`` weights and its bias are cut into
    blocks: ``n_blocks`` groups of adjacent columns (``"w0"``, ``"w1"``, ...) and the bias
    (``"bias"``). A block travels as one flat float64 vector (row-major).

    Examples
    --------
    >>> layout = ParameterBlocks(n_outputs=1, n_features=5, n_blocks=2)
    >>> layout.names
    ['w0', 'w1', 'bias']
    >>> weights, bias = layout.join(layout.split(np.arange(5.0).reshape(1, 5), np.ones(1)))
    >>> weights.tolist(), bias.tolist()
    ([[0.0, 1.0, 2.0, 3.0, 4.0]], [1.0])
    """

    n_outputs: int
    n_features: int
    n_blocks: int

    def __post_init__(self) -> None:
        if not 1 <= self.n_blocks <= self.n_features:
            raise ValueError(
                f"n_blocks must be between 1 and n_features = {self.n_features}, "
                f"got {self.n_blocks}"
            )

    @property
    def names(self) -> list[str]:
        """The blocks' names, weight blocks first, then the bias."""
        return [f"w{index}" for index in range(self.n_blocks)] + [BIAS_BLOCK]

    def columns(self, block: str) -> np.ndarray:
        """The weight columns of a weight block (``np.array_split`` of the features)."""
        return self._column_split[int(block[1:])]

    @functools.cached_property
    def _column_split(self) -> list[np.ndarray]:
        # Cut once per layout: a round splits and joins every block.
        return np.array_split(np.arange(self.n_features), self.n_blocks)

    def split(self, weights: Matrix, bias: Vector) -> dict[str, Vector]:
        """``{block: flat vector}`` of a model, or of a gradient."""
        blocks = {name: weights[:, self.columns(name)].ravel() for name in self.names[:-1]}
        blocks[BIAS_BLOCK] = np.asarray(bias, dtype=np.float64).ravel()
        return blocks

    def join(self, blocks: Mapping[str, Vector]) -> tuple[Matrix, Vector]:
        """The weights and bias that :meth:`split` cut into ``blocks`` (every block needed)."""
        missing = [name for name in self.names if name not in blocks]
        if missing:
            raise ValueError(f"blocks {missing} are missing: every block is needed to join")
        weights = np.empty((self.n_outputs, self.n_features))
        for name in self.names[:-1]:
            columns = self.columns(name)
            weights[:, columns] = np.reshape(blocks[name], (self.n_outputs, len(columns)))
        return weights, np.array(blocks[BIAS_BLOCK], dtype=np.float64)
