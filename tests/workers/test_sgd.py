"""SGDWorker's endpoints on a real worker process: the seed's JSON shapes, the binary
encoding, the true gradient of the shard, and 422 answers that name the field at fault."""

from __future__ import annotations

import json
import warnings

import httpx
import numpy as np
import pytest

from chimera_nb import ConfigurationError, LocalCluster, SGDWorker
from chimera_nb.algorithms import logistic_loss, softmax_loss, squared_loss
from chimera_nb.wire import FitStep, FitStepResult, paths
from tests.helpers import post_json

RNG = np.random.default_rng(0)
X = RNG.normal(size=(40, 3))
Y_REGRESSION = X @ [1.0, -2.0, 0.5] + 3.0
Y_CLASSES = np.array(["a", "b", "c", "d"] * 10)


@pytest.fixture(scope="module")
def workers():
    """A regression worker and a 4-class classification worker."""
    regression = SGDWorker("regressor").with_data(X, Y_REGRESSION)
    classification = SGDWorker("classifier").with_data(X, Y_CLASSES)
    with LocalCluster({"reg": regression, "cls": classification}) as cluster:
        yield cluster.endpoints


def test_fit_step_returns_the_true_gradient_at_the_weights_sent_in_seed_json(workers):
    # Prepare
    weights, bias = np.array([[0.1, 0.2, 0.3]]), np.array([0.5])
    expected = squared_loss(weights, bias, X, Y_REGRESSION)
    # Execute
    answer = httpx.post(
        workers["reg"] + paths.SGD_FIT_STEP, json={"weights": [0.1, 0.2, 0.3], "bias": [0.5]}
    ).json()
    # Assert
    np.testing.assert_allclose(answer["weights_gradients"], expected.weights_gradient.ravel())
    np.testing.assert_allclose(answer["bias_gradient"], expected.bias_gradient)
    assert answer["n_samples"] == 40
    assert answer["loss"] == pytest.approx(expected.loss)


def test_binary_fit_step_for_softmax_uses_the_masters_class_order(workers):
    # Prepare
    classes = ["d", "c", "b", "a"]
    weights, bias = RNG.normal(size=(4, 3)), RNG.normal(size=4)
    expected = softmax_loss(weights, bias, X, np.array([classes.index(c) for c in Y_CLASSES]))
    body, headers = FitStep(weights, bias, classes).encode("binary")
    # Execute
    response = httpx.post(workers["cls"] + paths.SGD_FIT_STEP, content=body, headers=headers)
    actual = FitStepResult.decode(response.content, response.headers)
    # Assert
    assert response.headers["content-type"] == "application/octet-stream"
    np.testing.assert_array_equal(actual.weights_gradient, expected.weights_gradient)
    assert actual.loss == pytest.approx(expected.loss)


def test_mini_batch_gradient_uses_batch_size_rows_reproducibly(workers):
    # Prepare
    body = {"weights": [0.0, 0.0, 0.0], "bias": [0.0], "batch_size": 8, "seed": 11}
    # Execute
    first = httpx.post(workers["reg"] + paths.SGD_FIT_STEP, json=body).json()
    second = httpx.post(workers["reg"] + paths.SGD_FIT_STEP, json=body).json()
    # Assert
    assert first["n_samples"] == 8
    assert first == second


def test_request_data_sample_answers_the_seed_shape(workers):
    answer = httpx.get(workers["cls"] + paths.SGD_REQUEST_DATA_SAMPLE).json()
    assert answer["X_train_sample_columns"] == ["x0", "x1", "x2"]
    assert len(answer["X_train_sample_rows"]) == 5
    assert answer["y_train_sample_columns"] == ["y"]
    assert answer["y_train_sample_rows"][:2] == [["a"], ["b"]]


def test_statistics_give_counts_sums_and_deviations(workers):
    answer = httpx.get(workers["reg"] + paths.SGD_STATISTICS).json()
    assert answer["n_samples"] == 40
    np.testing.assert_allclose(answer["feature_sum"], X.sum(axis=0))
    np.testing.assert_allclose(answer["feature_m2"], ((X - X.mean(axis=0)) ** 2).sum(axis=0))
    assert answer["target_sum"] == pytest.approx(Y_REGRESSION.sum())


@pytest.mark.parametrize(
    ("worker", "body", "headers", "named"),
    [
        ("reg", {"weights": [0.1, 0.2], "bias": [0.0]}, None, "weights"),
        ("reg", {"weights": [0.1, 0.2, float("nan")], "bias": [0.0]}, None, "weights[2]"),
        ("reg", {"weights": [0.1, 0.2, 0.3]}, None, "bias: Field required"),
        ("reg", {"weights": [0.1, 0.2, 0.3], "bias": []}, None, "bias"),
        (
            "cls",
            {"weights": [0.0] * 12, "bias": [0.0] * 4, "classes": ["a", "b", "c"]},
            None,
            "classes",
        ),
        ("reg", b"\x00" * 16, {"content-type": "application/octet-stream"}, "x-chimera-meta"),
        (
            "reg",
            b"\x00" * 16,
            {
                "content-type": "application/octet-stream",
                "x-chimera-meta": json.dumps({"lengths": [3, 1]}),
            },
            "body",
        ),
    ],
)
def test_bad_fit_steps_get_422_naming_the_field_and_the_worker_keeps_serving(
    workers, worker, body, headers, named
):
    # Execute
    if isinstance(body, bytes):
        answer = httpx.post(workers[worker] + paths.SGD_FIT_STEP, content=body, headers=headers)
    else:
        answer = post_json(workers[worker] + paths.SGD_FIT_STEP, body)
    # Assert
    assert answer.status_code == 422
    assert named in answer.json()["detail"]
    assert httpx.get(workers[worker] + paths.HEALTH).json()["status"] == "ok"


def test_logistic_loss_is_used_for_two_classes():
    # Prepare
    worker = SGDWorker("classifier").with_data(X, Y_CLASSES[:40] < "c")
    worker.load("solo", worker._data)
    weights, bias = np.ones((1, 3)), np.zeros(1)
    expected = logistic_loss(weights, bias, X, (Y_CLASSES < "c").astype(int))
    # Execute
    actual = worker.fit_step(FitStep(weights, bias, [False, True]))
    # Assert
    np.testing.assert_allclose(actual.weights_gradient, expected.weights_gradient)


def test_seed_sgd_options_are_accepted_with_a_warning_that_says_where_they_belong():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        SGDWorker("regressor", eta0=1e-7)
    assert "ParameterServerMaster(learning_rate" in str(caught[0].message)


def test_a_regressor_given_labels_as_its_target_is_refused_with_the_fix():
    # Execute / Assert: at with_data time, not at the worker's first request
    with pytest.raises(ConfigurationError) as caught:
        SGDWorker("regressor").with_data(X, Y_CLASSES)
    assert "y holds values that are not numbers: 'a', 'b', 'c', 'd'" in str(caught.value)
    assert "SGDWorker('classifier')" in str(caught.value)


def test_weights_too_large_for_float64_get_422_naming_them_instead_of_infinity(workers):
    # Prepare: the weights of a fit that diverged
    body = {"weights": [1e300, -1e300, 1e300], "bias": [0.0]}

    # Execute
    answer = httpx.post(workers["reg"] + paths.SGD_FIT_STEP, json=body)

    # Assert
    assert answer.status_code == 422
    assert answer.json()["detail"].startswith("weights: give a loss of inf")
    assert "lower the master's learning rate" in answer.json()["detail"]


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"weights": ["0.1", 0.2, 0.3], "bias": [0.0]}, "weights[0]: Input should be a valid"),
        ({"weights": [0.1, True, 0.3], "bias": [0.0]}, "weights[1]: Input should be a valid"),
        ({"weights": [0.1, 0.2, 0.3], "bias": [0.0], "seed": 2**32}, "seed: Input should be"),
        ({"weights": [0.1, 0.2, 0.3], "bias": [0.0], "batch_size": 2.5}, "batch_size"),
    ],
    ids=["string", "boolean", "seed beyond numpy's range", "fractional batch size"],
)
def test_numbers_are_strict_and_seeds_within_numpys_range(workers, body, named):
    # Execute
    answer = httpx.post(workers["reg"] + paths.SGD_FIT_STEP, json=body)

    # Assert
    assert answer.status_code == 422
    assert named in answer.json()["detail"]


def test_integers_are_numbers(workers):
    # Execute
    answer = httpx.post(
        workers["reg"] + paths.SGD_FIT_STEP, json={"weights": [0, 1, 0], "bias": [0]}
    )

    # Assert
    assert answer.status_code == 200


def test_the_seeds_older_paths_reach_the_same_endpoints_but_stay_out_of_the_schema(workers):
    # Prepare
    body = {"weights": [0.1, 0.2, 0.3], "bias": [0.5]}

    # Execute
    today = httpx.post(workers["reg"] + paths.SGD_FIT_STEP, json=body).json()
    older = httpx.post(workers["reg"] + "/v1/chimera-sgd/fit-step", json=body).json()
    sample = httpx.get(workers["reg"] + "/v1/chimera-sgd/request-data-sample")
    schema = httpx.get(workers["reg"] + "/openapi.json").json()

    # Assert
    assert older == today
    assert sample.status_code == 200
    assert not [path for path in schema["paths"] if "chimera-sgd" in path]
