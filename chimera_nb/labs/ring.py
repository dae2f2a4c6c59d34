"""A ring all-reduce in one process, built from a student's two step functions (lab 5).

The student writes one step of each phase of the ring all-reduce
(:mod:`chimera_nb.algorithms.ring`) as a pure function::

    reduce_scatter_step(chunks, received, position, step) -> (chunks, send)
    all_gather_step(chunks, received, position, step) -> (chunks, send)

:func:`ring_allreduce_with` runs them for every worker of a ring, in lockstep, as
:func:`~chimera_nb.algorithms.ring.ring_allreduce` runs the kit's: at step 0 each worker
sends its own chunk (``position``), then at every step each worker receives the chunk its
left neighbour sent, and the student's function says what it holds now and what it sends
next. As on a real ring (:class:`~chimera_nb.labs.LabRingWorker`), a worker refuses a chunk
it did not expect, so a wrong index fails at the step where it is sent, in words.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..algorithms.ring import RingPhase, chunk_slices, ring_steps
from .contracts import ContractError, check_ring_step

__all__ = ["ring_allreduce_with"]


def _name(function: Callable) -> str:
    return getattr(function, "__name__", repr(function))


def ring_allreduce_with(
    reduce_scatter_step: Callable, all_gather_step: Callable, vectors: Sequence[np.ndarray]
) -> list[np.ndarray]:
    """Every worker's result of a ring all-reduce of ``vectors`` (one per worker, in ring
    order) whose steps are your functions; each should equal ``sum(vectors)``.

    Raises :class:`~chimera_nb.labs.contracts.ContractError` saying what is wrong when a
    function returns something the ring cannot use, or names a chunk the right neighbour
    does not expect; your own code's errors are raised as they are.

    Examples
    --------
    >>> ring_allreduce_with(reduce_scatter_step, all_gather_step, [np.ones(4), np.ones(4)])  # doctest: +SKIP
    [array([2., 2., 2., 2.]), array([2., 2., 2., 2.])]
    """
    n = len(vectors)
    if n < 2:
        raise ValueError(f"a ring needs 2 workers or more, got {n} vectors")
    slices = chunk_slices(len(vectors[0]), n)
    chunks = [[np.array(vector, dtype=np.float64)[part] for part in slices] for vector in vectors]
    sizes = [part.stop - part.start for part in slices]
    schedules = [ring_steps(position, n) for position in range(n)]
    send = list(range(n))  # at step 0 of reduce-scatter, each worker sends its own chunk
    said_by = [""] * n  # whose answer named the chunk each worker sends
    functions = {
        RingPhase.REDUCE_SCATTER: reduce_scatter_step,
        RingPhase.ALL_GATHER: all_gather_step,
    }
    for index in range(2 * (n - 1)):  # every worker sends, then every worker receives
        sending, said = send.copy(), said_by.copy()  # what each worker sends at this step
        sent = [chunks[i][sending[i]].copy() for i in range(n)]
        for i in range(n):
            step, left = schedules[i][index], (i - 1) % n
            function = functions[step.phase]
            if sending[left] != step.receive:
                raise ContractError(
                    f"in a ring of {n}, worker {left} sent chunk {sending[left]} at "
                    f"{step.phase.value} step {step.step} (the chunk your {said[left]} "
                    f"said to send next), but its right neighbour, worker {i}, expected chunk "
                    f"{step.receive}: the ring is out of step"
                )
            answer = function([c.copy() for c in chunks[i]], sent[left], i, step.step)
            chunks[i], send[i] = check_ring_step(answer, _name(function), sizes)
            said_by[i] = _name(function)
    return [np.concatenate(worker_chunks) for worker_chunks in chunks]
