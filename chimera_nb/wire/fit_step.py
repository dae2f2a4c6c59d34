"""The fit-step exchange of a parameter server, in both encodings, for both ends.

The master sends :class:`FitStep` (weights and bias, optionally the class order and a
mini-batch request); the worker answers :class:`FitStepResult` (its gradients, sample count
and loss). The same dataclasses come out of JSON and binary bodies, so neither side cares
which encoding travelled.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from pydantic import ValidationError

from .._types import ClassLabel, Matrix, Vector
from .compressed import COMPRESSION_HEADER, CompressedFitStepResult, CompressionRequest
from .encoding import BINARY, JSON, BodyError, Encoding, decode_frame, encode_frame
from .models import FitStepRequest, FitStepResponse

__all__ = ["FitStep", "FitStepResult"]

#: The options of a fit-step that sets none: the whole batch, no class order, no compression.
_NO_OPTIONS = FitStepRequest(weights=[], bias=[0.0])


def _as_matrix(weights: np.ndarray, bias: np.ndarray) -> Matrix:
    if len(weights) % len(bias):
        raise BodyError(
            "weights", f"has {len(weights)} values, not a multiple of len(bias) = {len(bias)}"
        )
    return np.asarray(weights, dtype=np.float64).reshape(len(bias), -1)


@dataclass
class FitStep:
    """What a master asks of an SGD worker in one round."""

    weights: Matrix  # (n_outputs, n_features)
    bias: Vector  # (n_outputs,)
    classes: list[ClassLabel] | None = None
    batch_size: int | None = None
    seed: int | None = None
    compression: CompressionRequest | None = None
    _encoded: dict = field(default_factory=dict, repr=False, compare=False)

    def encode(self, encoding: Encoding) -> tuple[bytes, dict[str, str]]:
        """Body and headers of the request; encoded once, however many workers it goes to."""
        if encoding not in self._encoded:
            self._encoded[encoding] = self._encode(encoding)
        return self._encoded[encoding]

    def _encode(self, encoding: Encoding) -> tuple[bytes, dict[str, str]]:
        options = {"classes": self.classes, "batch_size": self.batch_size, "seed": self.seed}
        if self.compression is not None:
            options["compression"] = self.compression.model_dump()
        options = {key: value for key, value in options.items() if value is not None}
        if encoding == "binary":
            return encode_frame([self.weights, self.bias], options)
        payload = {"weights": self.weights.ravel().tolist(), "bias": self.bias.tolist()}
        return json.dumps({**payload, **options}).encode(), {"content-type": JSON}

    @classmethod
    def decode(cls, body: bytes, headers: Mapping[str, str], binary: bool) -> FitStep:
        """Parse a request body; raises :class:`BodyError` or pydantic's ValidationError."""
        if binary:
            (weights, bias), options = decode_frame(body, headers, ["weights", "bias"])
            if len(bias) == 0:
                raise BodyError("bias", "must hold at least one value")
            # validate the options, when there are any (a plain round's frame has none)
            parsed = FitStepRequest(weights=[], bias=[0.0], **options) if options else _NO_OPTIONS
        else:
            parsed = FitStepRequest.model_validate_json(body)
            weights, bias = np.array(parsed.weights), np.array(parsed.bias)
        return cls(
            _as_matrix(weights, bias),
            np.asarray(bias, dtype=np.float64),
            parsed.classes,
            parsed.batch_size,
            parsed.seed,
            parsed.compression,
        )


@dataclass
class FitStepResult:
    """A worker's answer: mean gradients over ``n_samples`` rows, and the loss there."""

    weights_gradient: Matrix
    bias_gradient: Vector
    n_samples: int
    loss: float

    def encode(self, encoding: Encoding) -> tuple[bytes, dict[str, str]]:
        """Body and headers of the response."""
        if encoding == "binary":
            meta = {"n_samples": self.n_samples, "loss": self.loss}
            return encode_frame([self.weights_gradient, self.bias_gradient], meta)
        return FitStepResponse(
            weights_gradients=self.weights_gradient.ravel().tolist(),
            bias_gradient=self.bias_gradient.tolist(),
            n_samples=self.n_samples,
            loss=self.loss,
        ).model_dump_json().encode(), {"content-type": JSON}

    @classmethod
    def decode(
        cls, body: bytes, headers: Mapping[str, str]
    ) -> FitStepResult | CompressedFitStepResult:
        """Parse a response body (the master's side): a compressed answer stays compressed,
        for the master to decode where it gathers the gradients."""
        if COMPRESSION_HEADER in headers:
            return CompressedFitStepResult.decode(body, headers)
        try:
            if headers.get("content-type", "").startswith(BINARY):
                (weights, bias), meta = decode_frame(
                    body, headers, ["weights_gradients", "bias_gradient"]
                )
                n_samples, loss = int(meta["n_samples"]), float(meta["loss"])
            else:
                parsed = FitStepResponse.model_validate_json(body)
                weights, bias = np.array(parsed.weights_gradients), np.array(parsed.bias_gradient)
                n_samples, loss = parsed.n_samples, parsed.loss
        except (ValidationError, KeyError, TypeError, ValueError) as error:
            raise BodyError("response", f"is not a fit-step answer: {error}") from None
        return cls(_as_matrix(weights, bias), np.asarray(bias, dtype=np.float64), n_samples, loss)
