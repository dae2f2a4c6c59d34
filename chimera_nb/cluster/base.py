"""What every cluster is, whatever runs its workers: the one base of the four backends.

A cluster starts a few workers, tells a master where they listen (:attr:`endpoints`) and
which token they require (:attr:`token`), and lets a lecturer break them on purpose
(:meth:`~BaseCluster.kill`, :meth:`~BaseCluster.pause`, :meth:`~BaseCluster.slow`...).
:class:`BaseCluster` does all of that once:

* the lifecycle (:class:`~chimera_nb.states.ClusterState`: NEW -> RUNNING -> CLOSED; a failed
  start goes back to NEW), with a sentence for each call that comes at the wrong time;
* one registry of running clusters by name, for every backend: re-running a notebook cell
  that builds ``LocalCluster(name="lab")`` closes the running cluster called ``"lab"``, even
  a ``DockerCluster``; and every cluster is closed when its owner process exits;
* waiting for ``GET /health`` of all workers at once, ``status()``, the repr, the run
  directory and its log files, ``log()``, and the faults' bookkeeping.

A backend (``process``, ``docker``, ``swarm``, ``attach``) says only what differs: what a
start must prepare (:meth:`~BaseCluster._open`: the zygote and the sockets; or the engine,
the image and the network) and a close tear down (:meth:`~BaseCluster._release`), and how to
start (:meth:`~BaseCluster._launch`), stop, kill and pause one worker. A fault it cannot
cause raises a :class:`~chimera_nb.ClusterError` that says why and what works instead.
"""

from __future__ import annotations

import atexit
import importlib
import itertools
import json
import os
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import httpx

from .._exceptions import ClusterError, ConfigurationError
from .._registry import ByName
from .._types import WorkerURL
from ..logs import attach_log_files, status_logger
from ..states import ClusterState, WorkerFault, WorkerState
from ..validation import validate_cluster_name, validate_startup_timeout
from ._faults import WorkerFaults
from ._health import answers_health, health_client, wait_until_healthy
from ._launcher import log_tail
from ._membership import Membership
from ._options import shard_workers
from ._records import WorkerRecord
from ._rundirs import make_run_dir, runs_root, write_private

__all__ = ["BaseCluster", "WorkerRecord", "close_all_clusters", "cluster_class", "slug"]

C = TypeVar("C", bound="BaseCluster")

_run_numbers = itertools.count(1)
_running: ByName[BaseCluster] = ByName()  # every backend's running clusters, by name
_BACKENDS = {
    "process": (".process", "LocalCluster"),
    "docker": (".docker", "DockerCluster"),
    "swarm": (".swarm", "SwarmCluster"),
    "attach": (".attach", "AttachedCluster"),
}


class BaseCluster(WorkerFaults, Membership):
    """Base class of every cluster backend; satisfies :class:`chimera_nb._types.Cluster`.

    Parameters
    ----------
    name : str
        Shown in the repr and the run directory's name. Starting a cluster closes the
        running cluster of this process with the same name, of any backend.
    run_dir : path, optional
        Where the workers' logs and the masters' ``chimera_status.log`` and
        ``chimera_time.log`` go; by default a fresh folder in ``<tempdir>/chimera-nb-<uid>/``,
        which only you can read (see :mod:`chimera_nb.cluster._rundirs`).
    startup_timeout : float
        Seconds to wait for all workers to answer ``GET /health``.
    """

    #: Its name in ``CHIMERA_BACKEND`` and :func:`cluster_class`, and in run directories.
    backend: ClassVar[str]
    #: Seconds between two ``GET /health`` of a worker that is starting.
    _health_poll: ClassVar[float] = 0.05
    #: Seconds between two looks at whether a starting worker is gone (costly for Docker).
    _look_every: ClassVar[float] = 0.25
    #: The file in the run directory that says who runs where (None: none).
    _manifest_name: ClassVar[str | None] = None
    #: What to do after a start failed (the message's last sentence).
    _after_failed_start: ClassVar[str] = "Nothing is left running; fix it and start again."

    _workers: dict[str, WorkerRecord]

    def __init__(
        self, name: str, *, run_dir: str | os.PathLike | None, startup_timeout: float
    ) -> None:
        self.name = validate_cluster_name(name)
        self.startup_timeout = validate_startup_timeout(startup_timeout)
        self._default_run_dir = run_dir is None
        self._run_dir = (
            Path(run_dir)
            if run_dir is not None
            else runs_root() / f"{self.backend}-{slug(name)}-{os.getpid()}-{next(_run_numbers)}"
        )
        self._state = ClusterState.NEW
        self._token: str | None = None
        self._detach_logs: list[Callable[[], None]] = []  # the run's log files, until close

    # --- lifecycle ----------------------------------------------------------------------

    def start(self: C) -> C:
        """Start every worker and wait until all answer ``GET /health``; return self.

        Raises
        ------
        ConfigurationError
            A worker cannot be sent where it runs (not picklable, defined in a notebook).
        ClusterError
            A port is taken, the backend cannot start workers, a worker exited or did not
            answer in time (the message says which and quotes its log), or the run folder
            is not private (a link, or another user's). Whatever the start had made is gone
            again, and ``start()`` may be called again.
        """
        self._require(ClusterState.NEW, "start")
        workers = list(self._workers.values())
        self._prepare()
        make_run_dir(self._run_dir, default=self._default_run_dir)
        try:
            _running.replace(self.name, self)
            self._open()
            self._detach_logs = [attach_log_files(self._run_dir, urls=self._time_log_urls())]
            self._state = ClusterState.RUNNING
            atexit.register(self.close)
            self._launch_all(workers)
            self._write_manifest()
            self._raise_unless_up(workers, self._after_failed_start)
            self._confirm(workers)
        except BaseException:
            self._shut_down()
            self._state = ClusterState.NEW
            raise
        status_logger.info(
            "%s %s: %d workers up: %s", type(self).__name__, self.name, len(workers), self.endpoints
        )
        return self

    def close(self) -> None:
        """Stop every worker and release what the start made; safe to call twice."""
        if self._state is ClusterState.CLOSED:
            return
        try:
            if self._state is ClusterState.RUNNING:
                self._shut_down()
        finally:
            self._state = ClusterState.CLOSED

    def __enter__(self: C) -> C:
        return self if self._state is ClusterState.RUNNING else self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @classmethod
    def from_shards(
        cls: type[C],
        worker: Any,
        X: Any,
        y: Any,
        n_workers: int = 3,
        *,
        method: str = "contiguous",
        proportions: Sequence[float] | None = None,
        random_state: int | None = None,
        alpha: float | None = None,
        labels_per_worker: int | None = None,
        **cluster_options: Any,
    ) -> C:
        """A cluster of ``n_workers`` copies of ``worker``, each holding one shard of the
        rows of ``X`` and ``y`` (``worker.with_data(X_k, y_k)``); see
        :func:`chimera_nb.algorithms.sharding.split` for ``method`` and its options."""
        workers = shard_workers(
            worker, X, y, n_workers, method, proportions, random_state, alpha, labels_per_worker
        )
        return cls(workers, **cluster_options)

    # --- what a master and a notebook read ----------------------------------------------

    @property
    def state(self) -> ClusterState:
        return self._state

    @property
    def names(self) -> list[str]:
        """The workers' names, in the order given (then added); not those joining or leaving."""
        return [worker.name for worker in self._workers.values() if worker.member]

    @property
    def endpoints(self) -> dict[str, WorkerURL]:
        """Worker name -> base URL, such as ``"http://127.0.0.1:40111"``: the members now
        (:meth:`add_worker` and :meth:`remove_worker` change them; a master reads them again
        before each round)."""
        self._require(ClusterState.RUNNING, "give endpoints")
        return {worker.name: worker.url for worker in self._workers.values() if worker.member}

    @property
    def token(self) -> str | None:
        """The shared token the workers require, which a master sends (None: no token)."""
        return self._token

    @property
    def run_dir(self) -> Path:
        """The folder with the workers' logs and the masters' log files."""
        return self._run_dir

    def log(self, name: str, n_lines: int = 20) -> str:
        """The last lines a worker printed (its tracebacks included), indented."""
        worker = self._worker(name)
        live = self._live_log(worker, n_lines) if self._state is ClusterState.RUNNING else None
        if live is None:
            saved = self._run_dir / f"{name}.log"
            return log_tail(saved, n_lines) if saved.exists() else "    (it is empty)"
        lines = live.splitlines()[-n_lines:]
        return "\n".join("    " + line for line in lines) or "    (it is empty)"

    def status(self) -> dict[str, WorkerState]:
        """Ask every worker ``GET /health`` (at most 1 s): UP, SLOW (slowed or paused) or
        FAILED; STOPPED for all when the cluster is not running. While :meth:`watch` sends
        heartbeats, their last states (SUSPECT too), without asking again."""
        workers = list(self._workers.values())
        if self._state is ClusterState.RUNNING and self._heartbeats is None:
            with health_client() as client, ThreadPoolExecutor(len(workers)) as pool:
                states = list(pool.map(lambda worker: self._probe(client, worker), workers))
            for worker, state in zip(workers, states):
                worker.state = state
        return {worker.name: worker.state for worker in workers}

    def __repr__(self) -> str:
        if self._state is not ClusterState.RUNNING:
            summary = "not started" if self._state is ClusterState.NEW else "closed"
        else:  # last known states: a repr makes no network calls
            counts = {state: 0 for state in WorkerState}
            for worker in self._workers.values():
                counts[worker.state] += 1
            summary = ", ".join(f"{n} {state.value}" for state, n in counts.items() if n)
        n_workers = len(self._workers)
        plural = "" if n_workers == 1 else "s"
        return f"{type(self).__name__}({self.name!r}, {n_workers} worker{plural}: {summary})"

    # --- what a backend says: how a start prepares, and one worker starts and stops -----

    def _prepare(self) -> None:
        """Checks that need nothing running, before the start closes the running cluster of
        the same name."""
        for worker in self._workers.values():
            self._prepare_worker(worker)

    def _prepare_worker(self, worker: WorkerRecord) -> None:
        """What one worker needs before anything runs (its pickled target), at the start and
        in :meth:`add_worker`."""

    def _open(self) -> None:
        """Make what every worker needs (sockets; an engine, image and network); set each
        worker's ``url``. :meth:`_release` must undo it, also when it stopped half-way."""

    def _launch_all(self, workers: list[WorkerRecord]) -> None:
        for worker in workers:
            self._launch(worker)

    def _launch(self, worker: WorkerRecord) -> None:
        """Start one worker (at :meth:`start`, and again at :meth:`restart`)."""
        raise NotImplementedError

    def _stop_workers(self, workers: list[WorkerRecord]) -> None:
        """Stop these workers (those that run) and wait until they are gone."""
        raise NotImplementedError

    def _release(self) -> None:
        """Undo :meth:`_open`, once every worker has stopped."""

    def _confirm(self, workers: list[WorkerRecord]) -> None:
        """Checks once every worker answered ``GET /health`` (an attached worker's token)."""

    def _gone(self, worker: WorkerRecord) -> str | None:
        """Why ``worker`` can never answer (its process exited...), or None; a wait for
        ``GET /health`` stops at once when it says so."""
        return None

    def _live_log(self, worker: WorkerRecord, n_lines: int) -> str | None:
        """The worker's last lines from where it runs, or None to read ``<run dir>/<name>.log``."""
        return None

    def _explain(self, worker: WorkerRecord) -> str:
        """What an error about a worker that did not come up adds: the end of its log."""
        return (
            f"The end of its log ({self._run_dir / f'{worker.name}.log'}):\n{self.log(worker.name)}"
        )

    def _manifest(self) -> dict[str, Any]:
        """What :attr:`_manifest_name` records, besides the cluster and its owner."""
        return {}

    def _time_log_urls(self) -> list[str] | None:
        """The URLs whose calls go to this run's ``chimera_time.log`` (None: every call)."""
        urls = [worker.url for worker in self._workers.values()]
        return None if None in urls else urls

    # --- the rest, written once -----------------------------------------------------------

    def _require(self, state: ClusterState, action: str) -> None:
        if self._state is state:
            return
        if self._state is ClusterState.CLOSED:
            raise ClusterError(f"Cannot {action}: this cluster was closed; create a new one.")
        if self._state is ClusterState.RUNNING:
            raise ClusterError(f"Cannot {action}: this cluster is already running.")
        raise ClusterError(f"Cannot {action}: this cluster has not started; call start().")

    def _worker(self, name: str) -> WorkerRecord:
        if name not in self._workers:
            raise ConfigurationError(
                f"No worker named {name!r}; this cluster has {', '.join(self._workers)}."
            )
        return self._workers[name]

    def _running_worker(self, name: str, action: str) -> WorkerRecord:
        self._require(ClusterState.RUNNING, action)
        return self._worker(name)

    def _probe(self, client: httpx.Client, worker: WorkerRecord) -> WorkerState:
        if worker.fault is WorkerFault.PAUSED:
            return WorkerState.SLOW
        if worker.fault is not None or self._gone(worker) or not answers_health(client, worker.url):
            return WorkerState.FAILED
        return WorkerState.SLOW if worker.delay else WorkerState.UP

    def _raise_unless_up(self, workers: list[WorkerRecord], what_now: str) -> None:
        """Wait until all ``workers`` answer ``GET /health``; if one does not, stop them
        and raise with its log and ``what_now``."""
        failed = wait_until_healthy(
            {worker.name: worker.url for worker in workers},
            lambda name: self._gone(self._workers[name]),
            self.startup_timeout,
            poll=self._health_poll,
            look_every=self._look_every,
        )
        if not failed:
            for worker in workers:
                worker.state = WorkerState.UP
            return
        name, problem = next(iter(failed.items()))
        self._stop_workers(workers)
        worker = self._workers[name]
        worker.state = WorkerState.FAILED
        raise ClusterError(f"Worker {name!r} {problem}. {self._explain(worker)}\n{what_now}")

    def _shut_down(self) -> None:
        """Stop every worker, release what the start made, and forget the run."""
        self.unwatch()  # workers that stop on purpose are no failures
        try:
            try:
                self._stop_workers(list(self._workers.values()))
            finally:
                self._release()
        finally:
            for worker in self._workers.values():
                worker.state = WorkerState.STOPPED
            for detach in self._detach_logs:
                detach()
            self._detach_logs = []
            atexit.unregister(self.close)
            _running.forget(self.name, self)

    def _write_manifest(self) -> None:
        """Who runs where, for people, for debugging, and for a later session's sweep."""
        if self._manifest_name is None:
            return
        manifest = {
            "backend": self.backend,
            "cluster": self.name,
            "owner_pid": os.getpid(),
            **self._manifest(),
        }
        temporary = self._run_dir / f"{self._manifest_name}.tmp"
        write_private(temporary, json.dumps(manifest, indent=2).encode())
        temporary.replace(self._run_dir / self._manifest_name)


def cluster_class(backend: str) -> type[BaseCluster]:
    """The cluster class of a backend: ``"process"`` (:class:`LocalCluster`),
    ``"docker"``, ``"swarm"`` or ``"attach"``, as ``CHIMERA_BACKEND`` names them."""
    if backend not in _BACKENDS:
        raise ConfigurationError(
            f"backend must be one of {', '.join(map(repr, _BACKENDS))}, got {backend!r}."
        )
    module, name = _BACKENDS[backend]
    return getattr(importlib.import_module(module, __package__), name)


def close_all_clusters() -> None:
    """Close every running cluster of this process, of every backend."""
    _running.close_all()


def slug(name: str, limit: int = 24) -> str:
    """A display name turned into a safe part of a file or Docker name
    (``"my lab!"`` -> ``"my-lab"``)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-._")[:limit].strip("-._")
    return safe or "chimera"
