"""Network emulation (``cluster.network``, ``partition``, ``heal``), seen where it matters:
in the spans and the ``history_`` of a real ParameterServerMaster fit against real worker
processes. Timings are checked with generous bounds only (benchmarks/ measures them)."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from chimera_nb import ConfigurationError, LocalCluster, ParameterServerMaster, SGDWorker
from chimera_nb.cluster import DockerCluster, WorkerState
from chimera_nb.states import WorkerFault
from chimera_nb.wire import paths
from chimera_nb.workers.network import PEER_HEADER

from .conftest import leftovers

LOST = "disconnected before answering"  # what the master's client says of a hung-up call
N_FEATURES = 100  # wide enough for the bodies' bytes to cost time on a slow link


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Three SGD workers on a synthetic linear problem."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, N_FEATURES))
    y = X @ rng.normal(size=N_FEATURES) + 0.5
    with LocalCluster.from_shards(
        SGDWorker("regressor"),
        X,
        y,
        n_workers=3,
        name="netem",
        run_dir=tmp_path_factory.mktemp("run"),
    ) as cluster:
        yield cluster


@pytest.fixture
def netem(cluster):
    """The cluster, its network normal again after the test."""
    yield cluster
    cluster.heal()
    for name in cluster.names:
        cluster.network(name)


def fit(cluster, max_iter: int = 10, **options) -> ParameterServerMaster:
    return ParameterServerMaster("regressor", max_iter=max_iter, tol=0.0, **options).fit(cluster)


def fit_step_latency(master: ParameterServerMaster) -> dict[str, float]:
    """Each worker's median fit-step span, in ms (answered calls only)."""
    spans = master.spans_.to_frame()
    answered = spans[(spans.endpoint == paths.SGD_FIT_STEP) & (spans.status == "200")]
    return answered.groupby("worker").latency_ms.median().to_dict()


def headers(cluster) -> dict[str, str]:
    return {"Authorization": f"Bearer {cluster.token}"} if cluster.token else {}


def test_latency_raises_one_workers_fit_step_spans_by_about_that_much(netem):
    # Prepare
    before = fit_step_latency(fit(netem))["worker1"]
    # Execute
    netem.network("worker1", latency_ms=20)
    master = fit(netem)
    # Assert: no call beats the added 20 ms, and the median rose by about that much
    latency = fit_step_latency(master)
    spans = master.spans_.to_frame()
    calls = spans[(spans.worker == "worker1") & (spans.endpoint == paths.SGD_FIT_STEP)]
    assert calls.latency_ms.min() >= 20
    assert 12 <= latency["worker1"] - before <= 60
    assert netem.networks()["worker1"].latency_ms == 20
    assert master.history_[-1].answered == ["worker1", "worker2", "worker3"]


def test_bandwidth_delays_a_call_in_proportion_to_its_bytes(netem):
    """JSON bodies are about 2.5 times the binary ones: they take about that much longer."""
    # Prepare
    mbps = 0.5
    netem.network("worker1", bandwidth_mbps=mbps)
    # Execute
    extra, expected = {}, {}
    for encoding in ("json", "binary"):
        master = fit(netem, max_iter=5, encoding=encoding)
        latency = fit_step_latency(master)
        spans = master.spans_.to_frame()
        calls = spans[(spans.worker == "worker1") & (spans.endpoint == paths.SGD_FIT_STEP)]
        n_bytes = (calls.bytes_sent + calls.bytes_received).median()
        extra[encoding] = latency["worker1"] - max(latency["worker2"], latency["worker3"])
        expected[encoding] = n_bytes * 8 / (mbps * 1e6) * 1000
    # Assert
    assert expected["json"] > 2 * expected["binary"] > 0
    for encoding in extra:
        assert 0.8 * expected[encoding] - 5 <= extra[encoding] <= expected[encoding] + 30
    assert extra["json"] > extra["binary"]


def test_seeded_drops_lose_the_same_rounds_and_are_recorded_as_connection_errors(netem):
    # Execute
    lost = []
    for _ in range(2):
        netem.network("worker2", drop=0.3, seed=5)  # draws start afresh: the run replays
        master = fit(netem, max_iter=20)
        failed = {record.round_number: record.failed for record in master.history_}
        lost.append(sorted(number for number, who in failed.items() if "worker2" in who))
        reasons = {who["worker2"] for who in failed.values() if "worker2" in who}
    # Assert
    assert lost[0] == lost[1]
    assert 0 < len(lost[0]) < len(master.history_)
    assert reasons == {LOST}
    spans = master.spans_.to_frame()
    assert set(spans[spans.worker == "worker2"].status) <= {"200", "disconnected"}


def test_a_partitioned_worker_fails_as_a_connection_error_until_heal(netem):
    # Prepare
    seen = []
    unsubscribe = netem.on_fault(lambda name, state, fault, delay: seen.append((name, fault)))
    url = netem.endpoints["worker2"]
    # Execute
    netem.partition(["worker2"])
    try:
        state = netem.status()["worker2"]
        with pytest.raises(httpx.RemoteProtocolError, match="disconnected"):
            httpx.get(url + paths.HEALTH, trust_env=False)
        cut = fit(netem, max_iter=5)
        netem.heal()
    finally:
        unsubscribe()
    healed_state = netem.status()["worker2"]
    healed = fit(netem, max_iter=5)
    # Assert
    assert state is WorkerState.FAILED and healed_state is WorkerState.UP
    assert all(record.failed == {"worker2": LOST} for record in cut.history_)
    assert all(record.answered == ["worker1", "worker3"] for record in cut.history_)
    assert np.isfinite(cut.coef_).all()
    assert all(record.answered == ["worker1", "worker2", "worker3"] for record in healed.history_)
    assert seen == [("worker2", WorkerFault.PARTITIONED), ("worker2", None)]
    assert "worker2" not in netem.networks()


def test_a_partition_keeps_the_workers_latency_and_heal_keeps_it_too(netem):
    # Execute
    netem.network("worker3", latency_ms=5)
    netem.partition("worker3")
    during = netem.networks()["worker3"]
    netem.heal()
    after = netem.networks()["worker3"]
    # Assert
    assert (during.latency_ms, during.partitioned) == (5, True)
    assert (after.latency_ms, after.partitioned) == (5, False)


def test_a_link_can_be_cut_for_one_peer_only(netem):
    """The design for workers that talk to each other: a caller names itself in a header."""
    # Prepare
    url = netem.endpoints["worker1"] + paths.FAULTS_NETWORK
    statistics = netem.endpoints["worker1"] + paths.SGD_STATISTICS
    from_worker3 = {PEER_HEADER: "worker3"}
    with httpx.Client(headers=headers(netem), trust_env=False) as client:
        client.post(url, json={"peer": "worker3", "partitioned": True}).raise_for_status()
        try:
            # Execute
            with pytest.raises(httpx.RemoteProtocolError):
                client.get(statistics, headers=from_worker3)
            from_worker2 = client.get(statistics, headers={PEER_HEADER: "worker2"})
            from_master = client.get(statistics)
        finally:
            client.post(url, json={"peer": "worker3"}).raise_for_status()
        after = client.get(statistics, headers=from_worker3)
    # Assert
    assert from_worker2.status_code == from_master.status_code == after.status_code == 200


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"latency_ms": -1}, "latency_ms"),
        ({"bandwidth_mbps": 0}, "bandwidth_mbps"),
        ({"drop": 1.5}, "drop"),
        ({"drop": 0.1, "seed": -3}, "seed"),
        ({"latency_ms": "20"}, "latency_ms"),
    ],
)
def test_bad_network_values_are_refused_naming_the_field(netem, options, field):
    # Execute
    with pytest.raises(ConfigurationError, match=f"network\\('worker1', \\.\\.\\.\\).*{field}:"):
        netem.network("worker1", **options)
    answer = httpx.post(
        netem.endpoints["worker1"] + paths.FAULTS_NETWORK,
        json=options,
        headers=headers(netem),
        trust_env=False,
    )
    # Assert
    assert answer.status_code == 422
    assert answer.json()["detail"].startswith(f"{field}:")
    assert "worker1" not in netem.networks()


def test_a_partition_naming_an_unknown_worker_changes_nothing(netem):
    # Execute
    with pytest.raises(ConfigurationError, match="No worker named 'worker9'"):
        netem.partition(["worker1", "worker9"])
    # Assert
    assert netem.networks() == {}
    assert netem.status()["worker1"] is WorkerState.UP


def test_restart_clears_the_network(netem):
    # Prepare
    url = netem.endpoints["worker3"] + paths.SGD_STATISTICS
    netem.network("worker3", drop=1.0)  # every call lost
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(url, headers=headers(netem), trust_env=False)
    # Execute
    netem.restart("worker3")
    # Assert
    assert "worker3" not in netem.networks()
    assert httpx.get(url, headers=headers(netem), trust_env=False).status_code == 200


def test_the_docker_backend_emulates_the_same_network(docker_client, tmp_path):
    """The emulation lives in the worker, so containers need nothing of their own."""
    # Prepare
    rng = np.random.default_rng(1)
    X = rng.normal(size=(100, 3))
    y = X @ [1.0, 2.0, 3.0]
    cluster = DockerCluster.from_shards(
        SGDWorker("regressor"), X, y, n_workers=2, name="netem", run_dir=tmp_path
    )
    with cluster:
        # Execute
        cluster.network("worker1", latency_ms=20)
        cluster.partition(["worker2"])
        master = fit(cluster, max_iter=3)
    # Assert
    assert all(record.failed == {"worker2": LOST} for record in master.history_)
    assert fit_step_latency(master)["worker1"] >= 15
    assert leftovers(docker_client, f"chimera-nb.run={cluster.run_id}") == {}
