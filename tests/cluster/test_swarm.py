"""Tests of the Swarm backend (``SwarmCluster``), on a real one-node swarm
(``docker swarm init --advertise-addr 127.0.0.1``, as ``.ci/install-docker`` makes)."""

from __future__ import annotations

import threading

import httpx
import numpy as np
import pytest

from chimera_nb import ParameterServerMaster, SGDWorker
from chimera_nb._exceptions import ClusterError, ConfigurationError
from chimera_nb.cluster import SwarmCluster, WorkerState
from chimera_nb.cluster import swarm as swarm_module
from chimera_nb.logs import read_time_log
from chimera_nb.wire import paths

from .conftest import leftovers, run_seed_project


def shard(wine_quality, n_rows: int = 600):
    X, y = wine_quality
    return X.iloc[:n_rows], y.iloc[:n_rows]


def tiny_worker() -> SGDWorker:
    return SGDWorker().with_data([[1.0], [2.0]], [1.0, 2.0])


# --- checks before the swarm is used ---------------------------------------------------------


@pytest.mark.parametrize(
    ("constraints", "message"),
    [
        (["node.hostname==pc1; rm -rf /"], "is not one Swarm understands"),
        (["anything"], "is not one Swarm understands"),
        ("node.role==manager", "must be a list of constraints"),
        ({"worker9": ["node.role==manager"]}, "not workers of this cluster"),
    ],
)
def test_bad_placement_constraints_are_refused_when_the_cluster_is_made(constraints, message):
    with pytest.raises(ConfigurationError, match=message):
        SwarmCluster([tiny_worker()], constraints=constraints)


def test_an_engine_that_is_not_a_swarm_manager_is_refused_with_the_command_to_make_one():
    # Prepare
    class NotASwarm:
        def info(self):
            return {"Swarm": {"LocalNodeState": "inactive"}}

    # Execute
    with pytest.raises(ClusterError) as raised:
        SwarmCluster([tiny_worker()], client=NotASwarm()).start()
    # Assert
    assert "not a swarm manager" in str(raised.value)
    assert "docker swarm init --advertise-addr 127.0.0.1" in str(raised.value)


def test_a_task_waiting_for_its_host_port_gets_a_grace_then_is_reported(monkeypatch):
    # A fake service: a port the swarm still counts for a removed task frees itself at a
    # moment that cannot be chosen on a real swarm.
    # Prepare
    class Waiting:
        def tasks(self):
            error = "no suitable node (host-mode port already in use on 1 node)"
            return [{"CreatedAt": "1", "Status": {"State": "pending", "Err": error}}]

    cluster = SwarmCluster([tiny_worker()])
    worker = next(iter(cluster._workers.values()))
    worker.handle = Waiting()
    clock = [100.0]
    monkeypatch.setattr(swarm_module.time, "monotonic", lambda: clock[0])
    # Execute
    at_first = cluster._gone(worker)
    clock[0] += swarm_module._PORT_GRACE + 1
    after_the_grace = cluster._gone(worker)
    # Assert
    assert at_first is None
    assert after_the_grace.startswith("cannot be placed on any node: no suitable node")


# --- a seed project, as the seed runs it ------------------------------------------------------


@pytest.mark.parametrize("kind", ["parameter-server", "bagging"])
def test_a_seed_project_under_swarm_gives_the_process_backends_results_and_leaves_nothing(
    swarm_client, process_results, wine_quality, tmp_path, kind
):
    # Prepare
    X, y = shard(wine_quality)
    expected = process_results[kind]
    # Execute
    actual = run_seed_project(tmp_path / f"swarm-{kind}", X, y, kind, "swarm")
    # Assert
    assert actual["fit"]["answered"] == ["w1", "w2", "w3"] and not actual["fit"]["failed"]
    if kind == "parameter-server":
        np.testing.assert_allclose(actual["fit"]["loss"], expected["fit"]["loss"], rtol=1e-12)
    np.testing.assert_allclose(actual["predict"], expected["predict"], rtol=1e-12)
    assert leftovers(swarm_client, f"chimera-nb.cluster={actual['project']}") == {}


# --- one cluster for the faults -----------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster(swarm_client, wine_quality, tmp_path_factory):
    X, y = shard(wine_quality)
    cluster = SwarmCluster.from_shards(
        SGDWorker("regressor"),
        X,
        y,
        n_workers=3,
        name="swarm-faults",
        run_dir=tmp_path_factory.mktemp("run"),
        constraints=["node.role==manager"],
    )
    with cluster:
        yield cluster
    assert leftovers(swarm_client, f"chimera-nb.run={cluster.run_id}") == {}


def test_each_worker_is_a_one_replica_service_that_requires_the_token(cluster, swarm_client):
    # Prepare
    run = f"chimera-nb.run={cluster.run_id}"
    # Execute
    services = swarm_client.services.list(filters={"label": run})
    refused = httpx.get(cluster.endpoints["worker1"] + paths.SGD_STATISTICS, trust_env=False)
    # Assert
    assert sorted(s.attrs["Spec"]["Labels"]["chimera-nb.worker"] for s in services) == [
        "worker1",
        "worker2",
        "worker3",
    ]
    for service in services:
        spec = service.attrs["Spec"]
        assert spec["Mode"]["Replicated"]["Replicas"] == 1
        node = swarm_client.info()["Swarm"]["NodeID"]  # the offline image lives here only
        assert spec["TaskTemplate"]["Placement"]["Constraints"] == [
            f"node.id=={node}",
            "node.role==manager",
        ]
        assert spec["TaskTemplate"]["RestartPolicy"]["Condition"] == "none"
        assert [c["File"]["Name"] for c in spec["TaskTemplate"]["ContainerSpec"]["Configs"]] == [
            "/chimera/worker.pickle"
        ]
    assert refused.status_code == 401
    assert repr(cluster) == "SwarmCluster('swarm-faults', 3 workers: 3 up)"


def test_a_paused_worker_is_a_straggler_in_the_time_log(cluster):
    # Prepare
    master = ParameterServerMaster("regressor", max_iter=4, tol=0.0, timeout=20)

    def pause_in_round_3(event):
        if (event.step, event.round_number) == ("K", 2):
            cluster.pause("worker3")
            threading.Timer(1.5, cluster.unpause, ["worker3"]).start()

    master.events.subscribe(pause_in_round_3)
    # Execute
    master.fit(cluster)
    # Assert
    log = read_time_log(cluster.run_dir)
    round_3 = log[(log.endpoint == paths.SGD_FIT_STEP) & (log["round"] == 3)]
    latency = round_3.groupby("worker").latency_ms.max()
    assert latency["worker3"] > 1000 and latency["worker1"] < 500, latency


def test_a_killed_worker_is_reported_and_restart_brings_it_back(cluster):
    # Prepare
    master = ParameterServerMaster("regressor", max_iter=10, tol=0.0, timeout=10)
    master.events.subscribe(
        lambda event: (
            cluster.kill("worker1") if (event.step, event.round_number) == ("D", 5) else None
        )
    )
    # Execute
    master.fit(cluster)
    killed = cluster.status()["worker1"]
    cluster.restart("worker1")
    refit = ParameterServerMaster("regressor", max_iter=2).fit(cluster)
    # Assert
    assert "worker1" in master.history_[4].failed
    assert master.history_[-1].answered == ["worker2", "worker3"]
    assert killed is WorkerState.FAILED
    assert refit.history_[-1].answered == ["worker1", "worker2", "worker3"]


def test_a_disconnected_worker_is_refused_until_it_is_reconnected(cluster):
    # Execute
    cluster.disconnect("worker2")
    try:
        state = cluster.status()["worker2"]
        with pytest.raises(httpx.HTTPError):
            httpx.get(cluster.endpoints["worker2"] + paths.HEALTH, timeout=2, trust_env=False)
    finally:
        cluster.reconnect("worker2")
    # Assert
    assert state is WorkerState.FAILED
    assert cluster.status()["worker2"] is WorkerState.UP


def test_a_constraint_no_node_meets_is_reported_and_nothing_is_left(swarm_client):
    # Prepare
    cluster = SwarmCluster(
        [tiny_worker()],
        name="unplaceable",
        constraints=["node.labels.chimera-test==never"],
        startup_timeout=20,
    )
    # Execute
    with pytest.raises(ClusterError) as raised:
        cluster.start()
    # Assert
    assert "cannot be placed on any node" in str(raised.value)
    assert leftovers(swarm_client, "chimera-nb.cluster=unplaceable") == {}
