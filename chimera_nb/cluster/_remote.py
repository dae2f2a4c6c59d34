"""What the backends whose workers are reached by URL share (docker, swarm, attach): the
lifecycle, ``names``/``endpoints``/``token``, waiting for ``GET /health``, ``status()``,
``slow()`` and the repr. Each backend adds how its workers start, stop and fail."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx

from .._exceptions import ClusterError, ConfigurationError
from .._types import WorkerURL
from ..auth import bearer_header
from ..wire import paths
from .states import ClusterState, WorkerState

__all__ = ["RemoteCluster", "RemoteWorker", "health_client"]

_PROBE_TIMEOUT = 1.0  # seconds for one GET /health


@dataclass
class RemoteWorker:
    """What a cluster knows about one worker it reaches by URL."""

    name: str
    url: WorkerURL | None = None
    state: WorkerState = WorkerState.STOPPED
    delay: float = 0.0  # seconds injected with slow()
    fault: str | None = None  # "paused", "disconnected", "killed": what we did to it


def health_client() -> httpx.Client:
    # trust_env=False: an HTTP(S)_PROXY set for the internet must not catch the workers.
    return httpx.Client(trust_env=False, verify=False)


class RemoteCluster:
    """Base class; subclasses fill ``self._workers`` and implement starting and stopping."""

    _workers: dict[str, RemoteWorker]
    _run_dir: Path | None = None

    def __init__(self, name: str, startup_timeout: float) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"The cluster name must be a non-empty string, got {name!r}.")
        if not startup_timeout > 0:
            raise ConfigurationError(f"startup_timeout must be > 0 seconds, got {startup_timeout}")
        self.name = name
        self.startup_timeout = float(startup_timeout)
        self._state = ClusterState.NEW
        self._token: str | None = None

    # --- lifecycle ------------------------------------------------------------------------

    def start(self):
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        return self if self._state is ClusterState.RUNNING else self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- what a master and a notebook read --------------------------------------------------

    @property
    def state(self) -> ClusterState:
        return self._state

    @property
    def names(self) -> list[str]:
        """The workers' names, in the order given."""
        return list(self._workers)

    @property
    def endpoints(self) -> dict[str, WorkerURL]:
        """Worker name -> base URL, such as ``"http://127.0.0.1:40111"``."""
        self._require(ClusterState.RUNNING, "give endpoints")
        return {worker.name: worker.url for worker in self._workers.values()}

    @property
    def token(self) -> str | None:
        """The shared token the workers require; a master sends it on every call."""
        return self._token

    @property
    def run_dir(self) -> Path | None:
        return self._run_dir

    def status(self) -> dict[str, WorkerState]:
        """Ask every worker ``GET /health`` (at most 1 s): UP, SLOW (slowed or paused), or
        FAILED; STOPPED for all when the cluster is not running."""
        workers = list(self._workers.values())
        if self._state is ClusterState.RUNNING:
            with health_client() as client, ThreadPoolExecutor(len(workers)) as pool:
                answers = list(pool.map(lambda worker: self._probe(client, worker), workers))
            for worker, state in zip(workers, answers):
                worker.state = state
        return {worker.name: worker.state for worker in workers}

    def slow(self, name: str, seconds: float) -> None:
        """Make one worker a straggler: it answers every training call ``seconds`` later
        (0 makes it normal again). It then shows SLOW in :meth:`status`."""
        self._require(ClusterState.RUNNING, "slow down a worker")
        worker = self._worker(name)
        with health_client() as client:
            answer = client.post(
                worker.url + paths.FAULTS_DELAY,
                json={"seconds": seconds},
                headers=bearer_header(self._token),
                timeout=10,
            )
        if answer.status_code != 200:
            raise ConfigurationError(f"Worker {name!r} refused the delay: {answer.text}")
        worker.delay = seconds
        worker.state = WorkerState.SLOW if seconds else WorkerState.UP

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

    # --- for subclasses -----------------------------------------------------------------------

    def _require(self, state: ClusterState, action: str) -> None:
        if self._state is state:
            return
        if self._state is ClusterState.CLOSED:
            raise ClusterError(f"Cannot {action}: this cluster was closed; create a new one.")
        if self._state is ClusterState.RUNNING:
            raise ClusterError(f"Cannot {action}: this cluster is already running.")
        raise ClusterError(f"Cannot {action}: this cluster has not started; call start().")

    def _worker(self, name: str) -> RemoteWorker:
        if name not in self._workers:
            raise ConfigurationError(
                f"No worker named {name!r}; this cluster has {', '.join(self._workers)}."
            )
        return self._workers[name]

    def _gone(self, worker: RemoteWorker) -> str | None:
        """Why ``worker`` can never answer (its container exited...), or None. Subclasses
        that can see their workers' processes say so; the wait then stops at once."""
        return None

    def _probe(self, client: httpx.Client, worker: RemoteWorker) -> WorkerState:
        if worker.fault == "paused":
            return WorkerState.SLOW
        if worker.fault in ("killed", "disconnected") or self._gone(worker):
            return WorkerState.FAILED
        try:
            response = client.get(worker.url + paths.HEALTH, timeout=_PROBE_TIMEOUT)
        except httpx.HTTPError:
            return WorkerState.FAILED
        if response.status_code != 200:
            return WorkerState.FAILED
        return WorkerState.SLOW if worker.delay else WorkerState.UP

    def _wait_until_up(self, workers: list[RemoteWorker]) -> list[tuple[RemoteWorker, str]]:
        """Wait for all ``workers`` at once, up to ``startup_timeout``; return the
        ``(worker, problem)`` of those that did not come up (empty when all did)."""
        deadline = time.monotonic() + self.startup_timeout
        give_up = threading.Event()

        def wait_for(worker: RemoteWorker) -> str | None:
            problem = self._wait_for_health(client, worker, deadline, give_up)
            if problem:
                give_up.set()
            return problem

        with health_client() as client, ThreadPoolExecutor(len(workers)) as pool:
            try:
                problems = list(pool.map(wait_for, workers))
            finally:
                give_up.set()  # on Ctrl-C, too: do not wait out the startup timeout
        return [(worker, problem) for worker, problem in zip(workers, problems) if problem]

    def _wait_for_health(
        self,
        client: httpx.Client,
        worker: RemoteWorker,
        deadline: float,
        give_up: threading.Event,
    ) -> str | None:
        """None once ``worker`` answers 200, else what went wrong ("" if told to give up)."""
        url = worker.url + paths.HEALTH
        next_look = 0.0
        while not give_up.is_set():
            now = time.monotonic()
            if now >= next_look:  # asking the engine costs a few ms: every 0.25 s is enough
                gone = self._gone(worker)
                if gone:
                    return gone
                next_look = now + 0.25
            remaining = deadline - now
            if remaining <= 0:
                return f"did not answer GET /health at {url} within {self.startup_timeout:g} s"
            try:
                response = client.get(url, timeout=min(_PROBE_TIMEOUT, remaining))
            except httpx.HTTPError:
                give_up.wait(0.05)
                continue
            if response.status_code == 200:
                worker.state = WorkerState.UP
                return None
            if response.status_code == 404:
                return "answers HTTP but has no GET /health route, which every worker needs"
            give_up.wait(0.05)
        return ""
