"""RingAllReduceMaster against real RingWorker processes: the same gradient and the same fit
as the star (ParameterServerMaster), the bytes each worker sends from spans, and a broken
link that fails the round with its name, not a hang."""

from __future__ import annotations

import time

import httpx
import numpy as np
import pytest

from chimera_nb import (
    ConfigurationError,
    LocalCluster,
    ParameterServerMaster,
    QuorumError,
    RingAllReduceMaster,
    RingWorker,
)
from chimera_nb.algorithms import ColumnStatistics, Standardizer, loss_for, split
from chimera_nb.algorithms.ring import ring_allreduce, ring_bytes_sent
from chimera_nb.masters import RING_ALLREDUCE_FIT
from chimera_nb.wire import decode_frame, paths

PROPORTIONS = [0.5, 0.3, 0.2]


@pytest.fixture(scope="module")
def wine_ring(wine_quality):
    """Three ring workers on unequal shards (50/30/20 %) of wine quality. A RingWorker is an
    SGDWorker too, so the star runs on the same processes and data."""
    X, y = wine_quality
    with LocalCluster.from_shards(
        RingWorker("regressor"), X, y, n_workers=3, proportions=PROPORTIONS, name="wine-ring"
    ) as cluster:
        yield cluster


def replica(cluster, name):
    """A worker's replica of the weights and bias (standardized units), read over HTTP."""
    response = httpx.get(cluster.endpoints[name] + paths.RING_WEIGHTS)
    response.raise_for_status()
    (weights, bias), _ = decode_frame(response.content, response.headers, ["weights", "bias"])
    return weights, bias


def relative_error(actual, expected):
    return np.max(np.abs(actual - expected)) / np.max(np.abs(expected))


def test_one_round_averages_the_gradient_as_the_star_does(wine_ring, wine_quality):
    # Prepare: the twin's weighted mean of the shards' gradients at zero weights
    X, y = (np.asarray(data, dtype=float) for data in wine_quality)
    standardizer = Standardizer.from_statistics(ColumnStatistics.of(X), ColumnStatistics.of(y))
    vectors = []
    for X_k, y_k in split(X, y, 3, proportions=PROPORTIONS):
        answer = loss_for("regressor", 0)(
            np.zeros((1, X.shape[1])),
            np.zeros(1),
            standardizer.transform(X_k),
            standardizer.transform_target(y_k),
        )
        n = len(X_k)
        vectors.append(
            np.concatenate([n * answer.weights_gradient.ravel(), n * answer.bias_gradient, [n]])
        )
    total = ring_allreduce(vectors)[0]
    twin_gradient = total[:-1] / total[-1]
    ring = RingAllReduceMaster("regressor", learning_rate=0.1, max_iter=1, tol=0.0)
    star = ParameterServerMaster("regressor", learning_rate=0.1, max_iter=1, tol=0.0)
    # Execute: one step from zero weights is -learning_rate * the averaged gradient
    ring.fit(wine_ring)
    replicas = [replica(wine_ring, name) for name in ring.ring_]
    star.fit(wine_ring)
    # Assert
    weights, bias = replicas[0]
    ring_gradient = -np.concatenate([weights, bias]) / 0.1
    assert relative_error(ring_gradient, twin_gradient) < 1e-12
    assert relative_error(ring.coef_, star.coef_) < 1e-12
    assert ring.intercept_ == pytest.approx(star.intercept_, rel=1e-12)
    for other_weights, other_bias in replicas[1:]:  # every replica holds the same bits
        np.testing.assert_array_equal(other_weights, weights)
        np.testing.assert_array_equal(other_bias, bias)


def test_full_fit_gives_the_stars_weights_on_unequal_shards(wine_ring):
    # Prepare
    ring = RingAllReduceMaster("regressor", learning_rate=0.1, max_iter=60, tol=0.0)
    star = ParameterServerMaster("regressor", learning_rate=0.1, max_iter=60, tol=0.0)
    # Execute
    ring.fit(wine_ring)
    star.fit(wine_ring)
    # Assert
    assert relative_error(ring.coef_, star.coef_) < 1e-10
    assert ring.intercept_ == pytest.approx(star.intercept_, rel=1e-10)
    assert ring.loss_curve_ == pytest.approx(star.loss_curve_, rel=1e-10)
    assert ring.n_iter_ == star.n_iter_ == 60 and len(ring.history_) == 61
    assert ring.history_[-1].answered == ["worker1", "worker2", "worker3"]
    assert ring.history_[0].n_samples == star.history_[0].n_samples


def test_softmax_with_l2_and_invscaling_gives_the_stars_weights():
    # Prepare: three classes spread unevenly over three workers
    rng = np.random.default_rng(1)
    X = rng.normal(size=(150, 4)) * [1.0, 10.0, 100.0, 0.1]
    y = np.array(["a", "b", "c"])[
        np.argmax(X / [1.0, 10.0, 100.0, 0.1] @ rng.normal(size=(4, 3)), 1)
    ]
    options = {"learning_rate": 0.5, "learning_rate_schedule": "invscaling", "alpha": 0.01}
    ring = RingAllReduceMaster("classifier", max_iter=40, tol=0.0, **options)
    star = ParameterServerMaster("classifier", max_iter=40, tol=0.0, **options)
    with LocalCluster.from_shards(
        RingWorker("classifier"), X, y, n_workers=3, proportions=[0.2, 0.5, 0.3], name="softmax"
    ) as cluster:
        # Execute
        ring.fit(cluster)
        star.fit(cluster)
    # Assert
    assert ring.classes_ == star.classes_ == ["a", "b", "c"]
    assert relative_error(ring.coef_, star.coef_) < 1e-10
    assert ring.loss_curve_ == pytest.approx(star.loss_curve_, rel=1e-10)
    np.testing.assert_array_equal(ring.predict(X), star.predict(X))


def test_fit_publishes_the_flowchart_and_the_workers_steps(wine_ring):
    # Prepare
    master = RingAllReduceMaster("regressor", max_iter=2, tol=0.0)
    steps = []
    master.events.subscribe(lambda event: steps.append(event.step))
    # Execute
    master.fit(wine_ring)
    # Assert
    assert master.flowcharts[0] is RING_ALLREDUCE_FIT
    assert steps[:3] == ["B", "C", "D"]
    assert steps[3:9] == ["E", "F", "H", "I", "J", "D"]
    assert steps[-3:] == ["K", "L", "M"]
    frame = master.spans_.to_frame()
    peers = frame[frame["peer"].notna()]
    assert set(zip(peers["peer"], peers["worker"])) == {
        ("worker1", "worker2"),
        ("worker2", "worker3"),
        ("worker3", "worker1"),
    }
    assert (peers["endpoint"] == paths.RING_CHUNK).all() and (peers["status"] == "204").all()


@pytest.mark.parametrize("n_workers", [2, 4, 8])
def test_each_ring_worker_sends_two_n_minus_one_over_n_of_d_while_a_star_receives_n_d(
    n_workers,
):
    # Prepare: d = 1,000 features, a few rows per worker, three rounds
    d, n_rounds = 1000, 3
    rng = np.random.default_rng(n_workers)
    X = rng.normal(size=(20 * n_workers, d))
    y = X[:, :5].sum(axis=1) + rng.normal(size=len(X))
    ring = RingAllReduceMaster("regressor", learning_rate=0.01, max_iter=n_rounds - 1, tol=0.0)
    star = ParameterServerMaster(
        "regressor", learning_rate=0.01, max_iter=n_rounds - 1, tol=0.0, encoding="binary"
    )
    with LocalCluster.from_shards(
        RingWorker("regressor"), X, y, n_workers=n_workers, name=f"ring-{n_workers}"
    ) as cluster:
        # Execute
        ring.fit(cluster)
        star.fit(cluster)
    # Assert: the ring, from the workers' spans of their calls to their neighbours
    frame = ring.spans_.to_frame()
    chunks = frame[frame["peer"].notna()]
    sent = chunks.groupby(["round", "peer"])["bytes_sent"].sum()
    ideal = 2 * (n_workers - 1) / n_workers * d * 8
    framing = 8 * 2 * (n_workers - 1) + 8 * 2  # uneven chunks; the bias and the sample count
    assert len(sent) == n_rounds * n_workers
    for (_, name), n_bytes in sent.items():
        position = ring.ring_.index(name)
        assert n_bytes == ring_bytes_sent(position, d + 2, n_workers)
        assert abs(n_bytes - ideal) <= framing
    # the star's server receives every worker's whole gradient each round
    star_frame = star.spans_.to_frame()
    fit_steps = star_frame[star_frame["endpoint"] == paths.SGD_FIT_STEP]
    received = fit_steps.groupby("round")["bytes_received"].sum()
    assert len(received) == n_rounds
    assert all(abs(n_bytes - n_workers * d * 8) <= n_workers * 8 for n_bytes in received)
    busiest_ring = sent.max()
    print(
        f"N={n_workers}: a ring worker sends {busiest_ring} B/round "
        f"(2(N-1)/N*d*8 = {ideal:.0f}); the star's server receives {received.max()} B/round "
        f"(N*d*8 = {n_workers * d * 8})"
    )
    assert busiest_ring < received.max()


@pytest.fixture
def small_ring():
    """Three ring workers on synthetic data, for faults (a fresh cluster per test)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4))
    with LocalCluster.from_shards(
        RingWorker("regressor"), X, X @ [1.0, 2.0, 3.0, 4.0], n_workers=3, name="ring-faults"
    ) as cluster:
        yield cluster


def test_a_partitioned_link_fails_the_round_naming_the_link(small_ring):
    # Prepare: worker2 loses every call from worker1, and only those
    response = httpx.post(
        small_ring.endpoints["worker2"] + paths.FAULTS_NETWORK,
        json={"partitioned": True, "peer": "worker1"},
    )
    response.raise_for_status()
    master = RingAllReduceMaster("regressor", max_iter=5, ring_timeout=2.0, timeout=20.0)
    # Execute
    started = time.monotonic()
    with pytest.raises(QuorumError) as raised:
        master.fit(small_ring)
    elapsed = time.monotonic() - started
    # Assert
    message = str(raised.value)
    assert "round 1 of the ring failed" in message
    assert "the link worker1 -> worker2 failed (disconnected before answering)" in message
    assert "worker1" in raised.value.failed
    assert elapsed < 15  # bounded by the ring's timeout, far from the master's 20 s
    assert master.history_[-1].failed == raised.value.failed


def test_a_worker_killed_mid_fit_fails_the_fit_naming_it(small_ring):
    # Prepare
    master = RingAllReduceMaster("regressor", max_iter=100_000, tol=0.0, ring_timeout=2.0)
    handle = master.fit(small_ring, wait=False)
    deadline = time.monotonic() + 30
    while len(getattr(master, "history_", [])) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    # Execute
    small_ring.kill("worker2")
    started = time.monotonic()
    with pytest.raises(QuorumError) as raised:
        handle.result(timeout=30)
    elapsed = time.monotonic() - started
    # Assert
    assert "of the ring failed" in str(raised.value)
    assert "worker2" in str(raised.value)
    assert elapsed < 15


def test_rest_fit_and_predict_answer_as_the_parameter_server_does(
    wine_ring, wine_quality, serve_master
):
    # Prepare
    X, _ = wine_quality
    master = RingAllReduceMaster("regressor", max_iter=5, tol=0.0)
    rows = {"X_pred_columns": list(X.columns), "X_pred_rows": X.iloc[:3].to_numpy().tolist()}
    with serve_master(master, wine_ring) as server:
        # Execute
        fitted = httpx.post(server.url + paths.RING_ALLREDUCE_FIT, timeout=60)
        predicted = httpx.post(server.url + paths.RING_ALLREDUCE_PREDICT, json=rows)
    # Assert
    assert fitted.status_code == 200 and fitted.json()["n_rounds"] == 6
    assert fitted.json()["answered"] == ["worker1", "worker2", "worker3"]
    np.testing.assert_allclose(predicted.json()["y_pred_rows"], master.predict(X.iloc[:3]))


def test_a_bad_ring_timeout_is_refused_before_any_work(wine_ring):
    # Prepare
    master = RingAllReduceMaster("regressor", ring_timeout=0)
    # Execute
    with pytest.raises(ConfigurationError) as raised:
        master.fit(wine_ring)
    # Assert
    assert "ring_timeout" in str(raised.value)
    assert not hasattr(master, "history_")


def test_an_emulated_slow_link_shows_on_that_links_spans_only(small_ring):
    # Prepare: 60 ms more round trip for worker1's calls to worker2, and only those
    response = httpx.post(
        small_ring.endpoints["worker2"] + paths.FAULTS_NETWORK,
        json={"latency_ms": 60.0, "peer": "worker1"},
    )
    response.raise_for_status()
    master = RingAllReduceMaster("regressor", max_iter=3, tol=0.0)
    # Execute
    master.fit(small_ring)
    # Assert
    frame = master.spans_.to_frame()
    chunks = frame[frame["peer"].notna()]
    slow = chunks[(chunks["peer"] == "worker1") & (chunks["worker"] == "worker2")]
    fast = chunks[chunks["peer"] != "worker1"]
    assert len(slow) == 4 * 2 * 2  # 4 rounds of 2 (N - 1) chunks
    assert slow["latency_ms"].min() >= 60
    assert fast["latency_ms"].median() < slow["latency_ms"].min()
