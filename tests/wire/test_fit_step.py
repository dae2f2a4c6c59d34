"""Tests for chimera_nb.wire.fit_step: the fit-step exchange in JSON and in binary frames."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pydantic import ValidationError

from chimera_nb.wire.encoding import BINARY, JSON, META_HEADER, BodyError, encode_frame
from chimera_nb.wire.fit_step import FitStep, FitStepResult

ENCODINGS = ["json", "binary"]


def bits(array: np.ndarray) -> list[int]:
    """The raw 64-bit patterns, so that -0.0 != 0.0 and every last bit counts."""
    return np.ascontiguousarray(array, dtype="<f8").view("<u8").ravel().tolist()


def softmax_step() -> FitStep:
    """Three classes, four features, awkward floats, every option set."""
    weights = np.random.default_rng(0).normal(size=(3, 4)) * [1e-300, 1.0, 1e300, 1 / 3]
    bias = np.array([np.pi, -0.0, 5e-324])
    return FitStep(weights, bias, classes=[0, "b", 2.5], batch_size=32, seed=7)


# --- FitStep --------------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_fit_step_round_trips_bit_exactly_with_its_options(encoding: str) -> None:
    # Prepare
    expected = softmax_step()

    # Execute
    body, headers = expected.encode(encoding)
    actual = FitStep.decode(body, headers, binary=encoding == "binary")

    # Assert
    assert actual.weights.shape == (3, 4)
    assert bits(actual.weights) == bits(expected.weights)
    assert bits(actual.bias) == bits(expected.bias)
    assert (actual.classes, actual.batch_size, actual.seed) == ([0, "b", 2.5], 32, 7)


@pytest.mark.parametrize(("encoding", "content_type"), [("json", JSON), ("binary", BINARY)])
def test_fit_step_announces_its_encoding_in_content_type(encoding: str, content_type: str) -> None:
    # Execute
    _, headers = softmax_step().encode(encoding)

    # Assert
    assert headers["content-type"] == content_type


def test_json_fit_step_without_options_is_the_seeds_body() -> None:
    # Prepare: a seed worker knows only "weights" and "bias".
    step = FitStep(np.array([[1.0, 2.0]]), np.array([0.5]))

    # Execute
    body, _ = step.encode("json")

    # Assert
    assert json.loads(body) == {"weights": [1.0, 2.0], "bias": [0.5]}


def test_json_weights_that_do_not_fill_whole_rows_are_refused_naming_weights() -> None:
    # Prepare: 5 weights cannot be reshaped into len(bias) = 2 rows.
    body = json.dumps({"weights": [1, 2, 3, 4, 5], "bias": [0, 0]}).encode()

    # Execute
    with pytest.raises(BodyError) as caught:
        FitStep.decode(body, {"content-type": JSON}, binary=False)

    # Assert
    assert caught.value.field == "weights"
    assert "has 5 values, not a multiple of len(bias) = 2" in caught.value.message


def test_binary_weights_that_do_not_fill_whole_rows_are_refused_naming_weights() -> None:
    # Prepare
    body, headers = encode_frame([np.ones(5), np.zeros(2)], {})

    # Execute
    with pytest.raises(BodyError) as caught:
        FitStep.decode(body, headers, binary=True)

    # Assert
    assert caught.value.field == "weights"


def test_binary_fit_step_without_bias_is_refused_naming_bias() -> None:
    # Prepare
    body, headers = encode_frame([np.ones(3), np.array([])], {})

    # Execute
    with pytest.raises(BodyError) as caught:
        FitStep.decode(body, headers, binary=True)

    # Assert
    assert caught.value.field == "bias"


def test_json_nan_weights_are_refused_by_pydantic_naming_the_entry() -> None:
    # Prepare: Python's json writes NaN, which is not strict JSON but parses.
    body = json.dumps({"weights": [1.0, float("nan")], "bias": [0.0]}).encode()

    # Execute
    with pytest.raises(ValidationError) as caught:
        FitStep.decode(body, {"content-type": JSON}, binary=False)

    # Assert
    assert caught.value.errors()[0]["loc"] == ("weights", 1)
    assert caught.value.errors()[0]["type"] == "finite_number"


def test_binary_nan_weights_are_refused_naming_weights() -> None:
    # Prepare
    body, headers = encode_frame([np.array([1.0, np.nan]), np.zeros(1)], {})

    # Execute
    with pytest.raises(BodyError) as caught:
        FitStep.decode(body, headers, binary=True)

    # Assert
    assert caught.value.field == "weights"


@pytest.mark.parametrize(
    ("options", "field"),
    [({"batch_size": 0}, "batch_size"), ({"seed": -1}, "seed"), ({"colour": "red"}, "colour")],
    ids=["batch_size below 1", "negative seed", "unknown option"],
)
def test_binary_options_are_validated_like_json_ones(options: dict, field: str) -> None:
    # Prepare
    body, headers = encode_frame([np.ones(2), np.zeros(1)], options)

    # Execute
    with pytest.raises(ValidationError) as caught:
        FitStep.decode(body, headers, binary=True)

    # Assert
    assert caught.value.errors()[0]["loc"] == (field,)


# --- FitStepResult --------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_fit_step_result_round_trips_bit_exactly(encoding: str) -> None:
    # Prepare
    step = softmax_step()
    expected = FitStepResult(step.weights, step.bias, n_samples=1234, loss=0.1 + 0.2)

    # Execute
    actual = FitStepResult.decode(*expected.encode(encoding))

    # Assert
    assert actual.weights_gradient.shape == (3, 4)
    assert bits(actual.weights_gradient) == bits(expected.weights_gradient)
    assert bits(actual.bias_gradient) == bits(expected.bias_gradient)
    assert actual.n_samples == 1234
    assert actual.loss == 0.1 + 0.2


def test_json_fit_step_result_keeps_the_seeds_field_names() -> None:
    # Prepare
    result = FitStepResult(np.array([[1.0, 2.0]]), np.array([0.5]), n_samples=3, loss=0.25)

    # Execute
    body, _ = result.encode("json")

    # Assert
    assert json.loads(body) == {
        "weights_gradients": [1.0, 2.0],
        "bias_gradient": [0.5],
        "n_samples": 3,
        "loss": 0.25,
    }


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b'{"weights_gradients": [1.0]}', {"content-type": JSON}),
        (b"not json", {"content-type": JSON}),
        (b"", {"content-type": BINARY, META_HEADER: '{"lengths": [0, 0]}'}),
        (b"\0" * 8, {"content-type": BINARY, META_HEADER: '{"lengths": [1, 0], "n_samples": 1}'}),
    ],
    ids=["json missing fields", "not json", "binary missing n_samples", "binary missing loss"],
)
def test_an_answer_that_is_not_a_fit_step_result_is_refused_naming_the_response(
    body, headers
) -> None:
    # Execute
    with pytest.raises(BodyError) as caught:
        FitStepResult.decode(body, headers)

    # Assert
    assert caught.value.field == "response"
    assert "is not a fit-step answer" in caught.value.message
