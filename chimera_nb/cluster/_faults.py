"""What a lecturer does to one running worker, on every backend alike: crash it, freeze
it, slow it down, slow or break its network, pull its cable, bring it back.

:class:`WorkerFaults` is the part of :class:`~chimera_nb.cluster.BaseCluster` that keeps the
books (a worker's :class:`~chimera_nb.states.WorkerFault`, its state, a line in
``chimera_status.log``); a backend says how, in ``_kill``, ``_pause``, ``_unpause``,
``_disconnect`` and ``_reconnect``. What a backend cannot cause raises a
:class:`~chimera_nb.ClusterError` that says what works instead. :meth:`~WorkerFaults.slow`,
:meth:`~WorkerFaults.network`, :meth:`~WorkerFaults.partition` and
:meth:`~WorkerFaults.heal` and :meth:`~WorkerFaults.byzantine` work over HTTP (the worker emulates its own network, see
:mod:`chimera_nb.workers.network`), so on every backend.

Whoever watches the cluster (a notebook's dashboard) is told of every change at once, from
whichever cell or button made it: :meth:`~WorkerFaults.on_fault`.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Literal

import httpx
from pydantic import ValidationError

from .._exceptions import ClusterError, ConfigurationError
from ..auth import bearer_header
from ..logs import status_logger
from ..states import ClusterState, WorkerFault, WorkerState
from ..wire import paths
from ..wire.fault_models import ByzantineRequest
from ..wire.models import NetworkRequest
from ..wire.server import describe_validation_errors
from ._health import health_client

if TYPE_CHECKING:
    from ._records import WorkerRecord

__all__ = ["FaultListener", "WorkerFaults"]

_FAULT_TIMEOUT = 10.0  # seconds for a worker to accept a delay or network settings

#: Called as ``listener(name, state, fault, delay)`` after a fault method changed a worker.
FaultListener = Callable[[str, WorkerState, WorkerFault | None, float], None]


class WorkerFaults:
    """The fault methods of every cluster (a part of :class:`BaseCluster`)."""

    _fault_listeners: tuple[FaultListener, ...] = ()

    def on_fault(self, listener: FaultListener) -> Callable[[], None]:
        """Call ``listener(name, state, fault, delay)`` after every kill, pause, unpause,
        slow, network, partition, heal, byzantine, disconnect, reconnect and restart, in the
        thread that made the call (be quick);
        returns a function that unsubscribes. A dashboard shows a change made from any cell
        at once, without waiting for its next ``status()`` probe."""
        self._fault_listeners = (*self._fault_listeners, listener)

        def unsubscribe() -> None:
            self._fault_listeners = tuple(f for f in self._fault_listeners if f is not listener)

        return unsubscribe

    def _announce(self, worker: WorkerRecord) -> None:
        for listener in self._fault_listeners:
            try:
                listener(worker.name, worker.state, worker.announced_fault, worker.delay)
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
        self._post_fault(worker, paths.FAULTS_DELAY, {"seconds": seconds}, "slow down", "delay")
        worker.delay = seconds
        if worker.fault is None:
            worker.state = WorkerState.SLOW if seconds else WorkerState.UP
        status_logger.warning("fault: worker %s answers %g s late", name, seconds)
        self._announce(worker)

    def network(
        self,
        name: str,
        *,
        latency_ms: float = 0.0,
        bandwidth_mbps: float | None = None,
        drop: float = 0.0,
        seed: int | None = None,
    ) -> None:
        """Emulate a slow or lossy network in front of one worker, inside the worker (see
        :mod:`chimera_nb.workers.network`), so on every backend.

        Parameters
        ----------
        latency_ms : float, default=0
            Added to every training call's round trip.
        bandwidth_mbps : float or None, default=None
            The link's speed: a call takes ``bytes * 8 / (mbps * 1e6)`` s longer for the
            bytes of its request and answer bodies. None: no limit.
        drop : float in [0, 1], default=0
            The probability that a call is lost: the worker hangs up without answering, and
            the master records a connection error.
        seed : int or None
            Seeds the drops: the same seed and the same calls lose the same calls. Each call
            of ``network`` starts the draws afresh, so call it before each run to replay.

        All zero or None makes the network normal again; a :meth:`partition` stays.
        """
        worker = self._running_worker(name, "emulate the network of a worker")
        partitioned = worker.network is not None and worker.network.partitioned
        settings = _settings(
            f"network({name!r}, ...)",
            latency_ms=latency_ms,
            bandwidth_mbps=bandwidth_mbps,
            drop=drop,
            seed=seed,
            partitioned=partitioned,
        )
        self._set_network(worker, settings)
        status_logger.warning(
            "fault: worker %s network: %g ms latency, %s Mbit/s, drop %g (seed %s)",
            name,
            latency_ms,
            "unlimited" if bandwidth_mbps is None else f"{bandwidth_mbps:g}",
            drop,
            seed,
        )
        self._announce(worker)

    def partition(self, names: Iterable[str] | str) -> None:
        """Cut the named workers off: every call to them, ``GET /health`` included, fails
        as a connection error (the worker hangs up without answering) until :meth:`heal`.
        They show FAILED. Works over HTTP, so on every backend."""
        self._require(ClusterState.RUNNING, "partition workers")
        names = [names] if isinstance(names, str) else list(names)
        workers = [self._worker(name) for name in names]  # every name checked first
        for worker in workers:
            current = worker.network or NetworkRequest()
            self._set_network(worker, current.model_copy(update={"partitioned": True}))
            worker.fault, worker.state = WorkerFault.PARTITIONED, WorkerState.FAILED
            status_logger.warning("fault: partitioned worker %s", worker.name)
            self._announce(worker)

    def heal(self) -> None:
        """End every partition: the partitioned workers answer again (latency, bandwidth
        and drops given to :meth:`network` stay)."""
        self._require(ClusterState.RUNNING, "heal the partitions")
        for worker in self._workers.values():
            if worker.fault is not WorkerFault.PARTITIONED:
                continue
            current = worker.network or NetworkRequest()
            self._set_network(worker, current.model_copy(update={"partitioned": False}))
            worker.fault = None
            worker.state = WorkerState.SLOW if worker.delay else WorkerState.UP
            status_logger.warning("fault: healed the partition of worker %s", worker.name)
            self._announce(worker)

    def byzantine(
        self,
        name: str,
        kind: Literal["sign-flip", "noise", "scaled"] | None = "sign-flip",
        *,
        scale: float | None = None,
        seed: int | None = None,
    ) -> None:
        """Make one worker Byzantine: it stays up and on time, but corrupts what it answers
        to training calls (see :func:`~chimera_nb.algorithms.robust.byzantine_answer`).
        Works over HTTP, so on every backend.

        Parameters
        ----------
        kind : {"sign-flip", "noise", "scaled"} or None, default="sign-flip"
            ``"sign-flip"`` sends ``-scale`` times its gradient, ``"scaled"`` ``scale`` times
            it, ``"noise"`` Gaussian noise of standard deviation ``scale``. None: honest again.
        scale : float or None
            None: 1 for a sign flip and noise, 10 for ``"scaled"``.
        seed : int or None
            Seeds the noise: the same seed and the same calls send the same noise.

        A robust aggregator (``CoordinateMedian()``, ``Krum()``) resists one such worker; the
        default mean does not. :meth:`restart` makes it honest too.
        """
        worker = self._running_worker(name, "make a worker Byzantine")
        try:
            settings = ByzantineRequest(kind=kind, scale=scale, seed=seed)
        except ValidationError as error:
            raise ConfigurationError(
                f"cluster.byzantine({name!r}, ...) cannot corrupt the answers that way: "
                f"{describe_validation_errors(list(error.errors()))}."
            ) from None
        body = settings.model_dump(exclude_none=True)
        self._post_fault(worker, paths.FAULTS_BYZANTINE, body, "corrupt the answers of", "fault")
        worker.byzantine = None if settings.honest() else settings
        if kind is None:
            status_logger.warning("fault: worker %s answers honestly again", name)
        else:
            status_logger.warning(
                "fault: worker %s is Byzantine (%s, scale %s, seed %s)", name, kind, scale, seed
            )
        self._announce(worker)

    def byzantine_workers(self) -> dict[str, ByzantineRequest]:
        """The settings of each worker :meth:`byzantine` made Byzantine (a restart clears)."""
        return {
            worker.name: worker.byzantine
            for worker in self._workers.values()
            if worker.byzantine is not None
        }

    def networks(self) -> dict[str, NetworkRequest]:
        """The emulated network of each worker that has one, as :meth:`network` and
        :meth:`partition` last set it (a dashboard shows it; a restart clears it)."""
        return {
            worker.name: worker.network
            for worker in self._workers.values()
            if worker.network is not None
        }

    def _set_network(self, worker: WorkerRecord, settings: NetworkRequest) -> None:
        """Give the worker ``settings`` for every caller; note them on its record."""
        body = settings.model_dump(exclude_none=True)
        self._post_fault(worker, paths.FAULTS_NETWORK, body, "emulate the network of", "network")
        worker.network = None if settings.normal() else settings

    def _post_fault(
        self, worker: WorkerRecord, path: str, body: dict[str, Any], action: str, what: str
    ) -> None:
        """POST ``body`` to one of the worker's fault controls, or raise saying why not."""
        try:
            with health_client() as client:
                answer = client.post(
                    worker.url + path,
                    json=body,
                    headers=bearer_header(self._token),
                    timeout=_FAULT_TIMEOUT,
                )
        except httpx.HTTPError as error:
            raise ClusterError(
                f"Cannot {action} worker {worker.name!r}: it did not answer "
                f"({type(error).__name__}). Call status() to see whether it is up; "
                f"restart({worker.name!r}) brings it back."
            ) from None
        if answer.status_code != 200:
            raise ConfigurationError(f"Worker {worker.name!r} refused the {what}: {answer.text}")

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
        """Stop the worker if it still runs, start the same target at the same URL (faults,
        delays, network and Byzantine settings cleared), and wait until it answers
        ``GET /health``."""
        worker = self._running_worker(name, "restart a worker")
        self._stop_workers([worker])
        self._launch(worker)
        worker.fault, worker.delay, worker.network = None, 0.0, None
        worker.byzantine = None
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


def _settings(call: str, **values: Any) -> NetworkRequest:
    """``values`` as network settings, checked by the model the worker checks them with."""
    try:
        return NetworkRequest(**values)
    except ValidationError as error:
        raise ConfigurationError(
            f"cluster.{call} cannot emulate that network: "
            f"{describe_validation_errors(list(error.errors()))}."
        ) from None
