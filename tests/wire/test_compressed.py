"""Tests for chimera_nb.wire.compressed: the sparse and quantized frames, and the fit-step's
compression option."""

from __future__ import annotations

import json

import numpy as np
import pytest

from chimera_nb.algorithms import QSGD, EncoderState, TopK
from chimera_nb.wire.compressed import (
    COMPRESSION_HEADER,
    CompressedFitStepResult,
    CompressionRequest,
    decode_gradient,
    encode_gradient,
)
from chimera_nb.wire.encoding import META_HEADER, BodyError
from chimera_nb.wire.fit_step import FitStep, FitStepResult

D = 10_001  # odd: the last 4-bit level and the last sign byte are half empty


def gradient() -> np.ndarray:
    return np.random.default_rng(0).normal(size=D) * 1e-3


def request(**changes) -> CompressionRequest:
    fields = dict(
        method="top_k", ratio=0.01, fit="f1", seed=3, feature_mean=[0.0], feature_scale=[1.0]
    )
    return CompressionRequest(**{**fields, **changes})


def test_sparse_frame_round_trips_and_takes_twelve_bytes_per_coordinate() -> None:
    # Prepare
    sent = TopK(0.01).encode(gradient(), EncoderState())

    # Execute
    body, meta = encode_gradient(sent)
    actual = decode_gradient(body, meta)

    # Assert
    assert np.array_equal(actual.indices, sent.indices)
    assert np.array_equal(actual.values, sent.values)
    assert len(body) == 12 * 101  # k = ceil(0.01 * 10001) = 101: uint32 + float64 each
    assert len(body) < 8 * D / 50


@pytest.mark.parametrize(("bits", "n_bytes"), [(8, 8 + D + 1251), (4, 8 + 5001 + 1251)])
def test_quantized_frame_round_trips_in_norm_levels_and_sign_bits(bits, n_bytes) -> None:
    # Prepare
    sent = QSGD(bits).encode(gradient(), EncoderState(), np.random.default_rng(1))

    # Execute
    body, meta = encode_gradient(sent)
    actual = decode_gradient(body, meta)

    # Assert
    assert actual.norm == sent.norm
    assert np.array_equal(actual.levels, sent.levels)
    assert np.array_equal(actual.negative, sent.negative)
    assert np.array_equal(actual.dense(), sent.dense())
    assert len(body) == n_bytes
    assert len(body) < 8 * D / (64 / (bits + 1)) + 16  # (bits + 1) bits a value, not 64


def test_compressed_answer_decodes_from_its_headers_as_a_fit_step_result_would() -> None:
    # Prepare
    sent = TopK(0.5).encode(np.array([1.0, -4.0, 2.0, 0.5]), EncoderState())
    answer = CompressedFitStepResult(sent, n_outputs=2, n_samples=17, loss=0.25)

    # Execute
    body, headers = answer.encode()
    decoded = FitStepResult.decode(body, headers)

    # Assert
    assert headers[COMPRESSION_HEADER] == "top_k"
    assert isinstance(decoded, CompressedFitStepResult)
    assert (decoded.n_outputs, decoded.n_samples, decoded.loss) == (2, 17, 0.25)
    assert decoded.gradient.dense().tolist() == [0.0, -4.0, 2.0, 0.0]


@pytest.mark.parametrize(
    ("body", "meta", "field", "message"),
    [
        (b"\0" * 11, {"method": "top_k", "size": 4, "k": 1}, "body", "has 11 bytes"),
        (b"\0" * 12, {"method": "top_k", "size": 4, "k": 5}, META_HEADER, "'k' must be"),
        (
            np.array([9], "<u4").tobytes() + np.array([1.0]).tobytes(),
            {"method": "top_k", "size": 4, "k": 1},
            "body",
            "index >= size",
        ),
        (b"\0" * 10, {"method": "qsgd", "size": 1, "bits": 3}, META_HEADER, "'bits' must be"),
        (b"\0" * 11, {"method": "qsgd", "size": 1, "bits": 8}, "body", "has 11 bytes"),
        (b"", {"method": "zip", "size": 1}, COMPRESSION_HEADER, "must be 'top_k' or 'qsgd'"),
        (b"", {"method": "top_k", "size": 0}, META_HEADER, "'size' must be"),
    ],
)
def test_a_malformed_compressed_body_names_what_is_wrong(body, meta, field, message) -> None:
    with pytest.raises(BodyError, match=message) as error:
        decode_gradient(body, meta)
    assert error.value.field == field


@pytest.mark.parametrize("encoding", ["json", "binary"])
def test_fit_step_carries_its_compression_option_in_both_encodings(encoding) -> None:
    # Prepare
    expected = request(method="qsgd", ratio=None, bits=4, feature_mean=[1.5], target_scale=2.0)
    step = FitStep(np.array([[1.0]]), np.array([0.0]), compression=expected)

    # Execute
    body, headers = step.encode(encoding)
    actual = FitStep.decode(body, headers, binary=encoding == "binary")

    # Assert
    assert actual.compression == expected
    assert isinstance(actual.compression.compressor(), QSGD)


def test_fit_step_without_compression_sends_no_such_option() -> None:
    # Execute
    body, headers = FitStep(np.array([[1.0]]), np.array([0.0])).encode("binary")

    # Assert
    assert "compression" not in json.loads(headers[META_HEADER])


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"ratio": 0.0}, "ratio"), ({"bits": 2}, "bits"), ({"feature_scale": [0.0]}, "feature_scale")],
)
def test_a_bad_compression_option_names_the_field(changes, field) -> None:
    with pytest.raises(ValueError, match=field):
        request(**changes)


def test_top_k_without_a_ratio_is_refused_naming_it() -> None:
    with pytest.raises(BodyError, match="ratio"):
        request(ratio=None).compressor()
