"""How a worker process learns who it is and where to listen.

A worker script (``chimera_workers/<name>.py``) only builds a worker and calls ``serve()``,
as in the seed. Whoever starts the process tells ``serve()`` the rest, in one of two ways:

* a cluster backend that forks the worker calls :func:`set_context` first, handing over the
  worker's name, its training-data folder and an already-listening socket (bound by the
  parent, so the port is known before the child runs and no other process can take it);
* a container, or a person at a shell, sets environment variables instead:
  ``CHIMERA_WORKER_NAME``, ``CHIMERA_WORKER_HOST``, ``CHIMERA_WORKER_PORT`` and
  ``CHIMERA_TRAIN_DATA_DIR``.
"""

from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["LaunchContext", "current_context", "set_context"]


@dataclass
class LaunchContext:
    """Where and as whom a worker serves.

    Parameters
    ----------
    name : str
        The worker's name (the seed's node name, e.g. ``"worker1"``).
    data_dir : Path or None
        Folder with ``X_train.csv`` and ``y_train.csv`` for a worker built without data.
    sock : socket.socket or None
        A listening socket to serve on; if None, bind ``host:port``.
    host, port : str, int
        Used only when ``sock`` is None.
    """

    name: str
    data_dir: Path | None = None
    sock: socket.socket | None = None
    host: str = "127.0.0.1"
    port: int = 8000


_context: LaunchContext | None = None


def set_context(context: LaunchContext) -> None:
    """Called by a cluster backend in the worker process, before the worker script runs."""
    global _context
    _context = context


def current_context() -> LaunchContext:
    """The context a backend set, else one read from ``CHIMERA_WORKER_*`` variables.

    Without a name, the worker is named after its script (``sgd1.py`` -> ``"sgd1"``), and its
    data folder is ``chimera_train_data/<name>`` in the current directory, as in the seed.
    """
    if _context is not None:
        return _context
    name = os.environ.get("CHIMERA_WORKER_NAME") or Path(sys.argv[0]).stem or "worker"
    data_dir = os.environ.get("CHIMERA_TRAIN_DATA_DIR")
    return LaunchContext(
        name=name,
        data_dir=Path(data_dir) if data_dir else Path("chimera_train_data") / name,
        host=os.environ.get("CHIMERA_WORKER_HOST", "127.0.0.1"),
        port=int(os.environ.get("CHIMERA_WORKER_PORT", "8000")),
    )
