"""Tests for chimera_nb.algorithms.losses: each loss against scikit-learn's metrics, each
gradient against central finite differences of its own loss."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import log_loss, mean_squared_error

from chimera_nb.algorithms.losses import l2_penalty, logistic_loss, softmax_loss, squared_loss

N_SAMPLES, N_FEATURES, N_CLASSES = 40, 5, 4


def sigmoid(scores: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-scores))


def softmax(scores: np.ndarray) -> np.ndarray:
    exponentials = np.exp(scores - scores.max(axis=1, keepdims=True))
    return exponentials / exponentials.sum(axis=1, keepdims=True)


def random_problem(kind: str, seed: int = 0):
    """Random ``(weights, bias, X, y)`` for ``kind`` in ``"squared"``, ``"logistic"``,
    ``"softmax"``, with the weight shapes of the loss: ``(n_outputs, n_features)``."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N_SAMPLES, N_FEATURES))
    n_outputs = N_CLASSES if kind == "softmax" else 1
    weights = rng.normal(size=(n_outputs, N_FEATURES))
    bias = rng.normal(size=n_outputs)
    if kind == "squared":
        y = rng.normal(size=N_SAMPLES) * 3.0 + 1.0
    elif kind == "logistic":
        y = rng.integers(0, 2, size=N_SAMPLES)
    else:
        y = rng.integers(0, N_CLASSES, size=N_SAMPLES)
    return weights, bias, X, y


LOSSES = {"squared": squared_loss, "logistic": logistic_loss, "softmax": softmax_loss}


def central_differences(function, point: np.ndarray, step: float = 1e-6) -> np.ndarray:
    """``d function / d point`` entry by entry: ``(f(p + h e_i) - f(p - h e_i)) / 2h``."""
    gradient = np.zeros_like(point)
    for index in np.ndindex(point.shape):
        shifted = point.copy()
        shifted[index] += step
        above = function(shifted)
        shifted[index] -= 2 * step
        below = function(shifted)
        gradient[index] = (above - below) / (2 * step)
    return gradient


# --- gradients against finite differences -------------------------------------------------------


@pytest.mark.parametrize("kind", ["squared", "logistic", "softmax"])
def test_weights_gradient_agrees_with_central_finite_differences(kind: str) -> None:
    # Prepare
    loss = LOSSES[kind]
    weights, bias, X, y = random_problem(kind)

    # Execute
    expected = central_differences(lambda w: loss(w, bias, X, y).loss, weights)
    actual = loss(weights, bias, X, y).weights_gradient

    # Assert
    assert actual.shape == weights.shape
    np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("kind", ["squared", "logistic", "softmax"])
def test_bias_gradient_agrees_with_central_finite_differences(kind: str) -> None:
    # Prepare
    loss = LOSSES[kind]
    weights, bias, X, y = random_problem(kind)

    # Execute
    expected = central_differences(lambda b: loss(weights, b, X, y).loss, bias)
    actual = loss(weights, bias, X, y).bias_gradient

    # Assert
    assert actual.shape == bias.shape
    np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-9)


# --- loss values against scikit-learn -----------------------------------------------------------


def test_squared_loss_is_half_the_mean_squared_error_of_scikit_learn() -> None:
    # Prepare
    weights, bias, X, y = random_problem("squared")
    predictions = X @ weights[0] + bias[0]

    # Execute
    expected = mean_squared_error(y, predictions) / 2
    actual = squared_loss(weights, bias, X, y).loss

    # Assert
    assert actual == pytest.approx(expected, rel=1e-12)


def test_logistic_loss_equals_scikit_learn_binary_log_loss() -> None:
    # Prepare
    weights, bias, X, y = random_problem("logistic")
    probability_of_class_1 = sigmoid(X @ weights[0] + bias[0])

    # Execute
    expected = log_loss(y, probability_of_class_1, labels=[0, 1])
    actual = logistic_loss(weights, bias, X, y).loss

    # Assert
    assert actual == pytest.approx(expected, rel=1e-12)


def test_softmax_loss_equals_scikit_learn_multiclass_log_loss() -> None:
    # Prepare
    weights, bias, X, y = random_problem("softmax")
    probabilities = softmax(X @ weights.T + bias)

    # Execute
    expected = log_loss(y, probabilities, labels=list(range(N_CLASSES)))
    actual = softmax_loss(weights, bias, X, y).loss

    # Assert
    assert actual == pytest.approx(expected, rel=1e-12)


# --- numerical stability ------------------------------------------------------------------------


def test_logistic_loss_stays_finite_and_exact_for_huge_scores() -> None:
    # Prepare: scores of +1e4 and -1e4, where exp(1e4) overflows float64.
    weights, bias = np.array([[1e4]]), np.array([0.0])
    X = np.array([[1.0], [-1.0]])
    y = np.array([0, 0])
    # log(1 + e^z) - y z is 1e4 for the first row and ~0 for the second; p - y is [1, 0].
    expected_loss, expected_weights_gradient, expected_bias_gradient = 5e3, [[0.5]], [0.5]

    # Execute: any overflow or invalid operation raises instead of warning.
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        actual = logistic_loss(weights, bias, X, y)

    # Assert
    assert actual.loss == pytest.approx(expected_loss, rel=1e-12)
    np.testing.assert_allclose(actual.weights_gradient, expected_weights_gradient, rtol=1e-12)
    np.testing.assert_allclose(actual.bias_gradient, expected_bias_gradient, rtol=1e-12)


def test_softmax_loss_stays_finite_for_huge_scores() -> None:
    # Prepare: the true class scores 1e4 below the others, so its probability is e^-1e4.
    weights = np.array([[1e4], [0.0], [0.0]])
    bias = np.zeros(3)
    X = np.array([[1.0]])
    y = np.array([1])
    expected = 1e4 + np.log(1 + 2 * np.exp(-1e4))  # -log softmax = 1e4 + log(1 + 2e^-1e4)

    # Execute
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        actual = softmax_loss(weights, bias, X, y)

    # Assert
    assert actual.loss == pytest.approx(expected, rel=1e-12)
    assert np.all(np.isfinite(actual.weights_gradient))
    assert np.all(np.isfinite(actual.bias_gradient))


# --- l2 penalty ---------------------------------------------------------------------------------


def test_l2_penalty_is_half_alpha_times_squared_norm_with_gradient_alpha_weights() -> None:
    # Prepare
    weights = np.array([[1.0, -2.0], [3.0, 0.5]])
    alpha = 0.2
    expected_value = 0.5 * 0.2 * (1 + 4 + 9 + 0.25)
    expected_gradient = 0.2 * weights

    # Execute
    actual_value, actual_gradient = l2_penalty(weights, alpha)

    # Assert
    assert actual_value == pytest.approx(expected_value, rel=1e-12)
    np.testing.assert_allclose(actual_gradient, expected_gradient, rtol=1e-12)


def test_l2_penalty_gradient_agrees_with_central_finite_differences() -> None:
    # Prepare
    weights = np.random.default_rng(1).normal(size=(3, 4))

    # Execute
    expected = central_differences(lambda w: l2_penalty(w, 0.7)[0], weights)
    actual = l2_penalty(weights, 0.7)[1]

    # Assert
    np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-9)


# --- why data parallelism is exact --------------------------------------------------------------


@pytest.mark.parametrize("kind", ["squared", "logistic", "softmax"])
def test_union_gradient_is_the_shard_size_weighted_mean_of_shard_gradients(kind: str) -> None:
    # Prepare: three unequal shards (3, 12 and 25 rows) of the same 40 rows.
    loss = LOSSES[kind]
    weights, bias, X, y = random_problem(kind)
    shards = [slice(0, 3), slice(3, 15), slice(15, 40)]
    sizes = [3, 12, 25]
    per_shard = [loss(weights, bias, X[rows], y[rows]) for rows in shards]

    # Execute
    expected = loss(weights, bias, X, y)
    actual_weights_gradient = np.average(
        [part.weights_gradient for part in per_shard], axis=0, weights=sizes
    )
    actual_bias_gradient = np.average(
        [part.bias_gradient for part in per_shard], axis=0, weights=sizes
    )
    actual_loss = np.average([part.loss for part in per_shard], weights=sizes)
    unweighted = np.mean([part.weights_gradient for part in per_shard], axis=0)

    # Assert
    np.testing.assert_allclose(actual_weights_gradient, expected.weights_gradient, rtol=1e-12)
    np.testing.assert_allclose(actual_bias_gradient, expected.bias_gradient, rtol=1e-12)
    assert actual_loss == pytest.approx(expected.loss, rel=1e-12)
    # The shards are unequal enough that an unweighted mean (the seed's) is wrong.
    assert not np.allclose(unweighted, expected.weights_gradient, rtol=1e-3)
