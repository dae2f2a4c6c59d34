"""A third master, written only in the tests: proof that the kit's shape carries a new
algorithm with no change outside this file.

A parameter server whose rule is the coordinate-wise median of the workers' gradients (robust
to one bad worker), in raw units, with a flowchart of its own. It writes only what is new: its
flowchart, its steps and its rule. The REST app, both log files, spans, ``history_``,
``clone`` and the dashboard come from the kit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from chimera_nb.algorithms import Gradient, ShardGradient
from chimera_nb.masters import (
    Broadcast,
    Flowchart,
    Interval,
    Master,
    PendingBroadcast,
    WorkerClient,
    chain,
)
from chimera_nb.masters.history import all_failures
from chimera_nb.wire import FitResponse, FitStep, PredictRequest, PredictResponse

MEDIAN_FIT = Flowchart(
    "median fit",
    {
        "A": "idle",
        "B": "fit request received",
        "C": "learn the columns",
        "D": "broadcast fit-step",
        "E": "wait for gradients",
        "F": "coordinate-wise median",
        "G": "step",
        "H": "ok to client",
        "I": "end",
    },
    chain("ABCDEFGHI") + (("G", "D", "next round"),),
)
MEDIAN_PREDICT = Flowchart(
    "median predict",
    {"A": "idle", "B": "predict request received", "C": "predictions to client", "D": "end"},
    chain("ABCD"),
)


class CoordinateMedian:
    """The rule: each coordinate of the gradient is the median over the workers."""

    def aggregate(self, gradients: Mapping[str, ShardGradient]) -> Gradient:
        answers = list(gradients.values())
        return Gradient(
            np.median([a.weights for a in answers], axis=0),
            np.median([a.bias for a in answers], axis=0),
        )


class MedianMaster(Master):
    """Gradient descent on a linear regression with the median of the workers' gradients."""

    role = "MedianMaster"
    fit_path = "/v1/chimera/median/fit"
    predict_path = "/v1/chimera/median/predict"
    flowcharts = (MEDIAN_FIT, MEDIAN_PREDICT)
    _parameter_constraints = {
        **Master._parameter_constraints,
        "learning_rate": [Interval(float, 0, None, closed="neither")],
        "max_iter": [Interval(int, 1, None, closed="left")],
    }

    def __init__(self, *, learning_rate=0.1, max_iter=50, quorum=None, timeout=None):
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.quorum = quorum
        self.timeout = timeout

    @property
    def max_rounds(self) -> int:
        return self.max_iter

    async def _fit(self, client: WorkerClient) -> None:
        self.events.publish(MEDIAN_FIT, "B")
        await self._learn_columns(client)  # C
        for round_number in range(1, self.max_iter + 1):
            pending = self._broadcast(client, round_number)  # D
            replies = await self._wait(pending, round_number)  # E
            self._check_quorum(replies, len(client.endpoints), f"round {round_number}")
            gradient, loss = self._median(replies, round_number)  # F
            self._step(gradient, round_number)  # G, then back to D
            self._record(replies, round_number, loss=loss)
            if self._stop_requested:
                break
        self.events.publish(MEDIAN_FIT, "H")
        self.events.publish(MEDIAN_FIT, "I")

    async def _learn_columns(self, client: WorkerClient) -> None:
        self.events.publish(MEDIAN_FIT, "C")
        sample, _ = await client.request_data_sample(next(iter(client.endpoints)))
        self.columns_ = sample.X_train_sample_columns
        self.coef_ = np.zeros((1, len(self.columns_)))
        self.intercept_ = np.zeros(1)

    def _broadcast(self, client: WorkerClient, round_number: int) -> PendingBroadcast:
        self.events.publish(MEDIAN_FIT, "D", round_number)
        step = FitStep(self.coef_, self.intercept_)
        steps = dict.fromkeys(client.endpoints, step)
        return client.broadcast(client.fit_step, steps, round_number=round_number)

    async def _wait(self, pending: PendingBroadcast, round_number: int) -> Broadcast:
        self.events.publish(MEDIAN_FIT, "E", round_number)
        return await pending.wait()

    def _median(self, replies: Broadcast, round_number: int) -> tuple[Gradient, float]:
        detail = {"answered": replies.answered, "failed": replies.failed}
        self.events.publish(MEDIAN_FIT, "F", round_number, **detail)
        gradients = {
            name: ShardGradient(r.weights_gradient, r.bias_gradient, r.n_samples, r.loss)
            for name, r in replies.results.items()
        }
        loss = float(np.median([g.loss for g in gradients.values()]))
        return CoordinateMedian().aggregate(gradients), loss

    def _step(self, gradient: Gradient, round_number: int) -> None:
        self.events.publish(MEDIAN_FIT, "G", round_number)
        self.coef_ = self.coef_ - self.learning_rate * gradient.weights
        self.intercept_ = self.intercept_ - self.learning_rate * gradient.bias

    def _is_fitted(self) -> bool:
        return hasattr(self, "coef_")

    async def predict_async(self, X: Any) -> np.ndarray:
        self.events.publish(MEDIAN_PREDICT, "B")
        self._check_is_fitted("coef_")
        rows = X if isinstance(X, PredictRequest) else self._as_request(X, self.columns_)
        predictions = (rows.matrix(self.columns_) @ self.coef_.T + self.intercept_)[:, 0]
        self.events.publish(MEDIAN_PREDICT, "C")
        self.events.publish(MEDIAN_PREDICT, "D")
        return predictions

    def _fit_response(self) -> FitResponse:
        last = self.history_[-1]
        failed = all_failures(self.history_)
        return FitResponse(
            answered=last.answered, failed=failed, n_rounds=len(self.history_), loss=last.loss
        )

    async def _predict_response(self, body: PredictRequest) -> PredictResponse:
        return PredictResponse(y_pred_rows=(await self.predict_async(body)).tolist())
