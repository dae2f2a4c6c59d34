"""The reaper: it removes what a container run made once the process that owns the run is
gone, however that process ended.

A ``DockerCluster`` (or ``SwarmCluster``) removes its containers, services, configs,
network and image when it closes, and closes when its script or notebook kernel exits
(``atexit``). A process killed outright (SIGKILL, the out-of-memory killer, a crashed
kernel) runs neither, and its containers would keep running and holding their ports until
the next start's sweep (``_engine.sweep_leftovers``). So every run gets a reaper, as
testcontainers' Ryuk: a small watchdog that removes everything labelled with the run's id
once its owner is gone.

Why a process of this machine, where Ryuk is a container
--------------------------------------------------------
Ryuk runs in a container so that it works wherever the engine runs. Here no image can be
pulled (the offline image exists only for one run, and the reaper must remove it too), a
container would need the engine's socket mounted inside it (root on the host for whoever
gets into that container), and whether the owner is alive is a question about a process of
*this* machine, which a process here answers from its pid and start time.

How
---
* Before a run makes anything, its cluster starts the reaper (:class:`Reaper`, a few
  milliseconds): ``python -m chimera_nb.cluster._reaper --run RUN --owner HOST/PID/START
  --fd N``, in a session of its own (a Ctrl-C in the owner's terminal, or a signal to the
  owner's process group, does not reach it), holding the read end ``N`` of a pipe whose
  write end only the owner holds.
* A close that removed everything writes ``closed`` into the pipe: the reaper exits at
  once, touching nothing.
* When the owner dies, the system closes its end of the pipe: the reaper reads the end of
  the stream, checks that the owner is gone (its pid runs no process with its start time,
  :func:`~chimera_nb.cluster._owners.owner_gone`), and removes what is labelled with the
  run and still names that owner, again until nothing is left. A close that failed, too,
  leaves the reaper waiting for the owner's end.
* Watching costs no call to the engine: a read that waits, and a look at ``/proc`` every
  2 s (a fork of the owner may hold the pipe open after the owner died). The Docker SDK is
  imported only to remove.

The reaper talks to the engine of ``DOCKER_HOST`` (or the local socket), as a cluster does
unless given another ``client``. Its output goes to ``reaper.log`` in the run folder.
"""

from __future__ import annotations

import argparse
import os
import select
import subprocess
import sys
import time
from pathlib import Path

from ._owners import owner_gone, owner_id
from ._rundirs import open_private

__all__ = ["Reaper", "main"]

_CLOSED = b"closed"
_POLL = 2.0  # seconds between two looks at the owner, while the pipe says nothing
_PATIENCE = 60.0  # seconds to keep removing what the engine refuses to remove yet


class Reaper:
    """The owner's side: starts the reaper of run ``run_id``, writing to ``log_path``.

    ``with reaper:`` around the removal of the run lets the reaper go when the block ends
    without an error (:meth:`release`).
    """

    def __init__(self, run_id: str, log_path: Path) -> None:
        from ._launcher import child_environment  # here: the reaper's process needs none of it

        read_end, write_end = os.pipe()  # neither end goes to other children
        self._write_end: int | None = write_end
        command = [sys.executable, "-m", __name__, "--run", run_id, "--owner", owner_id()]
        try:
            with open(open_private(log_path), "wb") as log:
                self._process = subprocess.Popen(
                    [*command, "--fd", str(read_end)],
                    pass_fds=[read_end],
                    env=child_environment(),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # Ctrl-C and kills of our process group skip it
                )
        except BaseException:
            os.close(write_end)
            raise
        finally:
            os.close(read_end)

    @property
    def pid(self) -> int:
        return self._process.pid

    def release(self, *, run_removed: bool) -> None:
        """End this process's part (once; later calls do nothing): ``run_removed`` lets the
        reaper exit now; otherwise it removes what is left once this process has exited."""
        if self._write_end is None:
            return
        try:
            if run_removed:
                os.write(self._write_end, _CLOSED)
        except OSError:
            pass  # the reaper is gone already (killed by hand): nothing to tell
        finally:
            os.close(self._write_end)
            self._write_end = None
        self._process.poll()  # collects its exit status if it has ended

    def __enter__(self) -> Reaper:
        return self

    def __exit__(self, error_type: type | None, *details: object) -> None:
        self.release(run_removed=error_type is None)


# --- the reaper's side -----------------------------------------------------------------------


def owner_is_gone(pipe: int, owner: str) -> bool:
    """Wait until the owner is gone (True) or said that its run is closed (False)."""
    listening = True
    while not owner_gone(owner):
        if not listening:
            time.sleep(_POLL)
            continue
        ready, _, _ = select.select([pipe], [], [], _POLL)
        if ready:
            if os.read(pipe, len(_CLOSED)) == _CLOSED:
                return False
            # End of the stream: the owner died (a dying process loses its files a moment
            # before its pid), or closed its end after a failed close: watch the pid alone.
            listening = False
            time.sleep(0.05)
    return True


def reap(run_id: str) -> list[str]:
    """Remove what is left of run ``run_id`` (its owner gone), pass after pass until a pass
    finds nothing: a swarm takes a moment to remove a service's containers, and a network
    cannot go while a container is attached. Returns what was done."""
    from ._engine import connect, sweep_leftovers

    client = connect()
    done: list[str] = []
    deadline = time.monotonic() + _PATIENCE
    while time.monotonic() < deadline:
        found = sweep_leftovers(client, run_id)
        done += found
        if not found:
            break
        time.sleep(0.5)
    return done


def main(argv: list[str] | None = None) -> None:
    """Entry point of the reaper process."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="the run id (label chimera-nb.run)")
    parser.add_argument("--owner", required=True, help="the owner, as <host>/<pid>/<start>")
    parser.add_argument("--fd", type=int, required=True, help="read end of the owner's pipe")
    arguments = parser.parse_args(argv)
    print(f"chimera-nb reaper {os.getpid()}: run {arguments.run} of {arguments.owner}", flush=True)
    if not owner_is_gone(arguments.fd, arguments.owner):
        print("the run was closed by its owner; nothing to remove", flush=True)
        return
    print("its owner is gone; removing what is left of the run", flush=True)
    for line in reap(arguments.run):
        print(line, flush=True)


if __name__ == "__main__":
    main()
