"""The layer-by-layer MLP against finite differences, and cut into stages and micro-batches
against itself in one piece: the arithmetic a pipeline relies on."""

from __future__ import annotations

import numpy as np
import pytest

from chimera_nb.algorithms.mlp import (
    backward_layers,
    epoch_batches,
    fit_mlp,
    forward_layers,
    init_layers,
    mlp_gradients,
    mlp_predict_proba,
    softmax_cross_entropy,
)
from chimera_nb.algorithms.pipeline_schedules import micro_batch_slices, split_layers

RNG = np.random.default_rng(0)
X = RNG.normal(size=(30, 5))
LABELS = RNG.integers(0, 3, size=30)
SIZES = [5, 7, 6, 3]


def test_gradients_match_finite_differences():
    # Prepare
    layers = init_layers(SIZES, random_state=1)
    result = mlp_gradients(layers, X, LABELS)
    epsilon, checked = 1e-6, 0
    # Execute / Assert: a few coordinates of every layer's weights and bias
    for index, layer in enumerate(layers):
        for array, gradient in (
            (layer.weights, result.weights[index]),
            (layer.bias, result.bias[index]),
        ):
            for flat in (0, array.size // 2, array.size - 1):
                position = np.unravel_index(flat, array.shape)
                saved = array[position]
                array[position] = saved + epsilon
                up = mlp_gradients(layers, X, LABELS).loss
                array[position] = saved - epsilon
                down = mlp_gradients(layers, X, LABELS).loss
                array[position] = saved
                assert gradient[position] == pytest.approx((up - down) / (2 * epsilon), abs=1e-7)
                checked += 1
    assert checked == 18


@pytest.mark.parametrize(("n_stages", "n_microbatches"), [(1, 1), (2, 3), (3, 4), (3, 30)])
def test_stages_and_micro_batches_add_up_to_the_one_process_gradients(n_stages, n_microbatches):
    # Prepare
    layers = init_layers(SIZES, random_state=2)
    expected = mlp_gradients(layers, X, LABELS)
    parts = split_layers(len(layers), n_stages)
    weights = [np.zeros_like(layer.weights) for layer in layers]
    bias = [np.zeros_like(layer.bias) for layer in layers]
    loss_sum = 0.0
    # Execute: each micro-batch forward through the stages, then backward through them
    for part in micro_batch_slices(len(X), n_microbatches):
        activation, caches = X[part], []
        for s, stage in enumerate(parts):
            last = s == n_stages - 1
            activation, cache = forward_layers(
                [layers[i] for i in stage], activation, ends_with_output=last
            )
            caches.append(cache)
        loss, gradient = softmax_cross_entropy(activation, LABELS[part], len(X))
        loss_sum += loss
        for s in reversed(range(n_stages)):
            stage = [layers[i] for i in parts[s]]
            gw, gb, gradient = backward_layers(
                stage, caches[s], gradient, ends_with_output=s == n_stages - 1
            )
            for offset, i in enumerate(parts[s]):
                weights[i] += gw[offset]
                bias[i] += gb[offset]
    # Assert
    assert loss_sum / len(X) == pytest.approx(expected.loss, rel=1e-12)
    for actual, wanted in zip(weights + bias, expected.weights + expected.bias):
        np.testing.assert_allclose(actual, wanted, rtol=0, atol=1e-12)


def test_initial_layers_are_seeded_and_shaped_like_scikit_learns():
    # Execute
    first, again, other = (init_layers(SIZES, seed) for seed in (3, 3, 4))
    # Assert
    assert [layer.weights.shape for layer in first] == [(5, 7), (7, 6), (6, 3)]
    assert all(np.array_equal(a.weights, b.weights) for a, b in zip(first, again))
    assert not np.array_equal(first[0].weights, other[0].weights)


def test_epoch_batches_cover_every_row_once_and_replay():
    # Execute
    batches = epoch_batches(10, 4, 7, epoch=2)
    # Assert
    assert [len(b) for b in batches] == [4, 4, 2]
    assert sorted(np.concatenate(batches).tolist()) == list(range(10))
    assert all(np.array_equal(a, b) for a, b in zip(batches, epoch_batches(10, 4, 7, epoch=2)))
    assert not np.array_equal(batches[0], epoch_batches(10, 4, 7, epoch=3)[0])


def test_the_one_process_fit_learns_a_separable_problem():
    # Prepare
    labels = (X[:, 0] > 0).astype(int)
    # Execute
    layers, losses = fit_mlp(
        X, labels, [5, 8, 2], learning_rate=0.5, max_iter=50, batch_size=10, random_state=0
    )
    # Assert
    assert losses[-1] < 0.2 * losses[0]
    assert (mlp_predict_proba(layers, X).argmax(axis=1) == labels).mean() == 1.0


def test_bad_sizes_are_refused_saying_what_is_needed():
    with pytest.raises(ValueError, match="at least"):
        init_layers([5], 0)
