"""The exchange of feature-split model parallelism, for both ends.

Step C is JSON (:class:`BlockResponse`: which columns and rows a worker holds, with their
statistics; :class:`FeatureSplitSetup`: the standardization of its columns and the number of
outputs). The calls of a round carry matrices as they are, in binary frames (one
``(rows, columns)`` matrix each, its shape in the ``X-Chimera-Meta`` header, see
:mod:`.encoding`): the step to apply and the partial scores back, then the residuals and the
block's gradient back; prediction sends a worker only its own columns of the new rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, Field

from .._types import Matrix
from .encoding import BINARY, BodyError, decode_frame, encode_frame
from .models import Number, StatisticsResponse, _Body

__all__ = ["BlockResponse", "FeatureSplitSetup", "MatrixFrame", "SetupResponse"]

#: The most outputs (classes) a model may have: a bound on what one setup may allocate.
MAX_OUTPUTS = 10_000


class BlockResponse(StatisticsResponse):
    """Which columns a worker holds, for which rows (``first_row`` to ``first_row +
    n_samples`` of the label holder's order), and their statistics (count, sums, sums of
    squared deviations) for the global standardization."""

    first_row: int


class FeatureSplitSetup(_Body):
    """The start of a fit: the standardization of this worker's columns (merged from every
    row group holding them) and the number of outputs; the worker's weights become zero."""

    feature_mean: list[Number]
    feature_scale: list[Annotated[Number, Field(gt=0)]]
    n_outputs: Annotated[int, Field(ge=1, le=MAX_OUTPUTS, strict=True)]


class SetupResponse(BaseModel):
    n_weights: int  # outputs x columns of this block


class MatrixFrame:
    """One float64 matrix and a few numbers (``meta``) in a binary frame: every call of a
    round, both ways. ``name`` is the matrix's field name in errors (``"residuals"``)."""

    def __init__(self, name: str, matrix: Matrix, **meta: Any) -> None:
        self.name = name
        self.matrix = matrix
        self.meta = meta

    def encode(self) -> tuple[bytes, dict[str, str]]:
        return encode_frame([self.matrix], {**self.meta, "shape": list(self.matrix.shape)})

    @classmethod
    def decode(cls, name: str, body: bytes, headers: Mapping[str, str]) -> MatrixFrame:
        """Parse a frame; raises :class:`BodyError` naming what is wrong."""
        if not headers.get("content-type", "").startswith(BINARY):
            raise BodyError("content-type", f"this endpoint takes binary frames ({BINARY}) only")
        (values,), meta = decode_frame(body, headers, [name])
        shape = meta.pop("shape", None)
        if (
            not isinstance(shape, list)
            or len(shape) != 2
            or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)
            or shape[0] * shape[1] != len(values)
        ):
            raise BodyError(name, f"needs 'shape' [rows, columns] for its {len(values)} values")
        return cls(name, np.asarray(values).reshape(shape), **meta)

    def number(self, key: str, default: float | None = None, minimum: float = 0.0) -> float:
        """``meta[key]`` as a finite number at least ``minimum`` (else a BodyError naming it)."""
        value = self.meta.get(key, default)
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not np.isfinite(value)
            or value < minimum
        ):
            raise BodyError(key, f"must be a finite number >= {minimum}, got {value!r}")
        return float(value)

    def require_shape(self, shape: tuple[int, int], why: str) -> Matrix:
        """The matrix, if it has ``shape``; else a BodyError naming the field and ``why``."""
        if self.matrix.shape != shape:
            raise BodyError(self.name, f"has shape {self.matrix.shape} but {why} needs {shape}")
        return self.matrix
