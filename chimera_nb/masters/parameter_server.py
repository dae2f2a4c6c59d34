"""The parameter server of data parallelism: distributed (stochastic) gradient descent."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .._exceptions import ChimeraError, ConfigurationError, WorkerError
from .._types import ModelType
from ..algorithms import (
    ColumnStatistics,
    GradientAggregator,
    Standardizer,
    WeightedMean,
    l2_penalty,
    make_schedule,
    n_outputs,
    predict_proba,
    union_of_classes,
    update_step,
)
from ..logs import status_logger
from ..wire import Encoding, FitResponse, FitStep, PredictRequest, PredictResponse, paths
from .base import Master, Quorum, RoundRecord, resolve_endpoints
from .client import Broadcast, WorkerClient, _Pending
from .events import PARAMETER_SERVER_FIT, PARAMETER_SERVER_PREDICT

__all__ = ["ParameterServerMaster"]


class ShardGradient(NamedTuple):
    """One worker's answer, converted to standardized units (flowchart step H)."""

    weights: np.ndarray
    bias: np.ndarray
    n_samples: int
    loss: float


class ProposedUpdate(NamedTuple):
    """The step a round's gradient proposes (flowchart step J), taken in step K."""

    weights: np.ndarray
    bias: np.ndarray
    norm: float
    learning_rate: float


FIT = PARAMETER_SERVER_FIT.machine
PREDICT = PARAMETER_SERVER_PREDICT.machine


class ParameterServerMaster(Master):
    """Distributed gradient descent for linear models, with :class:`~chimera_nb.SGDWorker` s.

    Each round the master sends the current weights to every worker (``fit-step``), each
    worker returns the mean gradient of its shard, and the master averages them weighted by
    shard size and takes one step, following the seed's flowchart (steps A-M, published
    on :attr:`events`).

    Parameters
    ----------
    model_type : {"regressor", "classifier"}
        Linear regression (squared loss), or logistic (2 classes) / softmax (3+) regression.
    learning_rate : float, default=0.1
        Step size in standardized units (see Notes).
    learning_rate_schedule : {"constant", "invscaling"}, default="constant"
        ``"invscaling"`` divides the step by ``round_number ** power_t``.
    power_t : float, default=0.25
    max_iter : int, default=1000
        Most updates of the weights; the fit then stops.
    tol : float, default=1e-6
        Stop when an update would move the weights less than this (Euclidean norm).
    alpha : float, default=0.0
        L2 penalty ``alpha/2 ||W||^2`` on the standardized weights (not on the bias).
    batch_size : int or None, default=None
        None: each worker uses its whole shard (gradient descent, equal to one machine's).
        An int: each worker draws this many rows per round (stochastic gradient descent).
    quorum : None, int or "all", default=None
        Workers that must answer a round for it to count: None means at least one.
    encoding : {"json", "binary"}, default="json"
        How weights and gradients travel: the seed's JSON, or raw float64 (much cheaper
        for large models).
    timeout, max_retries : float and int, optional
        Per call to a worker; default to ``CHIMERA_WORKERS_ENDPOINTS_TIMEOUT`` (100 s) and
        ``CHIMERA_WORKERS_ENDPOINTS_MAX_RETRIES`` (0).
    aggregator : GradientAggregator, optional
        The rule that combines the workers' gradients; default :class:`WeightedMean`.
    random_state : int or None
        Seeds the mini-batches (one seed per worker, kept in ``worker_seeds_``).

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,) or (n_outputs, n_features)
        Weights in the original units of the data.
    intercept_ : ndarray of shape (n_outputs,)
    classes_ : list
        The classes, in the order of the rows of ``coef_`` (classifiers only).
    standardizer_ : Standardizer
        The global standardization built from the workers' statistics.
    history_ : list of RoundRecord
        Per round: loss, who answered, who failed and why, latencies.
    loss_curve_ : list of float
    n_iter_ : int
        Updates made.
    converged_ : bool

    Notes
    -----
    The master standardizes features (and a regression target) with means and standard
    deviations aggregated from all workers, and keeps its weights in those units, so the
    default learning rate works on raw data such as wine quality. Workers still compute
    gradients on their raw shards: the master converts weights on the way out and gradients
    on the way back (:class:`~chimera_nb.algorithms.Standardizer`). Gradients are averaged
    **weighted by shard size**, so with ``batch_size=None`` a round is exactly one step of
    full-batch gradient descent on all the data; the seed's unweighted mean is not.

    The last round computes a gradient but makes no update (the flowchart checks
    convergence before updating), so its loss is the loss of the returned model.

    Examples
    --------
    >>> from chimera_nb import ParameterServerMaster
    >>> ParameterServerMaster("regressor", learning_rate=0.2)
    ParameterServerMaster('regressor', learning_rate=0.2) [not fitted]
    """

    role = "ParameterServerMaster"
    fit_path = paths.PARAMETER_SERVER_FIT
    predict_path = paths.PARAMETER_SERVER_PREDICT

    def __init__(
        self,
        model_type: ModelType = "regressor",
        *,
        learning_rate: float = 0.1,
        learning_rate_schedule: str = "constant",
        power_t: float = 0.25,
        max_iter: int = 1000,
        tol: float = 1e-6,
        alpha: float = 0.0,
        batch_size: int | None = None,
        quorum: Quorum = None,
        encoding: Encoding = "json",
        timeout: float | None = None,
        max_retries: int | None = None,
        aggregator: GradientAggregator | None = None,
        random_state: int | None = None,
    ) -> None:
        self.model_type = model_type
        self.learning_rate = learning_rate
        self.learning_rate_schedule = learning_rate_schedule
        self.power_t = power_t
        self.max_iter = max_iter
        self.tol = tol
        self.alpha = alpha
        self.batch_size = batch_size
        self.quorum = quorum
        self.encoding = encoding
        self.timeout = timeout
        self.max_retries = max_retries
        self.aggregator = aggregator
        self.random_state = random_state

    _parameter_constraints = {
        "model_type": (lambda v: v in ("regressor", "classifier"), "'regressor' or 'classifier'"),
        "learning_rate": (lambda v: isinstance(v, (int, float)) and v > 0, "a number > 0"),
        "learning_rate_schedule": (
            lambda v: v in ("constant", "invscaling"),
            "'constant' or 'invscaling'",
        ),
        "power_t": (lambda v: isinstance(v, (int, float)) and v >= 0, "a number >= 0"),
        "max_iter": (lambda v: isinstance(v, int) and v >= 0, "an integer >= 0"),
        "tol": (lambda v: isinstance(v, (int, float)) and v >= 0, "a number >= 0"),
        "alpha": (lambda v: isinstance(v, (int, float)) and v >= 0, "a number >= 0"),
        "batch_size": (
            lambda v: v is None or (isinstance(v, int) and v >= 1),
            "None or an integer >= 1",
        ),
        "encoding": (lambda v: v in ("json", "binary"), "'json' or 'binary'"),
    }

    def _validate_params(self) -> None:
        """Check every constructor argument against its constraint, before anything is sent."""
        for name, (is_valid, allowed) in self._parameter_constraints.items():
            value = getattr(self, name)
            if not is_valid(value) or isinstance(value, bool):
                raise ConfigurationError(
                    f"{type(self).__name__}'s {name} must be {allowed}, got {value!r}"
                )
        self._check_common_params()

    # -- fit: the seed's flowchart, one named step per letter ------------------------------

    async def fit_async(self, workers: Any) -> ParameterServerMaster:
        """Fit on ``workers``; see :meth:`fit`."""
        self._validate_params()
        endpoints = resolve_endpoints(workers)
        self.history_: list[RoundRecord] = []  # a new fit starts a new history at once
        self.events.publish(FIT, "B", n_workers=len(endpoints))
        status_logger.info("%s fit started on %d workers", self.role, len(endpoints))
        try:
            async with self._client(endpoints, encoding=self.encoding) as client:
                await self._run_rounds(client)
        except ChimeraError as error:
            self.events.publish(FIT, "G", error=str(error))
            raise
        else:
            self.events.publish(FIT, "L", n_rounds=len(self.history_), loss=self.loss_curve_[-1])
            status_logger.info(
                "%s fit done: %d rounds, loss %.6g",
                self.role,
                len(self.history_),
                self.loss_curve_[-1],
            )
        finally:
            self._stop_requested = False  # a stop() ends one fit, not the next
            self.events.publish(FIT, "M")
        return self

    async def _run_rounds(self, client: WorkerClient) -> None:
        await self._initial_fit(client)  # C
        for round_number in range(1, self.max_iter + 2):
            pending = self._broadcast_fit_step(client, round_number)  # D
            self.events.publish(FIT, "E", round_number)
            replies = (
                await pending.wait()
            )  # E: each worker answers, times out or runs out of retries
            self.events.publish(
                FIT, "F", round_number, answered=replies.answered, failed=replies.failed
            )
            self._check_quorum(replies, len(client.endpoints), f"round {round_number}")  # F -> G
            self.events.publish(FIT, "H", round_number)
            gradients = self._gather_gradients(replies)  # H
            self.events.publish(FIT, "I", round_number)
            weights_gradient, bias_gradient, loss = self._aggregate(gradients)  # I
            self.events.publish(FIT, "J", round_number, loss=loss)
            converged, update = self._check_convergence(
                round_number, weights_gradient, bias_gradient
            )  # J
            self._record_round(round_number, replies, loss, update)
            if converged or round_number > self.max_iter or self.__dict__.get("_stop_requested"):
                self.converged_ = converged
                return
            self.events.publish(FIT, "K", round_number)
            self._update_model(update)  # K, then back to D

    async def _initial_fit(self, client: WorkerClient) -> None:
        """Step C: learn the columns from a data sample (the seed's way: the first worker
        that answers), the global statistics and classes from every worker, and start from
        zero weights."""
        self.events.publish(FIT, "C")
        names = list(client.endpoints)
        sample = await self._request_data_sample(client, names)
        statistics = await client.broadcast(names, client.statistics).wait()
        self._check_quorum(statistics, len(names), "the statistics request")
        for name, answer in statistics.results.items():
            if answer.columns != sample.X_train_sample_columns:
                raise WorkerError(
                    f"{name} has columns {answer.columns}, but the first worker has "
                    f"{sample.X_train_sample_columns}: every shard needs the same columns"
                )
        answers = list(statistics.results.values())
        features = ColumnStatistics.combine(
            [
                ColumnStatistics(a.n_samples, np.array(a.feature_sum), np.array(a.feature_m2))
                for a in answers
            ]
        )
        target = None
        if self.model_type == "regressor":
            target = ColumnStatistics.combine(
                [
                    ColumnStatistics(a.n_samples, np.array([a.target_sum]), np.array([a.target_m2]))
                    for a in answers
                ]
            )
            self.classes_ = []
        else:
            self.classes_ = union_of_classes([a.classes or [] for a in answers])
            if len(self.classes_) < 2:
                raise WorkerError(
                    f"a classifier needs at least 2 classes; the workers hold {self.classes_}"
                )
        self.columns_ = sample.X_train_sample_columns
        self.n_features_in_ = len(self.columns_)
        self.standardizer_ = Standardizer.from_statistics(features, target)
        outputs = n_outputs(self.model_type, len(self.classes_))
        self._weights, self._bias = np.zeros((outputs, self.n_features_in_)), np.zeros(outputs)
        self._schedule = make_schedule(
            self.learning_rate_schedule, self.learning_rate, self.power_t
        )
        seeds = np.random.SeedSequence(self.random_state).generate_state(len(names))
        self.worker_seeds_ = dict(zip(names, seeds.tolist()))
        self.loss_curve_: list[float] = []
        self.n_iter_, self.converged_ = 0, False

    async def _request_data_sample(self, client: WorkerClient, names: list[str]):
        failures = {}
        for name in names:  # sequentially, as the seed does
            try:
                sample, _ = await client.request_data_sample(name)
                return sample
            except WorkerError as error:
                failures[name] = str(error)
        raise WorkerError(f"no worker answered request-data-sample: {failures}")

    def _broadcast_fit_step(self, client: WorkerClient, round_number: int) -> _Pending:
        """Step D: send every worker the current weights, in raw units."""
        self.events.publish(FIT, "D", round_number)
        raw_weights, raw_bias = self.standardizer_.weights_to_raw(self._weights, self._bias)

        def fit_step(name: str):
            step = FitStep(
                raw_weights,
                raw_bias,
                self.classes_ or None,
                self.batch_size,
                self._batch_seed(name, round_number),
            )
            return client.fit_step(name, step, round_number)

        return client.broadcast(client.endpoints, fit_step)

    def _batch_seed(self, name: str, round_number: int) -> int | None:
        """A different, reproducible mini-batch per worker and round."""
        if self.batch_size is None:
            return None
        return int(
            np.random.SeedSequence([self.worker_seeds_[name], round_number]).generate_state(1)[0]
        )

    def _gather_gradients(self, replies: Broadcast) -> list[ShardGradient]:
        """Step H: the answers of the workers that replied, in standardized units."""
        gathered = []
        for result in replies.results.values():
            weights, bias = self.standardizer_.gradient_from_raw(
                result.weights_gradient, result.bias_gradient
            )
            loss = self.standardizer_.loss_from_raw(result.loss)
            gathered.append(ShardGradient(weights, bias, result.n_samples, loss))
        return gathered

    def _aggregate(self, gathered: list[ShardGradient]) -> tuple[np.ndarray, np.ndarray, float]:
        """Step I: one gradient and one loss from many (weighted by samples), plus the L2 term."""
        weights_gradients, bias_gradients, n_samples, losses = zip(*gathered)
        aggregator = self.aggregator or WeightedMean()
        weights_gradient, bias_gradient = aggregator.aggregate(
            weights_gradients, bias_gradients, n_samples
        )
        penalty, penalty_gradient = l2_penalty(self._weights, self.alpha)
        loss = float(np.average(losses, weights=n_samples)) + penalty
        if not np.isfinite(loss):
            raise ChimeraError(
                f"the fit diverged: the loss became {loss} at round {len(self.history_) + 1}. "
                f"Lower the learning rate (now {self.learning_rate})."
            )
        return weights_gradient + penalty_gradient, bias_gradient, loss

    def _check_convergence(
        self, round_number: int, weights_gradient: np.ndarray, bias_gradient: np.ndarray
    ) -> tuple[bool, ProposedUpdate]:
        """Step J: the update this gradient proposes, and whether it is below ``tol``."""
        learning_rate = self._schedule(round_number)
        new_weights, new_bias, norm = update_step(
            self._weights, self._bias, weights_gradient, bias_gradient, learning_rate
        )
        return norm < self.tol, ProposedUpdate(new_weights, new_bias, norm, learning_rate)

    def _update_model(self, update: ProposedUpdate) -> None:
        """Step K: take the step."""
        self._weights, self._bias = update.weights, update.bias
        self.n_iter_ += 1

    def _record_round(
        self, round_number: int, replies: Broadcast, loss: float, update: ProposedUpdate
    ) -> None:
        self.history_.append(
            RoundRecord(
                round_number,
                replies.answered,
                dict(replies.failed),
                dict(replies.latency_ms),
                {name: result.n_samples for name, result in replies.results.items()},
                loss,
                learning_rate=update.learning_rate,
                update_norm=update.norm,
            )
        )
        self.loss_curve_.append(loss)

    # -- fitted model -----------------------------------------------------------------------

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

    # -- REST -------------------------------------------------------------------------------

    def _fit_response(self) -> FitResponse:
        last = self.history_[-1]
        return FitResponse(
            answered=last.answered,
            failed=_all_failures(self.history_),
            n_rounds=len(self.history_),
            converged=self.converged_,
            loss=last.loss,
        )

    async def _predict_response(self, body: PredictRequest) -> PredictResponse:
        predictions, probabilities = self._predict_rows(body)
        return PredictResponse(
            y_pred_rows=predictions.tolist(),
            classes=self.classes_ or None,
            y_proba_rows=None if probabilities is None else probabilities.tolist(),
        )


def _all_failures(history: list[RoundRecord]) -> dict[str, str]:
    """Each worker that failed in any round, with its first failure and its round."""
    failures: dict[str, str] = {}
    for record in history:
        for name, reason in record.failed.items():
            failures.setdefault(name, f"{reason} (round {record.round_number})")
    return failures
