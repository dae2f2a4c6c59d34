"""Tests for chimera_nb.algorithms.robust: the median, the trimmed mean and Krum, against
cases computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from chimera_nb.algorithms import ShardGradient, WeightedMean
from chimera_nb.algorithms.robust import (
    CoordinateMedian,
    Krum,
    TrimmedMean,
    byzantine_answer,
    krum_scores,
)


def _answers(*rows: list[float], n_samples: list[int] | None = None) -> dict[str, ShardGradient]:
    """One answer per row: all but the last value are the (1, d) weights, the last the bias."""
    sizes = n_samples or [1] * len(rows)
    return {
        f"worker{k}": ShardGradient(np.array([row[:-1]]), np.array(row[-1:]), size, 0.0)
        for k, (row, size) in enumerate(zip(rows, sizes), start=1)
    }


def test_the_median_of_an_even_count_is_the_mean_of_the_two_middle_values() -> None:
    # Prepare: per coordinate, the two middle values are (2, 3), (10, 20) and (0, 1)
    answers = _answers([1.0, 10.0, 0.0], [2.0, 20.0, 1.0], [3.0, 30.0, 1.0], [100.0, -5.0, -9.0])

    # Execute
    actual = CoordinateMedian().aggregate(answers)

    # Assert
    np.testing.assert_array_equal(actual.weights, [[2.5, 15.0]])
    np.testing.assert_array_equal(actual.bias, [0.5])


def test_the_median_ignores_one_huge_answer_that_moves_the_mean() -> None:
    # Prepare
    answers = _answers([1.0, 1.0], [1.2, 1.0], [0.8, 1.0], [-1000.0, 1.0])

    # Execute
    median = CoordinateMedian().aggregate(answers)
    mean = WeightedMean().aggregate(answers)

    # Assert
    np.testing.assert_allclose(median.weights, [[0.9]])
    assert mean.weights[0, 0] < -200


def test_trimmed_mean_removes_exactly_k_values_per_side_per_coordinate() -> None:
    # Prepare: coordinate 0 sorted is 1 2 3 4 50, coordinate 1 is -40 5 6 7 8, bias 0 0 0 0 9
    answers = _answers(
        [50.0, 5.0, 0.0], [1.0, 6.0, 0.0], [2.0, 7.0, 0.0], [3.0, -40.0, 0.0], [4.0, 8.0, 9.0]
    )

    # Execute
    actual = TrimmedMean(trim=1).aggregate(answers)

    # Assert: (2 + 3 + 4) / 3, (5 + 6 + 7) / 3, (0 + 0 + 0) / 3
    np.testing.assert_allclose(actual.weights, [[3.0, 6.0]])
    np.testing.assert_allclose(actual.bias, [0.0])


def test_a_trim_fraction_cuts_its_floor_of_the_answers() -> None:
    # Prepare
    rule = TrimmedMean(trim=0.25)

    # Execute / Assert
    assert [rule.cut(n) for n in (3, 4, 7, 8)] == [0, 1, 1, 2]


def test_trimmed_mean_with_no_trim_is_the_plain_mean() -> None:
    # Prepare
    answers = _answers([1.0, 0.0], [2.0, 1.0], [6.0, 2.0])

    # Execute
    actual = TrimmedMean(trim=0).aggregate(answers)

    # Assert
    np.testing.assert_allclose(actual.weights, [[3.0]])
    np.testing.assert_allclose(actual.bias, [1.0])


def test_trimmed_mean_refuses_a_trim_that_leaves_nothing() -> None:
    with pytest.raises(ValueError, match="leaves none of 4"):
        TrimmedMean(trim=2).aggregate(_answers([1.0, 0.0], [2.0, 0.0], [3.0, 0.0], [4.0, 0.0]))
    with pytest.raises(ValueError, match=r"\[0, 0.5\)"):
        TrimmedMean(trim=0.5)


def test_krum_scores_sum_the_squared_distances_to_the_n_minus_f_minus_2_nearest() -> None:
    # Prepare: points 0, 1, 3, 10 on a line; n = 4, f = 1: one nearest neighbour each
    vectors = np.array([[0.0], [1.0], [3.0], [10.0]])

    # Execute
    actual = krum_scores(vectors, n_byzantine=1)

    # Assert: 0 -> 1 (1), 1 -> 0 (1), 3 -> 1 (4), 10 -> 3 (49)
    np.testing.assert_array_equal(actual, [1.0, 1.0, 4.0, 49.0])


def test_krum_picks_the_answer_with_the_smallest_score() -> None:
    # Prepare: n = 5, f = 1, so 2 nearest. Points 0, 1, 2, 2.5, 50:
    # scores 0: 1+4=5; 1: 1+1=2; 2: 0.25+1=1.25; 2.5: 0.25+2.25=2.5; 50: far
    answers = _answers([0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [2.5, 0.0], [50.0, 0.0])
    rule = Krum(n_byzantine=1)

    # Execute
    actual = rule.aggregate(answers)

    # Assert
    np.testing.assert_array_equal(actual.weights, [[2.0]])
    assert rule.selected_ == ["worker3"]


def test_multi_krum_averages_the_m_best_weighted_by_samples() -> None:
    # Prepare: as above; the two best are 2 (score 1.25) and 1 (score 2)
    answers = _answers(
        [0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [2.5, 0.0], [50.0, 0.0], n_samples=[1, 3, 1, 1, 1]
    )
    rule = Krum(n_byzantine=1, multi=2)

    # Execute
    actual = rule.aggregate(answers)

    # Assert: (3 * 1 + 1 * 2) / 4
    np.testing.assert_allclose(actual.weights, [[1.25]])
    assert rule.selected_ == ["worker3", "worker2"]


def test_krum_says_how_many_answers_it_needs() -> None:
    with pytest.raises(ValueError, match="needs at least 5 answers"):
        Krum(n_byzantine=2).aggregate(_answers([0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [3.0, 0.0]))


def test_the_rules_keep_the_shapes_of_a_multiclass_gradient() -> None:
    # Prepare: 3 outputs, 2 features
    rng = np.random.default_rng(0)
    answers = {
        f"worker{k}": ShardGradient(rng.normal(size=(3, 2)), rng.normal(size=3), 10, 0.0)
        for k in range(5)
    }

    # Execute / Assert
    for rule in (CoordinateMedian(), TrimmedMean(), Krum()):
        actual = rule.aggregate(answers)
        assert actual.weights.shape == (3, 2) and actual.bias.shape == (3,), rule


# --- what a Byzantine worker sends -----------------------------------------------------------


def test_byzantine_answers_flip_scale_or_replace_the_vector() -> None:
    # Prepare
    vector, rng = np.array([1.0, -2.0, 0.5]), np.random.default_rng(0)

    # Execute / Assert
    np.testing.assert_array_equal(byzantine_answer(vector, "sign-flip", None, rng), -vector)
    np.testing.assert_array_equal(byzantine_answer(vector, "sign-flip", 3.0, rng), -3.0 * vector)
    np.testing.assert_array_equal(byzantine_answer(vector, "scaled", None, rng), 10.0 * vector)
    noise = byzantine_answer(np.zeros(10_000), "noise", 2.0, np.random.default_rng(1))
    assert 1.9 < noise.std() < 2.1
    with pytest.raises(ValueError, match="kind must be"):
        byzantine_answer(vector, "flip", None, rng)
