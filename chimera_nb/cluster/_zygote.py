"""The zygote: a fork server that has already imported what every worker needs.

Why
---
A fresh Python process spends 1.5-2.5 s importing numpy, pandas, FastAPI, uvicorn and
scikit-learn. The zygote pays that once per notebook kernel; each worker is then a ``fork()``
of it and is serving within a few tens of milliseconds. It is a separate, clean process
(``python -c 'from chimera_nb.cluster._zygote import main; main()'``), because forking the
notebook kernel itself would copy its threads, open sockets and event loop, and
multiprocessing's ``spawn``/``forkserver`` would re-run an unguarded ``__main__`` such as
the seed's master.

Protocol
--------
The owner (the process with the cluster) and the zygote share a Unix socket pair. Per
worker the owner sends one message: a length, the worker's listening socket as ancillary
data (``SCM_RIGHTS``), and a :class:`~chimera_nb.cluster._launcher.LaunchRequest`. The
zygote forks, and answers ``{"pid": ...}`` (or ``{"error": ...}``) as JSON.

Lifetime
--------
When the owner closes its end, or dies in any way (even SIGKILL), the zygote reads EOF and
exits; every worker it forked then gets SIGTERM from the kernel (parent-death signal) and,
as a backstop, notices within half a second that its parent is gone.
"""

from __future__ import annotations

import argparse
import atexit
import gc
import importlib
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Sequence
from types import ModuleType

from .._exceptions import ClusterError
from ._launcher import LaunchRequest, become_worker, child_environment, log_tail
from ._rundirs import open_private, private_root, runs_root

__all__ = ["ZYGOTE", "Zygote", "main", "receive_message", "send_message"]

#: Imported before the first worker is forked: what serving any worker needs.
SERVE_FIRST = ("numpy", "fastapi", "uvicorn", "uvloop", "httptools")
#: Imported while no launch request is waiting, so that later workers find them loaded;
#: in small steps, because a request that arrives waits for the import under way.
IMPORT_WHEN_IDLE = (
    "pandas",
    "scipy.sparse",
    "scipy.linalg",
    "scipy.special",
    "scipy.optimize",
    "scipy.stats",
    "sklearn",
    "sklearn.base",
    "sklearn.linear_model",
    "sklearn.ensemble",
    "chimera_nb.workers",
)
#: Packages whose modules the zygote imports for a request before forking, besides those
#: it has imported already (see ``_import_trusted``).
TRUSTED_PACKAGES = {"chimera_nb", "numpy", "pandas", "scipy", "sklearn"}
_REPLY_TIMEOUT = 120.0  # generous: the first reply waits for the imports above
_HEADER = struct.Struct("!Q")


# --- messages: both ends --------------------------------------------------------------


def send_message(sock: socket.socket, data: bytes, fds: Sequence[int] = ()) -> None:
    """Send ``data`` with a length prefix; ``fds`` ride along with the prefix."""
    socket.send_fds(sock, [_HEADER.pack(len(data))], list(fds))
    sock.sendall(data)


def receive_message(sock: socket.socket) -> tuple[bytes, list[int]] | None:
    """The next message and the file descriptors sent with it, or None at end of stream."""
    head, fds, _flags, _address = socket.recv_fds(sock, _HEADER.size, 1)
    if not head:
        return None
    try:
        head += _receive_exactly(sock, _HEADER.size - len(head))
        (size,) = _HEADER.unpack(head)
        return _receive_exactly(sock, size), fds
    except EOFError:
        for fd in fds:
            os.close(fd)
        return None


def _receive_exactly(sock: socket.socket, size: int) -> bytes:
    data = bytearray(size)
    view = memoryview(data)
    while view:
        received = sock.recv_into(view)
        if not received:
            raise EOFError("the other end closed the socket in the middle of a message")
        view = view[received:]
    return bytes(data)


# --- the owner's side -----------------------------------------------------------------


class Zygote:
    """The owner's handle on its zygote, started on the first launch.

    One zygote serves every cluster of a process. Launches from several threads take turns.
    """

    def __init__(self) -> None:
        self._process: subprocess.Popen | None = None
        self._conn: socket.socket | None = None
        self._lock = threading.Lock()
        self.log_path = runs_root() / f"zygote-{os.getpid()}.log"
        os.register_at_fork(after_in_child=self._forget)

    @property
    def pid(self) -> int | None:
        """The zygote's pid, or None if it is not running."""
        running = self._process is not None and self._process.poll() is None
        return self._process.pid if running else None

    def start(self) -> None:
        """Start the zygote if it is not running, without waiting for its imports."""
        with self._lock:
            if self.pid is None:
                self._start()

    def launch(self, request: LaunchRequest, sock: socket.socket) -> int:
        """Fork a worker for ``request`` serving on ``sock``; return its pid."""
        with self._lock:
            if self.pid is None:
                self._start()
            try:
                send_message(self._conn, request.to_bytes(), [sock.fileno()])
                message = receive_message(self._conn)
            except OSError as error:  # includes a reply timeout
                message, problem = None, f"{type(error).__name__}: {error}"
            except BaseException:
                # Ctrl-C between request and reply: the reply would be read as the answer
                # to the next request, so start over with a fresh zygote next time.
                self._stop()
                raise
            else:
                problem = "it closed the connection"
            if message is None:
                self._stop()
                raise ClusterError(
                    f"The worker launcher (zygote) stopped while launching {request.name!r} "
                    f"({problem}). Its log, {self.log_path}, ends with:\n"
                    f"{log_tail(self.log_path)}\nFix what it reports (often a package that fails "
                    "to import); set CHIMERA_LAUNCHER=exec to start workers without it."
                )
            reply = json.loads(message[0])
            if "error" in reply:
                raise ClusterError(
                    f"Could not fork worker {request.name!r}: {reply['error']}. "
                    "The machine may be out of memory or processes; close other clusters."
                )
            return reply["pid"]

    def stop(self) -> None:
        """Stop the zygote; every worker it forked then stops too."""
        with self._lock:
            self._stop()

    def _forget(self) -> None:
        # A fork of the owner (multiprocessing, say) must not talk over the owner's
        # connection: it drops its copy and would start a zygote of its own.
        if self._conn is not None:
            self._conn.close()
        self._conn, self._process = None, None
        self._lock = threading.Lock()
        self.log_path = runs_root() / f"zygote-{os.getpid()}.log"

    def _start(self) -> None:
        self.log_path = private_root() / f"zygote-{os.getpid()}.log"  # made and checked now
        owner_end, zygote_end = socket.socketpair()
        # Like ``python -m chimera_nb.cluster._zygote``, but without running this module a
        # second time as ``__main__`` when the package's ``__init__`` already imported it.
        command = [
            sys.executable,
            "-c",
            f"from {__name__} import main; main()",
            "--fd",
            str(zygote_end.fileno()),
            "--owner",
            str(os.getpid()),
        ]
        try:
            with open(open_private(self.log_path), "wb") as log:
                self._process = subprocess.Popen(
                    command,
                    pass_fds=[zygote_end.fileno()],
                    env=child_environment(),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # Ctrl-C in a terminal or notebook skips it
                )
        except BaseException:
            owner_end.close()
            raise
        finally:
            zygote_end.close()
        owner_end.settimeout(_REPLY_TIMEOUT)
        self._conn = owner_end
        atexit.register(self.stop)

    def _stop(self) -> None:
        if self._conn is not None:
            self._conn.close()  # the zygote reads EOF and exits
            self._conn = None
        if self._process is not None:
            try:
                self._process.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        atexit.unregister(self.stop)


#: The zygote of this process, shared by all its clusters.
ZYGOTE = Zygote()


# --- the zygote's side ----------------------------------------------------------------


def serve(conn: socket.socket, owner_pid: int) -> None:
    """Fork a worker per request until the owner closes the connection or dies."""
    for module in SERVE_FIRST:
        _import_quietly(module)
    _rehearse_serving()
    print(f"chimera-nb zygote: ready to fork after {time.process_time():.2f} s of CPU", flush=True)
    waiting = list(IMPORT_WHEN_IDLE)
    while True:
        ready, _, _ = select.select([conn], [], [], 0 if waiting else 0.5)
        if os.getppid() != owner_pid:
            return  # the owner died and we were handed to another parent
        if not ready:
            if waiting:
                _import_quietly(waiting.pop(0))
            continue
        message = receive_message(conn)
        if message is None:
            return
        data, fds = message
        request = LaunchRequest.from_bytes(data)
        try:
            reply = {"pid": _fork_worker(conn, request, fds)}
        except Exception as error:  # noqa: BLE001 - the owner reports it; we keep serving
            reply = {"error": f"{type(error).__name__}: {error}"}
        finally:
            for fd in fds:
                os.close(fd)  # the worker holds its own copy now
        send_message(conn, json.dumps(reply).encode())


def _fork_worker(conn: socket.socket, request: LaunchRequest, fds: list[int]) -> int:
    if len(fds) != 1:
        raise ValueError(f"expected one listening socket with the request, got {len(fds)}")
    _load_trusted(request.classes)
    sys.stdout.flush()
    sys.stderr.flush()
    gc.freeze()  # objects inherited from the zygote stay shared instead of being copied
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:  # the worker: never return into the zygote's loop
        conn.close()
        gc.enable()
        numpy = sys.modules.get("numpy")
        if numpy is not None:
            numpy.random.seed()  # not the zygote's global random state in every worker
        code = become_worker(request, fds[0], parent_death_signal=True)
    finally:
        os._exit(code)


def _rehearse_serving() -> None:
    """Build, without running, an app and a server like a worker's, so that what FastAPI
    and uvicorn import on first use (pydantic.v1 for the first route: 50 ms; the protocol
    and lifespan classes) is imported once here instead of in every worker. Nothing runs:
    a zygote with threads or an event loop could not fork safely."""
    try:
        import fastapi
        import uvicorn

        app = fastapi.FastAPI()

        @app.get("/health")
        def health() -> dict[str, str]:
            return {"status": "ok"}

        app.build_middleware_stack()
        uvicorn.Config(app, log_config=None).load()
    except Exception:  # noqa: BLE001 - only a missed speed-up; the workers will tell
        traceback.print_exc()


def _load_trusted(classes: list[str]) -> None:
    """Look up the classes a target uses (``"module:qualname"``), once here rather than in
    each worker, if they belong to a package imported already or to a known library: a
    user's own module could start threads on import, and a process with threads must not
    fork. The lookup, not only the import, runs lazy imports such as ``chimera_nb.SGDWorker``.
    """
    for name in classes:
        module, _, qualname = name.partition(":")
        package = module.partition(".")[0]
        if module == "__main__" or not (package in sys.modules or package in TRUSTED_PACKAGES):
            continue
        found = _import_quietly(module)
        for attribute in qualname.split("."):
            found = getattr(found, attribute, None)


def _import_quietly(module: str) -> ModuleType | None:
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        print(f"chimera-nb zygote: not preloading {module}: {error}", flush=True)
    except Exception:  # noqa: BLE001 - a worker that needs it reports it in its own log
        print(f"chimera-nb zygote: could not preload {module}:", flush=True)
        traceback.print_exc()
    return None


def main(argv: list[str] | None = None) -> None:
    """Entry point of the zygote process."""
    parser = argparse.ArgumentParser(description="chimera-nb worker fork server")
    parser.add_argument("--fd", type=int, required=True, help="our end of the socket pair")
    parser.add_argument("--owner", type=int, required=True, help="pid of the owner")
    arguments = parser.parse_args(argv)
    gc.disable()  # no collections moving shared objects around; each worker re-enables it
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps workers that exit
    conn = socket.socket(fileno=arguments.fd)
    print(f"chimera-nb zygote {os.getpid()} serving owner {arguments.owner}", flush=True)
    try:
        serve(conn, arguments.owner)
    finally:
        conn.close()


if __name__ == "__main__":
    main()
