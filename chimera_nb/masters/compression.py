"""Compressed gradients for the parameter server: the master's half of the protocol.

A mixin of :class:`~chimera_nb.ParameterServerMaster` (its ``compression`` parameter), kept
apart so that the master's own module reads as the seed's flowchart. Two jobs:

- step D: each fit-step carries a :class:`~chimera_nb.wire.compressed.CompressionRequest`
  (which encoder, this fit's name and seed, and the standardization, so that the worker
  compresses in the master's units, where "the largest coordinates" means the same for every
  feature: in raw units, density's gradient is hundreds of times sulfur dioxide's);
- step H: the master decodes each compressed answer with the same encoder
  (:meth:`~chimera_nb.algorithms.TopK.decode`), so that the aggregator sees dense gradients
  and never knows that compression happened.

The worker keeps the residual of error feedback; see :mod:`chimera_nb.algorithms.compression`.
"""

from __future__ import annotations

import uuid

import numpy as np

from .._exceptions import ConfigurationError
from ..algorithms import ShardGradient
from ..algorithms.compression import QSGD, Compressor, TopK
from ..wire import FitStepResult
from ..wire.compressed import CompressedFitStepResult, CompressionRequest
from .linear_model import LinearModel

__all__ = ["CompressedGradients"]


class CompressedGradients:
    """``compression`` of a parameter server (documented on
    :class:`~chimera_nb.ParameterServerMaster`)."""

    compression: Compressor | None
    random_state: int | None
    _training: LinearModel
    _request: CompressionRequest | None = None

    def _validate_params(self) -> None:
        super()._validate_params()  # type: ignore[misc]
        if self.compression is None:
            return
        if not isinstance(self.compression, (TopK, QSGD)):
            raise ConfigurationError(
                f"{type(self).__name__}'s compression must be None, TopK(ratio) or QSGD(bits), "
                f"got {self.compression!r}"
            )

    def _begin_fit(self) -> None:
        super()._begin_fit()  # type: ignore[misc]
        self._request = None  # a new fit: new name, so every worker starts a new residual

    def _compression_request(self) -> CompressionRequest | None:
        """Step D's compression option, made once per fit (after step C, which gives the
        standardization); None without compression."""
        if self.compression is None:
            return None
        if self._request is None:
            standardizer = self._training.standardizer
            method = "top_k" if isinstance(self.compression, TopK) else "qsgd"
            self._request = CompressionRequest(
                method=method,
                ratio=getattr(self.compression, "ratio", None),
                error_feedback=getattr(self.compression, "error_feedback", True),
                bits=getattr(self.compression, "bits", None),
                fit=uuid.uuid4().hex,  # unique per fit, even with the same random_state
                seed=int(np.random.default_rng(self.random_state).integers(2**32)),
                feature_mean=standardizer.feature_mean.tolist(),
                feature_scale=standardizer.feature_scale.tolist(),
                target_scale=float(standardizer.target_scale),
            )
        return self._request

    def _decoded(self, result: FitStepResult | CompressedFitStepResult) -> ShardGradient:
        """Step H for one answer: its gradient in standardized units; a compressed one is
        decoded here (it already is in standardized units), a dense one converted."""
        if not isinstance(result, CompressedFitStepResult):
            return self._training.standardized(result)
        flat = self.compression.decode(result.gradient)  # type: ignore[union-attr]
        n_outputs = result.n_outputs
        weights, bias = flat[:-n_outputs].reshape(n_outputs, -1), flat[-n_outputs:]
        loss = self._training.standardizer.loss_from_raw(result.loss)
        return ShardGradient(weights, bias, result.n_samples, loss)
