"""One call sent to several workers at once, and what came back.

:meth:`WorkerClient.broadcast <chimera_nb.masters.client.WorkerClient.broadcast>` starts the
calls and returns a :class:`PendingBroadcast` (flowchart: broadcast); ``await wait()``
collects them (flowchart: wait for reply, timeout or retries) into a :class:`Broadcast`: who
answered, who failed and why, who was not waited for. Failures are data, never an exception:
whether a partial round is good enough is the master's decision (its quorum).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from ..algorithms.rounds import RoundPolicy

__all__ = ["Broadcast", "PendingBroadcast", "after"]

T = TypeVar("T")


@dataclass
class Broadcast(Generic[T]):
    """What came back from one call sent to several workers."""

    results: dict[str, T] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # worker -> why
    latency_ms: dict[str, float] = field(default_factory=dict)
    cancelled: dict[str, str] = field(default_factory=dict)  # not waited for, and why

    @property
    def answered(self) -> list[str]:
        return list(self.results)


class PendingBroadcast(Generic[T]):
    """Calls in flight to several workers (flowchart: broadcast); ``await wait()`` collects
    them (flowchart: wait for reply, timeout or retries)."""

    def __init__(self, tasks: dict[str, asyncio.Task]) -> None:
        self._tasks = tasks

    async def wait(self, policy: RoundPolicy | None = None) -> Broadcast[T]:
        """Every reply and failure; with a ``policy``, only until it closes the round (the
        calls still running are cancelled and listed in ``cancelled``)."""
        running = set(self._tasks.values())
        try:
            if policy is None:  # wait for every call: one wait, no rule to ask
                await asyncio.wait(running)
                running = set()
            else:
                running = await self._until_closed(policy, running)
        except BaseException:  # the fit was abandoned, or its policy failed: so are its calls
            for task in running:
                task.cancel()
            if running:
                await asyncio.wait(running)
            raise
        for task in running:  # the round closed without them
            task.cancel()
        if running:
            await asyncio.wait(running)
        return self._outcome(policy)

    async def _until_closed(self, policy: RoundPolicy, running: set) -> set:
        """Wait for replies one at a time until ``policy`` closes the round (or its deadline
        passes); return the calls still running."""
        started = time.monotonic()
        while running and not self._closes(policy, time.monotonic() - started):
            timeout = None
            if policy.deadline is not None:
                timeout = max(0.0, policy.deadline - (time.monotonic() - started))
            done, running = await asyncio.wait(
                running, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if not done and timeout is not None:
                break  # the deadline passed: the policy closes with what came
        return running

    def _closes(self, policy: RoundPolicy | None, elapsed: float) -> bool:
        if policy is None:
            return False
        answered = [n for n, t in self._tasks.items() if t.done() and _succeeded(t)]
        failed = {n: "" for n, t in self._tasks.items() if t.done() and not _succeeded(t)}
        return policy.closes(answered, failed, len(self._tasks), elapsed)

    def _outcome(self, policy: RoundPolicy | None) -> Broadcast[T]:
        outcome: Broadcast[T] = Broadcast()
        for name, task in self._tasks.items():  # in the order the workers were asked
            if task.cancelled():
                outcome.cancelled[name] = f"not waited for: {policy!r} closed the round"
            elif task.exception() is None:
                outcome.results[name], outcome.latency_ms[name] = task.result()
            else:
                outcome.failed[name] = str(task.exception())
        return outcome


def _succeeded(task: asyncio.Task) -> bool:
    return not task.cancelled() and task.exception() is None


async def after(gate: asyncio.Future, call: Awaitable[T]) -> T:
    """``call``, once ``gate`` is done (every worker of a paced broadcast waits for one gate;
    cancelling the broadcast cancels the gate with it)."""
    await gate
    return await call
