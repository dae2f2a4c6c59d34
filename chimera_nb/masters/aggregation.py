"""The aggregation master of bagging: fit a member on every worker, combine their predictions.

Read it in this order: the two flowcharts (the seed's steps), then :meth:`_fit` and
:meth:`_predict`, which call one named method per lettered step. How the members' answers
become one is a rule object (``combiner``: :class:`~chimera_nb.algorithms.MeanPrediction`
for regression, :class:`~chimera_nb.algorithms.SoftVote` for classification).

Names: the seed (Chimera) calls bagging on the same data "model parallelism" and on different
data per worker "hybrid parallelism", and the kit keeps its API names. In the course, *model
parallelism* splits one model itself across devices (layers or blocks, or features, on
different nodes) and *hybrid parallelism* splits both the model and the data; bagging splits
no model (every worker trains a whole member), so in the course's words it is an ensemble
trained in parallel. ``notebooks/09_model_and_pipeline_parallelism.ipynb`` shows the
course's model parallelism: a feature split (``FeatureSplitMaster``) and a pipeline of layers
(``PipelineMaster``, ``PipelineStageWorker``; GPipe and 1F1B).
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

import numpy as np

from .. import _runtime
from .._exceptions import WorkerError
from ..algorithms import (
    Combined,
    MeanPrediction,
    MemberPrediction,
    PredictionCombiner,
    SoftVote,
    union_of_classes,
)
from ..logs import status_logger
from ..wire import FitResponse, ModelFitRequest, PredictRequest, PredictResponse, paths
from .base import Master, Quorum
from .broadcast import Broadcast, PendingBroadcast
from .client import SharedClient, WorkerClient
from .estimator import HasMethods
from .flowchart import Flowchart, chain

__all__ = ["AGGREGATION_FIT", "AGGREGATION_PREDICT", "AggregationMaster"]

#: The seed's fit flowchart: every worker fits its member once.
AGGREGATION_FIT = Flowchart(
    "aggregation fit",
    {
        "A": "idle",
        "B": "fit request received",
        "C": "broadcast model/fit",
        "D": "wait: reply / timeout / retries",
        "E": "at least one success?",
        "F": "error to client",
        "G": "receive ok from workers",
        "H": "ok to client",
        "I": "end",
    },
    chain("ABCDE")
    + (("E", "G", "yes"), ("E", "F", "no"), ("G", "H", ""), ("H", "I", ""), ("F", "I", "")),
)

#: The seed's predict flowchart: every fitted member predicts; the combiner averages.
AGGREGATION_PREDICT = Flowchart(
    "aggregation predict",
    {
        "A": "idle",
        "B": "predict request received",
        "C": "broadcast model/predict",
        "D": "wait: reply / timeout / retries",
        "E": "at least one success?",
        "F": "error to client",
        "G": "receive predictions",
        "H": "aggregate: mean",
        "I": "predictions to client",
        "J": "end",
    },
    chain("ABCDE")
    + (
        ("E", "G", "yes"),
        ("E", "F", "no"),
        ("G", "H", ""),
        ("H", "I", ""),
        ("I", "J", ""),
        ("F", "J", ""),
    ),
)

FIT, PREDICT = AGGREGATION_FIT, AGGREGATION_PREDICT


class AggregationMaster(Master):
    """Distributed bagging over :class:`~chimera_nb.RegressionWorker` s or
    :class:`~chimera_nb.ClassificationWorker` s, following the seed's flowcharts (fit A-I,
    predict A-J, published on :attr:`events`).

    ``fit`` asks every worker to fit its member (sending each its own bootstrap seed);
    ``predict`` asks every fitted member and combines their answers: the mean for
    regression, the mean of class probabilities (a *soft vote*) for classification, any
    number of classes. The seed calls this "model parallelism" (same data on every worker)
    or "hybrid parallelism" (different data per worker); the course's model parallelism,
    one model split across workers, is another thing (see this module's docstring).

    Parameters
    ----------
    quorum : None, int or "all", default=None
        Workers that must answer for a fit or a prediction to count (None: at least one).
    timeout, max_retries : float and int, optional
        Per call; default to the seed's ``CHIMERA_WORKERS_ENDPOINTS_*`` variables.
    combiner : PredictionCombiner, optional
        The rule that combines the members' predictions; by default ``MeanPrediction()``
        for regression members and ``SoftVote()`` for classification members.
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
    combiner_ : PredictionCombiner
        The rule in use.
    history_ : list of RoundRecord
        One record for the fit's broadcast and one per prediction since
        (``action`` "fit" or "predict"): who answered, who failed and why, latencies.
    spans_ : SpanLog
        One span per call to a worker.

    Examples
    --------
    >>> from chimera_nb import AggregationMaster
    >>> AggregationMaster(random_state=0)
    AggregationMaster(random_state=0) [not fitted]
    """

    role = "AggregationMaster"
    fit_path = paths.AGGREGATION_FIT
    predict_path = paths.AGGREGATION_PREDICT
    flowcharts = (AGGREGATION_FIT, AGGREGATION_PREDICT)

    #: Per event loop (REST server, notebook runtime): the client its predictions share.
    _shared_clients: weakref.WeakKeyDictionary | None = None

    _parameter_constraints = {
        **Master._parameter_constraints,
        "combiner": [None, HasMethods("combine")],
    }

    def __init__(
        self,
        *,
        quorum: Quorum = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        combiner: PredictionCombiner | None = None,
        random_state: int | None = None,
    ) -> None:
        self.quorum = quorum
        self.timeout = timeout
        self.max_retries = max_retries
        self.combiner = combiner
        self.random_state = random_state

    # -- fit: flowchart A-I -----------------------------------------------------------------

    async def _fit(self, client: WorkerClient) -> None:
        names = list(client.endpoints)
        self.events.publish(FIT, "B", n_workers=len(names))
        pending = self._broadcast_model_fit(client, names)  # C
        replies = await self._wait_for_replies(pending, FIT)  # D, then E
        try:
            self._check_members(replies, len(names))  # E -> F
        except WorkerError as error:
            self.events.publish(FIT, "F", error=str(error))
            self.events.publish(FIT, "I")
            raise
        self._receive_ok(replies, len(names))  # G
        self.events.publish(FIT, "H")
        self.events.publish(FIT, "I")

    def _broadcast_model_fit(self, client: WorkerClient, names: list[str]) -> PendingBroadcast:
        """Step C: ask every worker to fit its member, each with its own bootstrap seed."""
        self.events.publish(FIT, "C")
        self.worker_seeds_ = dict(zip(names, self._draw_seeds(len(names))))
        requests = {
            name: ModelFitRequest(random_state=seed) for name, seed in self.worker_seeds_.items()
        }
        return client.broadcast(client.model_fit, requests)

    def _draw_seeds(self, n_workers: int) -> list[int]:
        """One bootstrap seed per worker, drawn from ``random_state``: members differ, and
        the same ``random_state`` replays them."""
        return np.random.SeedSequence(self.random_state).generate_state(n_workers).tolist()

    async def _wait_for_replies(self, pending: PendingBroadcast, chart: Flowchart) -> Broadcast:
        """Step D: each worker answers, times out or runs out of retries; then E asks whether
        enough of them answered."""
        self.events.publish(chart, "D")
        replies = await pending.wait()
        self.events.publish(chart, "E", answered=replies.answered, failed=replies.failed)
        self.failed_workers_ = dict(replies.failed)
        return replies

    def _check_members(self, replies: Broadcast, n_workers: int) -> None:
        """Step E: enough members fitted (the quorum), all on the same columns, and all
        regressors or all classifiers."""
        self._check_quorum(replies, n_workers, "fit")
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

    def _receive_ok(self, replies: Broadcast, n_workers: int) -> None:
        """Step G: the members that fitted are the ensemble; pick the combiner for them."""
        self.events.publish(FIT, "G")
        self.fitted_workers_ = replies.answered
        self.combiner_ = self.combiner or (
            MeanPrediction() if self.classes_ is None else SoftVote()
        )
        n_samples = {name: answer.n_samples for name, answer in replies.results.items()}
        self._record(replies, 1, n_samples=n_samples, action="fit")
        status_logger.info(
            "%s fit: %d of %d workers fitted", self.role, len(replies.results), n_workers
        )

    # -- predict: flowchart A-J ---------------------------------------------------------------

    async def _predict(self, X: Any) -> tuple[Combined, Broadcast]:
        """Flowchart A-J for ``X`` (a PredictRequest or array-like): the combined prediction,
        and who answered."""
        self.events.publish(PREDICT, "B")
        request = self._checked_request(X)
        async with self._predict_client().use() as client:  # one pool for concurrent predicts
            pending = self._broadcast_predict(client, request)  # C
            replies = await self._wait_for_replies(pending, PREDICT)  # D, then E
        try:
            self._check_quorum(replies, len(self.fitted_workers_), "predict")  # E -> F
        except WorkerError as error:
            self.events.publish(PREDICT, "F", error=str(error))
            self.events.publish(PREDICT, "J")
            raise
        self._record(replies, len(self.history_) + 1, action="predict")
        predictions = self._gather_predictions(replies)  # G
        combined = self._combine(predictions)  # H
        self.events.publish(PREDICT, "I")
        self.events.publish(PREDICT, "J")
        return combined, replies

    def _predict_client(self) -> SharedClient:
        """The client the predictions running now on this event loop share."""
        loop = asyncio.get_running_loop()
        if self._shared_clients is None:
            self._shared_clients = weakref.WeakKeyDictionary()
        if loop not in self._shared_clients:
            self._shared_clients[loop] = SharedClient(lambda: self._client(self._endpoints))
        return self._shared_clients[loop]

    def _checked_request(self, X: Any) -> PredictRequest:
        """Fitted, and ``X`` has the training columns: a 422 naming wrong columns before any
        worker is asked."""
        self._check_is_fitted("fitted_workers_")
        request = X if isinstance(X, PredictRequest) else self._as_request(X, self.columns_)
        request.matrix(self.columns_)
        return request

    def _broadcast_predict(self, client: WorkerClient, request: PredictRequest) -> PendingBroadcast:
        """Step C: ask every fitted member to predict the same rows."""
        self.events.publish(PREDICT, "C")
        return client.broadcast(client.model_predict, dict.fromkeys(self.fitted_workers_, request))

    def _gather_predictions(self, replies: Broadcast) -> dict[str, MemberPrediction]:
        """Step G: each member's answer, by worker name."""
        self.events.publish(PREDICT, "G")
        return {
            name: MemberPrediction(np.asarray(answer.y_pred_rows), answer.classes)
            for name, answer in replies.results.items()
        }

    def _combine(self, predictions: dict[str, MemberPrediction]) -> Combined:
        """Step H: one prediction from many (the combiner's rule)."""
        self.events.publish(PREDICT, "H")
        return self.combiner_.combine(predictions, self.classes_)

    async def predict_async(self, X: Any) -> np.ndarray:
        """Predicted values (regression) or labels (classification) for the rows of ``X``."""
        combined, _ = await self._predict(X)
        return combined.predictions

    async def predict_proba_async(self, X: Any) -> np.ndarray:
        """The soft vote's class probabilities, shape ``(n_samples, len(classes_))``."""
        combined, _ = await self._predict(X)
        if combined.probabilities is None:
            raise AttributeError("predict_proba is for classification members")
        return combined.probabilities

    def predict_proba(self, X: Any) -> np.ndarray:
        """The soft vote's class probabilities; see :meth:`predict_proba_async`."""
        return _runtime.run_sync(self.predict_proba_async(X))

    def _is_fitted(self) -> bool:
        return hasattr(self, "fitted_workers_")

    # -- REST -------------------------------------------------------------------------------

    def _fit_response(self) -> FitResponse:
        return FitResponse(answered=self.fitted_workers_, failed=self.failed_workers_)

    async def _predict_response(self, body: PredictRequest) -> PredictResponse:
        combined, replies = await self._predict(body)
        probabilities = combined.probabilities
        return PredictResponse(
            y_pred_rows=combined.predictions.tolist(),
            classes=self.classes_,
            y_proba_rows=None if probabilities is None else probabilities.tolist(),
            answered=replies.answered,
            failed=replies.failed,
        )
