"""``chimera_nb.run(master, port)``: the seed's workflow, unchanged for the student.

In the current directory::

    master.py                       sets CHIMERA_* variables, calls run(...)
    chimera_workers/<name>.py       builds a worker, calls worker.serve()
    chimera_train_data/<name>/      X_train.csv and y_train.csv

``run`` checks the variables and the project first (every problem in one error, before
anything starts), starts one worker per name with the backend that ``CHIMERA_BACKEND`` names
(``process``, the default, on this machine; ``docker``; ``swarm``; or ``attach`` to
workers already running elsewhere), writes ``chimera_status.log`` and
``chimera_time.log`` in the directory, and serves the master on ``port`` until it is
stopped. Workers stop with it.

Stopping
--------
Ctrl-C (SIGINT), SIGTERM (``kill``, ``docker stop``, a service manager) and SIGHUP (the
terminal was closed) all stop ``run`` the same way, within about a second, also in the
middle of a fit: the fit is cancelled (its REST client gets 503, "the fit was stopped:
master shutting down (SIGTERM)"), the server stops, the workers shut down, and the status
log and the terminal say "stopped by SIGTERM; workers shut down". A signal while the
workers start stops the start and removes what it made.

Then ``run`` returns, and ``python master.py`` (like ``chimera-nb run``) exits with 0. The
shell's 130 and 143 (128 + the signal's number) mean that a process was *killed* by a
signal; this one stopped as asked and cleaned up, which service managers (systemd, Docker)
count as a clean stop only with 0. (The seed exited with 0 after Ctrl-C too.) A process
killed outright (SIGKILL) cannot clean up: its worker processes notice and exit, and its
containers are removed by the run's reaper (:mod:`chimera_nb.cluster._reaper`).
"""

from __future__ import annotations

import os
import signal
import socket
import threading
from pathlib import Path
from types import FrameType

from .._exceptions import ConfigurationError
from .._sockets import listen
from ..cluster import AttachedCluster, BaseCluster, cluster_class
from ..logs import attach_log_files, status_logger
from ..masters.base import Master
from ..wire.server import STOP_SIGNALS
from .project import SeedProject
from .settings import ChimeraSettings, load_settings

__all__ = ["run"]


def _bind(host: str, port: int) -> socket.socket:
    """The master's listening socket, bound first so that a busy port fails before any
    worker starts."""
    try:
        return listen(host, port, backlog=128)
    except OSError as error:
        raise ConfigurationError(
            f"the master cannot listen on {host}:{port} ({error.strerror}); pick another port "
            "in run(master, port) or stop what uses it"
        ) from None


def _cluster(settings: ChimeraSettings, project: SeedProject | None, run_dir: Path) -> BaseCluster:
    """The cluster of the backend ``CHIMERA_BACKEND`` names (``project`` is None for
    ``attach``, whose workers run elsewhere)."""
    if settings.BACKEND == "attach":
        return AttachedCluster.from_environment(settings.WORKERS_NODES_NAMES, run_dir=run_dir)
    names = list(project.names)
    options = {
        "name": project.root.name or "chimera",
        "host": settings.WORKERS_HOST,
        "ports": settings.mapped_ports,
        "data_dirs": {name: project.data_dir(name) for name in names},
        "cwd": project.root,
        "run_dir": run_dir,
    }
    if settings.BACKEND in ("docker", "swarm"):
        options |= {
            "cpu_shares": settings.cpu_shares,
            "network": settings.NETWORK_NAME,
            "subnet": f"{settings.NETWORK_PREFIX}.0/{settings.NETWORK_SUBNET_MASK}",
            "container_port": settings.WORKERS_PORT,
        }
    scripts = {name: project.worker_script(name) for name in names}
    return cluster_class(settings.BACKEND)(scripts, **options)


class _Interruptions:
    """While the workers start or stop, a stop signal interrupts as Ctrl-C does (by raising
    ``KeyboardInterrupt``), so that a start removes what it made; ``received`` names the
    first. (While the master serves, the server handles the signals itself.)"""

    def __enter__(self) -> _Interruptions:
        self.received: str | None = None
        self._previous = {}
        if threading.current_thread() is threading.main_thread():  # only it gets signals
            self._previous = {n: signal.signal(n, self._interrupt) for n in STOP_SIGNALS}
        return self

    def _interrupt(self, number: int, frame: FrameType | None) -> None:
        self.received = self.received or signal.Signals(number).name
        raise KeyboardInterrupt

    def __exit__(self, *exc_info: object) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)


def run(master: Master, port: int = 8080, *, directory: str | os.PathLike | None = None) -> None:
    """Start the workers of the seed project in ``directory`` (default: the current one) and
    serve ``master`` on ``port`` until a signal stops it, as the seed's ``chimera.run``
    (see the module's notes on stopping).

    Raises
    ------
    ConfigurationError
        A ``CHIMERA_*`` variable, a project file or the port is wrong; nothing was started.
    """
    root = Path(directory or os.getcwd()).resolve()
    settings = load_settings()
    attach = settings.BACKEND == "attach"  # its workers, scripts and data are elsewhere
    project = None if attach else SeedProject.discover(root, settings.WORKERS_NODES_NAMES)
    sock = _bind(settings.MASTER_HOST, port)
    detach = attach_log_files(root)
    try:
        with _Interruptions() as interruptions:
            try:
                with _cluster(settings, project, root / ".chimera") as cluster:
                    status_logger.info("workers up: %s", cluster.endpoints)
                    print(
                        f"chimera-nb: {len(cluster.endpoints)} workers up; {master.role} on "
                        f"http://{settings.MASTER_HOST}:{port} (Ctrl-C stops everything)",
                        flush=True,
                    )
                    stopped_by = master.serve(cluster, sock=sock)
            except KeyboardInterrupt:  # a signal while the workers started or stopped
                stopped_by = interruptions.received
                if stopped_by is None:
                    raise
        workers = "the attached workers keep running" if attach else "workers shut down"
        status_logger.info("stopped by %s; %s", stopped_by, workers)
        print(f"chimera-nb: stopped by {stopped_by}; {workers}", flush=True)
    finally:
        sock.close()
        detach()
