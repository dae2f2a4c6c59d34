"""What a lecturer does to one running worker, on every backend alike: crash it, freeze
it, slow it down, pull its cable, bring it back.

:class:`WorkerFaults` is the part of :class:`~chimera_nb.cluster.BaseCluster` that keeps the
books (a worker's :class:`~chimera_nb.states.WorkerFault`, its state, a line in
``chimera_status.log``); a backend says how, in ``_kill``, ``_pause``, ``_unpause``,
``_disconnect`` and ``_reconnect``. What a backend cannot cause raises a
:class:`~chimera_nb.ClusterError` that says what works instead. :meth:`~WorkerFaults.slow`
works over HTTP, so on every backend.

Whoever watches the cluster (a notebook's dashboard) is told of every change at once, from
whichever cell or button made it: :meth:`~WorkerFaults.on_fault`.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import TYPE_CHECKING

import httpx

from .._exceptions import ClusterError, ConfigurationError
from ..auth import bearer_header
from ..logs import status_logger
from ..states import WorkerFault, WorkerState
from ..wire import paths
from ._health import health_client

if TYPE_CHECKING:
    from ._records import WorkerRecord

__all__ = ["FaultListener", "WorkerFaults"]

_FAULT_TIMEOUT = 10.0  # seconds for a worker to accept a delay (slow())

#: Called as ``listener(name, state, fault, delay)`` after a fault method changed a worker.
FaultListener = Callable[[str, WorkerState, WorkerFault | None, float], None]


class WorkerFaults:
    """The fault methods of every cluster (a part of :class:`BaseCluster`)."""

    _fault_listeners: tuple[FaultListener, ...] = ()

    def on_fault(self, listener: FaultListener) -> Callable[[], None]:
        """Call ``listener(name, state, fault, delay)`` after every kill, pause, unpause,
        slow, disconnect, reconnect and restart, in the thread that made the call (be quick);
        returns a function that unsubscribes. A dashboard shows a change made from any cell
        at once, without waiting for its next ``status()`` probe."""
        self._fault_listeners = (*self._fault_listeners, listener)

        def unsubscribe() -> None:
            self._fault_listeners = tuple(f for f in self._fault_listeners if f is not listener)

        return unsubscribe

    def _announce(self, worker: WorkerRecord) -> None:
        for listener in self._fault_listeners:
            try:
                listener(worker.name, worker.state, worker.fault, worker.delay)
            except Exception:  # a broken view must not break a fault call
                status_logger.exception("fault listener %r failed", listener)

    def kill(self, name: str, sig: int | str = signal.SIGKILL) -> None:
        """Send a signal to one worker: SIGKILL (the default) crashes it, and it shows
        FAILED until :meth:`restart`."""
        worker = self._running_worker(name, "kill a worker")
        if self._kill(worker, sig):
            worker.fault, worker.state = WorkerFault.KILLED, WorkerState.FAILED
        status_logger.warning("fault: sent %s to worker %s", getattr(sig, "name", sig), name)
        self._announce(worker)

    def pause(self, name: str) -> None:
        """Freeze one worker: it holds every request until :meth:`unpause`, so a master
        waits for it, then times out. It shows SLOW."""
        worker = self._running_worker(name, "pause a worker")
        self._pause(worker)
        worker.fault, worker.state = WorkerFault.PAUSED, WorkerState.SLOW
        status_logger.warning("fault: paused worker %s", name)
        self._announce(worker)

    def unpause(self, name: str) -> None:
        """Thaw a paused worker: it answers the requests it held, late."""
        worker = self._running_worker(name, "unpause a worker")
        self._unpause(worker)
        if worker.fault is WorkerFault.PAUSED:
            worker.fault = None
            worker.state = WorkerState.SLOW if worker.delay else WorkerState.UP
        status_logger.warning("fault: unpaused worker %s", name)
        self._announce(worker)

    def slow(self, name: str, seconds: float) -> None:
        """Make one worker a straggler: it answers every training call ``seconds`` later
        (0 makes it normal again). It then shows SLOW in :meth:`status`. Works over HTTP,
        so on every backend."""
        worker = self._running_worker(name, "slow down a worker")
        try:
            with health_client() as client:
                answer = client.post(
                    worker.url + paths.FAULTS_DELAY,
                    json={"seconds": seconds},
                    headers=bearer_header(self._token),
                    timeout=_FAULT_TIMEOUT,
                )
        except httpx.HTTPError as error:
            raise ClusterError(
                f"Cannot slow down worker {name!r}: it did not answer ({type(error).__name__}). "
                f"Call status() to see whether it is up; restart({name!r}) brings it back."
            ) from None
        if answer.status_code != 200:
            raise ConfigurationError(f"Worker {name!r} refused the delay: {answer.text}")
        worker.delay = seconds
        if worker.fault is None:
            worker.state = WorkerState.SLOW if seconds else WorkerState.UP
        status_logger.warning("fault: worker %s answers %g s late", name, seconds)
        self._announce(worker)

    def disconnect(self, name: str) -> None:
        """Take one worker off its network (a cable pulled): calls to it are refused until
        :meth:`reconnect`. It shows FAILED."""
        worker = self._running_worker(name, "disconnect a worker")
        self._disconnect(worker)
        worker.fault, worker.state = WorkerFault.DISCONNECTED, WorkerState.FAILED
        status_logger.warning("fault: disconnected worker %s", name)
        self._announce(worker)

    def reconnect(self, name: str) -> None:
        """Put a disconnected worker back on its network, at the same URL, and wait until
        it answers ``GET /health``."""
        worker = self._running_worker(name, "reconnect a worker")
        self._reconnect(worker)
        worker.fault = None
        self._raise_unless_up([worker], f"Call restart({name!r}) to start it afresh.")
        status_logger.warning("fault: reconnected worker %s", name)
        self._announce(worker)

    def restart(self, name: str) -> None:
        """Stop the worker if it still runs, start the same target at the same URL (faults
        and delays cleared), and wait until it answers ``GET /health``."""
        worker = self._running_worker(name, "restart a worker")
        self._stop_workers([worker])
        self._launch(worker)
        worker.fault, worker.delay = None, 0.0
        self._write_manifest()
        self._raise_unless_up([worker], f"Fix it and call restart({name!r}) again.")
        status_logger.info("restarted worker %s", name)
        self._announce(worker)

    # --- what a backend says: how to cause each fault ---------------------------------------

    def _kill(self, worker: WorkerRecord, sig: int | str) -> bool:
        """Send ``sig``; True if the worker is down now."""
        raise self._unable("kill", worker)

    def _pause(self, worker: WorkerRecord) -> None:
        raise self._unable("pause", worker)

    def _unpause(self, worker: WorkerRecord) -> None:
        raise self._unable("unpause", worker)

    def _disconnect(self, worker: WorkerRecord) -> None:
        raise self._unable("disconnect", worker)

    def _reconnect(self, worker: WorkerRecord) -> None:
        raise self._unable("reconnect", worker)

    def _unable(self, action: str, worker: WorkerRecord) -> ClusterError:
        """The error for a fault this backend cannot cause."""
        return ClusterError(
            f"Cannot {action} worker {worker.name!r}: {self._why_unable(action, worker)}"
        )

    def _why_unable(self, action: str, worker: WorkerRecord) -> str:
        """Why this backend cannot cause ``action``, and what works instead."""
        return (
            f"a {type(self).__name__} has no way to {action} its workers. slow(name, seconds) "
            "works on every cluster; kill(), pause() and restart() on every cluster that "
            "starts its workers; disconnect() and reconnect() on DockerCluster and SwarmCluster."
        )
