"""FederatedAveragingMaster against real FederatedClient processes, each result checked
against a twin: the parameter server's gradient descent, or the same step in one process."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LinearRegression
from sklearn.metrics import r2_score

from chimera_nb import (
    ConfigurationError,
    FederatedAveragingMaster,
    FederatedClient,
    LocalCluster,
    ParameterServerMaster,
    QuorumError,
)
from chimera_nb.algorithms import ColumnStatistics, Standardizer, squared_loss
from chimera_nb.algorithms.sharding import split
from chimera_nb.wire import paths

PROPORTIONS = [0.4, 0.3, 0.2, 0.1]


@pytest.fixture(scope="module")
def wine_clients(wine_quality):
    """Three federated clients on unequal shards (50/30/20 %) of wine quality."""
    X, y = wine_quality
    with LocalCluster.from_shards(
        FederatedClient("regressor"), X, y, n_workers=3, proportions=[0.5, 0.3, 0.2], name="fed"
    ) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def four_clients(wine_quality):
    """Four clients on shards of 40/30/20/10 % of wine quality."""
    X, y = wine_quality
    with LocalCluster.from_shards(
        FederatedClient("regressor"), X, y, n_workers=4, proportions=PROPORTIONS, name="fed4"
    ) as cluster:
        yield cluster


def test_one_full_batch_step_per_round_equals_the_parameter_servers_gradient_descent(
    wine_clients,
):
    # Prepare
    federated = FederatedAveragingMaster(
        "regressor", n_rounds=30, local_steps=1, learning_rate=0.1, random_state=0
    )
    server = ParameterServerMaster("regressor", max_iter=30, learning_rate=0.1, tol=0.0)
    # Execute
    federated.fit(wine_clients)
    server.fit(wine_clients)
    # Assert
    np.testing.assert_allclose(federated.coef_, server.coef_, rtol=0, atol=1e-10)
    np.testing.assert_allclose(federated.intercept_, server.intercept_, rtol=0, atol=1e-10)
    assert federated.loss_curve_ == pytest.approx(server.loss_curve_[:-1], rel=1e-10)
    assert federated.n_iter_ == 30 and len(federated.history_) == 30
    assert all(r.extra["sampled"] == ["worker1", "worker2", "worker3"] for r in federated.history_)


def test_softmax_with_one_full_batch_step_equals_the_parameter_server_too():
    # Prepare
    X, y = load_iris(return_X_y=True)
    y = np.array(["setosa", "versicolor", "virginica"])[y]
    options = dict(learning_rate=0.2, random_state=0)
    federated = FederatedAveragingMaster("classifier", n_rounds=15, local_steps=1, **options)
    server = ParameterServerMaster("classifier", max_iter=15, tol=0.0, learning_rate=0.2)
    with LocalCluster.from_shards(
        FederatedClient("classifier"), X, y, n_workers=3, method="random", random_state=0
    ) as cluster:
        # Execute
        federated.fit(cluster)
        server.fit(cluster)
    # Assert
    assert federated.classes_ == server.classes_ == ["setosa", "versicolor", "virginica"]
    np.testing.assert_allclose(federated.coef_, server.coef_, rtol=0, atol=1e-10)
    assert (federated.predict(X) == server.predict(X)).all()


def test_five_local_epochs_on_three_clients_reach_linear_regression_r2(wine_clients, wine_quality):
    # Prepare
    X, y = wine_quality
    reference = r2_score(y, LinearRegression().fit(X, y).predict(X))
    master = FederatedAveragingMaster(
        "regressor", n_rounds=20, local_epochs=5, batch_size=32, learning_rate=0.01, random_state=1
    )
    # Execute
    master.fit(wine_clients)
    # Assert
    assert r2_score(y, master.predict(X)) > reference - 0.01
    assert master.history_[0].n_samples == {"worker1": 3248, "worker2": 1950, "worker3": 1299}


def test_rest_fit_and_predict_at_the_federated_paths(wine_clients, wine_quality, serve_master):
    # Prepare
    X, _ = wine_quality
    master = FederatedAveragingMaster("regressor", n_rounds=5, fraction_fit=0.5, random_state=2)
    body = {"X_pred_columns": list(X.columns), "X_pred_rows": X.iloc[:4].to_numpy().tolist()}
    with serve_master(master, wine_clients) as server:
        # Execute
        fitted = httpx.post(server.url + paths.FEDERATED_AVERAGING_FIT, timeout=60)
        predicted = httpx.post(server.url + paths.FEDERATED_AVERAGING_PREDICT, json=body)
    # Assert
    assert fitted.status_code == 200 and fitted.json()["n_rounds"] == 5
    assert fitted.json()["answered"] == master.history_[-1].extra["sampled"]
    assert predicted.json()["y_pred_rows"] == pytest.approx(master.predict(X.iloc[:4]).tolist())


def test_sampled_clients_alone_are_asked_and_weighted_by_their_samples(four_clients, wine_quality):
    # Prepare
    X, y = wine_quality
    shards = split(np.asarray(X, float), np.asarray(y, float), 4, proportions=PROPORTIONS)
    standardizer = Standardizer.from_statistics(
        ColumnStatistics.of(np.asarray(X, float)), ColumnStatistics.of(np.asarray(y, float))
    )
    options = dict(n_rounds=1, local_steps=1, fraction_fit=0.5, learning_rate=0.5)
    master = FederatedAveragingMaster("regressor", random_state=7, **options)
    replay = FederatedAveragingMaster("regressor", random_state=7, **options)
    # Execute
    master.fit(four_clients)
    replay.fit(four_clients)
    # Assert: only the sampled clients got fed/fit, and a replay samples the same ones
    sampled = master.history_[0].extra["sampled"]
    spans = master.spans_.to_frame()
    asked = sorted(spans.loc[spans["endpoint"] == paths.FED_FIT, "worker"])
    assert len(sampled) == 2 and asked == sorted(sampled) == master.history_[0].answered
    assert replay.history_[0].extra["sampled"] == sampled
    # Assert: the update is the union's gradient step (weighted by n_k), not the plain mean
    picked = [shards[int(name.removeprefix("worker")) - 1] for name in sampled]
    steps = []
    for X_k, y_k in picked:
        gradient = squared_loss(
            np.zeros((1, X_k.shape[1])),
            np.zeros(1),
            standardizer.transform(X_k),
            standardizer.transform_target(y_k),
        )
        steps.append((-0.5 * gradient.weights_gradient, -0.5 * gradient.bias_gradient))
    n_k = [len(X_k) for X_k, _ in picked]
    weighted = standardizer.weights_to_raw(
        np.average([s[0] for s in steps], axis=0, weights=n_k),
        np.average([s[1] for s in steps], axis=0, weights=n_k),
    )
    plain = standardizer.weights_to_raw(
        np.mean([s[0] for s in steps], axis=0), np.mean([s[1] for s in steps], axis=0)
    )
    np.testing.assert_allclose(master.coef_, weighted[0][0], rtol=1e-9, atol=1e-12)
    assert np.max(np.abs(master.coef_ - plain[0][0])) > 1e-4
    assert master.history_[0].n_samples == dict(zip(sampled, n_k))


def test_sampling_draws_differ_by_round_and_by_seed(four_clients):
    # Prepare
    options = dict(n_rounds=6, local_steps=1, fraction_fit=0.5)
    first = FederatedAveragingMaster("regressor", random_state=1, **options)
    second = FederatedAveragingMaster("regressor", random_state=2, **options)
    # Execute
    first.fit(four_clients)
    second.fit(four_clients)
    # Assert
    draws = [tuple(r.extra["sampled"]) for r in first.history_]
    assert len(set(draws)) > 1
    assert draws != [tuple(r.extra["sampled"]) for r in second.history_]


def test_a_client_killed_mid_fit_is_named_and_quorum_all_then_fails_clearly(wine_quality):
    # Prepare
    X, y = wine_quality
    tolerant = FederatedAveragingMaster("regressor", n_rounds=8, local_steps=1)
    strict = FederatedAveragingMaster("regressor", n_rounds=8, local_steps=1, quorum="all")
    for master, victim in ((tolerant, "worker2"), (strict, "worker3")):
        with LocalCluster.from_shards(FederatedClient("regressor"), X, y, n_workers=3) as cluster:
            master.events.subscribe(
                lambda event, cluster=cluster, victim=victim: (
                    cluster.kill(victim) if (event.step, event.round_number) == ("E", 4) else None
                )
            )
            # Execute
            if master is tolerant:
                master.fit(cluster)
            else:
                with pytest.raises(QuorumError) as raised:
                    master.fit(cluster)
    # Assert
    assert tolerant.history_[2].answered == ["worker1", "worker2", "worker3"]
    assert "worker2" in tolerant.history_[3].failed
    assert "worker2" not in tolerant.history_[-1].answered and len(tolerant.history_) == 8
    assert "round 4 reached 2 of 3 workers" in str(raised.value)
    assert raised.value.answered == ["worker1", "worker2"]


def test_min_clients_above_the_clients_available_is_refused_by_name(four_clients):
    master = FederatedAveragingMaster("regressor", n_rounds=1, min_clients=5)
    with pytest.raises(ConfigurationError, match="min_clients=5"):
        master.fit(four_clients)


def test_fedprox_differs_from_fedavg_and_a_large_mu_keeps_clients_near_the_global_weights(
    wine_clients,
):
    # Prepare
    options = dict(n_rounds=3, local_epochs=2, batch_size=64, learning_rate=0.05, random_state=3)
    fedavg = FederatedAveragingMaster("regressor", mu=0.0, **options)
    fedprox = FederatedAveragingMaster("regressor", mu=0.5, **options)
    tight = FederatedAveragingMaster("regressor", mu=20.0, **options)
    # Execute
    for master in (fedavg, fedprox, tight):
        master.fit(wine_clients)
    # Assert
    assert np.max(np.abs(fedavg.coef_ - fedprox.coef_)) > 1e-6

    def drift(master):  # how far the clients moved from the global weights in round 1
        return np.mean(list(master.history_[0].extra["update_norms"].values()))

    assert drift(tight) < drift(fedprox) < drift(fedavg)
    assert drift(tight) < 0.5 * drift(fedavg)


def test_clipped_noisy_updates_replay_with_a_seed_and_are_clipped_before_the_noise(wine_clients):
    # Prepare
    options = dict(n_rounds=4, local_epochs=1, batch_size=64, learning_rate=0.05)
    clipped = FederatedAveragingMaster("regressor", clip_norm=0.05, random_state=5, **options)
    noisy = [
        FederatedAveragingMaster(
            "regressor", clip_norm=0.05, noise_multiplier=1.0, random_state=seed, **options
        )
        for seed in (5, 5, 6)
    ]
    # Execute
    for master in (clipped, *noisy):
        master.fit(wine_clients)
    # Assert: clipping alone bounds every update the master received, and did cut some
    received = [n for r in clipped.history_ for n in r.extra["update_norms"].values()]
    reported = [n for r in clipped.history_ for n in r.extra["unclipped_norms"].values()]
    assert max(received) <= 0.05 + 1e-12 and max(reported) > 0.05
    # Assert: the noise replays with its seed, changes with another, and is noise (norms grow)
    np.testing.assert_array_equal(noisy[0].coef_, noisy[1].coef_)
    assert not np.array_equal(noisy[0].coef_, noisy[2].coef_)
    assert not np.array_equal(noisy[0].coef_, clipped.coef_)
    noisy_norms = [n for r in noisy[0].history_ for n in r.extra["update_norms"].values()]
    assert max(noisy_norms) > 0.05


@pytest.mark.parametrize(
    ("argument", "value"),
    [
        ("n_rounds", 0),
        ("fraction_fit", 0.0),
        ("fraction_fit", 1.5),
        ("mu", -1.0),
        ("min_clients", 0),
        ("learning_rate", 0.0),
        ("local_epochs", 0),
        ("clip_norm", -1.0),
        ("noise_multiplier", -0.1),
        ("aggregator", "median"),
    ],
)
def test_invalid_arguments_are_refused_naming_them(argument, value):
    master = FederatedAveragingMaster("regressor", **{argument: value})
    with pytest.raises(ConfigurationError, match=argument):
        master.fit({"worker1": "http://127.0.0.1:9"})


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        ({"local_epochs": 2, "local_steps": 3}, "local_steps"),
        ({"noise_multiplier": 1.0}, "clip_norm"),
    ],
)
def test_arguments_that_exclude_each_other_are_refused_naming_them(arguments, named):
    master = FederatedAveragingMaster("regressor", **arguments)
    with pytest.raises(ConfigurationError, match=named):
        master.fit({"worker1": "http://127.0.0.1:9"})
