"""Heartbeats (``cluster.watch()``): real worker processes frozen, killed and slowed, and the
states, timestamps, log lines and announcements the heartbeats give them."""

from __future__ import annotations

import os
import re
import signal
import threading
import time

import numpy as np
import pytest

from chimera_nb import SGDWorker
from chimera_nb._exceptions import ClusterError, ConfigurationError
from chimera_nb.cluster import LocalCluster, WorkerState
from chimera_nb.logs import STATUS_LOG

# Fast heartbeats, so that a worker fails within about a second; the waits are generous.
FAST = {"interval": 0.1, "timeout": 0.3, "suspect_after": 1, "fail_after": 3}
WAIT = 20.0  # seconds: a bound for every wait, never a measure


def wait_until(condition, timeout: float = WAIT) -> bool:
    """Poll ``condition()`` until it is true or ``timeout`` seconds passed; its last value."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def heartbeat_threads(cluster: str, probes: bool = True) -> list[str]:
    """The names of a cluster's heartbeat threads that run (with their probes, or not)."""
    prefix = f"chimera-heartbeat-{cluster}"
    names = [t.name for t in threading.enumerate() if t.name.startswith(prefix)]
    return names if probes else [name for name in names if "-probe" not in name]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Three SGD workers, watched; each test leaves them all up."""
    X = np.arange(12.0).reshape(6, 2)
    cluster = LocalCluster.from_shards(
        SGDWorker("regressor"),
        X,
        X.sum(axis=1),
        3,
        name="heartbeats",
        run_dir=tmp_path_factory.mktemp("heartbeats"),
    )
    with cluster:
        cluster.watch(**FAST)
        yield cluster
    assert heartbeat_threads("heartbeats") == []


@pytest.fixture
def heard(cluster):
    """Every (worker, state) the cluster announced to its listeners during the test."""
    announced: list[tuple[str, WorkerState]] = []
    unsubscribe = cluster.on_fault(lambda name, state, *_: announced.append((name, state)))
    yield announced
    unsubscribe()


def all_up(cluster) -> bool:
    return all(s.state is WorkerState.UP for s in cluster.membership().values())


def test_watched_workers_are_up_with_recent_heartbeats(cluster):
    # Execute
    assert wait_until(
        lambda: (
            all_up(cluster)
            and all(s.last_heartbeat is not None for s in cluster.membership().values())
        )
    )
    members = cluster.membership()

    # Assert
    assert list(members) == ["worker1", "worker2", "worker3"]
    assert all(s.missed == 0 and time.time() - s.last_heartbeat < WAIT for s in members.values())
    assert cluster.watching.interval == 0.1
    assert heartbeat_threads("heartbeats", probes=False) == ["chimera-heartbeat-heartbeats"]


def test_a_frozen_worker_is_suspect_then_failed_with_the_time_and_comes_back(cluster, heard):
    # Prepare
    assert wait_until(lambda: all_up(cluster))
    before = time.time()

    # Execute
    cluster.pause("worker2")  # SIGSTOP: it holds every request, heartbeats included
    failed = wait_until(lambda: cluster.membership()["worker2"].state is WorkerState.FAILED)
    after = time.time()
    frozen = cluster.membership()["worker2"]
    status = cluster.status()
    cluster.unpause("worker2")
    back = wait_until(lambda: all_up(cluster) and cluster.membership()["worker2"].missed == 0)

    # Assert
    assert failed and back
    assert before <= frozen.since <= after
    assert frozen.missed >= FAST["fail_after"]
    assert frozen.last_heartbeat < frozen.since
    assert status["worker2"] is WorkerState.FAILED  # while watched, status() is the heartbeats'
    states = [state for name, state in heard if name == "worker2"]
    assert states.index(WorkerState.SUSPECT) < states.index(WorkerState.FAILED)
    log = (cluster.run_dir / STATUS_LOG).read_text()
    assert re.search(r"heartbeat: worker worker2 suspect at [\d:.]+ \(1 heartbeat missed\)", log)
    assert re.search(r"heartbeat: worker worker2 failed at \d\d:\d\d:\d\d\.\d{3} \(3 heart", log)


def test_a_worker_whose_process_is_gone_fails_at_the_first_missed_heartbeat(cluster, heard):
    # Prepare
    assert wait_until(lambda: all_up(cluster))
    before = time.time()

    # Execute
    os.kill(cluster.pids["worker3"], signal.SIGKILL)  # from outside: the cluster was not told
    failed = wait_until(lambda: cluster.membership()["worker3"].state is WorkerState.FAILED)
    gone = cluster.membership()["worker3"]
    cluster.restart("worker3")
    back = wait_until(lambda: all_up(cluster))

    # Assert
    assert failed and back
    assert gone.since >= before
    assert (("worker3", WorkerState.SUSPECT)) not in heard  # gone needs no suspicion
    log = (cluster.run_dir / STATUS_LOG).read_text()
    assert "heartbeat: worker worker3 failed at" in log and "it is no longer running" in log


def test_a_killed_worker_stays_failed_until_restarted(cluster):
    # Prepare
    assert wait_until(lambda: all_up(cluster))

    # Execute
    cluster.kill("worker1")
    time.sleep(10 * FAST["interval"])  # ten heartbeats: none may bring it back
    killed = cluster.membership()["worker1"]
    cluster.restart("worker1")
    back = wait_until(lambda: all_up(cluster))

    # Assert
    assert killed.state is WorkerState.FAILED and killed.missed >= 3
    assert back


def test_a_slowed_worker_is_slow_and_normal_speed_makes_it_up(cluster):
    # Prepare
    assert wait_until(lambda: all_up(cluster))

    # Execute
    cluster.slow("worker1", 0.2)
    time.sleep(5 * FAST["interval"])  # heartbeats answer fast: its known delay keeps it slow
    slowed = cluster.membership()["worker1"].state
    cluster.slow("worker1", 0)
    back = wait_until(lambda: all_up(cluster))

    # Assert
    assert slowed is WorkerState.SLOW
    assert back


# --- settings, lifecycle, and no thread left behind ------------------------------------------


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"interval": 0}, "interval must be > 0 seconds"),
        ({"interval": "fast"}, "interval must be a number of seconds"),
        ({"timeout": float("nan")}, "timeout must be > 0"),
        ({"fail_after": 0}, "fail_after must be a whole number of heartbeats"),
        ({"suspect_after": 2.5}, "suspect_after must be a whole number"),
        ({"suspect_after": 4, "fail_after": 3}, "suspect_after \\(4\\) must not exceed"),
    ],
)
def test_bad_heartbeat_settings_are_refused_naming_the_setting(settings, message):
    cluster = LocalCluster([SGDWorker()], name="unstarted")  # checked before it must run
    with pytest.raises(ConfigurationError, match=message):
        cluster.watch(**settings)


def test_watch_needs_a_running_cluster_and_close_ends_the_thread(tmp_path):
    # Prepare
    worker = SGDWorker().with_data([[1.0], [2.0]], [1.0, 2.0])
    cluster = LocalCluster([worker], name="short", run_dir=tmp_path / "run")
    with pytest.raises(ClusterError, match="Cannot watch the workers: this cluster has not"):
        cluster.watch()
    cluster.start()

    # Execute
    cluster.watch(interval=0.05)
    cluster.watch(interval=0.1)  # replaces the first: still one thread
    running = heartbeat_threads("short", probes=False)
    cluster.close()

    # Assert
    assert running == ["chimera-heartbeat-short"]
    assert heartbeat_threads("short") == []
    assert cluster.watching is None
    assert cluster.membership()["worker1"].state is WorkerState.STOPPED
    assert "worker1 failed" not in (tmp_path / "run" / STATUS_LOG).read_text()
