"""Tests for chimera_nb.algorithms.vertical: feature blocks, and the two identities that make
a feature split exact (scores are a sum over blocks; the gradient splits by block)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from chimera_nb.algorithms import (
    block_gradient,
    feature_blocks,
    gradient_descent,
    loss_for,
    n_outputs,
    partial_scores,
    residuals_for,
    split_columns,
    squared_loss,
)

RNG = np.random.default_rng(3)
X = RNG.normal(size=(50, 7))
Y = X @ RNG.normal(size=7) + 0.5


def test_contiguous_blocks_cover_every_column_once_in_order():
    # Execute
    blocks = feature_blocks(7, 3)
    # Assert
    assert [block.tolist() for block in blocks] == [[0, 1, 2], [3, 4], [5, 6]]


def test_given_blocks_are_kept_and_checked():
    # Execute
    blocks = feature_blocks(4, blocks=[[3, 0], [1, 2]])
    # Assert
    assert [block.tolist() for block in blocks] == [[3, 0], [1, 2]]
    with pytest.raises(ValueError, match="exactly once"):
        feature_blocks(4, blocks=[[0, 1], [1, 2, 3]])
    with pytest.raises(ValueError, match="at least one column"):
        feature_blocks(2, blocks=[[0, 1], []])
    with pytest.raises(ValueError, match="between 1 and the number of features"):
        feature_blocks(3, 4)
    with pytest.raises(ValueError, match="not both"):
        feature_blocks(3, 2, blocks=[[0, 1, 2]])


def test_split_columns_keeps_a_dataframes_column_names():
    # Prepare
    frame = pd.DataFrame(X[:, :3], columns=["a", "b", "c"])
    # Execute
    parts = split_columns(frame, feature_blocks(3, 2))
    # Assert
    assert [list(part.columns) for part in parts] == [["a", "b"], ["c"]]


def test_partial_scores_add_up_to_the_scores_of_all_columns():
    # Prepare
    weights = RNG.normal(size=(4, 7))
    blocks = feature_blocks(7, 3)
    # Execute
    summed = sum(partial_scores(X[:, b], weights[:, b]) for b in blocks)
    # Assert
    np.testing.assert_allclose(summed, X @ weights.T, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("n_classes", [0, 2, 4])
def test_block_gradients_side_by_side_are_the_full_gradient(n_classes):
    # Prepare
    model_type = "regressor" if n_classes == 0 else "classifier"
    outputs = n_outputs(model_type, n_classes)
    y = Y if n_classes == 0 else RNG.integers(0, n_classes, size=len(X))
    weights, bias, alpha = RNG.normal(size=(outputs, 7)), RNG.normal(size=outputs), 0.3
    expected = loss_for(model_type, n_classes)(weights, bias, X, y)
    # Execute
    loss, residuals = residuals_for(model_type, n_classes)(X @ weights.T + bias, y)
    gradient = np.hstack(
        [block_gradient(X[:, b], residuals, weights[:, b], alpha) for b in feature_blocks(7, 3)]
    )
    # Assert
    assert residuals.shape == (len(X), outputs)
    assert loss == pytest.approx(expected.loss, rel=1e-14)
    np.testing.assert_allclose(gradient, expected.weights_gradient + alpha * weights, rtol=1e-12)
    np.testing.assert_allclose(residuals.mean(axis=0), expected.bias_gradient, rtol=1e-12)


def test_rounds_of_a_feature_split_are_full_batch_gradient_descent():
    # Prepare: the split algorithm in one process, blocks of 3, 2 and 2 columns
    blocks = feature_blocks(7, 3)
    twin = gradient_descent(X, Y, squared_loss, schedule=0.1, max_iter=40)
    weights = [np.zeros((1, len(b))) for b in blocks]
    bias = np.zeros(1)
    residuals_of = residuals_for("regressor")
    # Execute
    for _ in range(40):
        scores = sum(partial_scores(X[:, b], w) for b, w in zip(blocks, weights)) + bias
        _, residuals = residuals_of(scores, Y)
        steps = [block_gradient(X[:, b], residuals, w) for b, w in zip(blocks, weights)]
        weights = [w - 0.1 * step for w, step in zip(weights, steps)]
        bias = bias - 0.1 * residuals.mean(axis=0)
    # Assert
    np.testing.assert_allclose(np.hstack(weights), twin.weights, rtol=1e-12)
    np.testing.assert_allclose(bias, twin.bias, rtol=1e-12)
