"""Predictions of feature-split model parallelism: model parallel too.

The model lives split on the workers: each block's worker keeps the weights of its columns
(from the end of the last fit) and scores its columns of the new rows; the master splits the
rows' columns by block, adds the partial scores and its bias. The first row group answers
(in the hybrid layout every replica of a block holds the same weights).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _runtime
from ..algorithms import probabilities
from ..wire import PredictRequest, PredictResponse
from ..wire.feature_split_models import MatrixFrame
from .feature_grid import require_every_block
from .feature_split_charts import FEATURE_SPLIT_PREDICT as _PREDICT

__all__ = ["FeatureSplitPredictions"]


class FeatureSplitPredictions:
    """Mixin of :class:`~chimera_nb.FeatureSplitMaster`: ``predict``, ``predict_proba`` and
    the REST predict, each asking the workers of ``_predictors`` (name -> URL) for the
    partial scores of their columns ``_predictor_columns`` (name -> slice of ``columns_``)."""

    _predictors: dict[str, str]
    _predictor_columns: dict[str, slice]

    def predict(self, X: Any) -> np.ndarray:
        """Predictions for the rows of ``X``: each block's worker scores its columns."""
        return _runtime.run_sync(self.predict_async(X))

    async def predict_async(self, X: Any) -> np.ndarray:
        return (await self._predict_with_workers(X))[0]

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, ``(n_samples, n_classes)`` in ``classes_`` order."""
        if self.model_type != "classifier":
            raise AttributeError("predict_proba is for classifiers; this master is a regressor")
        return _runtime.run_sync(self._predict_with_workers(X))[1]

    async def _predict_with_workers(self, X: Any) -> tuple[np.ndarray, np.ndarray | None]:
        """Flowchart A-H: split the rows' columns by block, ask each block's worker for its
        partial scores, add them and the bias."""
        self.events.publish(_PREDICT, "B")
        self.events.publish(_PREDICT, "C")
        try:
            model = self._fitted()
            request = X if isinstance(X, PredictRequest) else self._as_request(X, model.columns)
            rows = request.matrix(model.columns)
            self.events.publish(_PREDICT, "D")
            requests = {
                name: MatrixFrame("rows", rows[:, block])
                for name, block in self._predictor_columns.items()
            }
            async with self._client(self._predictors) as client:
                replies = await client.broadcast(client.block_scores, requests).wait()
            require_every_block(replies, "the prediction")
        except Exception as error:
            self.events.publish(_PREDICT, "F", error=str(error))
            self.events.publish(_PREDICT, "G")
            raise
        self.events.publish(_PREDICT, "E")
        scores = sum(reply.matrix for reply in replies.results.values()) + model.bias
        standardizer = model.standardizer
        if model.model_type == "regressor":
            predictions = scores[:, 0] * standardizer.target_scale + standardizer.target_mean
            proba = None
        else:
            proba = probabilities(scores)
            predictions = np.asarray(model.classes)[proba.argmax(axis=1)]
        self.events.publish(_PREDICT, "G")
        return predictions, proba

    async def _predict_response(self, body: PredictRequest) -> PredictResponse:
        predictions, proba = await self._predict_with_workers(body)
        return PredictResponse(
            y_pred_rows=predictions.tolist(),
            classes=self._fitted().classes or None,
            y_proba_rows=None if proba is None else proba.tolist(),
        )
