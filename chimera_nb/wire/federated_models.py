"""The exchange of federated learning (``POST fed/fit``), for both ends: binary frames only.

The master sends :class:`FederatedFit`: the global weights in **standardized units** with the
global standardization (feature means and scales, target mean and scale), and how to train
locally. The client answers :class:`FederatedFitResult`: its new weights (same units), the
number of samples it holds (n_k, its weight in the average) and its loss at the global weights.

Standardized units make the central twin exact: one local full-batch step is the parameter
server's step, taken in the same coordinates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .._types import ClassLabel, Matrix, Vector
from .encoding import BINARY, BodyError, decode_frame, encode_frame

__all__ = ["FederatedFit", "FederatedFitOptions", "FederatedFitResult"]

_REQUEST_VECTORS = ["weights", "bias", "feature_mean", "feature_scale"]
_ANSWER_VECTORS = ["weights", "bias"]


class FederatedFitOptions(BaseModel):
    """How a client trains in one round (the frame's header; checked field by field)."""

    model_config = ConfigDict(extra="forbid")

    learning_rate: float = Field(gt=0)
    local_epochs: int | None = Field(default=None, ge=1)
    local_steps: int | None = Field(default=None, ge=1)
    batch_size: int | None = Field(default=None, ge=1)
    mu: float = Field(default=0.0, ge=0)
    seed: int = Field(default=0, ge=0)
    classes: list[ClassLabel] | None = None
    target_mean: float = 0.0
    target_scale: float = Field(default=1.0, gt=0)
    clip_norm: float | None = Field(default=None, gt=0)
    noise_multiplier: float = Field(default=0.0, ge=0)

    @model_validator(mode="after")
    def _one_budget(self) -> FederatedFitOptions:
        if self.local_epochs is not None and self.local_steps is not None:
            raise ValueError("give local_epochs or local_steps, not both")
        if self.noise_multiplier > 0 and self.clip_norm is None:
            raise ValueError("noise_multiplier needs clip_norm (the noise is sigma * clip_norm)")
        return self


@dataclass
class FederatedFit:
    """What a master asks of a sampled client in one round."""

    weights: Matrix  # (n_outputs, n_features), standardized units
    bias: Vector  # (n_outputs,)
    feature_mean: Vector
    feature_scale: Vector
    options: FederatedFitOptions

    def encode(self) -> tuple[bytes, dict[str, str]]:
        vectors = [self.weights, self.bias, self.feature_mean, self.feature_scale]
        return encode_frame(vectors, self.options.model_dump(exclude_defaults=True))

    @classmethod
    def decode(cls, body: bytes, headers: Mapping[str, str]) -> FederatedFit:
        """Parse a request; raises :class:`BodyError` or pydantic's ValidationError."""
        if not headers.get("content-type", "").startswith(BINARY):
            raise BodyError("content-type", f"fed/fit takes binary frames ({BINARY}) only")
        (weights, bias, mean, scale), meta = decode_frame(body, headers, _REQUEST_VECTORS)
        if len(bias) == 0 or len(weights) % len(bias):
            raise BodyError("weights", f"has {len(weights)} values for {len(bias)} outputs")
        if len(mean) != len(scale) or len(mean) * len(bias) != len(weights):
            raise BodyError(
                "feature_mean", f"and feature_scale need {len(weights) // len(bias)} values each"
            )
        options = FederatedFitOptions.model_validate(meta)
        return cls(weights.reshape(len(bias), -1), bias, mean, scale, options)


@dataclass
class FederatedFitResult:
    """A client's answer: its new weights after local training (standardized units).

    ``update_norm`` is the norm of ``new - global`` before any clipping; ``loss`` the loss of
    the global weights on the whole shard (standardized units), before local training.
    """

    weights: Matrix
    bias: Vector
    n_samples: int
    loss: float
    update_norm: float
    n_steps: int

    def encode(self) -> tuple[bytes, dict[str, str]]:
        meta = {
            "n_samples": self.n_samples,
            "loss": self.loss,
            "update_norm": self.update_norm,
            "n_steps": self.n_steps,
        }
        return encode_frame([self.weights, self.bias], meta)

    @classmethod
    def decode(cls, body: bytes, headers: Mapping[str, str]) -> FederatedFitResult:
        try:
            (weights, bias), meta = decode_frame(body, headers, _ANSWER_VECTORS)
            return cls(
                np.asarray(weights).reshape(len(bias), -1),
                np.asarray(bias),
                int(meta["n_samples"]),
                float(meta["loss"]),
                float(meta["update_norm"]),
                int(meta["n_steps"]),
            )
        except (ValidationError, KeyError, TypeError, ValueError, ZeroDivisionError) as error:
            raise BodyError("response", f"is not a fed/fit answer: {error}") from None
