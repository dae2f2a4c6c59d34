"""Heartbeats: a cluster asks each of its workers ``GET /health`` every ``interval`` seconds,
in a background thread, and turns the answers (or their absence) into each worker's state.

A worker that does not answer is not known to be dead, only suspected: it may be frozen,
overloaded, or behind a broken link. So a missed heartbeat or two make it SUSPECT, and only
``fail_after`` missed in a row make it FAILED (the trade-off of every failure detector:
declare too early and a slow worker is dropped, too late and a master waits for a dead one).

* UP: it answered within ``slow_after`` seconds;
* SLOW: it answered later than ``slow_after``, or it was slowed on purpose (``slow()``);
* SUSPECT: it missed ``suspect_after`` heartbeats in a row, but fewer than ``fail_after``;
* FAILED: it missed ``fail_after`` in a row, or it is gone (its process exited, its
  container stopped, it was killed or disconnected on purpose): no need to wait for that.

Each change stamps the worker's ``since``, goes to the status log as ``heartbeat: worker w2
failed at 17:42:03.120 (3 heartbeats missed)``, and to the cluster's fault listeners (a
dashboard). A heartbeat costs one small ``GET`` per worker; whether a worker is gone (a call
to the Docker engine, for containers) is asked only after a missed heartbeat.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

import httpx

from .._exceptions import ConfigurationError
from ..logs import status_logger
from ..states import WorkerFault, WorkerState
from ._health import answers_health, health_client
from ._records import WorkerRecord

__all__ = ["HeartbeatSettings", "Heartbeats", "MemberStatus", "clock"]

_MAX_PROBES = 8  # heartbeats in flight at once; more workers wait for a free thread
_JOIN_GRACE = 5.0  # seconds, beyond one heartbeat's timeout, for the thread to end
_NOT_BEATING = (WorkerState.STARTING, WorkerState.STOPPED)  # being (re)started, or stopped
_DOWN_ON_PURPOSE = (WorkerFault.KILLED, WorkerFault.DISCONNECTED)


def clock(timestamp: float | None) -> str:
    """A ``time.time()`` as a wall-clock time to the millisecond: ``"17:42:03.120"``."""
    if timestamp is None:
        return "never"
    return datetime.fromtimestamp(timestamp).strftime("%H:%M:%S.%f")[:-3]


@dataclass(frozen=True)
class MemberStatus:
    """One worker as ``cluster.membership()`` shows it."""

    state: WorkerState
    since: float  #: when this state began, as a ``time.time()``
    last_heartbeat: float | None  #: when it last answered a heartbeat (None: not yet)
    missed: int  #: heartbeats missed in a row

    def __repr__(self) -> str:
        return (
            f"MemberStatus({self.state.value} since {clock(self.since)}, last heartbeat "
            f"{clock(self.last_heartbeat)}, {self.missed} missed)"
        )


@dataclass(frozen=True)
class HeartbeatSettings:
    """How often a cluster sends heartbeats, and how it judges the answers.

    Parameters
    ----------
    interval : float
        Seconds between two heartbeats to a worker (more when a heartbeat waits ``timeout``).
    suspect_after : int
        Heartbeats missed in a row that make a worker SUSPECT.
    fail_after : int
        Heartbeats missed in a row that make it FAILED (at least ``suspect_after``).
    slow_after : float
        Seconds: an answer later than this makes a worker SLOW.
    timeout : float
        Seconds to wait for one answer before the heartbeat counts as missed.
    """

    interval: float = 0.5
    suspect_after: int = 1
    fail_after: int = 3
    slow_after: float = 0.25
    timeout: float = 1.0

    def __post_init__(self) -> None:
        for field in ("interval", "slow_after", "timeout"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigurationError(f"{field} must be a number of seconds, got {value!r}.")
            if not (math.isfinite(value) and value > 0):
                raise ConfigurationError(f"{field} must be > 0 seconds, got {value!r}.")
        for field in ("suspect_after", "fail_after"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(
                    f"{field} must be a whole number of heartbeats, at least 1, got {value!r}."
                )
        if self.suspect_after > self.fail_after:
            raise ConfigurationError(
                f"suspect_after ({self.suspect_after}) must not exceed fail_after "
                f"({self.fail_after}): a worker is suspected before it is declared failed."
            )


class Heartbeats:
    """The thread that sends one cluster's heartbeats, from creation until :meth:`stop`.

    Parameters
    ----------
    name : str
        The cluster's name, in the thread's name.
    settings : HeartbeatSettings
    members : callable
        The records of the workers to ask now (the cluster's members).
    gone : callable
        ``gone(worker)`` says why a worker can never answer again (or None).
    announce : callable
        Called with a worker whose state the heartbeats changed (the fault listeners).
    """

    def __init__(
        self,
        name: str,
        settings: HeartbeatSettings,
        members: Callable[[], list[WorkerRecord]],
        gone: Callable[[WorkerRecord], str | None],
        announce: Callable[[WorkerRecord], None],
    ) -> None:
        self.settings = settings
        self._members, self._gone, self._announce = members, gone, announce
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"chimera-heartbeat-{name}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """End the thread (and its probes), waiting at most one heartbeat's timeout."""
        self._stopping.set()
        if self._thread is not threading.current_thread():  # a listener may close the cluster
            self._thread.join(self.settings.timeout + _JOIN_GRACE)

    def _run(self) -> None:
        prefix = f"{self._thread.name}-probe"
        with health_client() as client, ThreadPoolExecutor(_MAX_PROBES, prefix) as pool:
            while not self._stopping.is_set():
                began = time.monotonic()
                try:
                    self._beat(client, pool)
                except Exception:  # one bad beat (a broken listener...) must not end them all
                    status_logger.exception("heartbeat: a round of heartbeats failed")
                self._stopping.wait(max(0.0, self.settings.interval - (time.monotonic() - began)))

    def _beat(self, client: httpx.Client, pool: ThreadPoolExecutor) -> None:
        """One heartbeat to every member at once; then judge each answer."""
        workers = [worker for worker in self._members() if worker.state not in _NOT_BEATING]
        latencies = list(pool.map(lambda worker: self._ask(client, worker), workers))
        now = time.time()
        for worker, latency in zip(workers, latencies):
            if self._stopping.is_set():
                return  # the cluster is closing: its workers stop, which is no failure
            if not worker.member or worker.state in _NOT_BEATING:
                continue  # removed or restarted meanwhile
            state, why = self._judge(worker, latency, now)
            if state is worker.state:
                continue
            worker.state = state
            level = logging.INFO if state in (WorkerState.UP, WorkerState.SLOW) else logging.WARNING
            status_logger.log(
                level,
                "heartbeat: worker %s %s at %s (%s)",
                worker.name,
                state.value,
                clock(worker.since),
                why,
            )
            self._announce(worker)

    def _ask(self, client: httpx.Client, worker: WorkerRecord) -> float | None:
        """Seconds the worker took to answer ``GET /health``, or None if it did not."""
        began = time.monotonic()
        if answers_health(client, worker.url, self.settings.timeout):
            return time.monotonic() - began
        return None

    def _judge(
        self, worker: WorkerRecord, latency: float | None, now: float
    ) -> tuple[WorkerState, str]:
        """The worker's state after this heartbeat, and why (for the status log)."""
        if latency is not None:
            worker.missed, worker.last_heartbeat = 0, now
            answered = f"answered in {latency * 1000:.0f} ms"
            if worker.delay:
                return WorkerState.SLOW, f"{answered}; slowed by {worker.delay:g} s"
            slow = latency > self.settings.slow_after
            return (WorkerState.SLOW if slow else WorkerState.UP), answered
        worker.missed += 1
        missed = f"{worker.missed} heartbeat{'' if worker.missed == 1 else 's'} missed"
        if worker.fault in _DOWN_ON_PURPOSE:
            return WorkerState.FAILED, f"{missed}; it was {worker.fault.value}"
        if self._gone(worker):
            return WorkerState.FAILED, f"{missed}; it is no longer running"
        if worker.missed >= self.settings.fail_after:
            return WorkerState.FAILED, missed
        if worker.missed >= self.settings.suspect_after:
            return WorkerState.SUSPECT, missed
        return worker.state, missed
