"""Tests for chimera_nb.wire.encoding: binary frames of float64 vectors with a JSON header."""

from __future__ import annotations

import json

import numpy as np
import pytest

from chimera_nb.wire.encoding import (
    BINARY,
    META_HEADER,
    BodyError,
    decode_frame,
    encode_frame,
    is_binary,
)


def bits(array: np.ndarray) -> list[int]:
    """The raw 64-bit patterns, so that -0.0 != 0.0 and every last bit counts."""
    return np.ascontiguousarray(array, dtype="<f8").view("<u8").ravel().tolist()


def frame(body: bytes, meta: str) -> tuple[bytes, dict[str, str]]:
    return body, {"content-type": BINARY, META_HEADER: meta}


# --- round trip -----------------------------------------------------------------------------------


def test_a_frame_round_trips_every_bit_of_its_vectors_and_its_metadata() -> None:
    # Prepare: awkward values (negative zero, the smallest subnormal, the largest float, pi)
    # and a matrix, which travels flattened row-major.
    weights = np.array([[np.pi, -0.0, 5e-324], [1.7976931348623157e308, -1e-300, 1 / 3]])
    bias = np.array([0.1, -2.5])
    meta = {"classes": [0, "a", 2.5], "batch_size": 8, "seed": None}

    # Execute
    body, headers = encode_frame([weights, bias], meta)
    (actual_weights, actual_bias), actual_meta = decode_frame(body, headers, ["weights", "bias"])

    # Assert
    assert bits(actual_weights) == bits(weights)
    assert bits(actual_bias) == bits(bias)
    assert actual_meta == meta
    assert actual_weights.dtype == np.float64


def test_a_frame_is_raw_little_endian_float64_with_the_lengths_in_its_header() -> None:
    # Prepare
    vectors = [np.array([1.0, 2.0, 3.0]), np.array([], dtype=np.float64), np.array([4.0])]

    # Execute
    body, headers = encode_frame(vectors, {"n_samples": 12})

    # Assert
    assert body == np.array([1.0, 2.0, 3.0, 4.0], dtype="<f8").tobytes()
    assert headers["content-type"] == BINARY
    assert json.loads(headers[META_HEADER]) == {"n_samples": 12, "lengths": [3, 0, 1]}


def test_an_empty_vector_survives_the_round_trip() -> None:
    # Prepare
    vectors = [np.array([]), np.array([7.0])]

    # Execute
    (first, second), _ = decode_frame(*encode_frame(vectors, {}), ["first", "second"])

    # Assert
    assert first.shape == (0,)
    assert second.tolist() == [7.0]


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("application/octet-stream", True),
        ("application/octet-stream; charset=binary", True),
        ("application/json", False),
        (None, False),
    ],
)
def test_is_binary_reads_only_the_media_type_of_content_type(content_type, expected) -> None:
    # Prepare
    headers = {} if content_type is None else {"content-type": content_type}

    # Execute
    actual = is_binary(headers)

    # Assert
    assert actual is expected


# --- errors name what is wrong --------------------------------------------------------------------


def test_a_frame_without_its_header_is_refused_naming_the_header() -> None:
    # Execute
    with pytest.raises(BodyError) as caught:
        decode_frame(b"\0" * 8, {"content-type": BINARY}, ["weights", "bias"])

    # Assert
    assert caught.value.field == META_HEADER
    assert "needs this header" in str(caught.value)


@pytest.mark.parametrize(
    "meta",
    ["not json", '["lengths"]', '"lengths"', "{}", '{"lengths": null}', '{"lengths": ["a", 1]}'],
    ids=["not JSON", "a list", "a string", "no lengths", "null lengths", "lengths not integers"],
)
def test_a_header_that_is_not_an_object_with_integer_lengths_is_refused(meta: str) -> None:
    # Execute
    with pytest.raises(BodyError) as caught:
        decode_frame(*frame(b"\0" * 16, meta), ["weights", "bias"])

    # Assert
    assert caught.value.field == META_HEADER
    assert "'lengths'" in caught.value.message or "is not valid JSON" in caught.value.message


@pytest.mark.parametrize(
    "lengths", [[2], [1, 1, 0], [-1, 3]], ids=["too few", "too many", "negative"]
)
def test_lengths_must_give_one_non_negative_size_per_vector(lengths) -> None:
    # Execute
    with pytest.raises(BodyError) as caught:
        decode_frame(*frame(b"\0" * 16, json.dumps({"lengths": lengths})), ["weights", "bias"])

    # Assert
    assert caught.value.field == META_HEADER
    assert "'lengths' must be 2 integers >= 0 (weights, bias)" in caught.value.message


@pytest.mark.parametrize("n_bytes", [8, 17, 24], ids=["too short", "not whole floats", "too long"])
def test_a_body_whose_size_does_not_match_the_lengths_is_refused(n_bytes: int) -> None:
    # Execute
    with pytest.raises(BodyError) as caught:
        decode_frame(*frame(b"\0" * n_bytes, '{"lengths": [1, 1]}'), ["weights", "bias"])

    # Assert
    assert caught.value.field == "body"
    assert f"has {n_bytes} bytes but 'lengths' [1, 1] announce 16" in caught.value.message


@pytest.mark.parametrize("bad_value", [np.nan, np.inf, -np.inf])
def test_a_non_finite_value_is_refused_naming_the_vector_that_holds_it(bad_value: float) -> None:
    # Prepare: the bad value sits in the second vector.
    body, headers = encode_frame([np.array([1.0, 2.0]), np.array([0.5, bad_value])], {})

    # Execute
    with pytest.raises(BodyError) as caught:
        decode_frame(body, headers, ["weights", "bias"])

    # Assert
    assert caught.value.field == "bias"
    assert str(caught.value) == "bias: contains NaN or infinite values"
