"""Gradient compression: fewer bytes per gradient, encoded by the worker, decoded by the master.

A worker that sends its whole gradient sends ``d`` float64 values, ``8 d`` bytes, every round.
Two classic ways to send less:

- **Top-k sparsification** (:class:`TopK`) sends only the ``k`` coordinates of largest
  magnitude, as (index, value) pairs. On its own it is biased: a coordinate that is never
  among the largest is never sent, however long it stays nonzero. **Error feedback** fixes
  it: the worker keeps what it did not send (the residual ``r``), adds it to the next
  gradient, and compresses the sum, so every part of every gradient is sent eventually
  (Stich, Cordonnier and Jaggi, "Sparsified SGD with memory", NeurIPS 2018; Karimireddy et
  al., "Error feedback fixes SignSGD and other gradient compression schemes", ICML 2019).
- **Stochastic quantization** (:class:`QSGD`) sends the norm once and each coordinate as a
  sign and a small integer level, rounded up or down at random so that the decoded vector
  is right on average (Alistarh et al., "QSGD: communication-efficient SGD via gradient
  quantization and encoding", NeurIPS 2017).

Both are encoders with the same two methods: ``encode(vector, state, rng)`` on the worker
and ``decode(compressed)`` on the master, who then aggregates dense gradients as before.
``state`` is the worker's memory between rounds (the residual of error feedback); it is the
only thing ``encode`` changes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, Union

import numpy as np

__all__ = [
    "QSGD",
    "Compressed",
    "Compressor",
    "EncoderState",
    "QuantizedVector",
    "SparseVector",
    "TopK",
]


@dataclass
class SparseVector:
    """A vector of ``size`` values that are zero except at ``indices``."""

    size: int
    indices: np.ndarray  # (k,) uint32, increasing
    values: np.ndarray  # (k,) float64

    def dense(self) -> np.ndarray:
        vector = np.zeros(self.size)
        vector[self.indices] = self.values
        return vector


@dataclass
class QuantizedVector:
    """A vector stored as ``norm * sign * level / n_levels`` per coordinate."""

    norm: float
    levels: np.ndarray  # (size,) uint8, each in 0 .. n_levels
    negative: np.ndarray  # (size,) bool: the sign of each coordinate
    bits: int  # levels take this many bits: n_levels = 2**bits - 1

    @property
    def size(self) -> int:
        return len(self.levels)

    @property
    def n_levels(self) -> int:
        return 2**self.bits - 1

    def dense(self) -> np.ndarray:
        magnitude = self.norm * self.levels.astype(np.float64) / self.n_levels
        return np.where(self.negative, -magnitude, magnitude)


Compressed = Union[SparseVector, QuantizedVector]


@dataclass
class EncoderState:
    """What a worker remembers between rounds of one fit: the residual of error feedback
    (None until the first round)."""

    residual: np.ndarray | None = None


class Compressor(Protocol):
    """What an encoder does: compress on the worker, expand on the master."""

    def encode(
        self, vector: np.ndarray, state: EncoderState, rng: np.random.Generator
    ) -> Compressed: ...

    def decode(self, compressed: Compressed) -> np.ndarray: ...


@dataclass(frozen=True)
class TopK:
    """Send the ``k = ceil(ratio * d)`` largest-magnitude coordinates (at least one).

    Parameters
    ----------
    ratio : float in (0, 1]
        The share of coordinates sent each round.
    error_feedback : bool, default=True
        Keep what was not sent and add it to the next gradient (see the module docstring):
        what has been sent plus the residual is then, after every round, exactly the sum of
        the gradients so far.

    Examples
    --------
    >>> import numpy as np
    >>> TopK(0.5).encode(np.array([0.1, -3.0, 2.0, 0.5]), EncoderState(), None).indices
    array([1, 2], dtype=uint32)
    """

    ratio: float
    error_feedback: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.ratio <= 1:
            raise ValueError(f"TopK's ratio must be in (0, 1], got {self.ratio!r}")

    def k(self, size: int) -> int:
        """How many of ``size`` coordinates are sent: ceil, so that 1% of 12 is 1, not 0."""
        return max(1, min(size, math.ceil(self.ratio * size - 1e-9)))

    def encode(
        self, vector: np.ndarray, state: EncoderState, rng: np.random.Generator | None = None
    ) -> SparseVector:
        """The top-k of ``vector`` (plus the residual, with error feedback); ``rng`` unused."""
        corrected = np.asarray(vector, dtype=np.float64)
        if self.error_feedback and state.residual is not None:
            corrected = corrected + state.residual  # what earlier rounds still owe
        k = self.k(corrected.size)
        # argpartition finds the k largest in O(d); sorting them gives a canonical order
        indices = np.sort(np.argpartition(-np.abs(corrected), k - 1)[:k]).astype(np.uint32)
        sent = SparseVector(corrected.size, indices, corrected[indices].copy())
        if self.error_feedback:
            residual = corrected.copy()
            residual[indices] = 0.0  # exactly corrected - sent: the sent values are copies
            state.residual = residual
        return sent

    def decode(self, compressed: Compressed) -> np.ndarray:
        return compressed.dense()


@dataclass(frozen=True)
class QSGD:
    """Stochastic quantization to ``2**bits - 1`` levels per sign (Alistarh et al. 2017).

    Coordinate ``v_i`` is sent as ``sign(v_i)`` and a level ``l_i`` in ``0 .. s`` (``s = 2**bits
    - 1``): with ``x = s |v_i| / ||v||``, ``l_i = floor(x) + 1`` with probability ``x -
    floor(x)``, else ``floor(x)``. The master reads ``||v|| sign(v_i) l_i / s``, whose
    expectation is ``v_i``: unbiased, so no residual is needed (its variance is the price).

    Parameters
    ----------
    bits : {8, 4}, default=8
        Bits per level (plus one per sign, and 8 bytes for the norm).
    """

    bits: int = 8

    def __post_init__(self) -> None:
        if self.bits not in (4, 8):
            raise ValueError(f"QSGD's bits must be 8 or 4, got {self.bits!r}")

    @property
    def n_levels(self) -> int:
        return 2**self.bits - 1

    def encode(
        self, vector: np.ndarray, state: EncoderState, rng: np.random.Generator
    ) -> QuantizedVector:
        """Quantize ``vector``, rounding with ``rng``; ``state`` unused (QSGD is unbiased)."""
        vector = np.asarray(vector, dtype=np.float64)
        norm = float(np.linalg.norm(vector))
        if norm == 0.0:
            scaled = np.zeros_like(vector)
        else:
            scaled = np.minimum(np.abs(vector) / norm * self.n_levels, self.n_levels)
        lower = np.floor(scaled)
        up = rng.random(vector.size) < scaled - lower  # round up with probability x - floor(x)
        levels = (lower + up).astype(np.uint8)
        return QuantizedVector(norm, levels, vector < 0, self.bits)

    def decode(self, compressed: Compressed) -> np.ndarray:
        return compressed.dense()
