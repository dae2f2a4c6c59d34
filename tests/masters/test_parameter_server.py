"""ParameterServerMaster against real SGD worker processes, each result checked against its
central twin: the same data through the same algorithm in one process."""

from __future__ import annotations

import time

import httpx
import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split

from chimera_nb import (
    ConfigurationError,
    LocalCluster,
    NotFittedError,
    ParameterServerMaster,
    QuorumError,
    SGDWorker,
)
from chimera_nb.algorithms import (
    ColumnStatistics,
    Standardizer,
    gradient_descent,
    loss_for,
    n_outputs,
)
from chimera_nb.logs import STATUS_LOG
from chimera_nb.wire import paths


@pytest.fixture(scope="module")
def wine_cluster(wine_quality):
    """Three SGD workers on unequal shards (50/30/20 %) of wine quality."""
    X, y = wine_quality
    with LocalCluster.from_shards(
        SGDWorker("regressor"), X, y, n_workers=3, proportions=[0.5, 0.3, 0.2], name="wine"
    ) as cluster:
        yield cluster


def central_gradient_descent(X, y, model_type, max_iter, learning_rate, classes=None):
    """The central twin: standardize with global statistics, then full-batch GD."""
    X = np.asarray(X, dtype=float)
    if model_type == "regressor":
        standardizer = Standardizer.from_statistics(ColumnStatistics.of(X), ColumnStatistics.of(y))
        targets, n_classes = standardizer.transform_target(np.asarray(y, dtype=float)), 0
    else:
        standardizer = Standardizer.from_statistics(ColumnStatistics.of(X))
        targets = np.searchsorted(classes, y)
        n_classes = len(classes)
    result = gradient_descent(
        standardizer.transform(X),
        targets,
        loss_for(model_type, n_classes),
        n_outputs(model_type, n_classes),
        schedule=learning_rate,
        max_iter=max_iter,
        tol=0.0,
    )
    return standardizer.weights_to_raw(result.weights, result.bias), result.losses


def test_fit_matches_central_gradient_descent_on_unequal_shards(wine_cluster, wine_quality):
    # Prepare
    X, y = wine_quality
    (expected_weights, expected_bias), expected_losses = central_gradient_descent(
        X, y, "regressor", max_iter=60, learning_rate=0.1
    )
    master = ParameterServerMaster("regressor", learning_rate=0.1, max_iter=60, tol=0.0)
    # Execute
    master.fit(wine_cluster)
    # Assert
    relative = np.max(np.abs(master.coef_ - expected_weights[0])) / np.max(np.abs(expected_weights))
    assert relative < 1e-8
    assert master.intercept_ == pytest.approx(expected_bias, rel=1e-8)
    assert master.loss_curve_ == pytest.approx(expected_losses, rel=1e-8)
    assert master.n_iter_ == 60 and len(master.history_) == 61


def test_binary_payloads_give_the_same_weights_as_json(wine_cluster):
    # Prepare
    json_master = ParameterServerMaster("regressor", max_iter=20, tol=0.0)
    binary_master = ParameterServerMaster("regressor", max_iter=20, tol=0.0, encoding="binary")
    # Execute
    json_master.fit(wine_cluster)
    binary_master.fit(wine_cluster)
    # Assert
    np.testing.assert_array_equal(binary_master.coef_, json_master.coef_)


def test_default_settings_reach_linear_regression_r2_on_raw_wine_quality(
    wine_cluster, wine_quality
):
    # Prepare
    X, y = wine_quality
    expected = r2_score(y, LinearRegression().fit(X, y).predict(X))
    # Execute
    master = ParameterServerMaster("regressor").fit(wine_cluster)
    actual = r2_score(y, master.predict(X))
    # Assert
    assert actual == pytest.approx(expected, abs=0.01)
    assert master.history_[-1].answered == ["worker1", "worker2", "worker3"]


def test_softmax_on_digits_reaches_logistic_regression_accuracy():
    # Prepare
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
    expected = LogisticRegression(max_iter=2000).fit(X_train, y_train).score(X_test, y_test)
    master = ParameterServerMaster("classifier", learning_rate=0.5, max_iter=300)
    # Execute
    with LocalCluster.from_shards(
        SGDWorker("classifier"), X_train, y_train, n_workers=3, method="random", random_state=0
    ) as cluster:
        master.fit(cluster)
    actual = np.mean(master.predict(X_test).astype(int) == y_test)
    # Assert
    assert master.classes_ == list(range(10))
    assert master.coef_.shape == (10, 64)
    assert actual >= expected - 0.02
    np.testing.assert_allclose(master.predict_proba(X_test[:5]).sum(axis=1), 1.0)


def test_binary_classification_matches_central_logistic_gradient_descent():
    # Prepare
    X, y = load_digits(n_class=2, return_X_y=True)
    (expected_weights, _), _ = central_gradient_descent(X, y, "classifier", 30, 0.3, classes=[0, 1])
    master = ParameterServerMaster("classifier", learning_rate=0.3, max_iter=30, tol=0.0)
    # Execute
    with LocalCluster.from_shards(
        SGDWorker("classifier"), X, y, n_workers=2, proportions=[0.7, 0.3]
    ) as cluster:
        master.fit(cluster)
    # Assert
    assert master.coef_.shape == (1, 64)
    np.testing.assert_allclose(master.coef_, expected_weights, rtol=1e-8, atol=1e-12)


def test_mini_batches_replay_with_the_same_random_state(wine_cluster):
    # Prepare
    first = ParameterServerMaster("regressor", batch_size=64, max_iter=10, tol=0, random_state=3)
    second = ParameterServerMaster("regressor", batch_size=64, max_iter=10, tol=0, random_state=3)
    third = ParameterServerMaster("regressor", batch_size=64, max_iter=10, tol=0, random_state=4)
    # Execute
    for master in (first, second, third):
        master.fit(wine_cluster)
    # Assert
    np.testing.assert_array_equal(first.coef_, second.coef_)
    assert not np.array_equal(first.coef_, third.coef_)
    assert first.history_[0].n_samples == {"worker1": 64, "worker2": 64, "worker3": 64}


def test_fit_completes_without_a_worker_killed_mid_fit_and_names_it(wine_quality, tmp_path):
    # Prepare
    X, y = wine_quality
    master = ParameterServerMaster("regressor", max_iter=30, tol=0.0)
    with LocalCluster.from_shards(
        SGDWorker("regressor"), X, y, n_workers=3, run_dir=tmp_path
    ) as cluster:
        master.events.subscribe(
            lambda event: (
                cluster.kill("worker2") if (event.step, event.round_number) == ("D", 10) else None
            )
        )
        # Execute
        master.fit(cluster)
    # Assert
    assert master.history_[8].answered == ["worker1", "worker2", "worker3"]
    assert master.history_[-1].answered == ["worker1", "worker3"]
    assert "worker2" in master.history_[9].failed
    assert "worker2" in (tmp_path / STATUS_LOG).read_text()
    assert len(master.history_) == 31


def test_quorum_all_fails_clearly_when_a_worker_is_killed(wine_quality):
    # Prepare
    X, y = wine_quality
    master = ParameterServerMaster("regressor", max_iter=30, quorum="all")
    with LocalCluster.from_shards(SGDWorker("regressor"), X, y, n_workers=3) as cluster:
        master.events.subscribe(
            lambda event: (
                cluster.kill("worker3") if (event.step, event.round_number) == ("D", 5) else None
            )
        )
        # Execute
        with pytest.raises(QuorumError) as raised:
            master.fit(cluster)
    # Assert
    assert "round 5 reached 2 of 3 workers" in str(raised.value)
    assert "worker3" in raised.value.failed
    assert raised.value.answered == ["worker1", "worker2"]


def test_rest_fit_and_predict_answer_the_seed_json_shapes(wine_cluster, wine_quality, serve_master):
    # Prepare
    X, _ = wine_quality
    master = ParameterServerMaster("regressor", max_iter=50)
    body = {"X_pred_columns": list(X.columns), "X_pred_rows": X.iloc[:4].to_numpy().tolist()}
    with serve_master(master, wine_cluster) as server:
        # Execute
        fitted = httpx.post(server.url + paths.PARAMETER_SERVER_FIT, timeout=60)
        predicted = httpx.post(server.url + paths.PARAMETER_SERVER_PREDICT, json=body)
    # Assert
    assert fitted.status_code == 200
    assert fitted.json()["fit"] == "ok"
    assert fitted.json()["answered"] == ["worker1", "worker2", "worker3"]
    assert predicted.status_code == 200
    assert predicted.json()["y_pred_rows"] == pytest.approx(master.predict(X.iloc[:4]).tolist())


def test_rest_predict_before_fit_is_a_409_that_says_to_fit(wine_cluster, serve_master):
    # Prepare
    body = {"X_pred_columns": ["a"], "X_pred_rows": [[1.0]]}
    with serve_master(ParameterServerMaster(), wine_cluster) as server:
        # Execute
        answer = httpx.post(server.url + paths.PARAMETER_SERVER_PREDICT, json=body)
    # Assert
    assert answer.status_code == 409
    assert "fit" in answer.json()["detail"]


def test_predict_before_fit_raises_not_fitted_error():
    with pytest.raises(NotFittedError, match="call fit"):
        ParameterServerMaster().predict([[1.0, 2.0]])


@pytest.mark.parametrize(
    ("argument", "value"),
    [
        ("learning_rate", 0),
        ("max_iter", -1),
        ("model_type", "ranker"),
        ("encoding", "xml"),
        ("quorum", 0),
        ("batch_size", 0),
        ("learning_rate_schedule", "adaptive"),
    ],
)
def test_invalid_arguments_are_refused_before_any_worker_is_called(argument, value):
    # Prepare
    master = ParameterServerMaster(**{argument: value})
    # Execute / Assert
    with pytest.raises(ConfigurationError, match=argument):
        master.fit({"nobody": "http://127.0.0.1:9"})


def test_clone_gives_an_unfitted_master_with_every_parameter_kept(wine_cluster):
    # Prepare
    from sklearn.base import clone

    from chimera_nb.algorithms import WeightedMean

    parameters = {
        "learning_rate": 0.05,
        "learning_rate_schedule": "invscaling",
        "power_t": 0.5,
        "max_iter": 3,
        "tol": 0.0,
        "alpha": 0.1,
        "batch_size": 32,
        "quorum": "all",
        "encoding": "binary",
        "timeout": 9.0,
        "max_retries": 2,
        "aggregator": WeightedMean(),
        "round_policy": None,
        "backup_workers": 0,
        "consistency": "bsp",
        "staleness": None,
        "staleness_aware": True,
        "compression": None,
        "random_state": 5,
        "checkpoint_every": None,
        "checkpoint_dir": None,
    }
    master = ParameterServerMaster("regressor", **parameters).fit(wine_cluster)

    # Execute
    copy = clone(master)

    # Assert
    assert {k: v for k, v in copy.get_params().items() if k != "aggregator"} == {
        "model_type": "regressor",
        **{k: v for k, v in parameters.items() if k != "aggregator"},
    }
    assert isinstance(copy.aggregator, WeightedMean)
    assert not hasattr(copy, "history_") and len(master.history_) == 4
    assert clone(master).fit(wine_cluster).coef_ == pytest.approx(master.coef_, rel=1e-12)


def test_set_params_changes_a_parameter_and_refuses_unknown_ones():
    # Prepare
    master = ParameterServerMaster("regressor")

    # Execute
    master.set_params(max_iter=5, learning_rate=0.2)

    # Assert
    assert (master.max_iter, master.learning_rate) == (5, 0.2)
    with pytest.raises(ConfigurationError, match="no parameter 'eta0'"):
        master.set_params(eta0=0.1)


def test_fit_with_wait_false_returns_a_handle_to_a_background_fit(wine_cluster):
    # Prepare
    master = ParameterServerMaster("regressor", max_iter=20, tol=0.0)

    # Execute
    handle = master.fit(wine_cluster, wait=False)
    fitted = handle.result(timeout=60)

    # Assert
    assert fitted is master and handle.done()
    assert len(master.history_) == 21
    assert repr(handle) == "FitHandle(done)"


def wait_until(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


@pytest.fixture
def slow_wine_cluster(wine_cluster):
    """The wine cluster with worker1 answering 20 ms late: fits that last long enough to
    do something while they run."""
    wine_cluster.slow("worker1", 0.02)
    try:
        yield wine_cluster
    finally:
        wine_cluster.slow("worker1", 0)


def test_a_second_fit_while_one_runs_is_refused_and_the_first_is_untouched(slow_wine_cluster):
    # Prepare
    from chimera_nb import FitInProgressError

    master = ParameterServerMaster("regressor", max_iter=20, tol=0.0)
    running = master.fit(slow_wine_cluster, wait=False)
    wait_until(lambda: master.fitting)

    # Execute
    with pytest.raises(FitInProgressError, match="fitting already"):
        master.fit(slow_wine_cluster)
    running.result(timeout=60)

    # Assert
    assert [r.round_number for r in master.history_] == list(range(1, 22))
    assert master.n_iter_ == 20


def test_predictions_during_a_refit_come_from_the_last_fitted_model(
    slow_wine_cluster, wine_quality
):
    # Prepare
    X, _ = wine_quality
    rows = X.iloc[:50]
    master = ParameterServerMaster("regressor", max_iter=3, tol=0.0).fit(slow_wine_cluster)
    before = master.predict(rows)
    master.set_params(max_iter=60)

    # Execute
    refit = master.fit(slow_wine_cluster, wait=False)
    during = []
    while not refit.done():
        during.append(master.predict(rows))
        time.sleep(0.002)  # a client asking again and again, leaving the fit room to run
    refit.result(timeout=60)
    after = master.predict(rows)

    # Assert: each answer is the old model's, or (once the refit published it) the new one's
    assert not np.allclose(after, before)
    old = [np.array_equal(predictions, before) for predictions in during]
    new = [np.array_equal(predictions, after) for predictions in during]
    assert all(o or n for o, n in zip(old, new))
    assert sum(old) > 10


def test_cancel_fit_abandons_a_fit_at_once_and_keeps_the_previous_model(slow_wine_cluster):
    # Prepare
    from chimera_nb import FitCancelledError

    master = ParameterServerMaster("regressor", max_iter=3, tol=0.0).fit(slow_wine_cluster)
    coef = master.coef_.copy()
    master.set_params(max_iter=100_000)
    running = master.fit(slow_wine_cluster, wait=False)
    wait_until(lambda: len(getattr(master, "history_", [])) >= 5)

    # Execute
    cancelled = master.cancel_fit("the lecture is over")
    with pytest.raises(FitCancelledError, match="the lecture is over"):
        running.result(timeout=5)

    # Assert
    assert cancelled and not master.fitting and not master.cancel_fit()
    np.testing.assert_array_equal(master.coef_, coef)


def test_rest_fit_while_a_python_fit_runs_answers_409(slow_wine_cluster, serve_master):
    # Prepare
    master = ParameterServerMaster("regressor", max_iter=40, tol=0.0)
    with serve_master(master, slow_wine_cluster) as server:
        running = master.fit(slow_wine_cluster, wait=False)
        wait_until(lambda: master.fitting)
        # Execute
        answer = httpx.post(server.url + paths.PARAMETER_SERVER_FIT, timeout=60)
        running.result(timeout=60)
    # Assert
    assert answer.status_code == 409
    assert "fitting already" in answer.json()["detail"]


def test_every_fit_start_is_announced_with_its_master_and_workers(wine_cluster):
    # Prepare
    from chimera_nb.masters import fit_starts

    seen = []
    unsubscribe = fit_starts.subscribe(lambda master, endpoints: seen.append((master, endpoints)))
    master = ParameterServerMaster("regressor", max_iter=2)

    # Execute
    try:
        master.fit(wine_cluster)
    finally:
        unsubscribe()
    master.fit(wine_cluster)  # after unsubscribing: not seen

    # Assert
    assert [(m, dict(e)) for m, e in seen] == [(master, wine_cluster.endpoints)]


def fit_step_starts(master) -> dict[int, float]:
    """When each round's first fit-step call was sent."""
    starts: dict[int, float] = {}
    for span in master.spans_:
        if span.endpoint == paths.SGD_FIT_STEP:
            starts.setdefault(span.round_number, span.start)
    return starts


def test_slow_motion_spaces_the_rounds_and_full_speed_lifts_it(wine_cluster):
    # Prepare
    master = ParameterServerMaster("regressor", max_iter=3, tol=0.0)
    master.pacer.slow_motion(0.25)

    # Execute
    master.fit(wine_cluster)
    slow = fit_step_starts(master)
    master.pacer.full_speed()
    master.fit(wine_cluster)
    fast = fit_step_starts(master)

    # Assert
    assert all(slow[r + 1] - slow[r] >= 0.24 for r in range(1, 4))
    assert fast[4] - fast[1] < 0.5
    assert repr(master.pacer) == "Pacer(full speed)"


def test_a_paused_fit_runs_one_round_per_step_and_stop_ends_it(wine_cluster):
    # Prepare
    master = ParameterServerMaster("regressor", max_iter=1000, tol=0.0)
    master.pacer.pause()
    running = master.fit(wine_cluster, wait=False)
    wait_until(lambda: master.fitting)
    time.sleep(0.3)
    before = len(fit_step_starts(master))

    # Execute
    master.pacer.step()
    wait_until(lambda: len(fit_step_starts(master)) == 1)
    master.pacer.step()
    wait_until(lambda: len(fit_step_starts(master)) == 2)
    time.sleep(0.2)
    after_two_steps = len(fit_step_starts(master))
    master.stop()
    running.result(timeout=30)

    # Assert
    assert (before, after_two_steps) == (0, 2)
    assert len(master.history_) <= 4


@pytest.fixture(scope="module")
def four_workers(wine_quality):
    X, y = wine_quality
    with LocalCluster.from_shards(SGDWorker("regressor"), X, y, n_workers=4, name="four") as c:
        yield c


def test_backup_workers_close_each_round_without_the_straggler(four_workers):
    # Prepare: worker4 answers 300 ms late; the rule waits for the first 3 replies
    from chimera_nb.algorithms import FirstK

    four_workers.slow("worker4", 0.3)
    master = ParameterServerMaster("regressor", max_iter=5, tol=0.0, round_policy=FirstK(3))
    try:
        # Execute
        started = time.monotonic()
        master.fit(four_workers)
        elapsed = time.monotonic() - started
    finally:
        four_workers.slow("worker4", 0)

    # Assert: every round used the three fast shards only, and none waited for worker4
    for record in master.history_:
        assert record.answered == ["worker1", "worker2", "worker3"]
        assert set(record.cancelled) == {"worker4"} and "FirstK(3)" in record.cancelled["worker4"]
        assert set(record.n_samples) == {"worker1", "worker2", "worker3"}
    assert elapsed < 6 * 0.3


def test_a_deadline_closes_the_round_with_the_replies_that_came(four_workers):
    # Prepare
    from chimera_nb.algorithms import FirstK

    four_workers.slow("worker2", 0.5)
    master = ParameterServerMaster(
        "regressor", max_iter=2, tol=0.0, round_policy=FirstK(4, deadline=0.15)
    )
    try:
        # Execute
        master.fit(four_workers)
    finally:
        four_workers.slow("worker2", 0)

    # Assert
    assert all(record.answered == ["worker1", "worker3", "worker4"] for record in master.history_)
    assert all(set(record.cancelled) == {"worker2"} for record in master.history_)


def test_a_diverging_fit_says_to_lower_the_learning_rate(wine_cluster, serve_master):
    # Prepare: a step far beyond 2 / the largest eigenvalue
    from chimera_nb import FitDivergedError

    master = ParameterServerMaster("regressor", learning_rate=1e150, max_iter=50, tol=0.0)

    # Execute
    with pytest.raises(FitDivergedError, match="Lower the learning rate") as raised:
        master.fit(wine_cluster)
    with serve_master(master, wine_cluster) as server:
        answer = httpx.post(server.url + paths.PARAMETER_SERVER_FIT, timeout=60)

    # Assert: an error in the request's settings (422), not a quorum problem (503)
    assert "the fit diverged" in str(raised.value)
    assert answer.status_code == 422
    assert "learning rate" in answer.json()["detail"]
