"""The worker of feature-split model parallelism: some columns of every row, and their weights.

A :class:`FeatureSplitWorker` holds a block of columns ``X_b`` (all rows, or one row group of
them in the hybrid layout) and the matching block of the weights ``W_b``, and never sees the
label: the master is the label holder. Each round it answers two calls:

1. ``scores``: apply the step the master sends (the gradient of its block from the last round,
   averaged over the replicas of the block in the hybrid layout), then answer its partial
   scores ``X_b W_b^T``;
2. ``gradient``: given the residuals ``r = dL/dz`` of its rows, answer the gradient of its
   weights ``r^T X_b / n`` (:func:`~chimera_nb.algorithms.block_gradient`).

Why the step waits for the next ``scores`` call rather than being taken at once: the master
first checks convergence on the whole gradient (the parameter server's step J before K), and
in the hybrid layout every replica of a block must take the same, averaged step. It costs no
extra call: a round stays two calls per worker.

The worker computes in the master's standardized units (the means and scales of its columns,
merged over every row group, are sent in ``setup``), so a round equals one step of the
parameter server's full-batch gradient descent.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Mapping
from typing import Any

import numpy as np
from fastapi import FastAPI, Request, Response

from .._exceptions import ConfigurationError
from .._types import ModelType
from ..algorithms import ColumnStatistics, block_gradient, partial_scores
from ..wire import JSON, BodyError, paths
from ..wire.fastpath import RawHandler
from ..wire.feature_split_models import (
    BlockResponse,
    FeatureSplitSetup,
    MatrixFrame,
    SetupResponse,
)
from ..wire.server import error_responses
from .base import Worker
from .training_data import TrainingData

__all__ = ["FeatureSplitWorker"]

_BINARY = {"schema": {"type": "string", "format": "binary"}}
_FRAME_DOCS = {"requestBody": {"required": True, "content": {"application/octet-stream": _BINARY}}}
_FRAME_ANSWERS = {
    200: {"description": "A binary frame", "content": {"application/octet-stream": _BINARY}},
    **error_responses(409, 422),
}


class FeatureSplitWorker(Worker):
    """A worker holding a block of columns and their weights (feature-split model
    parallelism, :class:`~chimera_nb.FeatureSplitMaster`).

    Parameters
    ----------
    model_type : {"regressor", "classifier"}
        What the master fits: one output for a regressor, one per class (or one, for two
        classes) for a classifier. The worker only computes linear scores and gradients; the
        loss, which needs the label, is the master's.

    Examples
    --------
    >>> import numpy as np
    >>> from chimera_nb import FeatureSplitWorker
    >>> FeatureSplitWorker("regressor").with_block(np.zeros((5, 2)))
    FeatureSplitWorker('regressor', 5 rows)
    """

    role = "FeatureSplitWorker"

    def __init__(self, model_type: ModelType = "regressor") -> None:
        if model_type not in ("regressor", "classifier"):
            raise ConfigurationError(
                "FeatureSplitWorker's model_type must be 'regressor' or 'classifier', got "
                f"{model_type!r}"
            )
        self.model_type = model_type
        self.first_row = 0

    def _repr_arguments(self) -> str:
        return repr(self.model_type)

    def with_block(
        self, X: Any, first_row: int = 0, columns: list[str] | None = None
    ) -> FeatureSplitWorker:
        """A copy of this worker holding the columns ``X`` (an array, or a DataFrame that
        names them; or name them in ``columns``) of the rows ``first_row`` to ``first_row +
        len(X)`` in the label holder's order. No labels: they stay with the master."""
        if not (isinstance(first_row, (int, np.integer)) and first_row >= 0):
            raise ConfigurationError(f"first_row must be an integer >= 0, got {first_row!r}")
        worker = copy.copy(self)
        data = TrainingData.of(X, np.zeros(len(X)))
        if columns is not None and len(columns) != data.X.shape[1]:
            raise ConfigurationError(f"{len(columns)} columns named for {data.X.shape[1]}")
        names = data.columns if columns is None else [str(column) for column in columns]
        worker._data = TrainingData(names, data.X, np.empty(0))
        worker.first_row = int(first_row)
        return worker

    def with_data(self, X: Any, y: Any) -> Worker:
        raise ConfigurationError(
            "a FeatureSplitWorker holds columns, never the labels (the master is the label "
            "holder): use worker.with_block(X_columns), or LocalCluster.from_feature_blocks("
            "worker, X, n_workers=3), and give y to the master: master.fit(cluster, y)"
        )

    def load(self, name: str, data: TrainingData) -> FeatureSplitWorker:
        super().load(name, data)
        self.weights_: np.ndarray | None = None  # (n_outputs, n_columns), standardized units
        self.fitted_weights_: np.ndarray | None = None  # the last finished fit's, to predict
        self._standardizer: tuple[np.ndarray, np.ndarray] | None = None  # mean, scale
        self._X_standardized = self.X_
        return self

    # -- the arithmetic, one method per call ------------------------------------------------

    def block(self) -> BlockResponse:
        """Which columns and rows this worker holds, and their statistics."""
        statistics = ColumnStatistics.of(self.X_)
        return BlockResponse(
            columns=self.columns_,
            n_samples=len(self.X_),
            feature_sum=statistics.sum.tolist(),
            feature_m2=statistics.m2.tolist(),
            first_row=self.first_row,
        )

    def setup(self, body: FeatureSplitSetup) -> SetupResponse:
        """Start a fit: standardize the columns as the master says, weights at zero."""
        n_columns = self.X_.shape[1]
        for field in ("feature_mean", "feature_scale"):
            if len(getattr(body, field)) != n_columns:
                raise BodyError(
                    field,
                    f"has {len(getattr(body, field))} values but this block has "
                    f"{n_columns} columns: {self.columns_}",
                )
        if self.model_type == "regressor" and body.n_outputs != 1:
            raise BodyError("n_outputs", f"a regressor has 1 output, got {body.n_outputs}")
        mean, scale = np.array(body.feature_mean), np.array(body.feature_scale)
        self._standardizer = (mean, scale)
        self._X_standardized = (self.X_ - mean) / scale
        self.weights_ = np.zeros((body.n_outputs, n_columns))
        return SetupResponse(n_weights=self.weights_.size)

    def scores(self, request: MatrixFrame) -> MatrixFrame:
        """Apply ``request``'s step (an empty matrix: none), then the partial scores."""
        weights = self._training_weights()
        if request.matrix.size:
            step = request.require_shape(weights.shape, "this block's weights")
            learning_rate = request.number("learning_rate")
            self.weights_ = weights = weights + -learning_rate * step
        with np.errstate(over="ignore", invalid="ignore"):
            scores = partial_scores(self._X_standardized, weights)
        if not np.isfinite(scores).all():  # a frame cannot carry them; say why instead
            raise BodyError(
                "learning_rate",
                f"{request.meta.get('learning_rate')} made this block's weights too large for "
                "float64 (the fit diverged): lower the master's learning rate",
            )
        return MatrixFrame("scores", scores, weights_norm2=float(np.sum(weights**2)))

    def gradient(self, request: MatrixFrame) -> MatrixFrame:
        """The gradient of this block's weights, given the residuals of its rows."""
        weights = self._training_weights()
        residuals = request.require_shape((len(self.X_), len(weights)), "one row per sample")
        alpha = request.number("alpha", default=0.0)
        gradient = block_gradient(self._X_standardized, residuals, weights, alpha)
        gradient = self._corrupt(gradient.ravel()).reshape(gradient.shape)  # honest: as is
        return MatrixFrame("gradient", gradient, n_samples=len(self.X_))

    def finish(self) -> MatrixFrame:
        """The fit ended: predict with these weights from now on, and send them."""
        self.fitted_weights_ = self._training_weights().copy()
        return MatrixFrame("weights", self.fitted_weights_)

    def block_scores(self, request: MatrixFrame) -> MatrixFrame:
        """Partial scores of new rows (this block's columns of them), with the fitted weights."""
        if self.fitted_weights_ is None or self._standardizer is None:
            raise _NotReady("this worker has no fitted weights yet: fit the master first")
        n_columns = self.X_.shape[1]
        rows = request.require_shape((len(request.matrix), n_columns), "this block's columns")
        mean, scale = self._standardizer
        return MatrixFrame("scores", partial_scores((rows - mean) / scale, self.fitted_weights_))

    def _training_weights(self) -> np.ndarray:
        if self.weights_ is None:
            raise _NotReady("this worker has no weights yet: the master calls setup first")
        return self.weights_

    # -- the endpoints ----------------------------------------------------------------------

    def _add_routes(self, app: FastAPI) -> None:
        @app.get(paths.FEATURE_SPLIT_BLOCK, response_model=BlockResponse)
        async def block() -> BlockResponse:
            return self.block()

        @app.post(
            paths.FEATURE_SPLIT_SETUP, response_model=SetupResponse, responses=error_responses(422)
        )
        async def setup(body: FeatureSplitSetup) -> SetupResponse:
            return self.setup(body)

        for path in self._fast_routes():
            self._document(app, path)

    def _document(self, app: FastAPI, path: str) -> None:
        """The FastAPI route of a frame endpoint, for ``/docs`` (the fast route answers it);
        ``finish`` takes no body."""
        handler = self._fast_routes()[path]

        async def route(request: Request) -> Response:
            status, body, headers = await handler(await request.body(), request.headers)
            return Response(body, status, headers=headers)

        body = {} if path == paths.FEATURE_SPLIT_FINISH else {"openapi_extra": _FRAME_DOCS}
        app.post(path, responses=_FRAME_ANSWERS, name=path, **body)(route)

    def _fast_routes(self) -> dict[str, RawHandler]:
        return {
            paths.FEATURE_SPLIT_SCORES: self._answering("step", self.scores),
            paths.FEATURE_SPLIT_GRADIENT: self._answering("residuals", self.gradient),
            paths.FEATURE_SPLIT_FINISH: self._answering(None, lambda _: self.finish()),
            paths.FEATURE_SPLIT_BLOCK_SCORES: self._answering("rows", self.block_scores),
        }

    def _answering(self, name: str | None, compute: Any) -> RawHandler:
        """A raw handler: decode the frame named ``name`` (none: no body), compute, encode;
        a call before its time gets 409 saying what must come first."""

        async def handler(body: bytes, headers: Mapping[str, str]) -> tuple[int, bytes, dict]:
            if self.delay_:
                await asyncio.sleep(self.delay_)  # a straggler, made on purpose
            try:
                request = None if name is None else MatrixFrame.decode(name, body, headers)
                return 200, *compute(request).encode()
            except _NotReady as error:
                return 409, json.dumps({"detail": str(error)}).encode(), {"content-type": JSON}

        return handler


class _NotReady(Exception):
    """A call that needs a step that has not come yet (setup, or a finished fit)."""
