"""Tests of what every backend shares through ``BaseCluster``: one registry by name across
backends, ``shutdown_launcher`` closing them all, the fault API (a local worker paused and
thawed), and what a backend cannot do. Real processes, servers and containers only."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from chimera_nb._exceptions import ClusterError, ConfigurationError
from chimera_nb._types import Cluster
from chimera_nb.cluster import (
    AttachedCluster,
    BaseCluster,
    ClusterState,
    DockerCluster,
    LocalCluster,
    SwarmCluster,
    WorkerState,
    cluster_class,
    shutdown_launcher,
)
from chimera_nb.workers import SGDWorker

from ._targets import HealthWorker
from .conftest import leftovers
from .test_process import wait_until_gone


def tiny_worker() -> SGDWorker:
    return SGDWorker().with_data([[1.0], [2.0]], [1.0, 2.0])


def timed_health(url: str) -> tuple[float, int]:
    """Seconds ``GET /health`` took, and its status."""
    started = time.monotonic()
    answer = httpx.get(url + "/health", trust_env=False, timeout=10)
    return time.monotonic() - started, answer.status_code


# --- one family -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("backend", "expected"),
    [
        ("process", LocalCluster),
        ("docker", DockerCluster),
        ("swarm", SwarmCluster),
        ("attach", AttachedCluster),
    ],
)
def test_cluster_class_gives_each_backends_class_by_its_chimera_backend_name(backend, expected):
    # Execute
    actual = cluster_class(backend)
    # Assert
    assert actual is expected and issubclass(actual, BaseCluster)
    assert actual.backend == backend


def test_cluster_class_refuses_an_unknown_backend_and_lists_the_known_ones():
    with pytest.raises(ConfigurationError, match="'process', 'docker', 'swarm', 'attach'"):
        cluster_class("kubernetes")


def test_a_cluster_that_has_not_started_shows_every_worker_stopped():
    # Prepare
    clusters = [
        LocalCluster([HealthWorker()]),
        DockerCluster([tiny_worker()]),
        AttachedCluster(["http://127.0.0.1:5001"]),
    ]
    # Execute / Assert
    for cluster in clusters:
        assert cluster.state is ClusterState.NEW
        assert cluster.status() == {"worker1": WorkerState.STOPPED}


def test_running_clusters_are_clusters_as_masters_and_dashboards_expect(tmp_path):
    # Prepare
    with LocalCluster([HealthWorker()], name="protocol", run_dir=tmp_path / "local") as local:
        attached = AttachedCluster(local.endpoints, name="protocol-attached")
        # Execute
        with attached:
            # Assert
            for cluster in (local, attached):
                assert isinstance(cluster, Cluster)
                assert cluster.endpoints == local.endpoints
                assert cluster.run_dir.is_dir()


# --- one registry for every backend -------------------------------------------------------


def test_a_local_cluster_replaces_a_running_docker_cluster_of_the_same_name(docker_client):
    # Prepare: a notebook cell that ran with backend="docker", edited to run locally
    first = DockerCluster([tiny_worker()], name="same-name").start()
    run_id = first.run_id
    # Execute
    second = LocalCluster([HealthWorker()], name="same-name").start()
    # Assert
    try:
        assert first.state is ClusterState.CLOSED
        assert repr(first) == "DockerCluster('same-name', 1 worker: closed)"
        assert leftovers(docker_client, f"chimera-nb.run={run_id}") == {}
        assert second.status() == {"worker1": WorkerState.UP}
    finally:
        second.close()


def test_shutdown_launcher_closes_the_running_clusters_of_every_backend(docker_client):
    # Prepare
    local = LocalCluster([HealthWorker()], name="every-local").start()
    pid, url = local.pids["worker1"], local.endpoints["worker1"]
    attached = AttachedCluster(local.endpoints, name="every-attached").start()
    container = DockerCluster([tiny_worker()], name="every-docker").start()
    # Execute
    shutdown_launcher()
    # Assert
    assert [c.state for c in (local, attached, container)] == [ClusterState.CLOSED] * 3
    assert leftovers(docker_client, f"chimera-nb.run={container.run_id}") == {}
    assert wait_until_gone([pid]) == []
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/health", trust_env=False)


def test_closing_a_cluster_that_another_replaced_leaves_the_new_one_registered(tmp_path):
    # Prepare
    first = LocalCluster([HealthWorker()], name="kept", run_dir=tmp_path / "1").start()
    second = LocalCluster([HealthWorker()], name="kept", run_dir=tmp_path / "2").start()
    # Execute
    first.close()  # already closed by the second start: nothing happens
    shutdown_launcher()
    # Assert
    assert second.state is ClusterState.CLOSED


# --- faults that every backend shares -------------------------------------------------------


def test_a_paused_local_worker_shows_slow_and_answers_late_once_unpaused(tmp_path):
    # Prepare
    with LocalCluster([HealthWorker()] * 2, name="paused", run_dir=tmp_path) as cluster:
        url = cluster.endpoints["worker2"]
        answers: list[tuple[float, int]] = []
        # Execute
        cluster.pause("worker2")
        paused = cluster.status()
        shown = repr(cluster)
        call = threading.Thread(target=lambda: answers.append(timed_health(url)))
        call.start()
        time.sleep(0.5)
        waiting = call.is_alive()
        cluster.unpause("worker2")
        call.join(timeout=10)
        unpaused = cluster.status()
    # Assert
    assert paused == {"worker1": WorkerState.UP, "worker2": WorkerState.SLOW}
    assert shown == "LocalCluster('paused', 2 workers: 1 up, 1 slow)"
    assert waiting
    latency, status = answers[0]
    assert status == 200 and latency >= 0.5
    assert unpaused == {"worker1": WorkerState.UP, "worker2": WorkerState.UP}
    assert "fault: paused worker worker2" in (tmp_path / "chimera_status.log").read_text()


def test_a_paused_local_worker_can_still_be_restarted(tmp_path):
    # Prepare
    with LocalCluster([HealthWorker()], name="thawed", run_dir=tmp_path) as cluster:
        cluster.pause("worker1")
        # Execute
        cluster.restart("worker1")
        # Assert
        assert cluster.status() == {"worker1": WorkerState.UP}


def test_a_fault_a_backend_cannot_cause_says_what_works_instead(tmp_path):
    # Prepare
    with LocalCluster([HealthWorker()], name="no-cable", run_dir=tmp_path) as cluster:
        # Execute
        with pytest.raises(ClusterError) as raised:
            cluster.disconnect("worker1")
        state = cluster.status()["worker1"]
    # Assert
    message = str(raised.value)
    assert "Cannot disconnect worker 'worker1': a LocalCluster has no way to" in message
    assert "disconnect() and reconnect() on DockerCluster and SwarmCluster" in message
    assert state is WorkerState.UP


def test_slowing_a_worker_that_is_down_says_so_and_how_to_bring_it_back(tmp_path):
    # Prepare
    with LocalCluster([HealthWorker()], name="down", run_dir=tmp_path) as cluster:
        cluster.kill("worker1")
        # Execute
        with pytest.raises(ClusterError) as raised:
            cluster.slow("worker1", 0.1)
    # Assert
    assert "Cannot slow down worker 'worker1': it did not answer" in str(raised.value)
    assert "restart('worker1')" in str(raised.value)


def test_a_fault_on_an_unknown_worker_names_the_workers_there_are(tmp_path):
    with LocalCluster([HealthWorker()] * 2, name="unknown", run_dir=tmp_path) as cluster:
        with pytest.raises(ConfigurationError, match="this cluster has worker1, worker2"):
            cluster.pause("worker9")


def test_log_gives_the_end_of_what_a_worker_printed(tmp_path):
    # Prepare
    with LocalCluster([HealthWorker()], name="logged", run_dir=tmp_path) as cluster:
        # Execute
        while_running = cluster.log("worker1")
    after_close = cluster.log("worker1", n_lines=1)
    # Assert
    assert "chimera-nb: worker 'worker1' starting" in while_running
    assert after_close.startswith("    ") and len(after_close.splitlines()) == 1
