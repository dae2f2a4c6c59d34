"""Workers as local processes: the default cluster backend, which also works on Colab and Binder.

How a start goes, and why:

1. Check every worker and option (:class:`LocalCluster` refuses bad ones in ``__init__``),
   and pickle the worker objects (:meth:`~LocalCluster.start`).
2. Bind every worker's listening socket here, in the cluster's process: ports are known
   before any worker runs, and a fixed port that is taken fails before anything starts.
3. Hand each socket to the zygote (``_zygote.py``), a fork server that has already imported
   numpy, FastAPI and uvicorn, so that a worker is serving within milliseconds of its fork.
   Without ``fork`` (or with ``CHIMERA_LAUNCHER=exec``) each worker is a fresh interpreter.
4. Wait, for all workers at once, until each answers ``GET /health``
   (:class:`~chimera_nb.cluster.BaseCluster` does that, as for every backend).

Workers do not outlive the process that started them: closing the cluster stops them, so
does the end of the notebook kernel (``atexit``), and if the kernel is killed outright, the
zygote sees its connection close and exits, and the kernel signals each worker.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._exceptions import ClusterError, ConfigurationError
from .._sockets import listen, url_of, worker_port_error
from ..auth import WORKER_TOKEN_VARIABLE, is_loopback, new_token
from ..states import ClusterState, WorkerState
from ..validation import validate_host
from ._launcher import LaunchRequest, WorkerProcess, exec_worker
from ._options import feature_block_workers, owned_workers
from ._pickling import pickle_target
from ._rundirs import open_private
from ._sweep import sweep_once, sweep_stale_workers
from ._zygote import ZYGOTE
from .base import BaseCluster, WorkerRecord, close_all_clusters

__all__ = ["LocalCluster", "shutdown_launcher", "start_launcher", "sweep_stale_workers"]

_STOP_GRACE = 3.0  # seconds between SIGTERM and SIGKILL
_ENDING = {signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGQUIT}


@dataclass
class ProcessWorker(WorkerRecord):
    """A worker of a :class:`LocalCluster`."""

    target: Any = None  # an object with serve(), or the Path of a seed-style script
    port: int = 0  # the port asked for (0: any free one), then the port it listens on
    data_dir: Path | None = None
    log_path: Path | None = None
    process: WorkerProcess | None = None
    request: LaunchRequest | None = None  # built by start(), reused by restart()


class LocalCluster(BaseCluster):
    """A few workers, each in its own local process, for a master to drive.

    Parameters
    ----------
    workers : mapping of str to target, or sequence of targets
        A target is a worker object with a blocking ``serve()`` method (``SGDWorker(...)``)
        or the path of a seed-style script (``Path("chimera_workers/worker1.py")``), run as
        ``__main__``. A sequence names its workers ``"worker1"``, ``"worker2"``, ...
    name : str, default="chimera"
        Shown in the repr and the run directory's name. Starting a cluster closes any
        running cluster of this process with the same name, whatever its backend, so
        re-running a notebook cell does not leave the old workers behind. Give clusters
        different names to run them side by side.
    run_dir : path, optional
        Holds ``<worker>.log``, ``workers.json``, and while the cluster runs the masters'
        ``chimera_status.log`` and ``chimera_time.log``. By default a fresh folder in
        ``<tempdir>/chimera-nb-<uid>/``, which only you can read; later sessions sweep the
        folders of dead owners.
    host : str, default="127.0.0.1"
        Where workers listen. ``"0.0.0.0"`` exposes them to the network: only on a network
        you trust; they then require a random token (:attr:`token`), which a master sends.
    ports : mapping of str to int, or sequence of int, optional
        Fixed ports; 0 or missing means any free port.
    data_dirs : mapping of str to path, or sequence of paths, optional
        Each worker's training-data folder, relative to ``cwd`` unless absolute. By default
        ``<cwd>/chimera_train_data/<name>``, as in the seed.
    cwd : path, optional
        The workers' working directory; by default the current one.
    startup_timeout : float, default=30.0
        Seconds to wait for all workers to answer ``GET /health``.

    Notes
    -----
    Faults: :meth:`kill` sends a signal (SIGKILL by default), :meth:`pause` and
    :meth:`unpause` send SIGSTOP and SIGCONT, :meth:`slow` delays answers over HTTP.

    Examples
    --------
    >>> from chimera_nb.cluster import LocalCluster
    >>> with LocalCluster([SGDWorker(), SGDWorker()], name="lab1") as cluster:  # doctest: +SKIP
    ...     print(cluster.endpoints)
    {'worker1': 'http://127.0.0.1:40111', 'worker2': 'http://127.0.0.1:40112'}
    """

    backend = "process"
    # A forked worker serves within tens of milliseconds, and whether a process still
    # runs costs one poll() call: look often.
    _health_poll = 0.01
    _look_every = 0.0
    _manifest_name = "workers.json"
    _record_type = ProcessWorker

    _workers: dict[str, ProcessWorker]

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
        super().__init__(name, run_dir=run_dir, startup_timeout=startup_timeout)
        self.host = validate_host(host)
        # Workers reachable from other machines require a shared token (chimera_nb.auth).
        self._token = None if is_loopback(host) else new_token()
        self._cwd = Path(cwd).resolve() if cwd is not None else Path.cwd()
        self._workers = owned_workers(
            ProcessWorker, workers, ports=ports, data_dirs=data_dirs, cwd=self._cwd
        )
        self._sockets: dict[str, socket.socket] = {}  # bound by start(), until launched

    @classmethod
    def from_feature_blocks(
        cls,
        worker: Any,
        X: Any,
        n_blocks: int = 3,
        *,
        replicas: int = 1,
        blocks: Sequence[Sequence[int]] | None = None,
        **cluster_options: Any,
    ) -> LocalCluster:
        """Feature-split workers (model parallelism): each holds ``n_blocks``' share of the
        columns of ``X`` (contiguous blocks, or the given ``blocks`` of column indices), all
        rows; with ``replicas=R`` the rows are cut into R row groups too, one worker per
        (row group, block): the hybrid layout, ``R * n_blocks`` workers. The labels are not
        given: they stay with the master (``FeatureSplitMaster(...).fit(cluster, y)``)."""
        return cls(feature_block_workers(worker, X, n_blocks, replicas, blocks), **cluster_options)

    @property
    def pids(self) -> dict[str, int]:
        """Worker name -> process id, of the members."""
        self._require(ClusterState.RUNNING, "give pids")
        return {w.name: w.process.pid for w in self._workers.values() if w.member and w.process}

    # --- how a start prepares, and a close tears down ---------------------------------------

    def _prepare_worker(self, worker: ProcessWorker) -> None:
        worker.log_path = self._run_dir / f"{worker.name}.log"
        worker.request = self._launch_request(worker)

    def _open(self) -> None:
        sweep_once()
        for worker in self._workers.values():
            self._sockets[worker.name] = self._bind(worker, "No worker was started.")

    def _release(self) -> None:
        for sock in self._sockets.values():  # a start that failed before every launch
            sock.close()
        self._sockets.clear()
        for leftover in self._run_dir.glob("*.request"):  # exec'd workers that never ran
            leftover.unlink(missing_ok=True)

    def _manifest(self) -> dict[str, Any]:
        return {
            "zygote_pid": ZYGOTE.pid,
            "workers": [
                {
                    "name": w.name,
                    "pid": w.process.pid,
                    "port": w.port,
                    "url": w.url,
                    "log": str(w.log_path),
                }
                for w in self._workers.values()
                if w.process is not None
            ],
        }

    # --- one worker -----------------------------------------------------------------------

    def _launch_all(self, workers: list[ProcessWorker]) -> None:
        for worker in workers:
            os.close(open_private(worker.log_path))  # empty: a run folder used again starts afresh
            self._launch(worker)

    def _launch(self, worker: ProcessWorker) -> None:
        sock = self._sockets.pop(worker.name, None) or self._bind(
            worker, f"Worker {worker.name!r} was not started."
        )
        try:
            if _fork_server_available():
                worker.process = WorkerProcess(ZYGOTE.launch(worker.request, sock))
            else:
                request_path = self._run_dir / f"{worker.name}.request"
                worker.process = exec_worker(worker.request, sock, request_path)
        finally:
            sock.close()  # the worker holds its own copy; when it dies, the port refuses
        worker.state = WorkerState.STARTING

    def _stop_workers(self, workers: list[ProcessWorker]) -> None:
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
        if alive:
            listed = ", ".join(f"{w.name} (pid {w.process.pid})" for w in alive)
            raise ClusterError(f"Workers {listed} survived SIGKILL; stop them by hand.")

    def _gone(self, worker: ProcessWorker) -> str | None:
        if worker.process is None or not worker.process.is_alive():
            return "exited while starting"
        return None

    def _kill(self, worker: ProcessWorker, sig: int | str) -> bool:
        """Any signal: SIGKILL crashes the worker, SIGSTOP freezes it so that it no longer
        answers even ``GET /health`` (it shows FAILED), SIGCONT thaws it."""
        sig = signal.Signals[sig] if isinstance(sig, str) else sig
        worker.process.send_signal(sig)
        return sig in _ENDING and worker.process.wait(_STOP_GRACE)

    def _pause(self, worker: ProcessWorker) -> None:
        worker.process.send_signal(signal.SIGSTOP)

    def _unpause(self, worker: ProcessWorker) -> None:
        worker.process.send_signal(signal.SIGCONT)

    # --- helpers ----------------------------------------------------------------------------

    def _launch_request(self, worker: ProcessWorker) -> LaunchRequest:
        script, payload, classes = None, b"", []
        if isinstance(worker.target, Path):
            script = str(worker.target)
        else:
            payload, classes = pickle_target(worker.name, worker.target)
        token = {WORKER_TOKEN_VARIABLE: self._token} if self._token else {}
        return LaunchRequest(
            name=worker.name,
            owner_pid=os.getpid(),
            log_path=str(worker.log_path),
            cwd=str(self._cwd),
            sys_path=[os.fspath(entry) for entry in sys.path],
            environ={**os.environ, **token},
            data_dir=str(worker.data_dir),
            script=script,
            payload=payload,
            classes=classes,
        )

    def _bind(self, worker: ProcessWorker, consequence: str) -> socket.socket:
        """A listening socket for ``worker``; its port becomes the worker's port and URL."""
        try:
            sock = listen(self.host, worker.port)
        except OSError as error:
            raise worker_port_error(
                worker.name, self.host, worker.port, error, consequence
            ) from error
        worker.port = sock.getsockname()[1]
        worker.url = url_of(self.host, worker.port)
        return sock


def start_launcher() -> None:
    """Start the zygote now, in the background, so that the first cluster starts fast.

    The zygote imports numpy, FastAPI, uvicorn and the kit once (1-2 s of CPU); a lecture
    notebook can call this in its first cell and let that happen while the data loads.
    Otherwise the first ``LocalCluster.start()`` starts it.
    """
    if _fork_server_available():
        ZYGOTE.start()


def shutdown_launcher() -> None:
    """Close every running cluster of this process, of every backend, and stop the zygote.

    Happens by itself when Python exits; call it to free the zygote's memory sooner, or in
    a test suite that checks that no process or container was left behind.
    """
    close_all_clusters()
    ZYGOTE.stop()


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
