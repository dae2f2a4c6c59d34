"""Elastic membership: workers join and leave a running cluster, and heartbeats say who is up.

:class:`Membership` is the part of :class:`~chimera_nb.cluster.BaseCluster` that

* adds a worker (:meth:`~Membership.add_worker`, with its own shard of the data) and
  removes one (:meth:`~Membership.remove_worker`) while the cluster runs, between rounds
  or during one, on every backend: a master reads ``cluster.endpoints`` before each round,
  so the next round counts the new worker and no longer counts the removed one;
* watches the workers with heartbeats (:meth:`~Membership.watch`, see
  :mod:`chimera_nb.cluster._heartbeat`) and shows who is up, since when
  (:meth:`~Membership.membership`).

A joining worker becomes a member (in ``endpoints`` and ``names``) only once it answers
``GET /health``; a leaving one stops being a member before it is stopped. Either way the
cluster keeps its record until it is stopped, so ``close()`` and the run's manifest never
lose a worker that runs. ``_workers`` is replaced, never changed in place, so a master
reading ``endpoints`` in another thread never sees it change under it.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any, ClassVar

from .._exceptions import ClusterError, ConfigurationError
from ..logs import attach_log_files, status_logger
from ..states import ClusterState, WorkerState
from ..validation import validate_worker_name, worker_names_problem
from ._heartbeat import Heartbeats, HeartbeatSettings, MemberStatus, clock
from ._options import owned_workers, with_shard
from ._records import WorkerRecord

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["Membership"]


class Membership:
    """The membership methods of every cluster (a part of :class:`BaseCluster`)."""

    #: The record a backend keeps for each worker (a process handle, a container...).
    _record_type: ClassVar[type[WorkerRecord]] = WorkerRecord
    _heartbeats: Heartbeats | None = None
    _workers: dict[str, WorkerRecord]
    _cwd: Path

    # --- joining and leaving ------------------------------------------------------------

    def add_worker(
        self, worker: Any, X: Any = None, y: Any = None, *, name: str | None = None
    ) -> str:
        """Start one more worker while the cluster runs, and return its name once it answers
        ``GET /health``; from then on it is in :attr:`endpoints`, so a master's next round
        counts it (and weighs it by its shard's size).

        Parameters
        ----------
        worker : target
            As at the start: a worker object (``SGDWorker("regressor")``) or the path of a
            seed-style script; for an :class:`AttachedCluster`, the URL of a running worker.
        X, y : array-like, optional
            The new worker's own shard: it runs ``worker.with_data(X, y)``.
        name : str, optional
            By default the first free ``worker<k>``, ``k`` from the number of workers + 1.

        Raises
        ------
        ConfigurationError
            The name is taken or not allowed, the target is not a worker, or only X or y.
        ClusterError
            The cluster is not running, or the worker did not come up (the message says why
            and quotes its log); it is stopped again and the cluster is as before.
        """
        self._require(ClusterState.RUNNING, "add a worker")
        name = self._free_name(name)
        record = self._new_worker(name, worker, X, y)
        self._prepare_worker(record)  # a target that cannot travel fails before it starts
        record.member = False
        self._workers = {**self._workers, name: record}  # close() stops it from now on
        try:
            self._admit(record)
            self._launch_all([record])
            self._write_manifest()
            self._raise_unless_up([record], f"Worker {name!r} was not added.")
            self._confirm([record])
        except BaseException:
            self._stop_workers([record])
            self._workers = {key: w for key, w in self._workers.items() if w is not record}
            self._write_manifest()
            raise
        urls = self._time_log_urls()
        if urls is not None:  # its calls go to this run's chimera_time.log too
            self._detach_logs.append(attach_log_files(self._run_dir, urls=[record.url]))
        record.member = True
        status_logger.info("membership: worker %s joined at %s", name, record.url)
        self._announce(record)
        return name

    def remove_worker(self, name: str) -> None:
        """Take one worker out of the running cluster: it leaves :attr:`endpoints` at once
        (a round under way records its call as failed), then it is stopped and forgotten
        (its log stays in the run directory).

        Raises
        ------
        ConfigurationError
            No worker has this name.
        ClusterError
            The cluster is not running, the worker is still joining, or it is the last one.
        """
        worker = self._running_worker(name, "remove a worker")
        if not worker.member:
            raise ClusterError(f"Cannot remove worker {name!r}: it is joining or leaving now.")
        if not any(other.member for other in self._workers.values() if other is not worker):
            raise ClusterError(
                f"Cannot remove worker {name!r}: it is the last one, and a cluster needs at "
                "least one worker. Add another first, or close() the cluster."
            )
        worker.member = False  # endpoints no longer name it
        self._stop_workers([worker])  # if this fails, close() tries again
        self._workers = {key: w for key, w in self._workers.items() if w is not worker}
        self._write_manifest()
        worker.state = WorkerState.STOPPED
        status_logger.info("membership: worker %s left at %s", name, clock(worker.since))
        self._announce(worker)

    # --- heartbeats -----------------------------------------------------------------------

    def watch(
        self,
        interval: float = 0.5,
        *,
        suspect_after: int = 1,
        fail_after: int = 3,
        slow_after: float = 0.25,
        timeout: float = 1.0,
    ) -> None:
        """Send every worker a heartbeat (``GET /health``) every ``interval`` seconds, in a
        background thread, until :meth:`unwatch` or ``close()``; see
        :class:`~chimera_nb.cluster._heartbeat.HeartbeatSettings` for the parameters. Each
        worker is then UP, SLOW, SUSPECT or FAILED, with the time each state began
        (:meth:`membership`); every change goes to the status log and the fault listeners.
        While it watches, :meth:`status` returns what the heartbeats found, without probing.
        Calling it again replaces the settings."""
        settings = HeartbeatSettings(interval, suspect_after, fail_after, slow_after, timeout)
        self._require(ClusterState.RUNNING, "watch the workers")
        self.unwatch()
        self._heartbeats = Heartbeats(
            self.name,
            settings,
            lambda: [worker for worker in self._workers.values() if worker.member],
            self._gone,
            self._announce,
        )

    def unwatch(self) -> None:
        """Stop the heartbeats (nothing happens if none were sent); the states stay as the
        last heartbeat left them."""
        heartbeats, self._heartbeats = self._heartbeats, None
        if heartbeats is not None:
            heartbeats.stop()

    @property
    def watching(self) -> HeartbeatSettings | None:
        """The heartbeats' settings while :meth:`watch` runs, else None."""
        return self._heartbeats.settings if self._heartbeats is not None else None

    def membership(self) -> dict[str, MemberStatus]:
        """Each member's state, since when (``time.time()``), its last heartbeat and the
        heartbeats it missed in a row, as last known (no network call): what the heartbeats
        found while :meth:`watch` runs, else what fault calls and :meth:`status` found."""
        return {
            worker.name: MemberStatus(
                worker.state, worker.since, worker.last_heartbeat, worker.missed
            )
            for worker in self._workers.values()
            if worker.member
        }

    @property
    def peer_endpoints(self) -> dict[str, str]:
        """Worker name -> the URL *other workers* reach it at (a ring's neighbours, parameter
        shards): its endpoint on one machine; in containers, its container's name on the
        run's network, since a published ``127.0.0.1`` port means the container itself."""
        self._require(ClusterState.RUNNING, "give peer endpoints")  # type: ignore[attr-defined]
        return {w.name: self._peer_url(w) for w in self._workers.values() if w.member}

    def _peer_url(self, worker: WorkerRecord) -> str:
        return worker.url  # type: ignore[return-value]

    # --- what a backend says: how a worker to add is described ----------------------------

    def _new_worker(self, name: str, worker: Any, X: Any, y: Any) -> WorkerRecord:
        """The record of a worker to add, as the start makes them: its checked target (with
        its shard), any free port, and its data folder ``<cwd>/chimera_train_data/<name>``."""
        target = with_shard(worker, X, y)
        workers = owned_workers(
            self._record_type, {name: target}, ports=None, data_dirs=None, cwd=self._cwd
        )
        return workers[name]

    def _admit(self, worker: WorkerRecord) -> None:
        """What an added worker needs before its launch, beyond what a start made."""

    def _free_name(self, name: str | None) -> str:
        if name is None:
            for k in itertools.count(len(self._workers) + 1):
                if f"worker{k}" not in self._workers:
                    return f"worker{k}"
        validate_worker_name(name)
        problem = worker_names_problem([*self._workers, name])
        if problem is not None:
            raise ConfigurationError(
                f"Cannot add worker {name!r}: worker names {problem}. Choose another name, "
                f"or remove_worker({name!r}) first."
            )
        return name
