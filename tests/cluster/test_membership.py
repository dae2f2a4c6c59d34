"""Elastic membership: workers added to and removed from running clusters (real worker
processes, real attached workers, real containers), and the mistakes refused on the way."""

from __future__ import annotations

import json
import socket

import httpx
import numpy as np
import pytest

from chimera_nb import ParameterServerMaster, SGDWorker
from chimera_nb._exceptions import ClusterError, ConfigurationError
from chimera_nb.cluster import (
    AttachedCluster,
    DockerCluster,
    LocalCluster,
    SwarmCluster,
    WorkerState,
)
from chimera_nb.logs import STATUS_LOG

from ._targets import BrokenWorker, HealthWorker
from .conftest import leftovers
from .test_process import is_gone, wait_until_gone


def regression_rows(n_rows: int = 300):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n_rows, 3))
    return X, X @ np.array([1.0, 2.0, -1.0]) + 0.5


def fit(cluster):
    return ParameterServerMaster("regressor", max_iter=5, tol=0.0).fit(cluster)


def manifest_names(path) -> list[str]:
    return [worker["name"] for worker in json.loads(path.read_text())["workers"]]


# --- the process backend ----------------------------------------------------------------------


def test_an_added_worker_is_in_endpoints_at_once_and_the_next_fit_counts_its_shard(tmp_path):
    # Prepare
    X, y = regression_rows()
    run_dir = tmp_path / "run"
    cluster = LocalCluster.from_shards(
        SGDWorker("regressor"), X[:200], y[:200], 2, name="grow", run_dir=run_dir
    )

    # Execute
    with cluster:
        before = cluster.endpoints
        name = cluster.add_worker(SGDWorker("regressor"), X[200:], y[200:])
        endpoints = cluster.endpoints
        last_round = fit(cluster).history_[-1]
        joined = cluster.membership()[name]
        manifest = manifest_names(run_dir / "workers.json")
        pid = cluster.pids[name]
        shown = repr(cluster)

    # Assert
    assert name == "worker3"
    assert list(endpoints) == ["worker1", "worker2", "worker3"]
    assert endpoints["worker3"] not in before.values()
    assert last_round.answered == ["worker1", "worker2", "worker3"]
    assert last_round.n_samples == {"worker1": 100, "worker2": 100, "worker3": 100}
    assert joined.state is WorkerState.UP
    assert manifest == ["worker1", "worker2", "worker3"]
    assert shown == "LocalCluster('grow', 3 workers: 3 up)"
    assert wait_until_gone([pid]) == []  # close() stops added workers too
    assert (
        "membership: worker worker3 joined at http://127.0.0.1:"
        in (run_dir / STATUS_LOG).read_text()
    )


def test_a_removed_worker_leaves_endpoints_is_stopped_and_its_name_may_come_back(tmp_path):
    # Prepare
    X, y = regression_rows()
    run_dir = tmp_path / "run"
    cluster = LocalCluster.from_shards(
        SGDWorker("regressor"), X, y, 3, name="shrink", run_dir=run_dir
    )

    # Execute
    with cluster:
        pid = cluster.pids["worker2"]
        cluster.remove_worker("worker2")
        endpoints, names = cluster.endpoints, cluster.names
        last_round = fit(cluster).history_[-1]
        manifest = manifest_names(run_dir / "workers.json")
        gone = is_gone(pid)
        with pytest.raises(ConfigurationError, match="No worker named 'worker2'"):
            cluster.restart("worker2")
        again = cluster.add_worker(SGDWorker("regressor"), X[:50], y[:50], name="worker2")
        back = list(cluster.endpoints)

    # Assert
    assert list(endpoints) == names == ["worker1", "worker3"]
    assert last_round.answered == ["worker1", "worker3"]
    assert manifest == ["worker1", "worker3"]
    assert gone
    assert (run_dir / "worker2.log").exists()  # its log stays in the run directory
    assert again == "worker2" and back == ["worker1", "worker3", "worker2"]


def test_a_worker_that_cannot_start_is_not_added_and_the_cluster_is_as_before(tmp_path):
    # Prepare
    run_dir = tmp_path / "run"
    cluster = LocalCluster([HealthWorker()] * 2, name="steady", run_dir=run_dir)

    # Execute
    with cluster:
        before = cluster.endpoints
        with pytest.raises(ClusterError) as raised:
            cluster.add_worker(BrokenWorker(), name="broken")
        after, states = cluster.endpoints, cluster.status()
        manifest = manifest_names(run_dir / "workers.json")
        name = cluster.add_worker(HealthWorker())  # the name 'broken' did not use a number

    # Assert
    message = str(raised.value)
    assert "Worker 'broken' exited while starting" in message
    assert "broken on purpose" in message and "was not added" in message
    assert after == before and manifest == ["worker1", "worker2"]
    assert states == {"worker1": WorkerState.UP, "worker2": WorkerState.UP}
    assert name == "worker3"


@pytest.fixture(scope="module")
def small_cluster(tmp_path_factory):
    with LocalCluster(
        [HealthWorker()], name="refusals", run_dir=tmp_path_factory.mktemp("refusals")
    ) as cluster:
        yield cluster


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda c: c.add_worker(HealthWorker(), name="worker1"),
            ConfigurationError,
            "Cannot add worker 'worker1': worker names must be unique",
        ),
        (
            lambda c: c.add_worker(HealthWorker(), name="WORKER1"),
            ConfigurationError,
            "differ only in case",
        ),
        (
            lambda c: c.add_worker(HealthWorker(), name="../etc"),
            ConfigurationError,
            "Worker name '../etc' contains '.', '/'",
        ),
        (lambda c: c.add_worker(object()), ConfigurationError, "has no serve\\(\\) method"),
        (
            lambda c: c.add_worker(HealthWorker(), [[1.0]]),
            ConfigurationError,
            "Give both X and y .* got only X",
        ),
        (
            lambda c: c.add_worker(object(), [[1.0]], [1.0]),
            ConfigurationError,
            "object has no with_data\\(X, y\\) method",
        ),
        (
            lambda c: c.remove_worker("nobody"),
            ConfigurationError,
            "No worker named 'nobody'; this cluster has worker1",
        ),
        (
            lambda c: c.remove_worker("worker1"),
            ClusterError,
            "Cannot remove worker 'worker1': it is the last one",
        ),
    ],
)
def test_bad_membership_calls_are_refused_with_what_to_do(small_cluster, call, error, message):
    # Execute
    with pytest.raises(error, match=message):
        call(small_cluster)

    # Assert
    assert small_cluster.names == ["worker1"]


def test_membership_calls_need_a_running_cluster():
    # Prepare
    cluster = LocalCluster([HealthWorker()], name="idle")

    # Execute
    with pytest.raises(ClusterError, match="Cannot add a worker: this cluster has not started"):
        cluster.add_worker(HealthWorker())
    with pytest.raises(ClusterError, match="Cannot remove a worker: this cluster has not"):
        cluster.remove_worker("worker1")
    cluster.close()
    with pytest.raises(ClusterError, match="Cannot add a worker: this cluster was closed"):
        cluster.add_worker(HealthWorker())

    # Assert
    assert cluster.names == ["worker1"]


# --- the attach backend: a URL joins, a URL leaves ---------------------------------------------


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_attached_cluster_adds_and_removes_urls_and_stops_nothing():
    with LocalCluster([HealthWorker()] * 3, name="elsewhere") as remote:
        urls = remote.endpoints
        # Prepare
        attached = AttachedCluster({"a": urls["worker1"]}, name="grow-urls", startup_timeout=1)

        # Execute
        with attached:
            attached.add_worker(urls["worker2"], name="b")
            grown = attached.endpoints
            with pytest.raises(ConfigurationError, match="an attached worker holds the data"):
                attached.add_worker(urls["worker3"], [[1.0]], [1.0], name="c")
            with pytest.raises(ClusterError, match="Worker 'd' did not answer GET /health"):
                attached.add_worker(f"http://127.0.0.1:{closed_port()}", name="d")
            attached.remove_worker("a")
            shrunk = attached.endpoints
        remote_states = remote.status()

    # Assert
    assert grown == {"a": urls["worker1"], "b": urls["worker2"]}
    assert shrunk == {"b": urls["worker2"]}
    assert set(remote_states.values()) == {WorkerState.UP}  # an attached cluster stops nothing


# --- the docker and swarm backends: a container joins, a container leaves ---------------------------------


@pytest.mark.parametrize(
    ("backend", "engine"), [(DockerCluster, "docker_client"), (SwarmCluster, "swarm_client")]
)
def test_a_container_cluster_adds_and_removes_workers(request, backend, engine, tmp_path):
    # Prepare
    client = request.getfixturevalue(engine)
    X, y = regression_rows(200)
    run_dir = tmp_path / "run"
    cluster = backend.from_shards(
        SGDWorker("regressor"), X[:100], y[:100], 1, name="elastic", run_dir=run_dir
    )

    def containers_of(worker: str) -> list[str]:
        labels = [f"chimera-nb.run={cluster.run_id}", f"chimera-nb.worker={worker}"]
        return [c.name for c in client.containers.list(all=True, filters={"label": labels})]

    # Execute
    with cluster:
        run_id = cluster.run_id
        cluster.add_worker(SGDWorker("regressor"), X[100:], y[100:], name="joined")
        joined = containers_of("joined")
        health = httpx.get(cluster.endpoints["joined"] + "/health", trust_env=False)
        last_round = fit(cluster).history_[-1]
        manifest = manifest_names(run_dir / "containers.json")
        cluster.remove_worker("worker1")
        removed = containers_of("worker1")
        manifest_after = manifest_names(run_dir / "containers.json")
        endpoints = list(cluster.endpoints)

    # Assert
    assert len(joined) == 1 and joined[0].startswith(f"elastic-{run_id}-joined")
    assert health.status_code == 200
    assert last_round.answered == ["worker1", "joined"]
    assert manifest == ["worker1", "joined"] and manifest_after == ["joined"]
    assert removed == [] and endpoints == ["joined"]
    assert (run_dir / "worker1.log").exists() and not (run_dir / "worker1.pickle").exists()
    assert leftovers(client, f"chimera-nb.run={run_id}") == {}
