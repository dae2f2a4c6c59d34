"""Whether the process that owns a run still runs: asked by a worker's watchdog, by the
sweeps of what crashed runs left, and by the reaper of a container run.

A pid alone is not enough to name a process: once it exits, the system may give its number
to a new process. So an owner is named ``<host>/<pid>/<start time>``, and it is gone when
no process has that pid, or the one that has it started at another time.

Only the standard library is imported here, so that the reaper (``_reaper.py``), which
imports this module in a process of its own, stays small while it watches.
"""

from __future__ import annotations

import os
import socket

__all__ = ["owner_gone", "owner_id", "pid_exists"]


def pid_exists(pid: int) -> bool:
    """Whether a process with this pid exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rpartition(b")")[2].split()[0] != b"Z"
    except (OSError, IndexError):
        return True  # no /proc (macOS): kill() already said it exists


def owner_id(pid: int | None = None) -> str:
    """``<host>/<pid>/<start time>`` of this process (or of ``pid``)."""
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}/{pid}/{_start_ticks(pid)}"


def owner_gone(owner: str | None) -> bool:
    """True only if ``owner`` (an :func:`owner_id`) is a process of this host that no longer
    runs; False for another machine's process, or a name that is not an owner's."""
    parts = (owner or "").split("/")
    if len(parts) != 3:
        return False
    host, pid, ticks = parts
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another machine's run, or not ours to judge
    return not pid_exists(int(pid)) or _start_ticks(int(pid)) != ticks


def _start_ticks(pid: int) -> str:
    """When ``pid`` started, in clock ticks since boot ("0" where /proc is missing)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rpartition(b")")[2].split()[19].decode()
    except (OSError, IndexError):
        return "0"
