"""FederatedClient's fed/fit on a real worker process: local training in the master's
standardized units checked against the same steps in one process, seeded mini-batches, and
422 answers that name the field at fault."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from chimera_nb import FederatedClient, LocalCluster
from chimera_nb.algorithms import squared_loss
from chimera_nb.wire import FitStep, FitStepResult, paths
from chimera_nb.wire.federated_models import FederatedFit, FederatedFitOptions, FederatedFitResult

RNG = np.random.default_rng(0)
X = RNG.normal(loc=5.0, scale=2.0, size=(40, 3))
Y = X @ [1.0, -2.0, 0.5] + 3.0
MEAN, SCALE = X.mean(axis=0), X.std(axis=0)
TARGET_MEAN, TARGET_SCALE = float(Y.mean()), float(Y.std())
X_STD, Y_STD = (X - MEAN) / SCALE, (Y - TARGET_MEAN) / TARGET_SCALE
WEIGHTS, BIAS = np.array([[0.1, 0.2, 0.3]]), np.array([0.05])


@pytest.fixture(scope="module")
def client_url():
    with LocalCluster({"client": FederatedClient("regressor").with_data(X, Y)}) as cluster:
        yield cluster.endpoints["client"]


def fed_fit(url: str, **options) -> httpx.Response:
    options = {"target_mean": TARGET_MEAN, "target_scale": TARGET_SCALE, **options}
    request = FederatedFit(WEIGHTS, BIAS, MEAN, SCALE, FederatedFitOptions(**options))
    body, headers = request.encode()
    return httpx.post(url + paths.FED_FIT, content=body, headers=headers)


def answer(response: httpx.Response) -> FederatedFitResult:
    assert response.status_code == 200, response.text
    return FederatedFitResult.decode(response.content, response.headers)


def test_two_full_batch_fedprox_steps_are_the_local_gradient_steps_in_standardized_units(
    client_url,
):
    # Prepare: the same two steps in this process, with the proximal term
    weights, bias, mu, rate = WEIGHTS.copy(), BIAS.copy(), 0.3, 0.1
    first_loss = squared_loss(WEIGHTS, BIAS, X_STD, Y_STD).loss
    for _ in range(2):
        _, weights_gradient, bias_gradient = squared_loss(weights, bias, X_STD, Y_STD)
        weights = weights - rate * (weights_gradient + mu * (weights - WEIGHTS))
        bias = bias - rate * (bias_gradient + mu * (bias - BIAS))
    # Execute
    result = answer(fed_fit(client_url, learning_rate=rate, local_steps=2, mu=mu))
    # Assert
    np.testing.assert_allclose(result.weights, weights, rtol=1e-12)
    np.testing.assert_allclose(result.bias, bias, rtol=1e-12, atol=1e-15)
    assert result.n_samples == 40 and result.n_steps == 2
    assert result.loss == pytest.approx(first_loss, rel=1e-12)
    moved = np.append(weights - WEIGHTS, bias - BIAS)
    assert result.update_norm == pytest.approx(np.linalg.norm(moved), rel=1e-12)


def test_mini_batch_epochs_take_ceil_n_over_b_steps_each_and_replay_with_their_seed(client_url):
    # Execute
    first = answer(fed_fit(client_url, learning_rate=0.05, local_epochs=3, batch_size=16, seed=1))
    again = answer(fed_fit(client_url, learning_rate=0.05, local_epochs=3, batch_size=16, seed=1))
    other = answer(fed_fit(client_url, learning_rate=0.05, local_epochs=3, batch_size=16, seed=2))
    # Assert
    assert first.n_steps == 3 * 3  # 40 rows in batches of 16: 16, 16, 8
    np.testing.assert_array_equal(first.weights, again.weights)
    assert not np.array_equal(first.weights, other.weights)


def test_clipping_bounds_the_update_and_the_noise_is_seeded(client_url):
    # Execute
    clipped = answer(fed_fit(client_url, learning_rate=0.1, local_steps=5, clip_norm=0.01))
    noisy = [
        answer(
            fed_fit(
                client_url,
                learning_rate=0.1,
                local_steps=5,
                clip_norm=0.01,
                noise_multiplier=2.0,
                seed=seed,
            )
        )
        for seed in (4, 4, 5)
    ]
    # Assert
    sent = np.append(clipped.weights - WEIGHTS, clipped.bias - BIAS)
    assert np.linalg.norm(sent) == pytest.approx(0.01, rel=1e-9)
    assert clipped.update_norm > 0.01
    np.testing.assert_array_equal(noisy[0].weights, noisy[1].weights)
    assert not np.array_equal(noisy[0].weights, noisy[2].weights)


def test_the_sgd_workers_fit_step_still_answers_on_a_federated_client(client_url):
    # Execute
    body, headers = FitStep(WEIGHTS, BIAS).encode("binary")
    response = httpx.post(client_url + paths.SGD_FIT_STEP, content=body, headers=headers)
    # Assert
    result = FitStepResult.decode(response.content, response.headers)
    expected = squared_loss(WEIGHTS, BIAS, X, Y)
    np.testing.assert_allclose(result.weights_gradient, expected.weights_gradient)


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"local_steps": 5, "learning_rate": 1e300}, "learning_rate"),
        ({"local_steps": 1, "learning_rate": 0.1, "local_epochs": 1}, "local_steps"),
        ({"local_steps": 1, "learning_rate": -1.0}, "learning_rate"),
        ({"local_steps": 1, "learning_rate": 0.1, "noise_multiplier": 1.0}, "clip_norm"),
        ({"local_steps": 10**7, "learning_rate": 0.1}, "local_steps"),
        ({"local_epochs": 10**6, "batch_size": 1, "learning_rate": 0.1}, "local_epochs"),
    ],
)
def test_unusable_options_get_a_422_naming_the_field(client_url, options, named):
    # Prepare: a body a master would not build, written by hand
    meta = {"target_mean": TARGET_MEAN, "target_scale": TARGET_SCALE, **options}
    request = FederatedFit(WEIGHTS, BIAS, MEAN, SCALE, FederatedFitOptions.model_construct(**meta))
    body, headers = request.encode()
    # Execute
    response = httpx.post(client_url + paths.FED_FIT, content=body, headers=headers)
    # Assert
    assert response.status_code == 422 and named in response.json()["detail"]


def test_a_json_body_or_weights_of_the_wrong_shape_get_a_422_naming_the_field(client_url):
    # Execute
    as_json = httpx.post(client_url + paths.FED_FIT, json={"weights": [0.0]})
    wrong = FederatedFit(
        np.zeros((1, 2)), BIAS, MEAN[:2], SCALE[:2], FederatedFitOptions(learning_rate=0.1)
    )
    body, headers = wrong.encode()
    wrong_shape = httpx.post(client_url + paths.FED_FIT, content=body, headers=headers)
    # Assert
    assert as_json.status_code == 422 and "content-type" in as_json.json()["detail"]
    assert wrong_shape.status_code == 422 and "weights" in wrong_shape.json()["detail"]
