"""FeatureSplitMaster against real FeatureSplitWorker processes: model parallel (3 column
blocks) and hybrid (2 row groups x 3 blocks) fits equal full-batch gradient descent on all
columns, the parameter server's and the central twin's, to 1e-10; a softmax classifier; the
record a fit leaves; and the failures a feature split must not hide."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits, load_iris

from chimera_nb import (
    ConfigurationError,
    FeatureSplitMaster,
    FeatureSplitWorker,
    FitDivergedError,
    Lab,
    LocalCluster,
    ParameterServerMaster,
    QuorumError,
    SGDWorker,
)
from chimera_nb.algorithms import ColumnStatistics, Standardizer, gradient_descent, squared_loss
from chimera_nb.wire import paths

N_ITER = 40


@pytest.fixture(scope="module")
def wine_blocks(wine_quality):
    """Three feature-split workers, four columns of wine quality each (no labels)."""
    X, _ = wine_quality
    worker = FeatureSplitWorker("regressor")
    with LocalCluster.from_feature_blocks(worker, X, n_blocks=3, name="wine-blocks") as cluster:
        yield cluster


@pytest.fixture(scope="module")
def parameter_server(wine_quality):
    """The parameter server's full-batch gradient descent on the same data, for comparison."""
    X, y = wine_quality
    master = ParameterServerMaster("regressor", max_iter=N_ITER, tol=0.0, batch_size=None)
    with LocalCluster.from_shards(SGDWorker("regressor"), X, y, n_workers=3, name="wine-ps") as c:
        return master.fit(c)


def central_twin(X, y):
    """Full-batch gradient descent on all the columns, in one process."""
    X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=float)
    standardizer = Standardizer.from_statistics(ColumnStatistics.of(X), ColumnStatistics.of(y))
    result = gradient_descent(
        standardizer.transform(X),
        standardizer.transform_target(y),
        squared_loss,
        schedule=0.1,
        max_iter=N_ITER,
    )
    return standardizer.weights_to_raw(result.weights, result.bias), result.losses


def relative(actual, expected) -> float:
    return float(np.max(np.abs(actual - expected)) / np.max(np.abs(expected)))


def test_feature_split_equals_full_batch_gradient_descent_on_all_columns(
    wine_blocks, wine_quality, parameter_server
):
    # Prepare
    X, y = wine_quality
    (twin_weights, twin_bias), twin_losses = central_twin(X, y)
    master = FeatureSplitMaster("regressor", max_iter=N_ITER, tol=0.0)
    # Execute
    master.fit(wine_blocks, y)
    # Assert
    assert relative(master.coef_, twin_weights[0]) < 1e-10
    assert relative(master.coef_, parameter_server.coef_) < 1e-10
    assert relative(master.intercept_, twin_bias) < 1e-10
    assert master.loss_curve_ == pytest.approx(twin_losses, rel=1e-10)
    assert master.columns_ == list(X.columns) and master.replicas_ == 1
    assert master.n_iter_ == N_ITER and len(master.history_) == N_ITER + 1
    np.testing.assert_allclose(master.predict(X[:5]), parameter_server.predict(X[:5]), rtol=1e-10)


def test_hybrid_replicas_of_the_feature_split_equal_full_batch_gradient_descent(
    wine_quality, parameter_server
):
    # Prepare: 2 row groups (data parallel) x 3 column blocks (model parallel)
    X, y = wine_quality
    worker = FeatureSplitWorker("regressor")
    master = FeatureSplitMaster("regressor", max_iter=N_ITER, tol=0.0)
    # Execute
    with LocalCluster.from_feature_blocks(worker, X, 3, replicas=2, name="wine-hybrid") as cluster:
        master.fit(cluster, y)
        predictions = master.predict(X[:5])
    # Assert
    assert relative(master.coef_, parameter_server.coef_) < 1e-10
    assert master.loss_curve_ == pytest.approx(parameter_server.loss_curve_, rel=1e-10)
    assert master.replicas_ == 2 and len(master.blocks_) == 3
    assert master.history_[0].n_samples == {
        f"rows{r}-block{c}": n for r, n in ((1, 3249), (2, 3248)) for c in (1, 2, 3)
    }
    np.testing.assert_allclose(predictions, parameter_server.predict(X[:5]), rtol=1e-10)


def test_each_round_is_two_calls_per_worker_and_leaves_a_record(wine_blocks, wine_quality):
    # Prepare
    _, y = wine_quality
    master = FeatureSplitMaster("regressor", max_iter=5, tol=0.0)
    events = []
    master.events.subscribe(events.append)
    # Execute
    master.fit(wine_blocks, y)
    spans = master.spans_.to_frame()
    # Assert
    names = ["block1", "block2", "block3"]
    per_round = spans[spans["round"] == 3].groupby("endpoint")["worker"].apply(sorted).to_dict()
    assert per_round == {paths.FEATURE_SPLIT_SCORES: names, paths.FEATURE_SPLIT_GRADIENT: names}
    assert (spans["status"] == "200").all() and len(spans) == 3 * (2 + 2 * 6 + 1)
    assert [r.answered for r in master.history_] == [names] * 6
    assert master.history_[-1].loss < master.history_[0].loss
    round_two = [e.step for e in events if e.round_number == 2]
    assert round_two == list("DEFHIJ")
    assert [e.step for e in events if e.round_number is None][-3:] == ["K", "L", "M"]


def test_a_softmax_classifier_learns_iris_with_predictions_from_the_workers():
    # Prepare
    X, y = load_iris(return_X_y=True)
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    master = FeatureSplitMaster("classifier", learning_rate=0.5, max_iter=150)
    # Execute
    with LocalCluster.from_feature_blocks(
        FeatureSplitWorker("classifier"), X, n_blocks=2, name="iris-blocks"
    ) as cluster:
        master.fit(cluster, labels)
        predicted = master.predict(X)
        proba = master.predict_proba(X[:3])
    # Assert
    assert master.classes_ == ["setosa", "versicolor", "virginica"]
    assert master.coef_.shape == (3, 4) and master.columns_ == ["x0", "x1", "x2", "x3"]
    assert np.mean(predicted == labels) >= 0.9
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_a_missing_block_fails_the_round_naming_the_worker_and_its_columns(wine_quality):
    # Prepare
    X, y = wine_quality
    master = FeatureSplitMaster("regressor", max_iter=5, timeout=2.0)
    with LocalCluster.from_feature_blocks(
        FeatureSplitWorker("regressor"), X, n_blocks=2, name="wine-missing"
    ) as cluster:
        cluster.kill("block2")
        # Execute
        with pytest.raises(QuorumError) as raised:
            master.fit(cluster, y)
    # Assert
    message = str(raised.value)
    assert "block2" in message and "every block" in message
    assert list(raised.value.failed) == ["block2"]


def test_labels_are_required_and_must_match_the_workers_rows(wine_blocks, wine_quality):
    # Prepare
    _, y = wine_quality
    # Execute, Assert
    with pytest.raises(ConfigurationError, match="holds the labels"):
        FeatureSplitMaster("regressor").fit(wine_blocks)
    with pytest.raises(ConfigurationError, match="6497 rows but the master holds 100 labels"):
        FeatureSplitMaster("regressor", max_iter=2).fit(wine_blocks, y[:100])


def test_the_rest_endpoints_fit_and_predict_with_held_labels(
    wine_blocks, wine_quality, serve_master
):
    # Prepare
    X, y = wine_quality
    master = FeatureSplitMaster("regressor", max_iter=10).hold_labels(y)
    body = {"X_pred_columns": list(X.columns), "X_pred_rows": X[:3].to_numpy().tolist()}
    with serve_master(master, wine_blocks) as server:
        # Execute
        fitted = httpx.post(server.url + paths.FEATURE_SPLIT_FIT, timeout=60)
        predicted = httpx.post(server.url + paths.FEATURE_SPLIT_PREDICT, json=body)
    # Assert
    assert fitted.status_code == 200, fitted.text
    assert fitted.json()["n_rounds"] == 11
    assert predicted.json()["y_pred_rows"] == pytest.approx(master.predict(X[:3]).tolist())


def test_the_master_is_an_estimator_that_clones():
    # Prepare
    master = FeatureSplitMaster("classifier", learning_rate=0.3, max_iter=7)
    # Execute
    copy = clone(master)
    # Assert
    assert copy.get_params() == master.get_params()
    assert "quorum" not in copy.get_params()
    assert (
        repr(copy) == "FeatureSplitMaster('classifier', learning_rate=0.3, max_iter=7) [not fitted]"
    )


def test_a_lab_of_feature_blocks_gets_a_working_dashboard(wine_quality):
    # Prepare
    X, y = wine_quality
    master = FeatureSplitMaster("regressor", max_iter=10)
    with Lab.from_feature_blocks(
        FeatureSplitWorker("regressor"), X, y, master=master, n_blocks=2, name="blocks-dashboard"
    ) as lab:
        dashboard = lab.dashboard()
        try:
            # Execute
            lab.fit()
            dashboard.refresh()
            # Assert
            live = dashboard.live
            assert live.chart["machine"] == "feature-split fit"
            assert sorted(box["letter"] for box in live.chart["boxes"]) == list("ABCDEFGHIJKLM")
            assert (live.status["role"], live.status["round"]) == ("FeatureSplitMaster", 11)
            assert [w["answered"] for w in live.workers] == ["11/11", "11/11"]
            assert [r["round"] for r in live.timeline["rounds"]][-1] == 11
            assert [kind for kind, _ in dashboard.controls.said if kind == "error"] == []
        finally:
            dashboard.close()


def test_tol_stops_where_the_parameter_server_stops(wine_blocks, wine_quality):
    # Prepare
    X, y = wine_quality
    expected = ParameterServerMaster("regressor", tol=1e-3)
    master = FeatureSplitMaster("regressor", tol=1e-3)
    # Execute
    master.fit(wine_blocks, y)
    with LocalCluster.from_shards(SGDWorker("regressor"), X, y, n_workers=2, name="wine-tol") as c:
        expected.fit(c)
    # Assert
    assert master.converged_ and expected.converged_
    assert master.n_iter_ == expected.n_iter_
    assert relative(master.coef_, expected.coef_) < 1e-10


def test_a_diverging_fit_says_so_and_names_the_learning_rate():
    # Prepare
    X = np.random.default_rng(0).normal(size=(50, 4))
    y = X @ [1.0, 2.0, 3.0, 4.0]
    master = FeatureSplitMaster("regressor", learning_rate=1e308, max_iter=20)
    with LocalCluster.from_feature_blocks(
        FeatureSplitWorker("regressor"), X, n_blocks=2, name="diverging"
    ) as cluster:
        # Execute, Assert
        with pytest.raises(FitDivergedError, match="learning"):
            master.fit(cluster, y)


def test_a_hybrid_logistic_fit_with_l2_and_a_schedule_equals_the_parameter_servers():
    # Prepare: constant pixel columns, 64 columns in 3 blocks, 2 row groups
    X, y = load_digits(n_class=2, return_X_y=True)
    options = {"max_iter": 30, "tol": 0.0, "alpha": 0.1, "learning_rate": 0.3}
    options["learning_rate_schedule"] = "invscaling"
    expected = ParameterServerMaster("classifier", **options)
    master = FeatureSplitMaster("classifier", **options)
    # Execute
    with LocalCluster.from_shards(SGDWorker("classifier"), X, y, n_workers=2, name="digits") as c:
        expected.fit(c)
    with LocalCluster.from_feature_blocks(
        FeatureSplitWorker("classifier"), X, 3, replicas=2, name="digits-hybrid"
    ) as cluster:
        master.fit(cluster, y)
    # Assert
    assert master.coef_.shape == (1, 64)
    assert relative(master.coef_, expected.coef_) < 1e-10
    assert master.loss_curve_ == pytest.approx(expected.loss_curve_, rel=1e-10)
