"""Ring all-reduce: N workers sum their vectors by passing chunks to their right neighbour.

A star (a parameter server) makes one machine receive N whole vectors per round. A ring
spreads the work: each of the N workers cuts its vector of d numbers into N chunks and, in
2(N - 1) steps, sends one chunk per step to its right neighbour:

1. **Reduce-scatter** (N - 1 steps): at step s, worker i sends chunk ``(i - s) mod N`` to
   worker ``i + 1``, which adds it to its own copy of that chunk. After the last step worker
   i holds the complete sum of chunk ``(i + 1) mod N``.
2. **All-gather** (N - 1 steps): at step s, worker i forwards the complete chunk
   ``(i + 1 - s) mod N`` to worker ``i + 1``, which replaces its own copy. Afterwards every
   worker holds every complete chunk: the sum of all the vectors.

Each worker sends 2(N - 1) chunks of about d/N numbers: ``2 (N - 1) / N * d`` numbers in all,
almost independent of N, where a star's server receives ``N * d``. Every chunk's sum is
computed once, by one worker, and then copied, so all workers end with the same bits.

:func:`ring_allreduce` is the one-process twin: the same schedule, run in memory, which the
distributed ring must match.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from typing import NamedTuple

import numpy as np

from .._types import Vector

__all__ = [
    "RingPhase",
    "RingStep",
    "chunk_slices",
    "ring_allreduce",
    "ring_bytes_sent",
    "ring_steps",
]


class RingPhase(str, Enum):
    """The two halves of a ring all-reduce."""

    REDUCE_SCATTER = "reduce-scatter"  # add the received chunk to one's own
    ALL_GATHER = "all-gather"  # replace one's own chunk by the received one


class RingStep(NamedTuple):
    """What one worker does at one step: send chunk ``send`` to its right neighbour, and
    receive chunk ``receive`` from its left neighbour (add it, or copy it)."""

    phase: RingPhase
    step: int  # 0 ... N - 2 within the phase
    send: int  # chunk index
    receive: int  # chunk index


def chunk_slices(d: int, n_workers: int) -> list[slice]:
    """Where a vector of ``d`` numbers is cut into ``n_workers`` chunks: ``np.array_split``'s
    boundaries (the first ``d % n_workers`` chunks hold one number more).

    >>> chunk_slices(5, 2)
    [slice(0, 3, None), slice(3, 5, None)]
    """
    sizes = [len(part) for part in np.array_split(np.empty(d), n_workers)]
    bounds = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    return [slice(int(start), int(end)) for start, end in zip(bounds, bounds[1:])]


def ring_steps(position: int, n_workers: int) -> list[RingStep]:
    """The 2(N - 1) steps of the worker at ``position`` (0 ... N - 1) of the ring, in order.

    >>> [(s.send, s.receive) for s in ring_steps(0, 3)]
    [(0, 2), (2, 1), (1, 0), (0, 2)]
    """
    n = n_workers
    reduce_scatter = [
        RingStep(RingPhase.REDUCE_SCATTER, s, (position - s) % n, (position - 1 - s) % n)
        for s in range(n - 1)
    ]
    all_gather = [
        RingStep(RingPhase.ALL_GATHER, s, (position + 1 - s) % n, (position - s) % n)
        for s in range(n - 1)
    ]
    return reduce_scatter + all_gather


def ring_bytes_sent(position: int, d: int, n_workers: int) -> int:
    """Bytes of float64 the worker at ``position`` sends in one all-reduce of ``d`` numbers:
    about ``2 (N - 1) / N * d * 8``, exactly the sizes of the chunks its steps send."""
    slices = chunk_slices(d, n_workers)
    steps = ring_steps(position, n_workers)
    return 8 * sum(slices[step.send].stop - slices[step.send].start for step in steps)


def ring_allreduce(vectors: Sequence[Vector]) -> list[Vector]:
    """Every worker's result of a ring all-reduce of ``vectors`` (one per worker, in ring
    order), run in one process with the distributed ring's schedule and arithmetic.

    Each result equals ``sum(vectors)`` up to rounding, and all are bit-identical.

    >>> ring_allreduce([np.array([1.0, 2.0]), np.array([10.0, 20.0])])[0]
    array([11., 22.])
    """
    n = len(vectors)
    buffers = [np.array(vector, dtype=np.float64) for vector in vectors]
    slices = chunk_slices(len(buffers[0]), n)
    schedules = [ring_steps(position, n) for position in range(n)]
    for index in range(2 * (n - 1)):  # in lockstep: every worker sends, then receives
        sent = [buffers[i][slices[schedules[i][index].send]].copy() for i in range(n)]
        for i in range(n):
            step, chunk = schedules[i][index], sent[(i - 1) % n]  # from the left neighbour
            if step.phase is RingPhase.REDUCE_SCATTER:
                buffers[i][slices[step.receive]] += chunk
            else:
                buffers[i][slices[step.receive]] = chunk
    return buffers
