"""The linear model a parameter server fits, and how it predicts: on the master itself.

The weights live on the master in standardized units (see
:class:`~chimera_nb.algorithms.Standardizer`); ``coef_``, ``intercept_`` and predictions are
given in the original units of the data. No worker is asked to predict, so the seed's predict
flowchart is short.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from .._exceptions import WorkerError
from .._types import ClassLabel, Matrix, ModelType, Vector
from ..algorithms import (
    ColumnStatistics,
    ShardGradient,
    Standardizer,
    n_outputs,
    predict_proba,
    union_of_classes,
)
from ..wire import (
    FitStepResult,
    PredictRequest,
    PredictResponse,
    StatisticsResponse,
)
from .client import WorkerClient
from .estimator import Constraint, Interval, Options
from .flowchart import Flowchart, chain

__all__ = [
    "GRADIENT_DESCENT_CONSTRAINTS",
    "PARAMETER_SERVER_PREDICT",
    "FittedLinearModel",
    "LinearModel",
    "ProposedUpdate",
    "global_standardization",
    "zero_model",
]

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


def zero_model(
    model_type: ModelType, columns: list[str], statistics: dict[str, StatisticsResponse]
) -> LinearModel:
    """The model a fit starts from: zero weights, in the units of the standardization merged
    from every worker's ``statistics``, whose shards must all have ``columns``."""
    for name, answer in statistics.items():
        if answer.columns != columns:
            raise WorkerError(
                f"{name} has columns {answer.columns}, but the first worker has "
                f"{columns}: every shard needs the same columns"
            )
    standardizer, classes = global_standardization(model_type, list(statistics.values()))
    outputs = n_outputs(model_type, len(classes))
    weights, bias = np.zeros((outputs, len(columns))), np.zeros(outputs)
    return LinearModel(model_type, standardizer, classes, columns, weights, bias)


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


class ProposedUpdate(NamedTuple):
    """The step a round's gradient proposes (flowchart step J), taken in step K."""

    weights: np.ndarray
    bias: np.ndarray
    norm: float
    learning_rate: float


@dataclass
class LinearModel:
    """A linear model in standardized units, and what it takes to read it in the data's.

    A fit trains one of these and publishes it whole when it ends, so that a prediction made
    while a refit runs answers from the last fitted model, never from a half-trained one.
    """

    model_type: ModelType
    standardizer: Standardizer
    classes: list[ClassLabel]
    columns: list[str]
    weights: Matrix  # (n_outputs, n_features), standardized units
    bias: Vector  # (n_outputs,)

    def raw(self) -> tuple[Matrix, Vector]:
        """Weights and bias in the original units of the data."""
        return self.standardizer.weights_to_raw(self.weights, self.bias)

    def standardized(self, answer: FitStepResult) -> ShardGradient:
        """A worker's gradient and loss (computed on its raw shard) in this model's units."""
        weights, bias = self.standardizer.gradient_from_raw(
            answer.weights_gradient, answer.bias_gradient
        )
        loss = self.standardizer.loss_from_raw(answer.loss)
        return ShardGradient(weights, bias, answer.n_samples, loss)


#: The constraints of the gradient-descent parameters every linear-model master shares.
GRADIENT_DESCENT_CONSTRAINTS: dict[str, list[Constraint]] = {
    "model_type": [Options("regressor", "classifier")],
    "learning_rate": [Interval(float, 0, None, closed="neither")],
    "learning_rate_schedule": [Options("constant", "invscaling")],
    "power_t": [Interval(float, 0, None, closed="left")],
    "max_iter": [Interval(int, 0, None, closed="left")],
    "tol": [Interval(float, 0, None, closed="left")],
    "alpha": [Interval(float, 0, None, closed="left")],
}


class FittedLinearModel:
    """Mixin of the linear-model masters (parameter server, ring, sharded, federated): their
    fitted attributes and predictions, all read from the last published
    :class:`LinearModel` (``_model``), and the start every one of their fits shares."""

    _model: LinearModel | None = None

    async def _start_from_zero(self, client: WorkerClient) -> dict[str, StatisticsResponse]:
        """Step C's common part: the columns from a data sample (the seed's way: the first
        worker that answers), the global standardization and classes from every worker's
        statistics, and zero weights (``_training``); returns the statistics, by worker."""
        names = list(client.endpoints)
        sample = await self._ask_in_turn(client.request_data_sample, names)
        statistics = await client.broadcast(client.statistics, names).wait()
        self._check_quorum(statistics, len(names), "the statistics request")
        self._training = zero_model(
            self.model_type, sample.X_train_sample_columns, statistics.results
        )
        return statistics.results

    def _fitted(self) -> LinearModel:
        if self._model is None:
            raise self._not_fitted()
        return self._model

    @property
    def coef_(self) -> np.ndarray:
        """Weights in the original units: ``(n_features,)`` for a regressor, else
        ``(n_outputs, n_features)``."""
        model = self._fitted()
        weights, _ = model.raw()
        return weights[0] if model.model_type == "regressor" else weights

    @property
    def intercept_(self) -> np.ndarray:
        return self._fitted().raw()[1]

    @property
    def standardizer_(self) -> Standardizer:
        return self._fitted().standardizer

    @property
    def classes_(self) -> list[ClassLabel]:
        return self._fitted().classes

    @property
    def columns_(self) -> list[str]:
        return self._fitted().columns

    @property
    def n_features_in_(self) -> int:
        return len(self._fitted().columns)

    def _is_fitted(self) -> bool:
        return self._model is not None

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape ``(n_samples, n_classes)`` in ``classes_`` order."""
        model = self._fitted()
        if model.model_type != "classifier":
            raise AttributeError("predict_proba is for classifiers; this master is a regressor")
        rows = self._as_request(X, model.columns).matrix(model.columns)
        return predict_proba(*model.raw(), rows)

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
            model = self._fitted()
            request = X if isinstance(X, PredictRequest) else self._as_request(X, model.columns)
            X = request.matrix(model.columns)
        except Exception as error:
            self.events.publish(PREDICT, "E", error=str(error))
            self.events.publish(PREDICT, "F")
            raise
        weights, bias = model.raw()
        if model.model_type == "regressor":
            predictions, probabilities = (X @ weights.T + bias)[:, 0], None
        else:
            probabilities = predict_proba(weights, bias, X)
            predictions = np.asarray(model.classes)[probabilities.argmax(axis=1)]
        self.events.publish(PREDICT, "D")
        self.events.publish(PREDICT, "F")
        return predictions, probabilities

    async def _predict_response(self, body: PredictRequest) -> PredictResponse:
        predictions, probabilities = self._predict_rows(body)
        return PredictResponse(
            y_pred_rows=predictions.tolist(),
            classes=self._fitted().classes or None,
            y_proba_rows=None if probabilities is None else probabilities.tolist(),
        )
