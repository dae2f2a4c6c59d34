"""A small multilayer perceptron in plain numpy, written layer by layer so that a pipeline can
cut it: any contiguous range of layers runs on one stage.

Layer ``l`` computes ``z = a @ W_l + b_l`` from its input ``a`` (``W_l`` of shape
``(n_in, n_out)``, as scikit-learn's ``MLPClassifier.coefs_``); hidden layers apply ReLU, the
last layer's ``z`` are the logits of a softmax. The loss is the mean cross-entropy over a
*batch*: a micro-batch of ``k`` of the batch's ``n`` rows contributes ``(1 / n) * dL/dz`` per
row, so the gradients of a batch's micro-batches *add up* to the batch's gradient. That is
why a pipeline may cut a batch into micro-batches and still take exactly the step of one
process (:func:`mlp_gradients` is that process: the one-process twin).

Everything is float64; the initial weights are seeded (Glorot-uniform, as scikit-learn's).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .._types import Matrix, Vector

__all__ = [
    "Layer",
    "LayerCache",
    "MLPGradients",
    "backward_layers",
    "epoch_batches",
    "fit_mlp",
    "forward_layers",
    "init_layers",
    "mlp_gradients",
    "mlp_predict_proba",
    "sgd_step",
    "softmax",
    "softmax_cross_entropy",
]


@dataclass
class Layer:
    """One dense layer: ``z = a @ weights + bias``."""

    weights: Matrix  # (n_in, n_out)
    bias: Vector  # (n_out,)

    @property
    def n_in(self) -> int:
        return self.weights.shape[0]

    @property
    def n_out(self) -> int:
        return self.weights.shape[1]


class LayerCache(NamedTuple):
    """What backward needs of one layer's forward: its input and its pre-activation."""

    inputs: Matrix
    z: Matrix


class MLPGradients(NamedTuple):
    """A batch's mean loss and the gradient of every layer, first layer first."""

    loss: float
    weights: list[Matrix]
    bias: list[Vector]


def init_layers(sizes: Sequence[int], random_state: int | None = None) -> list[Layer]:
    """Layers for ``sizes`` (inputs, hidden..., outputs), drawn Glorot-uniform from
    ``random_state`` (scikit-learn's rule for ReLU networks); biases too, in the same range."""
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"sizes must be at least [n_inputs, n_outputs], all >= 1; got {sizes}")
    rng = np.random.default_rng(random_state)
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        bound = np.sqrt(6.0 / (n_in + n_out))
        layers.append(
            Layer(rng.uniform(-bound, bound, (n_in, n_out)), rng.uniform(-bound, bound, n_out))
        )
    return layers


def forward_layers(
    layers: Sequence[Layer], inputs: Matrix, *, ends_with_output: bool
) -> tuple[Matrix, list[LayerCache]]:
    """Run ``inputs`` through ``layers``: ReLU after each, except after the network's output
    layer (when ``ends_with_output``: its logits go to the softmax). Returns the output and
    each layer's cache for :func:`backward_layers`."""
    caches, a = [], inputs
    for index, layer in enumerate(layers):
        z = a @ layer.weights + layer.bias
        caches.append(LayerCache(a, z))
        last = ends_with_output and index == len(layers) - 1
        a = z if last else np.maximum(z, 0.0)
    return a, caches


def backward_layers(
    layers: Sequence[Layer],
    caches: Sequence[LayerCache],
    output_gradient: Matrix,
    *,
    ends_with_output: bool,
) -> tuple[list[Matrix], list[Vector], Matrix]:
    """The chain rule back through ``layers``, from ``dL/d(output)``: each layer's weight
    and bias gradients, and ``dL/d(inputs)`` (what the previous stage needs)."""
    weights_gradients: list[Matrix] = [np.empty(0)] * len(layers)
    bias_gradients: list[Vector] = [np.empty(0)] * len(layers)
    gradient = output_gradient
    for index in reversed(range(len(layers))):
        cache = caches[index]
        if not (ends_with_output and index == len(layers) - 1):
            gradient = gradient * (cache.z > 0)  # through the ReLU
        weights_gradients[index] = cache.inputs.T @ gradient
        bias_gradients[index] = gradient.sum(axis=0)
        gradient = gradient @ layers[index].weights.T
    return weights_gradients, bias_gradients, gradient


def softmax(logits: Matrix) -> Matrix:
    """Row-wise softmax, shifted by each row's maximum so that ``exp`` cannot overflow."""
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def softmax_cross_entropy(
    logits: Matrix, labels: np.ndarray, batch_size: int
) -> tuple[float, Matrix]:
    """The *sum* of the cross-entropies of these rows, and ``dL/d(logits)`` of the batch's
    *mean* loss (``batch_size`` rows in all; these rows may be one micro-batch of them)."""
    probabilities = softmax(logits)
    rows = np.arange(len(labels))
    loss_sum = float(-np.log(np.maximum(probabilities[rows, labels], 1e-300)).sum())
    gradient = probabilities.copy()
    gradient[rows, labels] -= 1.0
    return loss_sum, gradient / batch_size


def mlp_gradients(layers: Sequence[Layer], X: Matrix, labels: np.ndarray) -> MLPGradients:
    """The one-process twin: the mean loss of the batch ``X`` (class indices ``labels``) and
    every layer's gradient, in one forward and one backward pass."""
    logits, caches = forward_layers(layers, X, ends_with_output=True)
    loss_sum, gradient = softmax_cross_entropy(logits, labels, len(labels))
    weights, bias, _ = backward_layers(layers, caches, gradient, ends_with_output=True)
    return MLPGradients(loss_sum / len(labels), weights, bias)


def mlp_predict_proba(layers: Sequence[Layer], X: Matrix) -> Matrix:
    """Class probabilities of the rows of ``X`` (one process)."""
    return softmax(forward_layers(layers, X, ends_with_output=True)[0])


def sgd_step(
    layers: Sequence[Layer],
    weights_gradients: Sequence[Matrix],
    bias_gradients: Sequence[Vector],
    learning_rate: float,
) -> list[Layer]:
    """New layers, one plain gradient-descent step from ``layers``."""
    return [
        Layer(layer.weights - learning_rate * gw, layer.bias - learning_rate * gb)
        for layer, gw, gb in zip(layers, weights_gradients, bias_gradients)
    ]


def epoch_batches(
    n_samples: int, batch_size: int | None, random_state: int | None, epoch: int
) -> list[np.ndarray]:
    """The batches of rows of epoch ``epoch`` (1, 2, ...): a shuffle drawn from
    ``(random_state, epoch)``, cut into batches of ``batch_size`` (the last one holds what
    is left; None: one batch of every row). A fit and its twin draw the same batches."""
    seed = np.random.SeedSequence([random_state or 0, epoch])
    order = np.random.default_rng(seed).permutation(n_samples)
    size = n_samples if batch_size is None else batch_size
    return [order[start : start + size] for start in range(0, n_samples, size)]


def fit_mlp(
    X: Matrix,
    labels: np.ndarray,
    sizes: Sequence[int],
    *,
    learning_rate: float,
    max_iter: int,
    batch_size: int | None,
    random_state: int | None,
) -> tuple[list[Layer], list[float]]:
    """The one-process twin of a pipeline-parallel fit: the same initial layers, the same
    batches, one gradient step per batch. Returns the layers and each step's mean loss."""
    layers = init_layers(sizes, random_state)
    losses = []
    for epoch in range(1, max_iter + 1):
        for rows in epoch_batches(len(X), batch_size, random_state, epoch):
            result = mlp_gradients(layers, X[rows], labels[rows])
            layers = sgd_step(layers, result.weights, result.bias, learning_rate)
            losses.append(result.loss)
    return layers, losses
