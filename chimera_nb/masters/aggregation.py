"""The aggregation master of bagging: fit a member on every worker, average their predictions."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._exceptions import WorkerError
from ..algorithms import mean_prediction, soft_vote, union_of_classes
from ..logs import status_logger
from ..wire import FitResponse, PredictRequest, PredictResponse, paths
from .base import Master, Quorum, resolve_endpoints
from .client import Broadcast
from .events import AGGREGATION_FIT, AGGREGATION_PREDICT

__all__ = ["AggregationMaster"]

FIT = AGGREGATION_FIT.machine
PREDICT = AGGREGATION_PREDICT.machine


class AggregationMaster(Master):
    """Distributed bagging over :class:`~chimera_nb.RegressionWorker` s or
    :class:`~chimera_nb.ClassificationWorker` s, following the seed's flowcharts (fit A-I,
    predict A-J, published on :attr:`events`).

    ``fit`` asks every worker to fit its member (sending each its own bootstrap seed);
    ``predict`` asks every fitted member and averages: the mean for regression, the mean of
    class probabilities (a *soft vote*) for classification, any number of classes.

    Parameters
    ----------
    quorum : None, int or "all", default=None
        Workers that must answer for a fit or a prediction to count (None: at least one).
    timeout, max_retries : float and int, optional
        Per call; default to the seed's ``CHIMERA_WORKERS_ENDPOINTS_*`` variables.
    random_state : int or None
        Seeds one bootstrap per worker (kept in ``worker_seeds_``): members differ, runs replay.

    Attributes
    ----------
    fitted_workers_ : list of str
        The workers whose member is fitted; ``predict`` asks these.
    failed_workers_ : dict of str to str
        Workers that failed the last fit or predict, and why.
    worker_seeds_ : dict of str to int
    columns_ : list of str
    classes_ : list or None
        The union of the members' classes (classification), else None.

    Examples
    --------
    >>> from chimera_nb import AggregationMaster
    >>> AggregationMaster(random_state=0)
    AggregationMaster(random_state=0) [not fitted]
    """

    role = "AggregationMaster"
    fit_path = paths.AGGREGATION_FIT
    predict_path = paths.AGGREGATION_PREDICT

    def __init__(
        self,
        *,
        quorum: Quorum = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        random_state: int | None = None,
    ) -> None:
        self.quorum = quorum
        self.timeout = timeout
        self.max_retries = max_retries
        self.random_state = random_state

    async def fit_async(self, workers: Any) -> AggregationMaster:
        """Fit every worker's member (flowchart A-I); see :meth:`fit`."""
        self._check_common_params()
        self._endpoints = resolve_endpoints(workers)
        names = list(self._endpoints)
        seeds = np.random.SeedSequence(self.random_state).generate_state(len(names))
        self.worker_seeds_ = dict(zip(names, seeds.tolist()))
        self.events.publish(FIT, "B", n_workers=len(names))
        async with self._client(self._endpoints) as client:
            self.events.publish(FIT, "C")
            pending = client.broadcast(
                names, lambda name: client.model_fit(name, self.worker_seeds_[name])
            )
            self.events.publish(FIT, "D")
            replies = await pending.wait()
        self.events.publish(FIT, "E", answered=replies.answered, failed=replies.failed)
        self.failed_workers_ = dict(replies.failed)
        try:
            self._check_quorum(replies, len(names), "fit")
            self._check_members_agree(replies)
        except WorkerError as error:
            self.events.publish(FIT, "F", error=str(error))
            self.events.publish(FIT, "I")
            raise
        self.events.publish(FIT, "G")
        self.fitted_workers_ = replies.answered
        self.events.publish(FIT, "H")
        status_logger.info(
            "%s fit: %d of %d workers fitted", self.role, len(replies.results), len(names)
        )
        self.events.publish(FIT, "I")
        return self

    def _check_members_agree(self, replies: Broadcast) -> None:
        """All members must be trained on the same columns, and be all regressors or all
        classifiers."""
        answers = list(replies.results.items())
        first_name, first = answers[0]
        for name, answer in answers[1:]:
            if answer.columns != first.columns:
                raise WorkerError(
                    f"{name} was trained on columns {answer.columns}, {first_name} on {first.columns}"
                )
            if (answer.classes is None) != (first.classes is None):
                raise WorkerError(
                    f"{name} and {first_name} mix regression and classification members"
                )
        self.columns_ = first.columns
        self.classes_ = (
            None if first.classes is None else union_of_classes([a.classes for _, a in answers])
        )

    async def predict_async(self, X: Any) -> np.ndarray:
        """Predicted values (regression) or labels (classification) for the rows of ``X``."""
        return (await self._predict(X))[0]

    async def predict_proba_async(self, X: Any) -> np.ndarray:
        """The soft vote's class probabilities, shape ``(n_samples, len(classes_))``."""
        _, probabilities = await self._predict(X)
        if probabilities is None:
            raise AttributeError("predict_proba is for classification members")
        return probabilities

    def predict_proba(self, X: Any) -> np.ndarray:
        from .._runtime import run_sync

        return run_sync(self.predict_proba_async(X))

    async def _predict(self, X: Any) -> tuple[np.ndarray, np.ndarray | None]:
        """Flowchart A-J for ``X`` (a PredictRequest or array-like): broadcast, wait, check,
        aggregate."""
        self.events.publish(PREDICT, "B")
        self._check_is_fitted("fitted_workers_")
        request = X if isinstance(X, PredictRequest) else self._as_request(X, self.columns_)
        request.matrix(self.columns_)  # 422 naming wrong columns before any worker is asked
        async with self._client(self._endpoints) as client:
            self.events.publish(PREDICT, "C")
            pending = client.broadcast(
                self.fitted_workers_, lambda name: client.model_predict(name, request)
            )
            self.events.publish(PREDICT, "D")
            replies = await pending.wait()
        self.events.publish(PREDICT, "E", answered=replies.answered, failed=replies.failed)
        self.failed_workers_ = dict(replies.failed)
        self._last_predict = replies
        try:
            self._check_quorum(replies, len(self.fitted_workers_), "predict")
        except WorkerError as error:
            self.events.publish(PREDICT, "F", error=str(error))
            self.events.publish(PREDICT, "J")
            raise
        self.events.publish(PREDICT, "G")
        answers = list(replies.results.values())
        self.events.publish(PREDICT, "H")
        if self.classes_ is None:
            predictions, probabilities = mean_prediction([a.y_pred_rows for a in answers]), None
        else:
            _, probabilities = soft_vote(
                [a.y_pred_rows for a in answers], [a.classes for a in answers], self.classes_
            )
            predictions = np.asarray(self.classes_)[probabilities.argmax(axis=1)]
        self.events.publish(PREDICT, "I")
        self.events.publish(PREDICT, "J")
        return predictions, probabilities

    def _is_fitted(self) -> bool:
        return hasattr(self, "fitted_workers_")

    def _fit_response(self) -> FitResponse:
        return FitResponse(answered=self.fitted_workers_, failed=self.failed_workers_)

    async def _predict_response(self, body: PredictRequest) -> PredictResponse:
        predictions, probabilities = await self._predict(body)
        return PredictResponse(
            y_pred_rows=predictions.tolist(),
            classes=self.classes_,
            y_proba_rows=None if probabilities is None else probabilities.tolist(),
            answered=self._last_predict.answered,
            failed=self._last_predict.failed,
        )
