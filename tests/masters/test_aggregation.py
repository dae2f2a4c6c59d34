"""AggregationMaster (bagging) over real bagging worker processes, through its REST API."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from chimera_nb import (
    AggregationMaster,
    ClassificationWorker,
    LocalCluster,
    QuorumError,
    RegressionWorker,
)
from chimera_nb.wire import paths


@pytest.fixture(scope="module")
def tree_cluster(wine_quality):
    """Three bootstrap regression trees on the same wine-quality data (model parallelism)."""
    X, y = wine_quality
    worker = RegressionWorker(DecisionTreeRegressor(max_depth=6), bootstrap=True)
    with LocalCluster([worker.with_data(X, y)] * 3, name="trees") as cluster:
        yield cluster


def predict_body(X) -> dict:
    return {"X_pred_columns": list(X.columns), "X_pred_rows": X.to_numpy().tolist()}


def test_rest_bagging_fit_and_predict_use_the_seed_json_shapes(
    tree_cluster, wine_quality, serve_master
):
    # Prepare
    X, _ = wine_quality
    body = predict_body(X.iloc[:5])
    with serve_master(AggregationMaster(random_state=0), tree_cluster) as server:
        # Execute
        fitted = httpx.post(server.url + paths.AGGREGATION_FIT, timeout=60)
        predicted = httpx.post(server.url + paths.AGGREGATION_PREDICT, json=body)
        members = [
            httpx.post(url + paths.MODEL_PREDICT, json=body).json()["y_pred_rows"]
            for url in tree_cluster.endpoints.values()
        ]
    # Assert
    assert fitted.status_code == 200 and fitted.json()["fit"] == "ok"
    assert predicted.status_code == 200
    expected = np.mean(members, axis=0)
    assert predicted.json()["y_pred_rows"] == pytest.approx(expected.tolist())
    assert len({tuple(member) for member in members}) > 1, "bootstraps must differ per worker"


def test_each_worker_bootstraps_with_its_own_recorded_seed(tree_cluster):
    # Prepare / Execute
    first = AggregationMaster(random_state=1).fit(tree_cluster)
    again = AggregationMaster(random_state=1).fit(tree_cluster)
    # Assert
    assert len(set(first.worker_seeds_.values())) == 3
    assert first.worker_seeds_ == again.worker_seeds_


def test_soft_vote_averages_probabilities_over_three_classes(serve_master):
    # Prepare
    X, y = load_iris(return_X_y=True, as_frame=True)
    worker = ClassificationWorker(DecisionTreeClassifier(max_depth=3), bootstrap=True)
    shards = [(X.iloc[i::3], y.iloc[i::3]) for i in range(3)]  # hybrid: different data each
    with LocalCluster([worker.with_data(*shard) for shard in shards]) as cluster:
        master = AggregationMaster(random_state=0)
        with serve_master(master, cluster) as server:
            # Execute
            httpx.post(server.url + paths.AGGREGATION_FIT, timeout=60)
            answer = httpx.post(server.url + paths.AGGREGATION_PREDICT, json=predict_body(X)).json()
            members = [
                httpx.post(url + paths.MODEL_PREDICT, json=predict_body(X)).json()
                for url in cluster.endpoints.values()
            ]
    # Assert
    probabilities = np.array(answer["y_proba_rows"])
    assert answer["classes"] == [0, 1, 2]
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    np.testing.assert_allclose(probabilities, np.mean([m["y_pred_rows"] for m in members], axis=0))
    assert np.mean(np.array(answer["y_pred_rows"]) == y.to_numpy()) > 0.9


def test_predict_goes_on_without_a_dead_member_and_names_it(wine_quality):
    # Prepare
    X, y = wine_quality
    worker = RegressionWorker(DecisionTreeRegressor(max_depth=3))
    with LocalCluster([worker.with_data(X, y)] * 3) as cluster:
        master = AggregationMaster().fit(cluster)
        cluster.kill("worker1")
        # Execute
        predictions = master.predict(X.iloc[:3])
        with pytest.raises(QuorumError, match="worker1") as raised:
            AggregationMaster(quorum="all").fit(cluster)
    # Assert
    assert predictions.shape == (3,)
    assert "worker1" in master.failed_workers_
    assert raised.value.answered == ["worker2", "worker3"]


def test_fit_with_no_worker_reachable_raises_quorum_error():
    # Prepare
    master = AggregationMaster(timeout=1.0)
    # Execute / Assert
    with pytest.raises(QuorumError, match="connection refused"):
        master.fit({"ghost": "http://127.0.0.1:9"})


def test_history_holds_a_record_of_the_fit_and_of_each_predict(tree_cluster, wine_quality):
    # Prepare
    X, _ = wine_quality
    master = AggregationMaster(random_state=0)

    # Execute
    master.fit(tree_cluster)
    master.predict(X.iloc[:5])
    master.predict(X.iloc[5:7])

    # Assert
    assert [(r.round_number, r.action) for r in master.history_] == [
        (1, "fit"),
        (2, "predict"),
        (3, "predict"),
    ]
    fit = master.history_[0]
    assert fit.answered == ["worker1", "worker2", "worker3"] and fit.failed == {}
    assert fit.n_samples == dict.fromkeys(fit.answered, len(X))
    assert set(fit.latency_ms) == set(fit.answered)
    spans = master.spans_.to_frame()
    assert spans["endpoint"].value_counts().to_dict() == {
        paths.MODEL_FIT: 3,
        paths.MODEL_PREDICT: 6,
    }


class FirstMember:
    """A combiner of our own: trust the first member that answered."""

    def combine(self, predictions, classes=None):
        from chimera_nb.algorithms import Combined

        return Combined(next(iter(predictions.values())).values)


def test_a_combiner_object_decides_how_members_are_combined(tree_cluster, wine_quality):
    # Prepare
    X, _ = wine_quality
    rows = predict_body(X.iloc[:5])
    master = AggregationMaster(combiner=FirstMember(), random_state=0).fit(tree_cluster)
    first_member = httpx.post(tree_cluster.endpoints["worker1"] + paths.MODEL_PREDICT, json=rows)

    # Execute
    predictions = master.predict(X.iloc[:5])

    # Assert
    assert predictions.tolist() == pytest.approx(first_member.json()["y_pred_rows"])
    assert repr(AggregationMaster().fit(tree_cluster).combiner_) == "MeanPrediction()"


def test_clone_gives_an_unfitted_master_with_the_same_parameters(tree_cluster):
    # Prepare
    from sklearn.base import clone

    combiner = FirstMember()
    master = AggregationMaster(quorum=2, timeout=5.0, combiner=combiner, random_state=3)
    master.fit(tree_cluster)

    # Execute
    copy = clone(master)

    # Assert
    assert copy.get_params().keys() == master.get_params().keys()
    assert {k: v for k, v in copy.get_params().items() if k != "combiner"} == {
        "quorum": 2,
        "timeout": 5.0,
        "max_retries": None,
        "random_state": 3,
    }
    assert isinstance(copy.combiner, FirstMember) and copy.combiner is not combiner
    assert repr(copy).endswith("[not fitted]") and repr(master).endswith("[fitted]")


def test_concurrent_rest_predictions_share_one_connection_pool(
    tree_cluster, wine_quality, serve_master
):
    # Prepare: 150 clients at once; each prediction asks all 3 workers
    import asyncio
    import threading
    import time

    import psutil

    X, _ = wine_quality
    body = predict_body(X.iloc[:3])
    worker_ports = {int(url.rsplit(":", 1)[1]) for url in tree_cluster.endpoints.values()}
    opened, sampling = set(), threading.Event()

    def sample() -> None:  # connections from this process (the master) to the workers
        while not sampling.is_set():
            connections = psutil.Process().net_connections(kind="tcp")
            to_workers = [
                c
                for c in connections
                if c.raddr and c.raddr.port in worker_ports and c.status == psutil.CONN_ESTABLISHED
            ]
            opened.update((c.laddr.port, c.raddr.port) for c in to_workers)
            time.sleep(0.002)

    async def burst(url: str) -> list[int]:
        limits = httpx.Limits(max_connections=200)
        async with httpx.AsyncClient(limits=limits, timeout=60) as client:
            answers = await asyncio.gather(
                *(client.post(url + paths.AGGREGATION_PREDICT, json=body) for _ in range(150))
            )
        return [answer.status_code for answer in answers]

    master = AggregationMaster(random_state=0).fit(tree_cluster)
    with serve_master(master, tree_cluster) as server:
        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            # Execute
            statuses = asyncio.run(burst(server.url))
        finally:
            sampling.set()
            sampler.join()

    # Assert: every answer came, through fewer connections than there were predictions (each
    # prediction with a client of its own opens one per worker: 450)
    assert statuses == [200] * 150
    assert 3 <= len(opened) <= 150
