"""Workers as local processes: the default cluster backend, which also works on Colab and Binder.

How a start goes, and why:

1. Check every worker and option (:class:`LocalCluster` refuses bad ones in ``__init__``).
2. Bind every worker's listening socket here, in the cluster's process: ports are known
   before any worker runs, and a fixed port that is taken fails before anything starts.
3. Hand each socket to the zygote (``_zygote.py``), a fork server that has already imported
   numpy, FastAPI and uvicorn, so that a worker is serving within milliseconds of its fork.
   Without ``fork`` (or with ``CHIMERA_LAUNCHER=exec``) each worker is a fresh interpreter.
4. Wait, for all workers at once, until each answers ``GET /health``.

Workers do not outlive the process that started them: closing the cluster stops them, so
does the end of the notebook kernel (``atexit``), and if the kernel is killed outright, the
zygote sees its connection close and exits, and the kernel signals each worker.
"""

from __future__ import annotations

import atexit
import errno
import itertools
import json
import os
import re
import signal
import socket
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from .._exceptions import ClusterError, ConfigurationError
from .._types import WorkerURL
from ..auth import WORKER_TOKEN_VARIABLE, bearer_header, is_loopback, new_token
from ..logs import attach_log_files
from ..wire import paths
from ._launcher import (
    LaunchRequest,
    WorkerProcess,
    exec_worker,
    log_tail,
    pickle_target,
    runs_root,
)
from ._options import check_ports, checked_target, named_targets, per_worker, shard_workers
from ._sweep import sweep_once, sweep_stale_workers
from ._zygote import ZYGOTE
from .states import ClusterState, WorkerState

__all__ = ["LocalCluster", "shutdown_launcher", "start_launcher", "sweep_stale_workers"]

_PROBE_TIMEOUT = 1.0  # seconds for one GET /health
_STOP_GRACE = 3.0  # seconds between SIGTERM and SIGKILL
_run_numbers = itertools.count(1)
_running: dict[str, LocalCluster] = {}  # by name: a re-run notebook cell replaces its cluster


@dataclass
class _Worker:
    """What the cluster knows about one worker."""

    name: str
    target: Any  # an object with serve(), or the Path of a seed-style script
    port: int  # the port asked for (0: any free one), then the port it listens on
    data_dir: Path
    log_path: Path
    state: WorkerState = WorkerState.STOPPED
    process: WorkerProcess | None = None
    request: LaunchRequest | None = None  # built by start(), reused by restart()
    delay: float = 0.0  # seconds injected with slow(); a restart clears it


class LocalCluster:
    """A few workers, each in its own local process, for a master to drive.

    Parameters
    ----------
    workers : mapping of str to target, or sequence of targets
        A target is a worker object with a blocking ``serve()`` method (``SGDWorker(...)``)
        or the path of a seed-style script (``Path("chimera_workers/worker1.py")``), run as
        ``__main__``. A sequence names its workers ``"worker1"``, ``"worker2"``, ...
    name : str, default="chimera"
        Shown in the repr and the run directory's name. Starting a cluster closes any running cluster of this process with the same name,
        so re-running a notebook cell does not leave the old workers behind. Give clusters
        different names to run them side by side.
    run_dir : path, optional
        Holds ``<worker>.log``, ``workers.json``, and while the cluster runs the masters'
        ``chimera_status.log`` and ``chimera_time.log``. By default a fresh folder under
        ``<tempdir>/chimera-nb/``; later sessions sweep the folders of dead owners.
    host : str, default="127.0.0.1"
        Where workers listen. ``"0.0.0.0"`` exposes them to the network: only on a network
        you trust, as they run whatever requests they are sent.
    ports : mapping of str to int, or sequence of int, optional
        Fixed ports; 0 or missing means any free port.
    data_dirs : mapping of str to path, or sequence of paths, optional
        Each worker's training-data folder, relative to ``cwd`` unless absolute. By default
        ``<cwd>/chimera_train_data/<name>``, as in the seed.
    cwd : path, optional
        The workers' working directory; by default the current one.
    startup_timeout : float, default=30.0
        Seconds to wait for all workers to answer ``GET /health``.

    Examples
    --------
    >>> from chimera_nb.cluster import LocalCluster
    >>> with LocalCluster([SGDWorker(), SGDWorker()], name="lab1") as cluster:  # doctest: +SKIP
    ...     print(cluster.endpoints)
    {'worker1': 'http://127.0.0.1:40111', 'worker2': 'http://127.0.0.1:40112'}
    """

    def __init__(
        self,
        workers: Mapping[str, Any] | Sequence[Any],
        *,
        name: str = "chimera",
        run_dir: str | os.PathLike | None = None,
        host: str = "127.0.0.1",
        ports: Mapping[str, int] | Sequence[int] | None = None,
        data_dirs: Mapping[str, Any] | Sequence[Any] | None = None,
        cwd: str | os.PathLike | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"The cluster name must be a non-empty string, got {name!r}.")
        if not startup_timeout > 0:
            raise ConfigurationError(f"startup_timeout must be > 0 seconds, got {startup_timeout}")
        self.name = name
        self.host = host
        #: Workers reachable from other machines require a shared token (chimera_nb.auth).
        self.token = None if is_loopback(host) else new_token()
        self.startup_timeout = float(startup_timeout)
        self._cwd = Path(cwd).resolve() if cwd is not None else Path.cwd()
        folder_name = re.sub(r"[^A-Za-z0-9_-]+", "-", name)[:40]
        self._run_dir = (
            Path(run_dir)
            if run_dir is not None
            else (runs_root() / f"{folder_name}-{os.getpid()}-{next(_run_numbers)}")
        )
        targets = named_targets(workers)
        fixed_ports = per_worker(ports, list(targets), "ports", 0)
        check_ports(fixed_ports)
        folders = per_worker(data_dirs, list(targets), "data_dirs", None)
        self._workers = {
            worker: _Worker(
                worker,
                checked_target(worker, target, self._cwd),
                fixed_ports[worker],
                self._cwd / (folders[worker] or Path("chimera_train_data", worker)),
                self._run_dir / f"{worker}.log",
            )
            for worker, target in targets.items()
        }
        self._state = ClusterState.NEW
        self._detach_logs = None

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> LocalCluster:
        """Start every worker and wait until all answer ``GET /health``; return self.

        Raises
        ------
        ConfigurationError
            A worker cannot be sent to its process (not picklable, defined in a notebook).
        ClusterError
            A port is taken (nothing was started then), or a worker exited or did not
            answer in time (the others are stopped, the message quotes that worker's log).
        """
        self._require(ClusterState.NEW, "start")
        workers = list(self._workers.values())
        for worker in workers:
            worker.request = self._launch_request(worker)
        previous = _running.get(self.name)
        if previous is not None and previous is not self:
            previous.close()
        sweep_once()
        sockets = self._bind_all(workers)
        self._run_dir.mkdir(parents=True, exist_ok=True)
        self._state = ClusterState.RUNNING
        _running[self.name] = self
        atexit.register(self.close)
        self._detach_logs = attach_log_files(
            self._run_dir, urls=[self._url(worker) for worker in workers]
        )
        try:
            for worker in workers:
                worker.log_path.write_bytes(b"")
                self._launch(worker, sockets.pop(worker.name))
            self._write_manifest()
            self._wait_until_up(workers, "Nothing is left running; fix it and start again.")
        except BaseException:
            for sock in sockets.values():
                sock.close()
            self._stop(workers)
            self._forget_running()
            self._state = ClusterState.NEW
            raise
        return self

    def close(self) -> None:
        """Stop every worker (SIGTERM, then SIGKILL after 3 s). Safe to call twice."""
        if self._state is ClusterState.CLOSED:
            return
        try:
            if self._state is ClusterState.RUNNING:
                self._stop(list(self._workers.values()))
        finally:
            self._state = ClusterState.CLOSED
            self._forget_running()
            for leftover in self._run_dir.glob("*.request"):  # exec'd workers that never ran
                leftover.unlink(missing_ok=True)

    def __enter__(self) -> LocalCluster:  # noqa: PYI034 - typing.Self needs Python 3.11
        return self if self._state is ClusterState.RUNNING else self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- what a master and a notebook read ----------------------------------------------

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
        return {worker.name: self._url(worker) for worker in self._workers.values()}

    @property
    def pids(self) -> dict[str, int]:
        """Worker name -> process id."""
        self._require(ClusterState.RUNNING, "give pids")
        return {worker.name: worker.process.pid for worker in self._workers.values()}

    @property
    def run_dir(self) -> Path:
        """The folder with the workers' logs and ``workers.json``."""
        return self._run_dir

    def log(self, name: str, n_lines: int = 20) -> str:
        """The last lines of a worker's log (what it printed, and its tracebacks)."""
        return log_tail(self._worker(name).log_path, n_lines)

    def status(self) -> dict[str, WorkerState]:
        """Ask every worker ``GET /health`` (at most 1 s): UP, or FAILED if its process is
        gone or it did not answer; STOPPED for all when the cluster is not running."""
        workers = list(self._workers.values())
        if self._state is ClusterState.RUNNING:
            with _health_client() as client, ThreadPoolExecutor(len(workers)) as pool:
                answers = list(pool.map(lambda worker: self._probe(client, worker), workers))
            for worker, answered in zip(workers, answers):
                if not answered:
                    worker.state = WorkerState.FAILED
                else:
                    worker.state = WorkerState.SLOW if worker.delay else WorkerState.UP
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
        return f"LocalCluster({self.name!r}, {n_workers} worker{plural}: {summary})"

    # --- faults, for demos ----------------------------------------------------------------

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send a signal to one worker: SIGKILL (default) crashes it, SIGSTOP freezes it
        and SIGCONT thaws it. After a signal that ends it, the worker shows FAILED."""
        self._require(ClusterState.RUNNING, "kill a worker")
        worker = self._worker(name)
        worker.process.send_signal(sig)
        ending = {signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGQUIT}
        if sig in ending and worker.process.wait(_STOP_GRACE):
            worker.state = WorkerState.FAILED

    def slow(self, name: str, seconds: float) -> None:
        """Make one worker a straggler: it answers every training call ``seconds`` later
        (0 makes it normal again). It then shows SLOW in :meth:`status`."""
        self._require(ClusterState.RUNNING, "slow down a worker")
        worker = self._worker(name)
        with _health_client() as client:
            answer = client.post(
                self._url(worker) + paths.FAULTS_DELAY,
                json={"seconds": seconds},
                headers=bearer_header(self.token),
            )
        if answer.status_code != 200:
            raise ConfigurationError(f"Worker {name!r} refused the delay: {answer.text}")
        worker.delay = seconds
        worker.state = WorkerState.SLOW if seconds else WorkerState.UP

    def restart(self, name: str) -> None:
        """Stop the worker if it still runs, then start the same target on the same port,
        and wait until it answers ``GET /health``."""
        self._require(ClusterState.RUNNING, "restart a worker")
        worker = self._worker(name)
        worker.delay = 0.0
        self._stop([worker])
        self._launch(worker, self._bind(worker, f"Worker {name!r} was not restarted."))
        self._write_manifest()
        self._wait_until_up([worker], f"Fix it and call restart({name!r}) again.")

    # --- helpers ----------------------------------------------------------------------------

    @classmethod
    def from_shards(
        cls,
        worker: Any,
        X: Any,
        y: Any,
        n_workers: int = 3,
        *,
        method: str = "contiguous",
        proportions: Sequence[float] | None = None,
        random_state: int | None = None,
        **cluster_kwargs: Any,
    ) -> LocalCluster:
        """A cluster of ``n_workers`` copies of ``worker``, each holding one shard of the
        rows of ``X`` and ``y`` (``worker.with_data(X_k, y_k)``); see
        :func:`chimera_nb.algorithms.sharding.split` for ``method`` and ``proportions``."""
        workers = shard_workers(worker, X, y, n_workers, method, proportions, random_state)
        return cls(workers, **cluster_kwargs)

    def _require(self, state: ClusterState, action: str) -> None:
        if self._state is state:
            return
        if self._state is ClusterState.CLOSED:
            raise ClusterError(f"Cannot {action}: this cluster was closed; create a new one.")
        if self._state is ClusterState.RUNNING:
            raise ClusterError(f"Cannot {action}: this cluster is already running.")
        raise ClusterError(f"Cannot {action}: this cluster has not started; call start().")

    def _worker(self, name: str) -> _Worker:
        if name not in self._workers:
            raise ConfigurationError(
                f"No worker named {name!r}; this cluster has {', '.join(self._workers)}."
            )
        return self._workers[name]

    def _url(self, worker: _Worker) -> WorkerURL:
        host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(self.host, self.host)
        return f"http://[{host}]:{worker.port}" if ":" in host else f"http://{host}:{worker.port}"

    def _launch_request(self, worker: _Worker) -> LaunchRequest:
        script, payload, classes = None, b"", []
        if isinstance(worker.target, Path):
            script = str(worker.target)
        else:
            payload, classes = pickle_target(worker.name, worker.target)
        return LaunchRequest(
            name=worker.name,
            owner_pid=os.getpid(),
            log_path=str(worker.log_path),
            cwd=str(self._cwd),
            sys_path=[os.fspath(entry) for entry in sys.path],
            environ={**os.environ, **({WORKER_TOKEN_VARIABLE: self.token} if self.token else {})},
            data_dir=str(worker.data_dir),
            script=script,
            payload=payload,
            classes=classes,
        )

    def _bind_all(self, workers: list[_Worker]) -> dict[str, socket.socket]:
        sockets: dict[str, socket.socket] = {}
        try:
            for worker in workers:
                sockets[worker.name] = self._bind(worker, "No worker was started.")
        except BaseException:
            for sock in sockets.values():
                sock.close()
            raise
        return sockets

    def _bind(self, worker: _Worker, consequence: str) -> socket.socket:
        """A listening socket for ``worker``; its port becomes the worker's port."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, worker.port))
            sock.listen(socket.SOMAXCONN)
        except OSError as error:
            sock.close()
            if error.errno == errno.EADDRINUSE:
                raise ClusterError(
                    f"Port {worker.port} for worker {worker.name!r} is already in use by "
                    f"another process. {consequence} Pick another port, leave the port out "
                    "to get a free one, or stop the process that holds it."
                ) from error
            raise ClusterError(
                f"Cannot listen on {self.host}:{worker.port} for worker {worker.name!r}: "
                f"{error}. {consequence} Check the host address."
            ) from error
        worker.port = sock.getsockname()[1]
        return sock

    def _launch(self, worker: _Worker, sock: socket.socket) -> None:
        try:
            if _fork_server_available():
                worker.process = WorkerProcess(ZYGOTE.launch(worker.request, sock))
            else:
                request_path = self._run_dir / f"{worker.name}.request"
                worker.process = exec_worker(worker.request, sock, request_path)
        finally:
            sock.close()  # the worker holds its own copy; when it dies, the port refuses
        worker.state = WorkerState.STARTING

    def _wait_until_up(self, workers: list[_Worker], what_now: str) -> None:
        """Wait for all ``workers`` at once; on the first failure stop the wait, stop those
        workers, and raise with the failed worker's log."""
        deadline = time.monotonic() + self.startup_timeout
        give_up = threading.Event()

        def wait_for(worker: _Worker) -> str | None:
            problem = self._wait_for_health(client, worker, deadline, give_up)
            if problem:
                give_up.set()
            return problem

        with _health_client() as client, ThreadPoolExecutor(len(workers)) as pool:
            try:
                problems = list(pool.map(wait_for, workers))
            finally:
                give_up.set()  # on Ctrl-C, too: do not wait out the startup timeout
        failed = [(worker, problem) for worker, problem in zip(workers, problems) if problem]
        if not failed:
            return
        worker, problem = failed[0]
        self._stop(workers)
        worker.state = WorkerState.FAILED
        raise ClusterError(
            f"Worker {worker.name!r} {problem}. The end of its log ({worker.log_path}):\n"
            f"{log_tail(worker.log_path)}\n{what_now}"
        )

    def _wait_for_health(
        self, client: httpx.Client, worker: _Worker, deadline: float, give_up: threading.Event
    ) -> str | None:
        """None once ``worker`` answers 200, else what went wrong ("" if told to give up)."""
        url = self._url(worker) + "/health"
        while not give_up.is_set():
            if not worker.process.is_alive():
                return "exited while starting"
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return f"did not answer GET /health within {self.startup_timeout:g} s"
            try:  # the socket listens already, so this waits for the worker to serve
                response = client.get(url, timeout=min(_PROBE_TIMEOUT, remaining))
            except httpx.HTTPError:
                give_up.wait(0.01)
                continue
            if response.status_code == 200:
                worker.state = WorkerState.UP
                return None
            if response.status_code == 404:
                return "answers HTTP but has no GET /health route, which every worker needs"
            give_up.wait(0.05)
        return ""

    def _probe(self, client: httpx.Client, worker: _Worker) -> bool:
        if not worker.process.is_alive():
            return False
        try:
            response = client.get(self._url(worker) + "/health", timeout=_PROBE_TIMEOUT)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    def _stop(self, workers: list[_Worker]) -> None:
        """SIGTERM, up to 3 s for a clean exit, then SIGKILL; check that all are gone."""
        running = [w for w in workers if w.process is not None and w.process.is_alive()]
        for worker in running:
            worker.process.send_signal(signal.SIGTERM)
            worker.process.send_signal(signal.SIGCONT)  # a frozen worker cannot exit
        deadline = time.monotonic() + _STOP_GRACE
        for worker in running:
            worker.process.wait(max(0.0, deadline - time.monotonic()))
        stubborn = [worker for worker in running if worker.process.is_alive()]
        for worker in stubborn:
            worker.process.send_signal(signal.SIGKILL)
        alive = [worker for worker in stubborn if not worker.process.wait(2.0)]
        for worker in workers:
            worker.state = WorkerState.STOPPED
        if alive:
            listed = ", ".join(f"{w.name} (pid {w.process.pid})" for w in alive)
            raise ClusterError(f"Workers {listed} survived SIGKILL; stop them by hand.")

    def _write_manifest(self) -> None:
        """``workers.json``: who runs where, so a later session can sweep what we left."""
        manifest = {
            "cluster": self.name,
            "owner_pid": os.getpid(),
            "zygote_pid": ZYGOTE.pid,
            "workers": [
                {
                    "name": w.name,
                    "pid": w.process.pid,
                    "port": w.port,
                    "url": self._url(w),
                    "log": str(w.log_path),
                }
                for w in self._workers.values()
                if w.process is not None
            ],
        }
        temporary = self._run_dir / "workers.json.tmp"
        temporary.write_text(json.dumps(manifest, indent=2))
        temporary.replace(self._run_dir / "workers.json")

    def _forget_running(self) -> None:
        if self._detach_logs is not None:
            self._detach_logs()
            self._detach_logs = None
        atexit.unregister(self.close)
        if _running.get(self.name) is self:
            del _running[self.name]


def start_launcher() -> None:
    """Start the zygote now, in the background, so that the first cluster starts fast.

    The zygote imports numpy, FastAPI, uvicorn and the kit once (1-2 s of CPU); a lecture
    notebook can call this in its first cell and let that happen while the data loads.
    Otherwise the first ``LocalCluster.start()`` starts it.
    """
    if _fork_server_available():
        ZYGOTE.start()


def shutdown_launcher() -> None:
    """Close every running cluster of this process and stop the zygote.

    Happens by itself when Python exits; call it to free the zygote's memory sooner, or in
    a test suite that checks that no process was left behind.
    """
    for cluster in list(_running.values()):
        cluster.close()
    ZYGOTE.stop()


def _health_client() -> httpx.Client:
    # trust_env=False: an HTTP(S)_PROXY set for the internet must not catch 127.0.0.1.
    # verify=False: workers speak plain HTTP, so skip loading the CA bundle (70 ms).
    return httpx.Client(trust_env=False, verify=False)


def _fork_server_available() -> bool:
    choice = os.environ.get("CHIMERA_LAUNCHER", "auto").strip().lower()
    if choice not in {"auto", "zygote", "exec"}:
        raise ConfigurationError(
            f"CHIMERA_LAUNCHER must be 'auto', 'zygote' or 'exec', got {choice!r}."
        )
    can_fork = hasattr(os, "fork") and sys.platform.startswith("linux")
    if choice == "zygote" and not can_fork:
        raise ConfigurationError(
            "CHIMERA_LAUNCHER=zygote needs Linux; unset it to start workers another way."
        )
    return can_fork and choice != "exec"
