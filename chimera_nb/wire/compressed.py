"""Compressed gradients on the wire: the request's compression option and two binary frames.

A master that wants compressed gradients adds a :class:`CompressionRequest` to each fit-step
(the ``compression`` option, in the JSON body or the binary frame's meta header). The worker
then answers with one of two frames instead of the dense gradient, whatever the request's
encoding (they are binary by nature)::

    Content-Type: application/octet-stream
    X-Chimera-Compression: top_k            (or qsgd)
    X-Chimera-Meta: {"size": 12, "n_outputs": 1, "n_samples": 3248, "loss": 0.41, ...}

- **sparse** (``top_k``): ``k`` uint32 indices, then ``k`` float64 values: ``12 k`` bytes
  where the dense gradient takes ``8 d``.
- **quantized** (``qsgd``): the float64 norm, the levels (one uint8 each for 8 bits, two per
  byte for 4 bits), then the signs (one bit each): ``8 + d (bits + 1) / 8`` bytes.

Little-endian throughout. The gradient is in the master's standardized units (the request
carries the standardization), so that "largest" means the same for every feature.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np
from pydantic import AllowInfNan, BaseModel, ConfigDict, Field, Strict

from ..algorithms.compression import QSGD, Compressed, QuantizedVector, SparseVector, TopK
from .encoding import BINARY, META_HEADER, BodyError

__all__ = [
    "COMPRESSION_HEADER",
    "CompressedFitStepResult",
    "CompressionRequest",
    "decode_gradient",
    "encode_gradient",
]

COMPRESSION_HEADER = "x-chimera-compression"

_Float = Annotated[float, Strict(), AllowInfNan(False)]


class CompressionRequest(BaseModel):
    """How a worker compresses its gradient this round (the fit-step's ``compression``).

    ``fit`` names the fit: a worker keeps its error-feedback residual (and its rounding
    generator, seeded with ``seed`` and its name) per fit, and starts afresh when it changes.
    ``feature_mean``, ``feature_scale`` and ``target_scale`` are the master's standardization,
    which turns the worker's raw gradient into the master's units before compressing.
    """

    model_config = ConfigDict(extra="forbid")

    method: Literal["top_k", "qsgd"]
    ratio: Annotated[_Float, Field(gt=0.0, le=1.0)] | None = None
    error_feedback: Annotated[bool, Strict()] = True
    bits: Literal[4, 8] | None = None
    fit: Annotated[str, Field(min_length=1, max_length=64)]
    seed: Annotated[int, Strict(), Field(ge=0, le=2**32 - 1)]
    feature_mean: list[_Float]
    feature_scale: list[Annotated[_Float, Field(gt=0.0)]]
    target_scale: Annotated[_Float, Field(gt=0.0)] = 1.0

    def compressor(self) -> TopK | QSGD:
        """The encoder this option asks for."""
        if self.method == "top_k":
            if self.ratio is None:
                raise BodyError("compression.ratio", "top_k needs a ratio in (0, 1]")
            return TopK(self.ratio, self.error_feedback)
        return QSGD(self.bits or 8)


def encode_gradient(compressed: Compressed) -> tuple[bytes, dict]:
    """The body of a compressed gradient, and what its meta header must say to read it."""
    if isinstance(compressed, SparseVector):
        body = (
            compressed.indices.astype("<u4").tobytes() + compressed.values.astype("<f8").tobytes()
        )
        return body, {"method": "top_k", "size": compressed.size, "k": len(compressed.indices)}
    levels = compressed.levels.astype(np.uint8)
    if compressed.bits == 4:  # two levels per byte: the first in the high half
        padded = np.append(levels, np.zeros(len(levels) % 2, np.uint8))
        levels = (padded[0::2] << 4) | padded[1::2]
    body = (
        np.array([compressed.norm], "<f8").tobytes()
        + levels.tobytes()
        + np.packbits(compressed.negative).tobytes()
    )
    return body, {"method": "qsgd", "size": compressed.size, "bits": compressed.bits}


def decode_gradient(body: bytes, meta: Mapping) -> Compressed:
    """Read a body written by :func:`encode_gradient`; :class:`BodyError` says what is wrong."""
    method, size = meta.get("method"), meta.get("size")
    if not isinstance(size, int) or size < 1:
        raise BodyError(META_HEADER, f"'size' must be an integer >= 1, got {size!r}")
    if method == "top_k":
        k = meta.get("k")
        if not isinstance(k, int) or not 1 <= k <= size:
            raise BodyError(META_HEADER, f"'k' must be an integer in 1..{size}, got {k!r}")
        _check_length(body, 12 * k, f"{k} uint32 indices and {k} float64 values")
        indices = np.frombuffer(body, "<u4", count=k)
        values = np.frombuffer(body, "<f8", offset=4 * k)
        if (indices >= size).any():
            raise BodyError("body", f"has an index >= size {size}")
        if not np.isfinite(values).all():
            raise BodyError("body", "contains NaN or infinite values")
        return SparseVector(size, indices, values)
    if method == "qsgd":
        bits = meta.get("bits")
        if bits not in (4, 8):
            raise BodyError(META_HEADER, f"'bits' must be 4 or 8, got {bits!r}")
        n_level_bytes = size if bits == 8 else (size + 1) // 2
        _check_length(body, 8 + n_level_bytes + (size + 7) // 8, "a norm, levels and signs")
        norm = float(np.frombuffer(body, "<f8", count=1)[0])
        if not np.isfinite(norm):
            raise BodyError("body", "has a norm that is NaN or infinite")
        levels = np.frombuffer(body, np.uint8, count=n_level_bytes, offset=8)
        if bits == 4:
            levels = np.stack([levels >> 4, levels & 0x0F], axis=1).ravel()[:size]
        signs = np.frombuffer(body, np.uint8, offset=8 + n_level_bytes)
        negative = np.unpackbits(signs, count=size).astype(bool)
        return QuantizedVector(norm, levels, negative, bits)
    raise BodyError(COMPRESSION_HEADER, f"must be 'top_k' or 'qsgd', got {method!r}")


def _check_length(body: bytes, expected: int, what: str) -> None:
    if len(body) != expected:
        raise BodyError("body", f"has {len(body)} bytes but {what} take {expected}")


@dataclass
class CompressedFitStepResult:
    """A worker's compressed answer: its gradient (weights row by row, then the bias, in the
    master's standardized units), the shape to cut it back, sample count and raw loss."""

    gradient: Compressed
    n_outputs: int
    n_samples: int
    loss: float

    def encode(self) -> tuple[bytes, dict[str, str]]:
        body, meta = encode_gradient(self.gradient)
        method = meta.pop("method")
        meta.update(n_outputs=self.n_outputs, n_samples=self.n_samples, loss=self.loss)
        return body, {
            "content-type": BINARY,
            COMPRESSION_HEADER: method,
            META_HEADER: json.dumps(meta, separators=(",", ":")),
        }

    @classmethod
    def decode(cls, body: bytes, headers: Mapping[str, str]) -> CompressedFitStepResult:
        try:
            meta = json.loads(headers.get(META_HEADER, ""))
        except ValueError as error:
            raise BodyError(META_HEADER, f"is not valid JSON: {error}") from None
        if not isinstance(meta, dict):
            raise BodyError(META_HEADER, "must be a JSON object")
        meta["method"] = headers.get(COMPRESSION_HEADER)
        gradient = decode_gradient(body, meta)
        try:
            n_outputs, n_samples, loss = (
                int(meta["n_outputs"]),
                int(meta["n_samples"]),
                meta["loss"],
            )
        except (KeyError, TypeError, ValueError) as error:
            raise BodyError(META_HEADER, f"needs n_outputs, n_samples and loss: {error}") from None
        if not 1 <= n_outputs < gradient.size or gradient.size % (n_outputs) != 0:
            raise BodyError(META_HEADER, f"'n_outputs' {n_outputs} does not divide size")
        return cls(gradient, n_outputs, n_samples, float(loss))
