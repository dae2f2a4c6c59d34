"""Tests for chimera_nb.algorithms.gradient_descent, the central twin of the parameter server,
against scikit-learn's closed-form and quasi-Newton solvers."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.preprocessing import StandardScaler

from chimera_nb.algorithms.gradient_descent import gradient_descent, update_step
from chimera_nb.algorithms.losses import logistic_loss, softmax_loss, squared_loss
from chimera_nb.algorithms.schedules import InverseScaling


@pytest.fixture(scope="module")
def diabetes() -> tuple[np.ndarray, np.ndarray]:
    """Diabetes with standardized features and target. The largest eigenvalue of X^T X / n is
    4.02, so any learning rate below 2 / 4.02 converges; 0.25 is close to 1 / 4.02."""
    X, y = load_diabetes(return_X_y=True)
    return StandardScaler().fit_transform(X), (y - y.mean()) / y.std()


def standardized(loader) -> tuple[np.ndarray, np.ndarray]:
    X, y = loader(return_X_y=True)
    return StandardScaler().fit_transform(X), y


# --- against scikit-learn -------------------------------------------------------------------------


def test_long_run_matches_scikit_learn_linear_regression(diabetes) -> None:
    # Prepare
    X, y = diabetes
    expected = LinearRegression().fit(X, y)

    # Execute
    actual = gradient_descent(X, y, squared_loss, schedule=0.25, max_iter=10_000)

    # Assert
    np.testing.assert_allclose(actual.weights[0], expected.coef_, atol=1e-6)
    assert actual.bias[0] == pytest.approx(expected.intercept_, abs=1e-6)


def test_l2_penalty_matches_scikit_learn_ridge(diabetes) -> None:
    # Prepare: Ridge minimizes ||y - Xw||^2 + a ||w||^2, a *sum*; ours is a *mean* divided by 2
    # plus alpha/2 ||w||^2, the same minimizer when a = n * alpha.
    X, y = diabetes
    alpha = 0.1
    expected = Ridge(alpha=alpha * len(X)).fit(X, y)

    # Execute
    actual = gradient_descent(X, y, squared_loss, schedule=0.2, max_iter=3_000, alpha=alpha)

    # Assert
    np.testing.assert_allclose(actual.weights[0], expected.coef_, atol=1e-9)
    assert actual.bias[0] == pytest.approx(expected.intercept_, abs=1e-9)


@pytest.mark.parametrize(
    ("loader", "loss", "n_outputs"),
    [(load_breast_cancer, logistic_loss, 1), (load_iris, softmax_loss, 3)],
    ids=["binary", "multinomial"],
)
def test_penalized_classifier_matches_scikit_learn_logistic_regression(
    loader, loss, n_outputs
) -> None:
    # Prepare: LogisticRegression minimizes C * sum(log-loss) + ||w||^2 / 2, the same minimizer
    # as our mean log-loss + alpha/2 ||w||^2 when alpha = 1 / (C n).
    X, y = standardized(loader)
    expected = LogisticRegression(C=1.0, tol=1e-12, max_iter=10_000).fit(X, y)

    # Execute
    actual = gradient_descent(
        X, y, loss, n_outputs, schedule=1.0, max_iter=20_000, alpha=1.0 / len(X)
    )

    # Assert
    np.testing.assert_allclose(actual.weights, expected.coef_, atol=1e-5)
    np.testing.assert_allclose(actual.bias, expected.intercept_, atol=1e-5)


# --- stopping and the loss record -----------------------------------------------------------------


def test_tol_stops_early_and_the_last_loss_is_that_of_the_returned_weights(diabetes) -> None:
    # Prepare
    X, y = diabetes

    # Execute
    actual = gradient_descent(X, y, squared_loss, schedule=0.25, max_iter=100_000, tol=1e-6)

    # Assert
    assert actual.converged
    assert 0 < actual.n_iter < 100_000
    assert len(actual.losses) == actual.n_iter + 1  # one loss per update, plus the final check
    assert actual.losses[-1] == pytest.approx(squared_loss(actual.weights, actual.bias, X, y).loss)


def test_without_convergence_it_makes_max_iter_updates_and_records_max_iter_plus_one_losses(
    diabetes,
) -> None:
    # Prepare
    X, y = diabetes

    # Execute
    actual = gradient_descent(X, y, squared_loss, schedule=0.25, max_iter=50, tol=1e-12)

    # Assert
    assert not actual.converged
    assert actual.n_iter == 50
    assert len(actual.losses) == 51


def test_losses_decrease_at_every_round_with_a_stable_learning_rate(diabetes) -> None:
    # Prepare
    X, y = diabetes

    # Execute
    actual = gradient_descent(X, y, squared_loss, schedule=0.25, max_iter=200)

    # Assert
    assert np.all(np.diff(actual.losses) < 0)
    assert actual.losses[0] == pytest.approx(0.5)  # zero weights on a standardized target


def test_first_loss_is_at_zero_weights_and_the_shapes_follow_n_outputs() -> None:
    # Prepare
    X, y = standardized(load_iris)
    expected_first_loss = np.log(3)  # uniform probabilities over three classes

    # Execute
    actual = gradient_descent(X, y, softmax_loss, 3, schedule=0.5, max_iter=5)

    # Assert
    assert actual.weights.shape == (3, 4)
    assert actual.bias.shape == (3,)
    assert actual.losses[0] == pytest.approx(expected_first_loss, rel=1e-12)


def test_a_schedule_object_sets_each_rounds_step(diabetes) -> None:
    # Prepare: two rounds by hand with steps 0.2 / 1 and 0.2 / 2 ** 0.5.
    X, y = diabetes
    weights, bias = np.zeros((1, X.shape[1])), np.zeros(1)
    for step in (0.2, 0.2 / 2**0.5):
        gradient = squared_loss(weights, bias, X, y)
        weights, bias, _ = update_step(
            weights, bias, gradient.weights_gradient, gradient.bias_gradient, step
        )

    # Execute
    actual = gradient_descent(X, y, squared_loss, schedule=InverseScaling(0.2, 0.5), max_iter=2)

    # Assert
    np.testing.assert_allclose(actual.weights, weights, rtol=1e-14)
    np.testing.assert_allclose(actual.bias, bias, atol=1e-15)


# --- update_step ----------------------------------------------------------------------------------


def test_update_step_moves_against_the_gradient_and_reports_the_step_length() -> None:
    # Prepare
    weights, bias = np.array([[1.0, 2.0]]), np.array([0.5])
    weights_gradient, bias_gradient = np.array([[3.0, 0.0]]), np.array([4.0])

    # Execute
    actual_weights, actual_bias, actual_norm = update_step(
        weights, bias, weights_gradient, bias_gradient, learning_rate=0.5
    )

    # Assert
    np.testing.assert_allclose(actual_weights, [[-0.5, 2.0]])
    np.testing.assert_allclose(actual_bias, [-1.5])
    assert actual_norm == pytest.approx(2.5)  # sqrt(1.5**2 + 2**2)
