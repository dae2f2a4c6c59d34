"""Tests for chimera_nb.algorithms.linear: which loss each model uses, and its probabilities
against scipy's sigmoid and softmax."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit, softmax

from chimera_nb.algorithms.linear import decision_function, loss_for, n_outputs, predict_proba
from chimera_nb.algorithms.losses import logistic_loss, softmax_loss, squared_loss


@pytest.mark.parametrize(
    ("model_type", "n_classes", "expected_loss", "expected_n_outputs"),
    [
        ("regressor", 0, squared_loss, 1),
        ("classifier", 2, logistic_loss, 1),
        ("classifier", 3, softmax_loss, 3),
        ("classifier", 7, softmax_loss, 7),
    ],
    ids=["regressor", "binary", "3 classes", "7 classes"],
)
def test_model_type_and_class_count_choose_the_loss_and_the_weight_rows(
    model_type, n_classes, expected_loss, expected_n_outputs
) -> None:
    # Execute
    actual_loss = loss_for(model_type, n_classes)
    actual_n_outputs = n_outputs(model_type, n_classes)

    # Assert
    assert actual_loss is expected_loss
    assert actual_n_outputs == expected_n_outputs


def test_decision_function_scores_each_row_for_each_output() -> None:
    # Prepare
    weights = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    bias = np.array([0.5, -1.0, 0.0])
    X = np.array([[1.0, 2.0], [3.0, -1.0]])
    expected = np.array([[1.5, 3.0, 3.0], [3.5, -3.0, 2.0]])

    # Execute
    actual = decision_function(weights, bias, X)

    # Assert
    np.testing.assert_allclose(actual, expected, rtol=1e-15)


def test_binary_model_has_two_probability_columns_the_second_the_sigmoid() -> None:
    # Prepare
    rng = np.random.default_rng(0)
    X, weights, bias = rng.normal(size=(20, 3)), rng.normal(size=(1, 3)), rng.normal(size=1)
    positive = expit(X @ weights[0] + bias[0])
    expected = np.column_stack([1 - positive, positive])

    # Execute
    actual = predict_proba(weights, bias, X)

    # Assert
    assert actual.shape == (20, 2)
    np.testing.assert_allclose(actual, expected, rtol=1e-12)
    np.testing.assert_allclose(actual.sum(axis=1), 1.0, rtol=1e-15)


def test_multiclass_probabilities_are_the_softmax_of_the_scores() -> None:
    # Prepare
    rng = np.random.default_rng(1)
    X, weights, bias = rng.normal(size=(20, 3)), rng.normal(size=(4, 3)), rng.normal(size=4)
    expected = softmax(X @ weights.T + bias, axis=1)

    # Execute
    actual = predict_proba(weights, bias, X)

    # Assert
    assert actual.shape == (20, 4)
    np.testing.assert_allclose(actual, expected, rtol=1e-12)
    np.testing.assert_allclose(actual.sum(axis=1), 1.0, rtol=1e-15)


@pytest.mark.parametrize("n_weight_rows", [1, 3])
def test_probabilities_stay_finite_for_huge_scores(n_weight_rows: int) -> None:
    # Prepare
    weights = np.full((n_weight_rows, 1), 1e4) * np.arange(1, n_weight_rows + 1).reshape(-1, 1)
    bias = np.zeros(n_weight_rows)
    X = np.array([[1.0], [-1.0]])

    # Execute
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        actual = predict_proba(weights, bias, X)

    # Assert
    assert np.all(np.isfinite(actual))
    np.testing.assert_allclose(actual.sum(axis=1), 1.0, rtol=1e-15)
    assert actual[0, -1] == 1.0 and actual[1, 0] == 1.0  # the largest score takes everything
