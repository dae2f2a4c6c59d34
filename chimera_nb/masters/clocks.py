"""Stale-synchronous (SSP) and asynchronous (ASP) training on the parameter server.

In BSP the master broadcasts, waits for every worker and takes one step. Here every worker
has its own loop (flowchart :data:`~.parameter_server_charts.PARAMETER_SERVER_FIT_SSP`):

D. wait until the consistency rule lets it start its next *clock* (SSP(s): at most ``s``
   clocks ahead of the slowest; ASP: at once), then send it the current weights;
E. wait for its gradient (or its failure: it leaves the fit, and the quorum decides);
H. apply the gradient at once, by its share of the samples, so the next worker to read gets
   fresher weights; record its staleness (clocks the weights it read had missed).
I. When every worker has sent its gradient of clock ``c``, the clock *closes*: the master
   recomputes that clock's step with the aggregator (the weighted mean, as a BSP round) from
   the weights of clock ``c``, and
K. re-bases: the new weights are those plus the gradients of later clocks already applied.

With SSP(0) nobody starts clock ``c + 1`` before clock ``c`` closed, so nothing later is
pending at a close and every step is computed exactly as in BSP: the weights are the same,
bit for bit. The fit spends the same gradient budget as BSP (``max_iter`` gradients per
worker); under ASP fast workers spend most of it. A checkpoint holds the weights of the
last closed clock: after a resume, the gradients applied after it are computed again.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass

import numpy as np

from .._exceptions import ChimeraError, WorkerError
from ..algorithms import ShardGradient, l2_penalty
from ..algorithms.consistency import Consistency, staleness_aware
from ..wire import FitStepResult
from .base import Master
from .broadcast import Broadcast
from .client import WorkerClient

__all__ = ["AppliedUpdate", "ClockedRounds"]


@dataclass(frozen=True)
class AppliedUpdate:
    """One gradient the master applied (``master.updates_``), the trace of SSP and ASP.

    ``clock`` counts the worker's gradients from 1 (its round); ``read_clock`` is how many
    clocks had closed when it read the weights; ``staleness = clock - 1 - read_clock``: how
    many clocks ahead of the slowest worker it ran (SSP(s) bounds it by s). ``delay`` is how
    many other gradients were applied while it computed (the staleness of the asynchronous
    SGD literature).
    """

    worker: str
    clock: int
    read_clock: int
    staleness: int
    delay: int
    learning_rate: float
    loss: float
    applied_at: float


@dataclass
class _Arrival:
    """A gradient applied at once and waiting for its clock to close."""

    order: int
    gradient: ShardGradient
    staleness: int
    step: tuple[np.ndarray, np.ndarray]  # what it added to the weights and the bias
    result: FitStepResult
    latency_ms: float


class ClockedRounds:
    """Runs one SSP or ASP fit for ``master`` over ``client``'s workers (see the module)."""

    def __init__(self, master: Master, client: WorkerClient, rule: Consistency) -> None:
        # ``master`` is a ParameterServerMaster: its steps I, J, K and records are reused.
        self.master, self.client, self.rule = master, client, rule
        self.order = list(client.endpoints)  # records list workers in the order asked
        start = master._first_round - 1  # clocks closed before: 0, or a checkpoint's round
        self.clocks = dict.fromkeys(self.order, start)  # gradients applied, per worker
        self.live = dict.fromkeys(self.order)  # who a clock waits for (an ordered set)
        self.sizes = dict(master._expected_samples)  # each worker's share of a step
        self.closed = start  # clocks closed
        self.pending: dict[int, dict[str, _Arrival]] = {}
        self.failures: dict[int, dict[str, str]] = {}  # clock -> who left in it, and why
        self.base = (master._training.weights, master._training.bias)
        self.budget = (master.max_iter - start) * len(self.order)  # as BSP's max_iter rounds
        self.started = 0
        self.arrivals = itertools.count()
        self.stopping, self.converged = False, False
        self.error: ChimeraError | None = None
        self.changed = asyncio.Condition()
        self.tasks: dict[str, asyncio.Task] = {}
        master.updates_ = []

    async def run(self) -> bool:
        """Run until the budget is spent, a clock converges, ``stop()`` or an error; return
        whether it converged."""
        for name in self.order:
            self.tasks[name] = asyncio.ensure_future(self._worker_loop(name))
        try:
            while running := [task for task in self.tasks.values() if not task.done()]:
                # a worker joining mid-fit adds a task; a bug in one loop ends them all
                await asyncio.wait(running, return_when=asyncio.FIRST_EXCEPTION)
                for task in self.tasks.values():
                    if task.done() and not task.cancelled() and task.exception() is not None:
                        raise task.exception()
        finally:
            for task in self.tasks.values():
                task.cancel()
        if self.error is not None:
            raise self.error
        return self.converged

    # -- one worker's loop: D, E, H ---------------------------------------------------------

    async def _worker_loop(self, name: str) -> None:
        master = self.master
        while True:
            async with self.changed:
                await self.changed.wait_for(lambda: self._may_start(name))
            if self._finished(name):
                return
            self._follow_membership()
            if self._finished(name):  # removed from the cluster
                return
            clock, read, version = self.clocks[name], self.closed, len(master.updates_)
            self.started += 1
            weights = master._training.weights  # replaced, never changed in place
            master.events.publish(master._chart, "D", clock + 1, worker=name)
            pacer = self.client.pacer
            if pacer is not None and pacer.active:
                await pacer.before_round()
            step = master._fit_step_for(name, clock + 1)
            master.events.publish(master._chart, "E", clock + 1, worker=name)
            try:
                result, latency = await self.client.fit_step(
                    name, step, round_number=clock + 1, staleness=clock - read
                )
            except WorkerError as error:
                result, failure = None, str(error)
            try:
                if result is None:
                    self._leave(name, failure, clock)
                else:
                    self._apply(name, (clock, read, version), weights, result, latency)
            except ChimeraError as error:  # the fit diverged, or the quorum was lost
                self.error, self.stopping = error, True
            async with self.changed:
                self.changed.notify_all()

    def _may_start(self, name: str) -> bool:
        if self._finished(name):
            return True
        return self.rule.may_start(self.clocks[name], self.closed)

    def _finished(self, name: str) -> bool:
        return (
            self.stopping
            or self.master._stop_requested
            or name not in self.live
            or self.started >= self.budget
        )

    def _apply(
        self,
        name: str,
        read_at: tuple[int, int, int],
        weights_read: np.ndarray,
        result: FitStepResult,
        latency: float,
    ) -> None:
        """H: move the weights by this gradient's share now; keep it for its clock's close.
        ``read_at``: the worker's clock, the clocks closed and the gradients applied when it
        read the weights."""
        master = self.master
        clock, read, version = read_at
        gradient = master._decoded(result)  # a compressed answer is decoded first
        staleness = clock - read
        rate = master._schedule(clock + 1)
        steps_behind = (len(master.updates_) - version) // len(self.live)
        if master.staleness_aware:  # a stale gradient counts for less, here and at the close
            gradient = _scaled(gradient, staleness_aware(1.0, steps_behind))
        self.sizes[name] = gradient.n_samples
        share = gradient.n_samples / sum(self.sizes[n] for n in self.live)
        _, penalty = l2_penalty(weights_read, master.alpha)
        step_rate = -rate * share
        step = (step_rate * (gradient.weights + penalty), step_rate * gradient.bias)
        master._training.weights = master._training.weights + step[0]
        master._training.bias = master._training.bias + step[1]
        arrival = _Arrival(next(self.arrivals), gradient, staleness, step, result, latency)
        self.pending.setdefault(clock, {})[name] = arrival
        self.clocks[name] = clock + 1
        master.updates_.append(
            AppliedUpdate(
                name,
                clock + 1,
                read,
                staleness,
                len(master.updates_) - version,
                staleness_aware(rate, steps_behind) if master.staleness_aware else rate,
                gradient.loss,
                time.time(),
            )
        )
        master.events.publish(master._chart, "H", clock + 1, worker=name, staleness=staleness)
        self._close_clocks()

    def _leave(self, name: str, reason: str, clock: int) -> None:
        """A worker that failed leaves the fit (recorded in its clock's record); the others
        go on if the quorum allows."""
        self.live.pop(name, None)
        self.failures.setdefault(clock, {})[name] = reason
        outcome = Broadcast(results=dict.fromkeys(self.live), failed={name: reason})
        self.master._check_quorum(outcome, len(self.order), f"clock {clock + 1}")
        self._close_clocks()

    # -- I, J, K: a clock closes -----------------------------------------------------------

    def _close_clocks(self) -> None:
        while not self.stopping and self.live:
            arrivals = self.pending.get(self.closed, {})
            if not all(name in arrivals for name in self.live):
                return
            self._close(self.pending.pop(self.closed))

    def _close(self, arrivals: dict[str, _Arrival]) -> None:
        """The clock's step from the weights of its start, computed as a BSP round's; then
        the gradients of later clocks already applied go back on top."""
        master = self.master
        round_number = self.closed + 1
        ordered = {name: arrivals[name] for name in self.order if name in arrivals}
        master._training.weights, master._training.bias = self.base
        gradients = {name: arrival.gradient for name, arrival in ordered.items()}
        gradient, loss = master._aggregate(gradients, round_number)  # I
        converged, update = master._check_convergence(gradient, loss, round_number)  # J
        replies = Broadcast(
            results={name: a.result for name, a in ordered.items()},
            failed=self.failures.pop(self.closed, {}),
            latency_ms={name: a.latency_ms for name, a in ordered.items()},
        )
        record = master._record_round(replies, round_number, loss, update)
        record.extra["staleness"] = {name: a.staleness for name, a in ordered.items()}
        self.closed += 1
        if converged:  # as in BSP: the weights whose gradient was small enough
            self.converged = self.stopping = True
            return
        master._update_model(update, round_number)  # K
        master._maybe_checkpoint(round_number)  # the closed clock's weights, without later ones
        self.base = (master._training.weights, master._training.bias)
        later = sorted(
            (a for clock in self.pending.values() for a in clock.values()), key=lambda a: a.order
        )
        for arrival in later:  # re-base: newer gradients stay applied
            master._training.weights = master._training.weights + arrival.step[0]
            master._training.bias = master._training.bias + arrival.step[1]

    def _follow_membership(self) -> None:
        """Before each step: workers the cluster added join at the current clock; workers it
        removed leave without failing (a clock no longer waits for them)."""
        for name in self.master._follow_membership(self.client, self.closed + 1):
            self._join(name)
        for name in [n for n in self.live if n not in self.client.endpoints]:
            del self.live[name]
        self._close_clocks()

    def _join(self, name: str) -> None:
        """A worker added to the cluster mid-fit starts at the current clock, with the current
        weights (its share: as the others', until it answers)."""
        self.order.append(name)
        self.clocks[name] = self.closed
        self.sizes[name] = int(np.mean([self.sizes[n] for n in self.live] or [1]))
        self.live[name] = None
        self.tasks[name] = asyncio.ensure_future(self._worker_loop(name))


def _scaled(gradient: ShardGradient, factor: float) -> ShardGradient:
    if factor == 1:
        return gradient
    return ShardGradient(
        gradient.weights * factor, gradient.bias * factor, gradient.n_samples, gradient.loss
    )
