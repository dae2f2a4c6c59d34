"""The reaper of a container run (``chimera_nb.cluster._reaper``): what a run made goes when
its owner dies, even by SIGKILL, and nothing of any other run does; a run closed normally
sends its reaper away at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from chimera_nb import SGDWorker
from chimera_nb.cluster import DockerCluster, WorkerState
from chimera_nb.cluster._reaper import Reaper
from tests.test_kernel_restart import still_running

from .conftest import leftovers

REPO_ROOT = Path(__file__).resolve().parents[2]

OWNER = """\
import sys, time
sys.path.insert(0, {root!r})
from chimera_nb import SGDWorker
from chimera_nb.cluster import DockerCluster
cluster = DockerCluster([SGDWorker().with_data([[1.0], [2.0]], [1.0, 2.0])] * 2, name="owner")
cluster.start()
print(cluster.run_id, cluster.run_dir, flush=True)
time.sleep(600)
"""

HALF_CLOSED = """\
import sys, time
sys.path.insert(0, {root!r})
from pathlib import Path
from chimera_nb.cluster._reaper import Reaper
reaper = Reaper("00000000", Path({log!r}))
reaper.release(run_removed=False)  # as after a close that could not remove everything
print(reaper.pid, flush=True)
time.sleep(600)
"""


def reaper_of(run_id: str) -> psutil.Process:
    """The reaper process of run ``run_id``."""
    for process in psutil.process_iter(["cmdline"]):
        command = process.info["cmdline"] or []
        if "chimera_nb.cluster._reaper" in command and run_id in command:
            return process
    raise AssertionError(f"no reaper runs for run {run_id}")


def wait_until(condition, timeout: float) -> float:
    """Seconds until ``condition()`` held (fails after ``timeout``)."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, "still not the case"
        time.sleep(0.1)
    return time.monotonic() - started


def test_a_sigkilled_owners_run_is_removed_by_its_reaper_and_no_other_run_is_touched(
    docker_client, tmp_path
):
    # Prepare: a bystander run of this process, and an owner process with a run of its own
    bystander = DockerCluster([SGDWorker().with_data([[1.0], [2.0]], [1.0, 2.0])], name="by")
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER.format(root=str(REPO_ROOT))],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        text=True,
    )
    with bystander:
        run_id, run_dir = owner.stdout.readline().split()
        made = leftovers(docker_client, f"chimera-nb.run={run_id}")
        reaper = reaper_of(run_id)
        # Execute
        owner.send_signal(signal.SIGKILL)
        owner.wait()
        seconds = wait_until(
            lambda: not leftovers(docker_client, f"chimera-nb.run={run_id}"), timeout=15
        )
        # Assert
        assert sorted(made) == ["containers", "images", "networks"]
        assert seconds < 15
        assert not still_running([reaper.pid], timeout=5)
        log = (Path(run_dir) / "reaper.log").read_text()
        assert "its owner is gone" in log and f"network chimera-network-{run_id}" in log
        assert bystander.status() == {"worker1": WorkerState.UP}
        assert len(leftovers(docker_client, f"chimera-nb.run={bystander.run_id}")) == 3


def test_a_closed_runs_reaper_exits_at_once_without_touching_anything(docker_client):
    # Prepare
    cluster = DockerCluster([SGDWorker().with_data([[1.0], [2.0]], [1.0, 2.0])], name="closing")
    cluster.start()
    reaper = reaper_of(cluster.run_id)
    # Execute
    cluster.close()
    # Assert
    assert not still_running([reaper.pid], timeout=1.0)
    assert "closed by its owner; nothing to remove" in (cluster.run_dir / "reaper.log").read_text()
    assert leftovers(docker_client, f"chimera-nb.run={cluster.run_id}") == {}


def test_a_reaper_not_told_that_its_run_is_closed_waits_for_its_owners_end(docker_client, tmp_path):
    # Prepare
    log = tmp_path / "reaper.log"
    owner = subprocess.Popen(
        [sys.executable, "-c", HALF_CLOSED.format(root=str(REPO_ROOT), log=str(log))],
        stdout=subprocess.PIPE,
        text=True,
    )
    reaper = psutil.Process(int(owner.stdout.readline()))
    time.sleep(2.5)  # longer than the reaper's poll period
    waiting = reaper.is_running() and reaper.status() != psutil.STATUS_ZOMBIE
    # Execute
    owner.send_signal(signal.SIGKILL)
    owner.wait()
    # Assert
    assert waiting, log.read_text()
    assert not still_running([reaper.pid], timeout=10)
    assert "its owner is gone" in log.read_text()


def test_a_reaper_starts_in_milliseconds_in_a_session_of_its_own(tmp_path):
    """Its own session: a Ctrl-C in the owner's terminal, or a signal to the owner's process
    group, does not reach it."""
    # Prepare
    log = tmp_path / "reaper.log"
    # Execute
    started = time.perf_counter()
    reaper = Reaper("00000000", log)
    seconds = time.perf_counter() - started
    session = os.getsid(reaper.pid)
    reaper.release(run_removed=True)
    # Assert
    assert seconds < 0.2
    assert session == reaper.pid != os.getsid(os.getpid())
    assert not still_running([reaper.pid], timeout=5)
    assert os.stat(log).st_mode & 0o777 == 0o600
