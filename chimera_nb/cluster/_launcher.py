"""How a process becomes a worker: the launch request, the worker's side of a launch, and
the handle the cluster keeps on each worker process.

Both ways of starting a worker end in :func:`become_worker`:

* the zygote (``_zygote.py``) forks a copy of itself, already holding numpy, FastAPI and
  uvicorn, and calls it in the copy;
* the fallback (no ``fork``, not Linux, or ``CHIMERA_LAUNCHER=exec``) starts a fresh
  interpreter, ``python -c 'from chimera_nb.cluster._launcher import main; main()'
  --fd N --owner PID REQUEST_FILE``
  (:func:`exec_worker`), which reads the request and calls it.

Either way the parent has already bound and opened the worker's listening socket, so the
port is known before the worker runs, and no other process can take it meanwhile.
"""

from __future__ import annotations

import argparse
import ctypes
import faulthandler
import json
import os
import pickle
import runpy
import select
import signal
import site
import socket
import struct
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..workers.launch import LaunchContext, set_context
from ._owners import pid_exists
from ._rundirs import open_private, write_private

__all__ = [
    "LaunchRequest",
    "WorkerProcess",
    "become_worker",
    "child_environment",
    "exec_worker",
    "log_tail",
]

#: BLAS libraries start one thread per core in every worker; with several workers on a
#: 2-core notebook machine they would fight for the cores. Users may still set these.
_ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
_OWNER_POLL_SECONDS = 0.5
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
_HEADER = struct.Struct("!Q")


@dataclass
class LaunchRequest:
    """Everything a worker process needs to know, sent by the cluster to the launcher.

    The fields travel as JSON, except ``payload``, the pickled target, which only the worker
    process itself unpickles (the zygote never does). Pickle is used only between processes
    of this user, over a private socket pair or a file in the run directory.
    """

    name: str
    owner_pid: int  # the process that owns the cluster: the worker exits when it is gone
    log_path: str
    cwd: str
    sys_path: list[str]
    environ: dict[str, str]
    data_dir: str | None = None
    script: str | None = None  # a seed-style worker script, run as __main__ ...
    payload: bytes = b""  # ... or the pickled target whose serve() is called
    classes: list[str] = field(default_factory=list)  # "module:qualname" the payload uses

    def to_bytes(self) -> bytes:
        fields = asdict(self)
        payload = fields.pop("payload")
        head = json.dumps(fields).encode()
        return _HEADER.pack(len(head)) + head + payload

    @classmethod
    def from_bytes(cls, data: bytes) -> LaunchRequest:
        (size,) = _HEADER.unpack_from(data)
        fields = json.loads(data[_HEADER.size : _HEADER.size + size])
        return cls(**fields, payload=bytes(data[_HEADER.size + size :]))


def child_environment() -> dict[str, str]:
    """The environment for a launcher process: ours, one BLAS thread, and this package
    importable even when chimera-nb is not installed (a source checkout)."""
    env = dict(os.environ)
    for variable, value in _ONE_THREAD.items():
        env.setdefault(variable, value)
    root = str(Path(__file__).resolve().parents[2])
    installed = set(site.getsitepackages()) | {site.getusersitepackages()}
    if root not in installed:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    return env


def log_tail(path: os.PathLike | str, n_lines: int = 20) -> str:
    """The last lines of a log file, indented, for error messages."""
    try:
        with open(path, "rb") as log:
            log.seek(0, os.SEEK_END)
            log.seek(max(0, log.tell() - 16_384))
            lines = log.read().decode("utf-8", "replace").splitlines()[-n_lines:]
    except OSError as error:
        return f"    (could not read it: {error})"
    return "\n".join("    " + line for line in lines) or "    (it is empty)"


# --- the worker's side ------------------------------------------------------------------


def become_worker(request: LaunchRequest, sock_fd: int, *, parent_death_signal: bool) -> int:
    """Turn this process into the worker ``request`` describes and serve until stopped.

    Parameters
    ----------
    request : LaunchRequest
    sock_fd : int
        The listening socket the parent bound for this worker.
    parent_death_signal : bool
        Ask Linux to send SIGTERM when the parent dies. Only for forked workers: the
        signal follows the parent *thread*, which is the zygote's only thread, but may be
        a short-lived thread of the notebook for an exec'd worker.

    Returns
    -------
    int
        The exit code. Never raises: whatever goes wrong is written to the worker's log,
        where the cluster reads it back for its error message.
    """
    try:
        _reset_signals()
        _send_output_to(request.log_path)
        print(f"chimera-nb: worker {request.name!r} starting, pid {os.getpid()}", flush=True)
        _die_with_owner(request.owner_pid, parent_death_signal)
        os.chdir(request.cwd)
        sys.path[:] = request.sys_path
        os.environ.clear()
        os.environ.update(request.environ)
        for variable, value in _ONE_THREAD.items():
            os.environ.setdefault(variable, value)
        sys.argv = [request.script or request.name]
        sock = socket.socket(fileno=sock_fd)
        sock.set_inheritable(False)  # not for the worker's own subprocesses
        host, port = sock.getsockname()[:2]
        data_dir = Path(request.data_dir) if request.data_dir else None
        set_context(LaunchContext(request.name, data_dir, sock, host=host, port=port))
        if request.script is not None:
            runpy.run_path(request.script, run_name="__main__")
        else:
            pickle.loads(request.payload).serve()
        return 0
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    except BaseException:  # noqa: BLE001 - whatever it is, the log is where it must go
        traceback.print_exc()
        return 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()


def _reset_signals() -> None:
    # The zygote ignores SIGINT and auto-reaps children; a worker must behave like any
    # Python program (uvicorn installs its own SIGINT/SIGTERM handlers when it serves).
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _send_output_to(log_path: str) -> None:
    log = open_private(Path(log_path), append=True)  # made by the cluster; never via a link
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    # Line-buffered, so a worker killed with SIGKILL still leaves its last lines. These
    # streams live as long as the worker, hence no context manager.
    options = {"buffering": 1, "encoding": "utf-8", "errors": "replace", "closefd": False}
    sys.stdout = open(1, "w", **options)  # noqa: SIM115
    sys.stderr = open(2, "w", **options)  # noqa: SIM115
    faulthandler.enable(sys.stderr)  # a segfault in a C extension leaves a traceback


def _die_with_owner(owner_pid: int, parent_death_signal: bool) -> None:
    """Make sure this worker does not outlive the process that owns its cluster.

    Two layers: the kernel's parent-death signal (Linux, forked workers: instant once the
    zygote, which exits with the owner, is gone), and a watchdog thread that checks every
    half second whether the parent is gone (``getppid()`` changed, which a recycled pid
    cannot fake) or the owner is. The watchdog covers macOS, exec'd workers, and the
    moment before the parent-death signal was armed.
    """
    parent_pid = os.getppid()
    if parent_death_signal and sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    watchdog = threading.Thread(
        target=_watch_owner,
        args=(owner_pid, parent_pid),
        name="chimera-nb-watchdog",
        daemon=True,
    )
    watchdog.start()


def _watch_owner(owner_pid: int, parent_pid: int) -> None:
    while os.getppid() == parent_pid and pid_exists(owner_pid):
        time.sleep(_OWNER_POLL_SECONDS)
    print(f"chimera-nb: owner process {owner_pid} is gone; this worker exits", flush=True)
    os._exit(0)


# --- the cluster's side -----------------------------------------------------------------


class WorkerProcess:
    """A handle on one worker process, which this process may not have started itself.

    Workers forked by the zygote are not our children, so we cannot ``wait()`` for them.
    On Linux a pidfd refers to the process itself rather than to its number, so a worker
    that exited is never confused with a new process that got the same pid.

    Parameters
    ----------
    pid : int
    popen : subprocess.Popen, optional
        Set when the worker is our child (exec fallback); then it is also reaped.
    """

    def __init__(self, pid: int, popen: subprocess.Popen | None = None) -> None:
        self.pid = pid
        self._popen = popen
        self._pidfd: int | None = None
        self._exited = False
        if popen is None and hasattr(os, "pidfd_open"):
            try:
                self._pidfd = os.pidfd_open(pid)
            except ProcessLookupError:
                self._exited = True
            except OSError:
                pass  # no pidfds here (old kernel, sandbox): fall back to kill(pid, 0)

    def is_alive(self) -> bool:
        if not self._exited and not self._check_alive():
            self._exited = True
            self.release()
        return not self._exited

    def _check_alive(self) -> bool:
        if self._popen is not None:
            return self._popen.poll() is None
        if self._pidfd is not None:
            poller = select.poll()
            poller.register(self._pidfd, select.POLLIN)
            return not poller.poll(0)  # a pidfd turns readable when the process exits
        return pid_exists(self.pid)

    def send_signal(self, sig: int) -> None:
        if not self.is_alive():
            return
        try:
            if self._pidfd is not None:
                signal.pidfd_send_signal(self._pidfd, sig)
            else:
                os.kill(self.pid, sig)
        except ProcessLookupError:
            pass

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the process to exit; True if it did."""
        deadline = time.monotonic() + timeout
        while self.is_alive():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def release(self) -> None:
        """Close the pidfd (the process itself is not touched)."""
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None


def exec_worker(request: LaunchRequest, sock: socket.socket, request_path: Path) -> WorkerProcess:
    """Start a worker in a fresh interpreter (the fallback when the zygote cannot fork).

    Slower (each worker imports numpy, FastAPI and the rest itself), but needs nothing
    beyond ``subprocess``. The request goes through a file that the worker deletes.
    """
    write_private(request_path, request.to_bytes())  # it holds the environment and the worker
    command = [
        sys.executable,
        "-c",
        f"from {__name__} import main; main()",
        "--fd",
        str(sock.fileno()),
        "--owner",
        str(request.owner_pid),
        str(request_path),
    ]
    with open(open_private(Path(request.log_path), append=True), "ab") as log:
        popen = subprocess.Popen(
            command,
            pass_fds=[sock.fileno()],
            env=child_environment(),
            cwd=request.cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C in a terminal or notebook must not reach it
        )
    return WorkerProcess(popen.pid, popen)


def main(argv: list[str] | None = None) -> None:
    """Entry point of an exec'd worker: read the request file, then serve."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fd", type=int, required=True, help="listening socket")
    parser.add_argument("--owner", type=int, required=True, help="pid of the cluster owner")
    parser.add_argument("request", type=Path)
    arguments = parser.parse_args(argv)
    request = LaunchRequest.from_bytes(arguments.request.read_bytes())
    arguments.request.unlink()
    sys.exit(become_worker(request, arguments.fd, parent_death_signal=False))


if __name__ == "__main__":
    main()
