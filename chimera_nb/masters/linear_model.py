"""The linear model a parameter server fits, and how it predicts: on the master itself.

The weights live on the master in standardized units (see
:class:`~chimera_nb.algorithms.Standardizer`); ``coef_``, ``intercept_`` and predictions are
given in the original units of the data. No worker is asked to predict, so the seed's predict
flowchart is short.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._exceptions import WorkerError
from .._types import ClassLabel, ModelType
from ..algorithms import ColumnStatistics, Standardizer, predict_proba, union_of_classes
from ..wire import PredictRequest, PredictResponse, StatisticsResponse
from .flowchart import Flowchart, chain

__all__ = ["PARAMETER_SERVER_PREDICT", "FittedLinearModel", "global_standardization"]

#: The seed's predict flowchart: the model lives on the master, no worker is asked.
PARAMETER_SERVER_PREDICT = Flowchart(
    "parameter-server predict",
    {
        "A": "idle",
        "B": "predict request received",
        "C": "model fitted?",
        "D": "predictions to client",
        "E": "error to client",
        "F": "end",
    },
    chain("ABC") + (("C", "D", "yes"), ("C", "E", "no"), ("D", "F", ""), ("E", "F", "")),
)


def global_standardization(
    model_type: ModelType, answers: list[StatisticsResponse]
) -> tuple[Standardizer, list[ClassLabel]]:
    """The standardizer of all the data, merged exactly from each worker's column statistics
    (counts, sums, sums of squared deviations), and the union of the classes they hold
    (classifiers; an empty list for a regressor)."""
    features = ColumnStatistics.combine(
        [
            ColumnStatistics(a.n_samples, np.array(a.feature_sum), np.array(a.feature_m2))
            for a in answers
        ]
    )
    if model_type == "classifier":
        classes = union_of_classes([a.classes or [] for a in answers])
        if len(classes) < 2:
            raise WorkerError(f"a classifier needs at least 2 classes; the workers hold {classes}")
        return Standardizer.from_statistics(features), classes
    target = ColumnStatistics.combine(
        [
            ColumnStatistics(a.n_samples, np.array([a.target_sum]), np.array([a.target_m2]))
            for a in answers
        ]
    )
    return Standardizer.from_statistics(features, target), []


PREDICT = PARAMETER_SERVER_PREDICT


class FittedLinearModel:
    """Mixin of :class:`~chimera_nb.ParameterServerMaster`: its fitted attributes and its
    predictions. It reads what the fit set: ``standardizer_``, ``classes_``, ``columns_``
    and the standardized ``_weights`` and ``_bias``."""

    @property
    def coef_(self) -> np.ndarray:
        self._check_is_fitted("_weights")
        weights, _ = self.standardizer_.weights_to_raw(self._weights, self._bias)
        return weights[0] if self.model_type == "regressor" else weights

    @property
    def intercept_(self) -> np.ndarray:
        self._check_is_fitted("_weights")
        return self.standardizer_.weights_to_raw(self._weights, self._bias)[1]

    def _is_fitted(self) -> bool:
        return hasattr(self, "_weights") and hasattr(self, "converged_")

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape ``(n_samples, n_classes)`` in ``classes_`` order."""
        self._check_is_fitted("_weights")
        if self.model_type != "classifier":
            raise AttributeError("predict_proba is for classifiers; this master is a regressor")
        weights, bias = self.standardizer_.weights_to_raw(self._weights, self._bias)
        return predict_proba(
            weights, bias, self._as_request(X, self.columns_).matrix(self.columns_)
        )

    async def predict_async(self, X: Any) -> np.ndarray:
        """Predictions for the rows of ``X``, computed on the master (flowchart A-F)."""
        return self._predict_rows(X)[0]

    def predict(self, X: Any) -> np.ndarray:
        """Predictions for the rows of ``X`` (no worker is involved: the model is here)."""
        return self._predict_rows(X)[0]

    def _predict_rows(self, X: Any) -> tuple[np.ndarray, np.ndarray | None]:
        """Predictions (and class probabilities) for ``X``, a PredictRequest or array-like."""
        self.events.publish(PREDICT, "B")
        self.events.publish(PREDICT, "C")
        try:
            self._check_is_fitted("converged_")
            request = X if isinstance(X, PredictRequest) else self._as_request(X, self.columns_)
            X = request.matrix(self.columns_)
        except Exception as error:
            self.events.publish(PREDICT, "E", error=str(error))
            self.events.publish(PREDICT, "F")
            raise
        weights, bias = self.standardizer_.weights_to_raw(self._weights, self._bias)
        if self.model_type == "regressor":
            predictions, probabilities = (X @ weights.T + bias)[:, 0], None
        else:
            probabilities = predict_proba(weights, bias, X)
            predictions = np.asarray(self.classes_)[probabilities.argmax(axis=1)]
        self.events.publish(PREDICT, "D")
        self.events.publish(PREDICT, "F")
        return predictions, probabilities

    async def _predict_response(self, body: PredictRequest) -> PredictResponse:
        predictions, probabilities = self._predict_rows(body)
        return PredictResponse(
            y_pred_rows=predictions.tolist(),
            classes=self.classes_ or None,
            y_proba_rows=None if probabilities is None else probabilities.tolist(),
        )
