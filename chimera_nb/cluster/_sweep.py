"""Finding and stopping workers that a dead session left behind.

A cluster records who runs where in ``<run dir>/workers.json``. If its owner was killed so
hard that nothing could clean up (and a worker's own watchdog did not fire either), the next
session's first cluster reads those manifests and stops what is left.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path

from ._owners import pid_exists
from ._rundirs import private_root

__all__ = ["sweep_once", "sweep_stale_workers"]

_swept = False


def sweep_stale_workers(root: str | os.PathLike | None = None) -> list[int]:
    """Kill workers left behind by dead sessions, and remove their run directories.

    Reads every ``<root>/*/workers.json`` whose owner process is gone (``root``: by default
    this user's private folder of run folders, checked first). A pid is killed only if it
    still runs a chimera-nb launcher for that very owner (checked in ``/proc``, so never on
    a recycled pid; on systems without ``/proc`` nothing is killed, and the workers' own
    watchdogs are relied on). Returns the pids that were killed.
    """
    root = Path(root) if root is not None else private_root()
    killed = []
    for folder in root.glob("*-*-*"):  # <cluster>-<owner pid>-<n>, from a failed start
        owner = folder.name.rsplit("-", 2)[1]
        stale = owner.isdigit() and not pid_exists(int(owner))
        if stale and folder.is_dir() and not (folder / "workers.json").exists():
            shutil.rmtree(folder, ignore_errors=True)
    for manifest_path in root.glob("*/workers.json"):
        try:
            manifest = json.loads(manifest_path.read_text())
            owner = int(manifest["owner_pid"])
            if pid_exists(owner):
                continue
            for pid in [manifest.get("zygote_pid")] + [w["pid"] for w in manifest["workers"]]:
                if pid and _launched_for(int(pid), owner):
                    os.kill(int(pid), signal.SIGKILL)
                    killed.append(int(pid))
        except (OSError, ValueError, KeyError, TypeError):
            continue  # unreadable, or someone else's: leave it alone
        shutil.rmtree(manifest_path.parent, ignore_errors=True)
    for zygote_log in root.glob("zygote-*.log"):
        owner = zygote_log.stem.partition("-")[2]
        if owner.isdigit() and not pid_exists(int(owner)):
            zygote_log.unlink(missing_ok=True)
    return killed


def _launched_for(pid: int, owner: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            arguments = cmdline.read().split(b"\0")
    except OSError:
        return False
    marked = any(b"chimera_nb.cluster._" in argument for argument in arguments)
    return marked and b"--owner" in arguments and str(owner).encode() in arguments


def sweep_once() -> None:
    """Sweep at the first cluster start of this process only."""
    global _swept
    if not _swept:
        _swept = True
        sweep_stale_workers()
