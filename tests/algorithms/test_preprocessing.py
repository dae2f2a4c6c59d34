"""Tests for chimera_nb.algorithms.preprocessing: merged shard statistics against numpy on the
whole data, and the standardized <-> raw conversions against the same loss computed directly in
standardized coordinates."""

from __future__ import annotations

import numpy as np
import pytest

from chimera_nb.algorithms.losses import logistic_loss, softmax_loss, squared_loss
from chimera_nb.algorithms.preprocessing import ColumnStatistics, Standardizer


def raw_features(seed: int = 0, n_samples: int = 60) -> np.ndarray:
    """Columns on very different scales, as wine-quality's: means 0, 50, -3, 1; stds 1, 40,
    0.01, 5."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n_samples, 4)) * [1.0, 40.0, 0.01, 5.0] + [0.0, 50.0, -3.0, 1.0]


def unequal_shards(values: np.ndarray) -> list[np.ndarray]:
    return [values[:5], values[5:22], values[22:]]


# --- ColumnStatistics -----------------------------------------------------------------------------


def test_combine_of_unequal_shards_equals_statistics_of_the_whole() -> None:
    # Prepare
    X = raw_features()
    parts = [ColumnStatistics.of(shard) for shard in unequal_shards(X)]

    # Execute
    actual = ColumnStatistics.combine(parts)

    # Assert
    assert actual.count == len(X)
    np.testing.assert_allclose(actual.mean, X.mean(axis=0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(actual.std, X.std(axis=0), rtol=1e-12, atol=1e-12)


def test_statistics_of_the_whole_match_numpy_mean_and_population_std() -> None:
    # Prepare
    X = raw_features()

    # Execute
    actual = ColumnStatistics.of(X)

    # Assert
    np.testing.assert_allclose(actual.mean, X.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(actual.std, X.std(axis=0, ddof=0), rtol=1e-12)


def test_combine_stays_accurate_for_a_column_with_a_huge_offset() -> None:
    # Prepare: values 1e9 + N(0, 1). The textbook sum(x**2)/n - mean**2 subtracts two numbers
    # near 1e18 whose difference is ~1 and returns noise (even a negative variance).
    noise = np.random.default_rng(2).normal(size=(1000, 1))
    X = 1e9 + noise
    parts = [ColumnStatistics.of(shard) for shard in [X[:100], X[100:350], X[350:]]]
    expected_mean = 1e9 + noise.mean(axis=0)
    expected_std = noise.std(axis=0)  # shifting by exactly 1e9 leaves the std unchanged

    # Execute
    actual = ColumnStatistics.combine(parts)

    # Assert: the mean is right to the last bit that float64 holds at 1e9 (one ulp is 1.2e-7),
    # and that last bit is all the std loses (relative error ~1e-9).
    np.testing.assert_allclose(actual.mean, expected_mean, rtol=1e-15)
    np.testing.assert_allclose(actual.std, expected_std, rtol=1e-8)


def test_one_dimensional_values_are_one_column() -> None:
    # Prepare
    y = np.array([1.0, 2.0, 4.0, 9.0])

    # Execute
    actual = ColumnStatistics.of(y)

    # Assert
    assert actual.count == 4
    np.testing.assert_allclose(actual.sum, [16.0])
    np.testing.assert_allclose(actual.mean, [4.0])
    np.testing.assert_allclose(actual.m2, [9.0 + 4.0 + 0.0 + 25.0])


def test_combine_ignores_shards_without_rows() -> None:
    # Prepare: a worker with no rows sends count 0 and zero sums.
    X = raw_features()
    empty = ColumnStatistics(0, np.zeros(4), np.zeros(4))
    parts = [empty, ColumnStatistics.of(X[:30]), empty, ColumnStatistics.of(X[30:])]

    # Execute
    actual = ColumnStatistics.combine(parts)

    # Assert
    assert actual.count == len(X)
    np.testing.assert_allclose(actual.mean, X.mean(axis=0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(actual.std, X.std(axis=0), rtol=1e-12)


def test_statistics_of_an_empty_shard_have_count_zero() -> None:
    # Prepare
    empty = np.empty((0, 3))

    # Execute
    actual = ColumnStatistics.of(empty)

    # Assert
    assert actual.count == 0
    np.testing.assert_array_equal(actual.sum, np.zeros(3))
    np.testing.assert_array_equal(actual.m2, np.zeros(3))


# --- Standardizer ---------------------------------------------------------------------------------


def test_constant_column_gets_scale_one_and_standardizes_to_zero() -> None:
    # Prepare
    X = raw_features()
    X[:, 2] = 7.0
    statistics = ColumnStatistics.of(X)

    # Execute
    standardizer = Standardizer.from_statistics(statistics)
    actual = standardizer.transform(X)

    # Assert
    assert standardizer.feature_scale[2] == 1.0
    np.testing.assert_allclose(standardizer.feature_scale[[0, 1, 3]], X[:, [0, 1, 3]].std(axis=0))
    np.testing.assert_array_equal(actual[:, 2], np.zeros(len(X)))


def test_transform_gives_mean_zero_and_std_one_and_leaves_a_classifier_target_alone() -> None:
    # Prepare
    X = raw_features()

    # Execute
    standardizer = Standardizer.from_statistics(ColumnStatistics.of(X))
    actual = standardizer.transform(X)

    # Assert
    np.testing.assert_allclose(actual.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(actual.std(axis=0), 1.0, rtol=1e-12)
    assert (standardizer.target_mean, standardizer.target_scale) == (0.0, 1.0)


def test_target_statistics_set_target_mean_and_scale() -> None:
    # Prepare
    X = raw_features()
    y = np.random.default_rng(3).normal(size=len(X)) * 20.0 + 150.0

    # Execute
    standardizer = Standardizer.from_statistics(ColumnStatistics.of(X), ColumnStatistics.of(y))
    actual = standardizer.transform_target(y)

    # Assert
    assert standardizer.target_mean == pytest.approx(y.mean(), rel=1e-12)
    assert standardizer.target_scale == pytest.approx(y.std(), rel=1e-12)
    assert actual.mean() == pytest.approx(0.0, abs=1e-12)
    assert actual.std() == pytest.approx(1.0, rel=1e-12)


def regression_setup(seed: int = 0):
    """Raw data, its standardizer (with target scaling) and a random standardized model."""
    rng = np.random.default_rng(seed)
    X = raw_features(seed)
    y = X @ rng.normal(size=4) + 150.0 + rng.normal(size=len(X)) * 20.0
    standardizer = Standardizer.from_statistics(ColumnStatistics.of(X), ColumnStatistics.of(y))
    weights, bias = rng.normal(size=(1, 4)), rng.normal(size=1)
    return X, y, standardizer, weights, bias


def classification_setup(n_classes: int, seed: int = 0):
    """Raw data, its standardizer (no target) and a random standardized model."""
    rng = np.random.default_rng(seed)
    X = raw_features(seed)
    y = rng.integers(0, n_classes, size=len(X))
    n_outputs = 1 if n_classes == 2 else n_classes
    standardizer = Standardizer.from_statistics(ColumnStatistics.of(X))
    weights, bias = rng.normal(size=(n_outputs, 4)), rng.normal(size=n_outputs)
    return X, y, standardizer, weights, bias


def test_raw_weights_of_a_regressor_predict_what_the_standardized_model_predicts() -> None:
    # Prepare
    X, _, standardizer, weights, bias = regression_setup()
    standardized_scores = standardizer.transform(X) @ weights.T + bias
    expected = standardizer.target_scale * standardized_scores + standardizer.target_mean

    # Execute
    raw_weights, raw_bias = standardizer.weights_to_raw(weights, bias)
    actual = X @ raw_weights.T + raw_bias

    # Assert
    np.testing.assert_allclose(actual, expected, rtol=1e-10)


def test_raw_weights_of_a_softmax_classifier_give_the_standardized_scores() -> None:
    # Prepare
    X, _, standardizer, weights, bias = classification_setup(n_classes=3)
    expected = standardizer.transform(X) @ weights.T + bias

    # Execute
    raw_weights, raw_bias = standardizer.weights_to_raw(weights, bias)
    actual = X @ raw_weights.T + raw_bias

    # Assert
    assert raw_weights.shape == (3, 4)
    np.testing.assert_allclose(actual, expected, rtol=1e-10, atol=1e-10)


def test_gradient_from_raw_equals_the_standardized_squared_loss_gradient() -> None:
    # Prepare: what a worker computes on raw data at the raw weights it is sent.
    X, y, standardizer, weights, bias = regression_setup()
    raw = squared_loss(*standardizer.weights_to_raw(weights, bias), X, y)

    # Execute
    X_std, y_std = standardizer.transform(X), standardizer.transform_target(y)
    expected = squared_loss(weights, bias, X_std, y_std)
    actual_weights_gradient, actual_bias_gradient = standardizer.gradient_from_raw(
        raw.weights_gradient, raw.bias_gradient
    )
    actual_loss = standardizer.loss_from_raw(raw.loss)

    # Assert
    np.testing.assert_allclose(actual_weights_gradient, expected.weights_gradient, rtol=1e-9)
    np.testing.assert_allclose(actual_bias_gradient, expected.bias_gradient, rtol=1e-9, atol=1e-12)
    assert actual_loss == pytest.approx(expected.loss, rel=1e-10)


@pytest.mark.parametrize(
    ("loss", "n_classes"), [(logistic_loss, 2), (softmax_loss, 3)], ids=["logistic", "softmax"]
)
def test_gradient_from_raw_equals_the_standardized_classification_gradient(loss, n_classes) -> None:
    # Prepare
    X, y, standardizer, weights, bias = classification_setup(n_classes)
    raw = loss(*standardizer.weights_to_raw(weights, bias), X, y)

    # Execute
    expected = loss(weights, bias, standardizer.transform(X), y)
    actual_weights_gradient, actual_bias_gradient = standardizer.gradient_from_raw(
        raw.weights_gradient, raw.bias_gradient
    )
    actual_loss = standardizer.loss_from_raw(raw.loss)

    # Assert
    np.testing.assert_allclose(actual_weights_gradient, expected.weights_gradient, rtol=1e-9)
    np.testing.assert_allclose(actual_bias_gradient, expected.bias_gradient, rtol=1e-9, atol=1e-12)
    assert actual_loss == pytest.approx(expected.loss, rel=1e-10)
