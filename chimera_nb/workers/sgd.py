"""The SGD worker of data parallelism: it holds a shard and computes gradients on it."""

from __future__ import annotations

import asyncio
import math
import warnings
import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np
from fastapi import FastAPI, Request, Response

from .._exceptions import ConfigurationError
from .._types import ModelType
from ..algorithms import ColumnStatistics, Standardizer, loss_for, n_outputs
from ..algorithms.compression import EncoderState
from ..wire import (
    DataSampleResponse,
    FitStep,
    FitStepRequest,
    FitStepResponse,
    FitStepResult,
    StatisticsResponse,
    is_binary,
    paths,
)
from ..wire.compressed import CompressedFitStepResult, CompressionRequest
from ..wire.encoding import BodyError
from ..wire.fastpath import RawHandler
from ..wire.server import error_responses
from .base import Worker
from .training_data import TrainingData

__all__ = ["SGDWorker"]

_SAMPLE_ROWS = 5

# The fit-step route reads its raw body (JSON or a binary frame) and answers in the same
# encoding, so FastAPI cannot infer either schema; publish them for /docs by hand.
_BINARY = {"schema": {"type": "string", "format": "binary"}}
_FIT_STEP_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": FitStepRequest.model_json_schema()},
            "application/octet-stream": _BINARY,
        },
    }
}
_FIT_STEP_ANSWERS = {
    200: {
        "description": "The gradients, in the request's encoding",
        "content": {
            "application/json": {"schema": FitStepResponse.model_json_schema()},
            "application/octet-stream": _BINARY,
        },
    },
    **error_responses(422),
}


class SGDWorker(Worker):
    """A worker for parameter-server training of linear models.

    It answers ``POST /v1/chimera/sgd/fit-step`` with the **true gradient of its shard** at the
    weights it is sent (not a model delta), the number of samples it averaged and the loss
    there; the master aggregates and updates. It never keeps model state between rounds,
    so a restarted worker rejoins at the next round. The one exception is compression
    (``ParameterServerMaster(compression=TopK(...))``): the worker then keeps its
    error-feedback residual from round to round, until a new fit starts.

    Parameters
    ----------
    model_type : {"regressor", "classifier"}
        Squared loss for a regressor; logistic loss for two classes, softmax for more.
    **kwargs
        The seed's scikit-learn SGD options (``eta0``, ``max_iter``...) are accepted so that
        seed scripts run, and ignored with a warning: here the master owns the learning
        rate and the rounds (``ParameterServerMaster(learning_rate=..., max_iter=...)``).

    Examples
    --------
    >>> from chimera_nb import SGDWorker
    >>> SGDWorker("regressor")
    SGDWorker('regressor')
    """

    role = "SGDWorker"

    def __init__(self, model_type: ModelType = "regressor", **kwargs: Any) -> None:
        if model_type not in ("regressor", "classifier"):
            raise ConfigurationError(
                f"SGDWorker's model_type must be 'regressor' or 'classifier', got {model_type!r}"
            )
        if kwargs:
            warnings.warn(
                f"SGDWorker ignores {sorted(kwargs)}: in chimera-nb the master owns the learning "
                "rate and the rounds; set them on ParameterServerMaster(learning_rate=..., "
                "max_iter=...).",
                UserWarning,
                stacklevel=2,
            )
        self.model_type = model_type
        self.kwargs = kwargs

    def _repr_arguments(self) -> str:
        return repr(self.model_type)

    def _regression(self) -> bool:
        return self.model_type == "regressor"

    def load(self, name: str, data: TrainingData) -> SGDWorker:
        super().load(name, data)
        if self.model_type == "regressor":
            self.y_ = self.y_.astype(np.float64)
        self._class_index: tuple[tuple, np.ndarray] | None = None
        self._encoder: tuple[str, EncoderState, np.random.Generator] | None = None
        return self

    # -- the arithmetic, one small method per question --------------------------------------

    def statistics(self) -> StatisticsResponse:
        """Column statistics for global standardization, and the classes held here."""
        features = ColumnStatistics.of(self.X_)
        answer = StatisticsResponse(
            columns=self.columns_,
            n_samples=len(self.X_),
            feature_sum=features.sum.tolist(),
            feature_m2=features.m2.tolist(),
        )
        if self.model_type == "regressor":
            target = ColumnStatistics.of(self.y_)
            answer.target_sum, answer.target_m2 = float(target.sum[0]), float(target.m2[0])
        else:
            answer.classes = np.unique(self.y_).tolist()
        return answer

    def _class_indices(self, classes: list | None) -> tuple[int, np.ndarray]:
        """The number of classes and each row's class index in the master's class order."""
        classes = classes if classes is not None else np.unique(self.y_).tolist()
        key = tuple(classes)
        if self._class_index is None or self._class_index[0] != key:
            position = {label: index for index, label in enumerate(classes)}
            unknown = sorted({str(label) for label in self.y_ if label not in position})
            if unknown:
                raise BodyError("classes", f"does not contain labels {unknown} found in this shard")
            self._class_index = (key, np.array([position[label] for label in self.y_]))
        return len(classes), self._class_index[1]

    def fit_step(self, step: FitStep) -> FitStepResult:
        """Mean loss and gradient of the shard (or of a mini-batch of it) at ``step``'s weights."""
        if self.model_type == "regressor":
            n_classes, targets = 0, self.y_
        else:
            n_classes, targets = self._class_indices(step.classes)
        expected = (n_outputs(self.model_type, n_classes), self.X_.shape[1])
        if step.weights.shape != expected:
            raise BodyError(
                "weights",
                f"has shape {step.weights.shape} (from len(bias) = {len(step.bias)}) "
                f"but this shard needs {expected}: (outputs, features {self.columns_})",
            )
        X = self.X_
        if step.batch_size is not None and step.batch_size < len(X):
            rows = np.random.default_rng(step.seed).choice(len(X), step.batch_size, replace=False)
            X, targets = X[rows], targets[rows]
        loss, weights_gradient, bias_gradient = self._loss_and_gradient(
            step.weights, step.bias, X, targets, n_classes
        )
        finite = np.isfinite(weights_gradient).all() and np.isfinite(bias_gradient).all()
        if not (finite and math.isfinite(loss)):
            # JSON cannot carry it; and a master needs to hear why, not read a NaN gradient
            raise BodyError(
                "weights",
                f"give a loss of {loss} (or a gradient) that is infinite or NaN on this shard: "
                "they are too large for float64 arithmetic, as when a fit diverges; lower the "
                "master's learning rate",
            )
        return FitStepResult(weights_gradient, bias_gradient, len(X), loss)

    def _corrupted(self, result: FitStepResult) -> FitStepResult:
        """``result`` with its gradient as a Byzantine worker sends it (itself if honest); the
        loss stays true, so a master's loss curve shows what the bad gradient did."""
        if self.byzantine_ is None:
            return result
        weights, bias = result.weights_gradient, result.bias_gradient
        vector = self._corrupt(np.append(weights.ravel(), bias))
        n_bias = len(bias)
        return FitStepResult(
            vector[:-n_bias].reshape(weights.shape), vector[-n_bias:], result.n_samples, result.loss
        )

    def compressed(
        self, result: FitStepResult, request: CompressionRequest
    ) -> CompressedFitStepResult:
        """``result``'s gradient in the master's standardized units, compressed as asked.

        The residual of error feedback (and QSGD's rounding generator) belong to one fit: a
        request naming another fit starts them afresh. A reply the master never reads
        (cancelled, or lost) loses what it sent; the residual does not know.
        """
        if self._encoder is None or self._encoder[0] != request.fit:
            seed = np.random.SeedSequence([request.seed, zlib.crc32(self.name_.encode())])
            self._encoder = (request.fit, EncoderState(), np.random.default_rng(seed))
        _, state, rng = self._encoder
        n_features = self.X_.shape[1]
        if not len(request.feature_mean) == len(request.feature_scale) == n_features:
            raise BodyError(
                "compression", f"feature_mean and feature_scale need {n_features} values each"
            )
        mean, scale = np.array(request.feature_mean), np.array(request.feature_scale)
        standardizer = Standardizer(mean, scale, target_scale=request.target_scale)
        weights, bias = standardizer.gradient_from_raw(
            result.weights_gradient, result.bias_gradient
        )
        gradient = request.compressor().encode(np.append(weights.ravel(), bias), state, rng)
        return CompressedFitStepResult(gradient, len(bias), result.n_samples, result.loss)

    def _loss_and_gradient(
        self,
        weights: np.ndarray,
        bias: np.ndarray,
        X: np.ndarray,
        targets: np.ndarray,
        n_classes: int,
    ) -> tuple[float, np.ndarray, np.ndarray]:
        """The mean loss of the rows ``X, targets`` and its gradient (a subclass, such as a
        lab's, may compute them its own way)."""
        return loss_for(self.model_type, n_classes)(weights, bias, X, targets)

    # -- the endpoints ----------------------------------------------------------------------

    def _add_routes(self, app: FastAPI) -> None:
        @app.get(paths.SGD_REQUEST_DATA_SAMPLE, response_model=DataSampleResponse)
        async def request_data_sample() -> DataSampleResponse:
            rows = slice(0, _SAMPLE_ROWS)
            return DataSampleResponse(
                X_train_sample_columns=self.columns_,
                X_train_sample_rows=self.X_[rows].tolist(),
                y_train_sample_columns=[self.target_name_],
                y_train_sample_rows=[[label] for label in self.y_[rows].tolist()],
            )

        @app.get(paths.SGD_STATISTICS, response_model=StatisticsResponse)
        async def statistics() -> StatisticsResponse:
            return self.statistics()

        @app.post(paths.SGD_FIT_STEP, openapi_extra=_FIT_STEP_BODY, responses=_FIT_STEP_ANSWERS)
        async def fit_step(request: Request) -> Response:
            # For /docs: the fast route (below) answers this path before FastAPI sees it.
            status, body, headers = await self._answer_fit_step(
                await request.body(), request.headers
            )
            return Response(body, status, headers=headers)

    def _fast_routes(self) -> dict[str, RawHandler]:
        return {paths.SGD_FIT_STEP: self._answer_fit_step}

    async def _answer_fit_step(
        self, body: bytes, headers: Mapping[str, str]
    ) -> tuple[int, bytes, dict[str, str]]:
        """A round's call: the gradient at the weights sent, in the encoding they came in.
        Async and inline: a linear gradient takes microseconds to milliseconds, less than a
        hop to a thread pool would."""
        if self.delay_:
            await asyncio.sleep(self.delay_)  # a straggler, made on purpose
        binary = is_binary(headers)
        step = FitStep.decode(body, headers, binary)
        result = self._corrupted(self.fit_step(step))
        if step.compression is not None:  # compressed frames are binary, whatever was asked
            return 200, *self.compressed(result, step.compression).encode()
        answer, answer_headers = result.encode("binary" if binary else "json")
        return 200, answer, answer_headers
