"""What each piece of a student's code must return, checked where the kit calls it, and said in
words when it does not.

A wrong return value would otherwise surface far away, as a numpy error inside a master or a
500 from a worker. Each check here names the function, says what came back and what was
expected, and gives back the value in the form the kit uses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..algorithms import Combined, Gradient

__all__ = [
    "ContractError",
    "check_bootstrap_rows",
    "check_gradient",
    "check_ring_step",
    "check_rule_result",
    "check_seeds",
    "check_top_k",
    "describe",
]

_UNFINISHED = "Did you forget `return`, or leave the `...` in place?"


class ContractError(TypeError):
    """A student's function returned something the kit cannot use."""


def describe(value: Any) -> str:
    """A value's kind in a few words: ``None``, ``a tuple of 2 items``, ``an array of shape
    (3, 4)``."""
    if value is None or value is Ellipsis:
        return repr(value)
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)} items"
    return f"a {type(value).__name__} ({value!r:.60})"


def _array(value: Any, what: str, shape: tuple[int, ...]) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ContractError(f"{what} is {describe(value)}, not numbers") from None
    if array.shape != shape:
        raise ContractError(f"{what} has shape {array.shape}, but it must have shape {shape}")
    if not np.all(np.isfinite(array)):
        raise ContractError(f"{what} holds NaN or infinite values (an overflow in exp?)")
    return array


def check_gradient(
    result: Any, name: str, weights_shape: tuple[int, int]
) -> tuple[float, np.ndarray, np.ndarray]:
    """``(loss, weights_gradient, bias_gradient)`` of a shard, as a worker sends them."""
    expected = (
        f"(loss, weights_gradient of shape {weights_shape}, bias_gradient of shape "
        f"{weights_shape[:1]})"
    )
    if not isinstance(result, (tuple, list)) or len(result) != 3:
        extra = f" {_UNFINISHED}" if result is None else ""
        raise ContractError(
            f"your {name} returned {describe(result)}; it must return {expected}.{extra}"
        )
    loss, weights_gradient, bias_gradient = result
    try:
        loss = float(loss)
    except (TypeError, ValueError):
        raise ContractError(
            f"the loss your {name} returned is {describe(loss)}, not a number"
        ) from None
    if not np.isfinite(loss):
        raise ContractError(f"your {name} returned a loss of {loss} (an overflow in exp?)")
    weights_gradient = _array(
        weights_gradient, f"the weights_gradient of your {name}", weights_shape
    )
    bias_gradient = _array(bias_gradient, f"the bias_gradient of your {name}", weights_shape[:1])
    return loss, weights_gradient, bias_gradient


def check_bootstrap_rows(result: Any, name: str, n_samples: int) -> np.ndarray:
    """Row numbers of a bootstrap sample: ``n_samples`` integers in ``[0, n_samples)``."""
    if result is None or result is Ellipsis:
        raise ContractError(
            f"your {name} returned {describe(result)}; it must return {n_samples} row numbers. "
            f"{_UNFINISHED}"
        )
    rows = np.asarray(result)
    if rows.shape != (n_samples,) or not np.issubdtype(rows.dtype, np.integer):
        raise ContractError(
            f"your {name} returned {describe(rows)} of {rows.dtype}; it must return "
            f"{n_samples} integer row numbers (one per row of the shard)"
        )
    if rows.min() < 0 or rows.max() >= n_samples:
        raise ContractError(
            f"your {name} returned row numbers from {rows.min()} to {rows.max()}; they must "
            f"be between 0 and {n_samples - 1}"
        )
    return rows


def check_seeds(result: Any, name: str, n_workers: int) -> list[int]:
    """One seed per worker, each an integer numpy and scikit-learn accept."""
    if isinstance(result, np.ndarray):
        result = result.tolist()
    if not isinstance(result, (list, tuple)) or len(result) != n_workers:
        extra = f" {_UNFINISHED}" if result is None or result is Ellipsis else ""
        raise ContractError(
            f"your {name} returned {describe(result)}; it must return a list of {n_workers} "
            f"seeds, one per worker.{extra}"
        )
    seeds = []
    for seed in result:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise ContractError(f"your {name} returned the seed {seed!r}, which is not an integer")
        if not 0 <= int(seed) < 2**32:
            raise ContractError(
                f"your {name} returned the seed {seed}; seeds must be in [0, 2**32) as numpy's "
                "generators and scikit-learn take them"
            )
        seeds.append(int(seed))
    return seeds


def check_ring_step(result: Any, name: str, sizes: Sequence[int]) -> tuple[list[np.ndarray], int]:
    """``(chunks, send)`` of one ring step: as many chunks as before, each its size, and the
    index of the chunk to send next."""
    n = len(sizes)
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        extra = f" {_UNFINISHED}" if result is None or result is Ellipsis else ""
        raise ContractError(
            f"your {name} returned {describe(result)}; it must return (chunks, send): the "
            f"list of {n} chunks and the index of the chunk to send next.{extra}"
        )
    chunks, send = result
    if not isinstance(chunks, (tuple, list)) or len(chunks) != n:
        raise ContractError(
            f"the chunks your {name} returned are {describe(chunks)}; they must be a list of "
            f"{n} arrays, one per worker of the ring"
        )
    checked = [
        _array(chunk, f"chunk {index} of what your {name} returned", (size,))
        for index, (chunk, size) in enumerate(zip(chunks, sizes))
    ]
    if isinstance(send, bool) or not isinstance(send, (int, np.integer)) or not 0 <= send < n:
        raise ContractError(
            f"your {name} said to send chunk {send!r} next; it must be a chunk index, an "
            f"integer from 0 to {n - 1}"
        )
    return checked, int(send)


def check_top_k(result: Any, name: str, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``((indices, values), new_residual)`` of a top-k encoder: distinct indices of the
    vector, one value each, and a residual as long as the vector."""
    expected = "((indices, values), new_residual)"
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        extra = f" {_UNFINISHED}" if result is None or result is Ellipsis else ""
        raise ContractError(
            f"your {name} returned {describe(result)}; it must return {expected}.{extra}"
        )
    sent, residual = result
    if not isinstance(sent, (tuple, list)) or len(sent) != 2:
        raise ContractError(
            f"what your {name} sends is {describe(sent)}; it must be (indices, values)"
        )
    indices = np.asarray(sent[0])
    if indices.ndim != 1 or not (np.issubdtype(indices.dtype, np.integer) and len(indices)):
        raise ContractError(
            f"the indices your {name} sends are {describe(indices)} of {indices.dtype}; they "
            "must be a 1-d array of at least one integer index"
        )
    if indices.min() < 0 or indices.max() >= size or len(np.unique(indices)) != len(indices):
        raise ContractError(
            f"the indices your {name} sends must be distinct, from 0 to {size - 1}; they are "
            f"{indices.tolist()}"
        )
    values = _array(sent[1], f"the values your {name} sends", indices.shape)
    residual = _array(residual, f"the new residual your {name} returned", (size,))
    return indices, values, residual


def check_rule_result(rule: str, method: str, result: Any, args: Sequence[Any]) -> Any:
    """The answer of a rule object's method (``aggregate``, ``combine``, ``closes``,
    ``may_start``), checked."""
    where = f"your {rule}.{method}()"
    if method == "aggregate":
        return _gradient(where, result, args[0])
    if method == "combine":
        return _combined(where, result, args[0])
    if method in ("closes", "may_start"):
        if not isinstance(result, (bool, np.bool_)):
            extra = f" {_UNFINISHED}" if result is None or result is Ellipsis else ""
            raise ContractError(
                f"{where} returned {describe(result)}; it must return True or False.{extra}"
            )
        if method == "may_start" and not result and args[0] <= args[1]:
            raise ContractError(
                f"{where} returned False for clock={args[0]}, slowest={args[1]}: a worker "
                "that is not ahead of the slowest must always start, or every worker waits "
                "for the others forever"
            )
        return bool(result)
    return result


def _gradient(where: str, result: Any, gradients: Mapping[str, Any]) -> Gradient:
    if not (hasattr(result, "weights") and hasattr(result, "bias")):
        extra = f" {_UNFINISHED}" if result is None or result is Ellipsis else ""
        raise ContractError(
            f"{where} returned {describe(result)}; it must return Gradient(weights, bias).{extra}"
        )
    first = next(iter(gradients.values()))
    weights_shape, bias_shape = np.shape(first.weights), np.shape(first.bias)
    return Gradient(
        _array(result.weights, f"the weights of the Gradient {where} returned", weights_shape),
        _array(result.bias, f"the bias of the Gradient {where} returned", bias_shape),
    )


def _combined(where: str, result: Any, predictions: Mapping[str, Any]) -> Combined:
    if not hasattr(result, "predictions"):
        extra = f" {_UNFINISHED}" if result is None or result is Ellipsis else ""
        raise ContractError(
            f"{where} returned {describe(result)}; it must return Combined(predictions, "
            f"probabilities).{extra}"
        )
    n_rows = len(next(iter(predictions.values())).values)
    labels = np.asarray(result.predictions)
    if labels.shape != (n_rows,):
        raise ContractError(
            f"the predictions of the Combined {where} returned have shape {labels.shape}; "
            f"there must be one per row: ({n_rows},)"
        )
    probabilities = getattr(result, "probabilities", None)
    if probabilities is not None:
        probabilities = np.asarray(probabilities, dtype=np.float64)
        if probabilities.ndim != 2 or len(probabilities) != n_rows:
            raise ContractError(
                f"the probabilities of the Combined {where} returned have shape "
                f"{probabilities.shape}; they must be (n_rows, n_classes) = ({n_rows}, ...)"
            )
    return Combined(labels, probabilities)
