"""How a pipeline-parallel network answers: its predictions run a forward-only schedule
through the same stage workers that trained it (the layers never leave them), the last stage
answering the class probabilities; and its REST answers. A mixin of :class:`~chimera_nb.PipelineMaster`, which gives it the stages, the
fit's id, the step counter and the check of the stages' replies."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _runtime
from .._exceptions import QuorumError
from ..algorithms.pipeline_schedules import forward_only
from ..wire import PredictRequest, PredictResponse
from ..wire.pipeline_models import PipelineStepRequest
from .flowchart import Flowchart, chain
from .ring_allreduce import FirstFailureEndsRound

__all__ = ["PIPELINE_PREDICT", "PipelinePredictions"]

#: Predicting runs a forward-only schedule through the same stages.
PIPELINE_PREDICT = Flowchart(
    "pipeline predict",
    {
        "A": "idle",
        "B": "predict request received",
        "C": "model fitted?",
        "D": "forwards through the stages",
        "E": "predictions to client",
        "F": "error to client",
        "G": "end",
    },
    chain("ABC")
    + (("C", "D", "yes"), ("C", "F", "no"), ("D", "E", ""), ("E", "G", ""), ("F", "G", "")),
)


class PipelinePredictions:
    """``predict``, ``predict_proba``, ``score`` and the REST answers of a pipeline."""

    async def predict_proba_async(self, X: Any) -> np.ndarray:
        """Class probabilities ``(n_samples, len(classes_))``, computed by the stages."""
        self.events.publish(PIPELINE_PREDICT, "B")
        try:
            self.events.publish(PIPELINE_PREDICT, "C")
            self._check_is_fitted("coefs_")
            request = X if isinstance(X, PredictRequest) else self._as_request(X, self.columns_)
            rows = request.matrix(self.columns_)
        except Exception as error:
            self.events.publish(PIPELINE_PREDICT, "F", error=str(error))
            self.events.publish(PIPELINE_PREDICT, "G")
            raise
        self.events.publish(PIPELINE_PREDICT, "D", n_rows=len(rows))
        step, m = self._next_step(), min(self.n_microbatches, len(rows))
        ops = forward_only(len(self.stages_), m)
        requests = {
            name: PipelineStepRequest(
                fit_id=self._fit_id,
                step=step,
                n_microbatches=m,
                ops=ops[s],
                training=False,
                inputs=rows.tolist() if s == 0 else None,
            )
            for s, name in enumerate(self.stages_)
        }
        async with self._client(self._endpoints) as client:
            pending = client.broadcast(client.pipeline_step, requests)
            replies = await pending.wait(FirstFailureEndsRound())
        try:
            self._check_replies(replies, step)
        except QuorumError as error:
            self.events.publish(PIPELINE_PREDICT, "F", error=str(error))
            self.events.publish(PIPELINE_PREDICT, "G")
            raise
        self._record(replies, step, action="predict")
        self.events.publish(PIPELINE_PREDICT, "E")
        self.events.publish(PIPELINE_PREDICT, "G")
        return np.array(replies.results[self.stages_[-1]].probabilities)

    async def predict_async(self, X: Any) -> np.ndarray:
        """The most probable class of each row of ``X``."""
        return np.asarray(self.classes_)[(await self.predict_proba_async(X)).argmax(axis=1)]

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities; see :meth:`predict_proba_async`."""
        return _runtime.run_sync(self.predict_proba_async(X))

    def score(self, X: Any, y: Any) -> float:
        """Accuracy of :meth:`predict` on ``X`` against the labels ``y``."""
        return float(np.mean(self.predict(X) == np.asarray(y)))

    def _is_fitted(self) -> bool:
        return hasattr(self, "coefs_")

    async def _predict_response(self, body: PredictRequest) -> PredictResponse:
        probabilities = await self.predict_proba_async(body)
        predictions = np.asarray(self.classes_)[probabilities.argmax(axis=1)]
        return PredictResponse(
            y_pred_rows=predictions.tolist(),
            classes=self.classes_,
            y_proba_rows=probabilities.tolist(),
        )
