"""Tests for chimera_nb.wire.models: the request bodies refuse what a worker cannot use, and
say which field is wrong."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from chimera_nb.wire.encoding import BodyError
from chimera_nb.wire.models import (
    DelayRequest,
    FitStepRequest,
    ModelFitRequest,
    PredictRequest,
    PredictResponse,
)


def validation_message(body: dict) -> str:
    with pytest.raises(ValidationError) as caught:
        PredictRequest.model_validate(body)
    return str(caught.value)


# --- PredictRequest -------------------------------------------------------------------------------


def test_ragged_rows_are_refused_naming_the_row() -> None:
    # Prepare
    body = {"X_pred_columns": ["a", "b", "c"], "X_pred_rows": [[1, 2, 3], [4, 5, 6], [7, 8]]}

    # Execute
    actual = validation_message(body)

    # Assert
    assert "X_pred_rows[2] has 2 values but X_pred_columns names 3 columns" in actual


def test_duplicate_columns_are_refused_naming_them() -> None:
    # Prepare
    body = {"X_pred_columns": ["b", "a", "b", "c", "a"], "X_pred_rows": [[1, 2, 3, 4, 5]]}

    # Execute
    actual = validation_message(body)

    # Assert
    assert "X_pred_columns has duplicate names: ['a', 'b']" in actual


def test_nan_in_a_python_body_is_refused_naming_the_cell() -> None:
    # Prepare
    body = {"X_pred_columns": ["a", "b"], "X_pred_rows": [[1.0, 2.0], [3.0, float("nan")]]}

    # Execute
    with pytest.raises(ValidationError) as caught:
        PredictRequest.model_validate(body)

    # Assert
    assert caught.value.errors()[0]["loc"] == ("X_pred_rows", 1, 1)
    assert caught.value.errors()[0]["type"] == "finite_number"


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_tokens_in_a_json_body_are_refused(token: str) -> None:
    # Prepare: Python's json module writes these tokens, so clients do send them.
    body = '{"X_pred_columns": ["a"], "X_pred_rows": [[' + token + "]]}"

    # Execute
    with pytest.raises(ValidationError) as caught:
        PredictRequest.model_validate_json(body)

    # Assert
    assert caught.value.errors()[0]["loc"] == ("X_pred_rows", 0, 0)


@pytest.mark.parametrize(
    "body",
    [{"X_pred_columns": [], "X_pred_rows": [[]]}, {"X_pred_columns": ["a"], "X_pred_rows": []}],
    ids=["no columns", "no rows"],
)
def test_a_predict_body_needs_at_least_one_column_and_one_row(body: dict) -> None:
    # Execute / Assert
    with pytest.raises(ValidationError):
        PredictRequest.model_validate(body)


def test_matrix_puts_the_columns_in_training_order() -> None:
    # Prepare
    request = PredictRequest(X_pred_columns=["c", "a", "b"], X_pred_rows=[[3, 1, 2], [30, 10, 20]])
    expected = np.array([[1.0, 2.0, 3.0], [10.0, 20.0, 30.0]])

    # Execute
    actual = request.matrix(["a", "b", "c"])

    # Assert
    assert actual.dtype == np.float64
    np.testing.assert_array_equal(actual, expected)


@pytest.mark.parametrize(
    ("columns", "expected_message"),
    [
        (["a", "b", "z"], "missing ['z'], unexpected []"),
        (["a"], "missing [], unexpected ['b']"),
        (["a", "z"], "missing ['z'], unexpected ['b']"),
    ],
    ids=["missing", "unexpected", "both"],
)
def test_matrix_names_missing_and_unexpected_columns(columns, expected_message) -> None:
    # Prepare
    request = PredictRequest(X_pred_columns=["a", "b"], X_pred_rows=[[1, 2]])

    # Execute
    with pytest.raises(BodyError) as caught:
        request.matrix(columns)

    # Assert
    assert caught.value.field == "X_pred_columns"
    assert f"must name the training columns {columns}" in caught.value.message
    assert expected_message in caught.value.message


# --- bodies refuse misspelt fields ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "body"),
    [
        (FitStepRequest, {"weights": [1.0], "bias": [0.0], "batchsize": 4}),
        (ModelFitRequest, {"random_sate": 3}),
        (PredictRequest, {"X_pred_columns": ["a"], "X_pred_rows": [[1]], "X_pred_cols": ["a"]}),
    ],
    ids=["FitStepRequest", "ModelFitRequest", "PredictRequest"],
)
def test_a_misspelt_field_is_an_error_not_ignored(model, body: dict) -> None:
    # Execute
    with pytest.raises(ValidationError) as caught:
        model.model_validate(body)

    # Assert
    assert caught.value.errors()[0]["type"] == "extra_forbidden"


def test_fit_step_request_needs_a_bias_value() -> None:
    # Execute
    with pytest.raises(ValidationError) as caught:
        FitStepRequest.model_validate({"weights": [], "bias": []})

    # Assert
    assert caught.value.errors()[0]["loc"] == ("bias",)


# --- strict numbers, ranges, finite answers -------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "body", "location"),
    [
        (
            PredictRequest,
            '{"X_pred_columns": ["a"], "X_pred_rows": [["1.5"]]}',
            ("X_pred_rows", 0, 0),
        ),
        (
            PredictRequest,
            '{"X_pred_columns": ["a"], "X_pred_rows": [[true]]}',
            ("X_pred_rows", 0, 0),
        ),
        (
            PredictRequest,
            '{"X_pred_columns": ["a"], "X_pred_rows": [[1e39]]}',
            ("X_pred_rows", 0, 0),
        ),
        (FitStepRequest, '{"weights": [], "bias": ["0"]}', ("bias", 0)),
        (FitStepRequest, '{"weights": [], "bias": [0], "seed": 4294967296}', ("seed",)),
        (ModelFitRequest, '{"random_state": 1099511627776}', ("random_state",)),
        (ModelFitRequest, '{"random_state": 7.0}', ("random_state",)),
        (DelayRequest, '{"seconds": "1"}', ("seconds",)),
    ],
    ids=[
        "number as string",
        "boolean as number",
        "beyond float32",
        "bias as string",
        "seed beyond 2**32 - 1",
        "random_state 2**40",
        "random_state as float",
        "seconds as string",
    ],
)
def test_numbers_are_strict_and_in_range(model, body: str, location: tuple) -> None:
    # Execute
    with pytest.raises(ValidationError) as caught:
        model.model_validate_json(body)

    # Assert
    assert caught.value.errors()[0]["loc"] == location


def test_integers_are_accepted_where_numbers_are_expected() -> None:
    # Execute
    request = PredictRequest.model_validate_json('{"X_pred_columns": ["a"], "X_pred_rows": [[3]]}')

    # Assert
    assert request.X_pred_rows == [[3.0]]


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ({"y_pred_rows": [1.0, float("inf"), 2.0]}, "rows [1] give predictions"),
        ({"y_pred_rows": ["a", "b"], "y_proba_rows": [[0.5, 0.5], [float("nan"), 1]]}, "rows [1]"),
        ({"y_pred_rows": [float("inf")] * 7}, "rows [0, 1, 2, 3, 4] ... give"),
    ],
    ids=["regression", "class probabilities", "many rows"],
)
def test_predictions_that_are_not_finite_are_refused_naming_the_rows(answer, expected) -> None:
    # Execute
    with pytest.raises(BodyError) as caught:
        PredictResponse(**answer).require_finite()

    # Assert
    assert caught.value.field == "X_pred_rows"
    assert expected in caught.value.message


def test_finite_predictions_and_labels_pass() -> None:
    # Prepare
    answer = PredictResponse(y_pred_rows=["a", "b"], y_proba_rows=[[0.5, 0.5], [0.1, 0.9]])

    # Execute / Assert
    assert answer.require_finite() is answer
