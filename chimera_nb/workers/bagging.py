"""Bagging workers: each wraps a scikit-learn estimator and fits it on its own data.

Each worker trains a whole member of an ensemble and the master
(:class:`~chimera_nb.AggregationMaster`) averages the members' predictions.

Names, because two meanings meet here. The seed (Chimera), whose API names the kit keeps,
calls bagging with the **same data** on every worker (``bootstrap=True``: each member sees
its own bootstrap sample) "model parallelism", and bagging with **different data** per
worker "hybrid parallelism". The course means something else by the terms: *model
parallelism* splits one model itself across devices (its layers or blocks, or its features,
on different nodes), and *hybrid parallelism* splits both the model and the data. Bagging
splits no model, so in the course's words it is an ensemble trained in parallel, on the same
data or on shards of it. The course's model parallelism is in
``notebooks/09_model_and_pipeline_parallelism.ipynb``: a feature split
(``FeatureSplitMaster``) and a pipeline of layers (``PipelineMaster`` and
``PipelineStageWorker``, GPipe and 1F1B schedules).
"""

from __future__ import annotations

import time

import numpy as np
from fastapi import Body, FastAPI, HTTPException

from .._exceptions import ConfigurationError
from ..wire import ModelFitRequest, ModelFitResponse, PredictRequest, PredictResponse, paths
from ..wire.encoding import BodyError
from ..wire.server import error_responses
from .base import Worker

__all__ = ["ClassificationWorker", "RegressionWorker"]


class _BaggingWorker(Worker):
    """Fit endpoint, predict endpoint and the checks they share."""

    def __init__(self, estimator, bootstrap: bool = False) -> None:
        if not (hasattr(estimator, "fit") and hasattr(estimator, "get_params")):
            raise ConfigurationError(
                f"{type(self).__name__} needs a scikit-learn estimator (with fit and get_params), "
                f"got {estimator!r}"
            )
        self.estimator = estimator
        self.bootstrap = bootstrap

    def _repr_arguments(self) -> str:
        return f"{self.estimator!r}, bootstrap={self.bootstrap}"

    def fit(self, random_state: int | None) -> ModelFitResponse:
        """Fit a fresh clone of the estimator on the shard, or on a bootstrap sample of it.

        Without a seed from the master, the worker draws its own from the OS, so that two
        workers never share a bootstrap sample by accident; the seed used is returned.
        """
        if random_state is None:
            random_state = int(np.random.SeedSequence().generate_state(1)[0])
        rows = self._sample_rows(random_state)
        from sklearn.base import clone  # imported here: SGD workers never need scikit-learn

        estimator = clone(self.estimator)
        if "random_state" in estimator.get_params():
            estimator.set_params(random_state=random_state)
        self.estimator_ = estimator.fit(self._frame(self.X_[rows]), self.y_[rows])
        return ModelFitResponse(
            n_samples=len(self.X_),
            columns=self.columns_,
            random_state=random_state,
            classes=self._classes(),
        )

    def _sample_rows(self, random_state: int) -> np.ndarray:
        """The rows the member is fitted on: the whole shard, or a bootstrap sample of it
        drawn from ``random_state`` (with replacement, as many rows as the shard)."""
        if not self.bootstrap:
            return np.arange(len(self.X_))
        return np.random.default_rng(random_state).integers(0, len(self.X_), len(self.X_))

    def _classes(self) -> list | None:
        return None

    def _frame(self, X: np.ndarray):
        """Rows as a DataFrame, so that the estimator learns and checks the column names."""
        import pandas as pd

        return pd.DataFrame(X, columns=self.columns_)

    def _features(self, request: PredictRequest):
        """The request's rows in training column order (422 if the columns differ)."""
        return self._frame(request.matrix(self.columns_))

    def predict(self, request: PredictRequest) -> PredictResponse:
        raise NotImplementedError

    def _checked_predict(self, request: PredictRequest) -> PredictResponse:
        """:meth:`predict`, with what the estimator refuses, or cannot predict finitely,
        answered as HTTP 422 naming the rows instead of a crash."""
        try:
            answer = self.predict(request)
        except BodyError:  # wrong columns: already a 422 that names them
            raise
        except ValueError as error:  # scikit-learn's word for "not these rows"
            raise BodyError(
                "X_pred_rows", f"{type(self.estimator).__name__} refused these rows: {error}"
            ) from None
        return answer.require_finite()

    def _add_routes(self, app: FastAPI) -> None:
        # Plain ``def``: fitting a forest takes long enough that it belongs on a thread, so
        # that /health still answers meanwhile.
        @app.post(paths.MODEL_FIT, response_model=ModelFitResponse, responses=error_responses(422))
        def model_fit(body: ModelFitRequest | None = Body(default=None)) -> ModelFitResponse:
            time.sleep(self.delay_)  # a straggler, if one was asked for
            return self.fit(body.random_state if body else None)

        @app.post(
            paths.MODEL_PREDICT,
            response_model=PredictResponse,
            responses=error_responses(409, 422),
        )
        def model_predict(body: PredictRequest) -> PredictResponse:
            time.sleep(self.delay_)
            if not hasattr(self, "estimator_"):
                raise HTTPException(
                    409, f"{self.name_} is not fitted yet: POST {paths.MODEL_FIT} first"
                )
            return self._checked_predict(body)


class RegressionWorker(_BaggingWorker):
    """A bagging member for regression: ``model/predict`` answers one number per row.

    Parameters
    ----------
    estimator : scikit-learn regressor
        Cloned before each fit, so the object you pass is never modified.
    bootstrap : bool, default=False
        Fit on a sample drawn with replacement from the shard (the seed the master sends,
        else one of the worker's own), instead of the whole shard.

    Examples
    --------
    >>> from sklearn.tree import DecisionTreeRegressor
    >>> from chimera_nb import RegressionWorker
    >>> RegressionWorker(DecisionTreeRegressor(max_depth=4), bootstrap=True)
    RegressionWorker(DecisionTreeRegressor(max_depth=4), bootstrap=True)
    """

    role = "RegressionWorker"

    def _regression(self) -> bool:
        return True

    def predict(self, request: PredictRequest) -> PredictResponse:
        return PredictResponse(
            y_pred_rows=self.estimator_.predict(self._features(request)).tolist()
        )


class ClassificationWorker(_BaggingWorker):
    """A bagging member for classification: ``model/predict`` answers, for each row, the
    probability of **every** class in ``classes`` (so that the master can soft-vote, even
    for three or more classes).

    Parameters
    ----------
    estimator : scikit-learn classifier with ``predict_proba``
    bootstrap : bool, default=False
        As for :class:`RegressionWorker`.

    Examples
    --------
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> from chimera_nb import ClassificationWorker
    >>> ClassificationWorker(DecisionTreeClassifier(), bootstrap=True)
    ClassificationWorker(DecisionTreeClassifier(), bootstrap=True)
    """

    role = "ClassificationWorker"

    def __init__(self, estimator, bootstrap: bool = False) -> None:
        super().__init__(estimator, bootstrap)
        if not hasattr(estimator, "predict_proba"):
            raise ConfigurationError(
                f"ClassificationWorker soft-votes with class probabilities, but {estimator!r} has "
                "no predict_proba (for SVC, pass probability=True)"
            )

    def _classes(self) -> list:
        return self.estimator_.classes_.tolist()

    def predict(self, request: PredictRequest) -> PredictResponse:
        probabilities = self.estimator_.predict_proba(self._features(request))
        return PredictResponse(y_pred_rows=probabilities.tolist(), classes=self._classes())
