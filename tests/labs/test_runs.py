"""Lab runs on real clusters: a student's code on the workers and on the master, checked
against the central twin through the run's trace; and every way it can go wrong (a wrong
answer, an error, a loop that never ends) ends the run in seconds, in words, with the
cluster closed."""

from __future__ import annotations

import time

import numpy as np
import psutil
import pytest
from sklearn.tree import DecisionTreeClassifier

from chimera_nb import ParameterServerMaster, SGDWorker, labs
from chimera_nb.algorithms import Gradient, SoftVote

rng = np.random.default_rng(0)
X = rng.normal(size=(300, 4))
y = X @ np.array([1.0, -2.0, 0.5, 0.0]) + 3.0 + rng.normal(scale=0.1, size=300)
LABELS = np.digitize(X[:, 0] + X[:, 1], [-0.7, 0.7])  # three classes


# -- what a student writes (in a notebook; here, in this module) -------------------------


def squared_loss_gradient(weights, bias, X, y):
    residuals = X @ weights.T + bias - y.reshape(-1, 1)
    return 0.5 * float(np.mean(residuals**2)), residuals.T @ X / len(X), residuals.mean(axis=0)


def returns_nothing(weights, bias, X, y):
    """Not written yet."""


def never_returns(weights, bias, X, y):
    while True:
        pass


class WeightedByRows:
    def aggregate(self, gradients):
        n = sum(g.n_samples for g in gradients.values())
        return Gradient(
            sum(g.n_samples * g.weights for g in gradients.values()) / n,
            sum(g.n_samples * g.bias for g in gradients.values()) / n,
        )


class Endless:
    def aggregate(self, gradients):
        while True:
            pass


class FirstTwo:
    deadline = None

    def closes(self, answered, failed, n_workers, elapsed):
        return len(answered) >= 2 or len(answered) + len(failed) >= n_workers


def worker_seeds(random_state, n_workers):
    return [random_state * 100 + k for k in range(n_workers)]


def bootstrap_rows(n_samples, seed):
    return np.random.default_rng(seed).integers(0, n_samples, n_samples)


# -- the tests -------------------------------------------------------------------------------


def test_student_code_on_workers_and_master_equals_the_central_twin_round_by_round():
    # Prepare
    master = ParameterServerMaster("regressor", max_iter=15, tol=0.0, aggregator=WeightedByRows())
    worker = labs.LabSGDWorker("regressor", gradient=squared_loss_gradient)
    # Execute
    run = labs.run(master, worker, X, y, 3, proportions=[0.6, 0.3, 0.1])
    twin = labs.central_twin(run.master, X, y)
    # Assert
    assert run.ok, run.problem
    np.testing.assert_allclose(run.master.coef_, twin.coef, rtol=1e-10)
    names = ("worker1", "worker2", "worker3")
    assert [(call.round_number, call.workers) for call in run.rule_calls] == [
        (number, names) for number in range(1, 17)
    ]
    assert len([span for span in run.spans if span.endpoint.endswith("fit-step")]) == 48
    assert list(run.rounds().index) == list(range(1, 17)) and set(run.round_seconds()) == set(
        range(1, 17)
    )
    assert master.aggregator.__class__ is WeightedByRows  # the student's rule is given back
    assert repr(run).startswith("LabRun(ParameterServerMaster: ok, 16 rounds in ")


def test_a_gradient_that_returns_nothing_fails_the_run_in_the_workers_words():
    # Execute
    run = labs.run(
        ParameterServerMaster("regressor", max_iter=3),
        labs.LabSGDWorker("regressor", gradient=returns_nothing),
        X,
        y,
        2,
    )
    # Assert
    assert not run.ok and run.rounds().empty
    assert run.problem == (
        "the run failed: too few workers answered (answered: none). worker1, worker2: "
        "answered HTTP 500: your returns_nothing returned None; it must return (loss, "
        "weights_gradient of shape (1, 4), bias_gradient of shape (1,)). Did you forget "
        "`return`, or leave the `...` in place?"
    )


def test_a_gradient_that_never_returns_is_stopped_on_its_worker():
    # Execute
    started = time.monotonic()
    run = labs.run(
        ParameterServerMaster("regressor", max_iter=3),
        labs.LabSGDWorker("regressor", gradient=never_returns),
        X,
        y,
        2,
    )
    # Assert
    assert time.monotonic() - started < 15
    assert (
        "your never_returns raised TimeLimitError: your never_returns ran longer than 2 s"
        in run.problem
    )
    assert "at `pass`" in run.problem or "at `while True:`" in run.problem


def test_a_rule_that_never_returns_fails_the_run_and_the_cluster_closes():
    # Prepare
    master = ParameterServerMaster("regressor", max_iter=3, aggregator=Endless())
    # Execute
    started = time.monotonic()
    with labs.start_cluster(SGDWorker("regressor"), X, y, 2) as cluster:
        pids = list(cluster.pids.values())
        run = labs.fit(master, cluster, call_limit=0.5)
    # Assert
    assert time.monotonic() - started < 15
    assert run.problem == (
        "the run failed: TimeLimitError: your Endless.aggregate() ran longer than 0.5 s and was stopped."
    )
    assert not master.fitting
    assert not [
        pid
        for pid in pids
        if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    ]


def test_a_fit_past_its_time_limit_is_abandoned_and_says_so():
    # Prepare
    master = ParameterServerMaster("regressor", max_iter=1000, tol=0.0)
    # Execute
    with labs.start_cluster(SGDWorker("regressor"), X, y, 2, slow={"worker2": 0.2}) as cluster:
        started = time.monotonic()
        run = labs.fit(master, cluster, time_limit=1.0)
        elapsed = time.monotonic() - started
        again = labs.fit(ParameterServerMaster("regressor", max_iter=2), cluster)  # still usable
    # Assert
    assert elapsed < 5
    assert (
        run.problem
        == "the run failed: TimeLimitError: the fit of ParameterServerMaster ran longer than 1 s and was stopped."
    )
    assert again.ok, again.problem


def test_a_student_round_policy_leaves_the_slow_worker_out_of_every_round():
    # Prepare
    master = ParameterServerMaster("regressor", max_iter=4, tol=0.0, round_policy=FirstTwo())
    # Execute
    run = labs.run(master, SGDWorker("regressor"), X, y, 3, slow={"worker3": 1.0}, kill=[])
    # Assert
    assert run.ok, run.problem
    assert all(list(record.cancelled) == ["worker3"] for record in run.history)
    assert max(run.round_seconds().values()) < 0.5
    assert {call.method for call in run.rule_calls} == {"closes"}


def test_bagging_runs_use_the_students_seeds_and_bootstrap_and_keep_each_members_answer():
    # Prepare
    estimator = DecisionTreeClassifier(max_depth=3)
    master = labs.BaggingMaster(seeds=worker_seeds, random_state=2, combiner=SoftVote())
    worker = labs.LabClassificationWorker(estimator, bootstrap_rows=bootstrap_rows)
    # Execute
    run = labs.run(master, worker, X, LABELS, 3, same_data=True, predict=X[:50])
    # Assert
    assert run.ok, run.problem
    assert run.master.worker_seeds_ == {"worker1": 200, "worker2": 201, "worker3": 202}
    for name, seed in run.master.worker_seeds_.items():
        rows = bootstrap_rows(len(X), seed)
        tree = DecisionTreeClassifier(max_depth=3, random_state=seed).fit(X[rows], LABELS[rows])
        np.testing.assert_allclose(run.member_predictions[name].values, tree.predict_proba(X[:50]))
    expected = SoftVote().combine(run.member_predictions, run.master.classes_)
    np.testing.assert_array_equal(run.predictions, expected.predictions)
    np.testing.assert_allclose(run.probabilities, expected.probabilities)


@pytest.mark.parametrize(
    ("seeds", "message"),
    [
        (
            lambda random_state, n_workers: [1, 2],
            "returned a list of 2 items; it must return a list of 3 seeds",
        ),
        (
            lambda random_state, n_workers: [1, 2, -3],
            "returned the seed -3; seeds must be in [0, 2**32)",
        ),
    ],
)
def test_bad_seeds_fail_the_run_with_what_was_expected(seeds, message):
    # Execute
    run = labs.run(
        labs.BaggingMaster(seeds=seeds),
        labs.LabClassificationWorker(DecisionTreeClassifier()),
        X,
        LABELS,
        3,
        same_data=True,
    )
    # Assert
    assert message in run.problem
