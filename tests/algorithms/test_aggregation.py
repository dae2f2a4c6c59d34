"""Tests for chimera_nb.algorithms.aggregation: the rules that combine what workers send back."""

from __future__ import annotations

import numpy as np
import pytest

from chimera_nb.algorithms.aggregation import ShardGradient, WeightedMean, weighted_mean
from chimera_nb.algorithms.combiners import (
    MeanPrediction,
    MemberPrediction,
    SoftVote,
    mean_prediction,
    soft_vote,
    union_of_classes,
)
from chimera_nb.algorithms.losses import squared_loss

# --- weighted_mean --------------------------------------------------------------------------------


def test_weighted_mean_weights_each_array_by_its_share_of_the_total() -> None:
    # Prepare
    arrays = [np.array([1.0, 10.0]), np.array([3.0, 20.0]), np.array([7.0, 40.0])]
    weights = [1, 2, 5]
    expected = np.array([(1 * 1 + 2 * 3 + 5 * 7) / 8, (1 * 10 + 2 * 20 + 5 * 40) / 8])

    # Execute
    actual = weighted_mean(arrays, weights)

    # Assert
    np.testing.assert_allclose(actual, expected, rtol=1e-15)


def test_weighted_mean_keeps_the_shape_of_matrices() -> None:
    # Prepare
    rng = np.random.default_rng(0)
    arrays = [rng.normal(size=(3, 4)) for _ in range(5)]
    weights = rng.integers(1, 100, size=5)
    expected = np.average(np.stack(arrays), axis=0, weights=weights)

    # Execute
    actual = weighted_mean(arrays, weights)

    # Assert
    assert actual.shape == (3, 4)
    np.testing.assert_allclose(actual, expected, rtol=1e-12)


@pytest.mark.parametrize(
    ("arrays", "weights"),
    [([], []), ([np.ones(2)], [0]), ([np.ones(2), np.ones(2)], [0, 0])],
    ids=["no arrays", "zero weight", "all weights zero"],
)
def test_weighted_mean_refuses_input_without_a_positive_weight(arrays, weights) -> None:
    # Execute / Assert
    with pytest.raises(ValueError, match="at least one array with a positive weight"):
        weighted_mean(arrays, weights)


# --- WeightedMean ---------------------------------------------------------------------------------


def test_weighted_mean_rule_turns_shard_gradients_into_the_full_batch_gradient() -> None:
    # Prepare: three workers with 4, 16 and 30 rows, each returning its shard's mean gradient.
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(50, 3)), rng.normal(size=50)
    weights, bias = rng.normal(size=(1, 3)), rng.normal(size=1)
    shards = [slice(0, 4), slice(4, 20), slice(20, 50)]
    answers = [squared_loss(weights, bias, X[rows], y[rows]) for rows in shards]
    expected = squared_loss(weights, bias, X, y)
    gradients = {
        f"worker{k}": ShardGradient(answer.weights_gradient, answer.bias_gradient, n, answer.loss)
        for k, (answer, n) in enumerate(zip(answers, [4, 16, 30]), start=1)
    }

    # Execute
    actual_weights_gradient, actual_bias_gradient = WeightedMean().aggregate(gradients)

    # Assert
    assert actual_weights_gradient.shape == (1, 3)
    np.testing.assert_allclose(actual_weights_gradient, expected.weights_gradient, rtol=1e-12)
    np.testing.assert_allclose(actual_bias_gradient, expected.bias_gradient, rtol=1e-12)


def test_weighted_mean_rule_has_a_short_repr() -> None:
    # Execute / Assert
    assert repr(WeightedMean()) == "WeightedMean()"


# --- mean_prediction ------------------------------------------------------------------------------


def test_mean_prediction_averages_the_members_predictions() -> None:
    # Prepare
    predictions = [[1.0, 2.0, 3.0], [3.0, 2.0, 1.0], [2.0, 5.0, 2.0]]
    expected = np.array([2.0, 3.0, 2.0])

    # Execute
    actual = mean_prediction(predictions)

    # Assert
    np.testing.assert_allclose(actual, expected, rtol=1e-15)


# --- union_of_classes and soft_vote ---------------------------------------------------------------


def test_union_of_classes_sorts_numbers_before_strings() -> None:
    # Prepare
    classes = [["b", 10, 2], [2.5, "a"], [0, "b"]]
    expected = [0, 2, 2.5, 10, "a", "b"]

    # Execute
    actual = union_of_classes(classes)

    # Assert
    assert actual == expected


def test_union_of_classes_sorts_numbers_numerically_not_as_text() -> None:
    # Prepare: as text, "10" would sort before "9".
    classes = [[9, 10], [1]]

    # Execute
    actual = union_of_classes(classes)

    # Assert
    assert actual == [1, 9, 10]


def test_soft_vote_places_each_member_under_the_union_of_classes() -> None:
    # Prepare: member A saw classes 0, 1 and 2; member B's bootstrap had no class 1.
    member_a = np.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    member_b = np.array([[0.4, 0.6], [1.0, 0.0]])
    expected_classes = [0, 1, 2]
    expected = np.array(
        [
            [(0.2 + 0.4) / 2, (0.3 + 0.0) / 2, (0.5 + 0.6) / 2],
            [(0.6 + 1.0) / 2, (0.3 + 0.0) / 2, (0.1 + 0.0) / 2],
        ]
    )

    # Execute
    actual_classes, actual = soft_vote([member_a, member_b], [[0, 1, 2], [0, 2]])

    # Assert
    assert actual_classes == expected_classes
    np.testing.assert_allclose(actual, expected, rtol=1e-15)
    np.testing.assert_allclose(actual.sum(axis=1), 1.0, rtol=1e-15)


def test_soft_vote_aligns_members_that_list_their_classes_in_different_orders() -> None:
    # Prepare: member B lists "dog" first, so its first column belongs to "dog".
    member_a = np.array([[0.9, 0.1]])  # columns: cat, dog
    member_b = np.array([[0.7, 0.3]])  # columns: dog, cat
    expected = np.array([[(0.9 + 0.3) / 2, (0.1 + 0.7) / 2]])

    # Execute
    actual_classes, actual = soft_vote([member_a, member_b], [["cat", "dog"], ["dog", "cat"]])

    # Assert
    assert actual_classes == ["cat", "dog"]
    np.testing.assert_allclose(actual, expected, rtol=1e-15)


def test_soft_vote_respects_the_order_of_labels_and_leaves_unseen_labels_at_zero() -> None:
    # Prepare: the master knows a class "z" that no member saw, and wants it first.
    member_a = np.array([[0.25, 0.75]])
    member_b = np.array([[0.5, 0.5]])
    labels = ["z", "y", "x"]
    members_classes = [["x", "y"], ["x", "y"]]
    expected = np.array([[0.0, (0.75 + 0.5) / 2, (0.25 + 0.5) / 2]])

    # Execute
    actual_classes, actual = soft_vote([member_a, member_b], members_classes, labels=labels)

    # Assert
    assert actual_classes == labels
    np.testing.assert_allclose(actual, expected, rtol=1e-15)


# --- the combiner objects -------------------------------------------------------------------------


def test_mean_prediction_rule_averages_the_members_answers_by_worker() -> None:
    # Prepare
    predictions = {
        "worker1": MemberPrediction(np.array([1.0, 2.0])),
        "worker2": MemberPrediction(np.array([3.0, 6.0])),
    }

    # Execute
    actual = MeanPrediction().combine(predictions)

    # Assert
    np.testing.assert_allclose(actual.predictions, [2.0, 4.0], rtol=1e-15)
    assert actual.probabilities is None


def test_soft_vote_rule_labels_each_row_with_its_most_probable_class() -> None:
    # Prepare: worker2 never saw class "b"; "c" wins row 0, "a" row 1.
    predictions = {
        "worker1": MemberPrediction(np.array([[0.1, 0.2, 0.7], [0.8, 0.1, 0.1]]), ["a", "b", "c"]),
        "worker2": MemberPrediction(np.array([[0.4, 0.6], [0.9, 0.1]]), ["a", "c"]),
    }

    # Execute
    actual = SoftVote().combine(predictions, ["a", "b", "c"])

    # Assert
    assert actual.predictions.tolist() == ["c", "a"]
    np.testing.assert_allclose(
        actual.probabilities, [[0.25, 0.1, 0.65], [0.85, 0.05, 0.1]], rtol=1e-15
    )
