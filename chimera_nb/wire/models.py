"""Request and response bodies, as pydantic models.

Field names that the seed (Chimera) defined stay as they were (``X_pred_rows``,
``weights_gradients``...); fields chimera-nb adds are optional, so a seed client still
works. FastAPI validates every body against these models, and a bad one gets HTTP 422 with a
message that names the field (see :func:`chimera_nb.wire.server.install_error_handlers`).

Weights on the wire
-------------------
A linear model's ``weights`` have shape ``(n_outputs, n_features)``: one row for a regressor
or a binary classifier, one row per class for softmax. On the wire they are flattened
row-major (class by class), and ``bias`` has ``n_outputs`` entries, so the receiver recovers
the shape as ``weights.reshape(len(bias), -1)``.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

import numpy as np
from pydantic import AllowInfNan, BaseModel, ConfigDict, Field, Strict, model_validator

from .compressed import CompressionRequest
from .encoding import BodyError

__all__ = [
    "DataSampleResponse",
    "DelayRequest",
    "ErrorResponse",
    "FitResponse",
    "FitStepRequest",
    "FitStepResponse",
    "HealthResponse",
    "ModelFitRequest",
    "ModelFitResponse",
    "NetworkRequest",
    "PredictRequest",
    "PredictResponse",
    "StatisticsResponse",
]

Label = Union[int, float, str]

#: A number in a request: strict (``"1.5"`` and ``true`` are refused, not converted; an
#: integer is a number) and finite (JSON's ``NaN`` and ``Infinity`` are refused).
Number = Annotated[float, Strict(), AllowInfNan(False)]
#: A feature value: a number within float32's range, since scikit-learn's trees compute in
#: float32 and larger values would reach them as infinity.
Feature = Annotated[Number, Field(ge=-3.4e38, le=3.4e38)]
#: A seed, in the range numpy's generators and scikit-learn's ``random_state`` accept.
Seed = Annotated[int, Strict(), Field(ge=0, le=2**32 - 1)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt field is an error, not ignored


class HealthResponse(BaseModel):
    status: Literal["ok"] = "ok"
    role: str  # "SGDWorker", "ParameterServerMaster", ...
    name: str
    n_samples: int | None = None


class DelayRequest(_Body):
    """Make a worker answer its training endpoints ``seconds`` later (a straggler)."""

    seconds: Annotated[Number, Field(ge=0.0, le=60.0)]


class NetworkRequest(_Body):
    """The emulated network in front of a worker (see :mod:`chimera_nb.workers.network`),
    for the calls of one ``peer`` (the ``X-Chimera-Peer`` header; a master is ``"master"``)
    or, with ``peer`` None, of every caller. All zero or None: a normal network again."""

    latency_ms: Annotated[Number, Field(ge=0.0, le=60_000.0)] = 0.0
    bandwidth_mbps: Annotated[Number, Field(gt=0.0)] | None = None
    drop: Annotated[Number, Field(ge=0.0, le=1.0)] = 0.0
    partitioned: Annotated[bool, Strict()] = False
    seed: Seed | None = None
    peer: Annotated[str, Field(min_length=1, max_length=64)] | None = None

    def normal(self) -> bool:
        """Whether these settings leave the calls as they are."""
        return not (self.latency_ms or self.bandwidth_mbps or self.drop or self.partitioned)


class ErrorResponse(BaseModel):
    """Every error a server of the kit returns: ``detail`` says what happened and what to
    do; a 422 adds pydantic's ``errors``, a master's 503 who ``answered`` and who ``failed``."""

    detail: str
    errors: list[dict] | None = None
    answered: list[str] | None = None
    failed: dict[str, str] | None = None


# -- SGD workers ------------------------------------------------------------------------------


class DataSampleResponse(BaseModel):
    """The seed's answer to ``request-data-sample``: a few rows of the worker's shard."""

    X_train_sample_columns: list[str]
    X_train_sample_rows: list[list[float]]
    y_train_sample_columns: list[str]
    y_train_sample_rows: list[list[Label]]


class StatisticsResponse(BaseModel):
    """Per-column count, sum and sum of squared deviations of a worker's shard, which the
    master merges into global means and standard deviations; the classes it holds."""

    columns: list[str]
    n_samples: int
    feature_sum: list[float]
    feature_m2: list[float]
    target_sum: float | None = None
    target_m2: float | None = None
    classes: list[Label] | None = None


class FitStepRequest(_Body):
    """Compute the gradient of your shard at these weights (the seed's body, plus options).

    ``classes`` maps labels to rows of ``weights`` (classifiers); ``batch_size`` asks for a
    mini-batch drawn with ``seed`` instead of the whole shard; ``compression`` asks for a
    compressed gradient (:mod:`chimera_nb.wire.compressed`).
    """

    weights: list[Number]
    bias: list[Number] = Field(min_length=1)
    classes: list[Label] | None = None
    batch_size: Annotated[int, Strict(), Field(ge=1)] | None = None
    seed: Seed | None = None
    compression: CompressionRequest | None = None


class FitStepResponse(BaseModel):
    """The seed's gradients, plus how many samples they average and the loss there.

    All finite: where a diverging fit would make them infinite or NaN, which JSON cannot
    carry, the worker answers 422 naming the weights instead.
    """

    weights_gradients: list[float]
    bias_gradient: list[float]
    n_samples: int
    loss: float


# -- bagging workers --------------------------------------------------------------------------


class ModelFitRequest(_Body):
    """Optional body of ``model/fit``: the seed the master drew for this worker's bootstrap."""

    random_state: Seed | None = None


class ModelFitResponse(BaseModel):
    fit: Literal["ok"] = "ok"
    n_samples: int
    columns: list[str]
    random_state: int | None = None
    classes: list[Label] | None = None


class PredictRequest(_Body):
    """The seed's predict body: column names and rows of feature values."""

    X_pred_columns: list[str] = Field(min_length=1)
    X_pred_rows: list[Annotated[list[Feature], Field(min_length=1)]] = Field(min_length=1)

    @model_validator(mode="after")
    def _rows_match_columns(self) -> PredictRequest:
        if len(set(self.X_pred_columns)) != len(self.X_pred_columns):
            duplicates = sorted(
                {c for c in self.X_pred_columns if self.X_pred_columns.count(c) > 1}
            )
            raise ValueError(f"X_pred_columns has duplicate names: {duplicates}")
        width = len(self.X_pred_columns)
        for index, row in enumerate(self.X_pred_rows):
            if len(row) != width:
                raise ValueError(
                    f"X_pred_rows[{index}] has {len(row)} values but X_pred_columns names "
                    f"{width} columns"
                )
        return self

    def matrix(self, columns: list[str]) -> np.ndarray:
        """The rows as a float64 array with its columns in ``columns``' order.

        Raises :class:`~chimera_nb.wire.encoding.BodyError` (HTTP 422) naming the columns
        that are missing or unexpected; the order of the request's columns does not matter.
        """
        missing = [column for column in columns if column not in self.X_pred_columns]
        extra = [column for column in self.X_pred_columns if column not in columns]
        if missing or extra:
            raise BodyError(
                "X_pred_columns",
                f"must name the training columns {columns}; missing {missing}, unexpected {extra}",
            )
        order = [self.X_pred_columns.index(column) for column in columns]
        return np.asarray(self.X_pred_rows, dtype=np.float64)[:, order]


class PredictResponse(BaseModel):
    """``y_pred_rows`` holds one prediction per row.

    A classification *worker* answers with class probabilities (one row of
    ``len(classes)`` numbers per sample); a *master* answers with predicted labels and adds
    the averaged probabilities as ``y_proba_rows``.
    """

    y_pred_rows: list[Label | list[float]]
    classes: list[Label] | None = None
    y_proba_rows: list[list[float]] | None = None
    answered: list[str] | None = None
    failed: dict[str, str] | None = None

    def require_finite(self) -> PredictResponse:
        """This answer, or :class:`BodyError` (HTTP 422) naming the rows whose predictions
        are infinite or NaN: JSON cannot carry them, and they come from feature values too
        large for the model's arithmetic."""
        rows = sorted(_nonfinite_rows(self.y_pred_rows) | _nonfinite_rows(self.y_proba_rows))
        if rows:
            raise BodyError(
                "X_pred_rows",
                f"rows {rows[:5]}{' ...' if len(rows) > 5 else ''} give predictions that are "
                "infinite or NaN: their values are too large for this model's arithmetic; send "
                "feature values of the size the model was trained on",
            )
        return self


def _nonfinite_rows(rows: list | None) -> set[int]:
    """Indices of the rows holding an infinite or NaN number (labels never do)."""
    if not rows:
        return set()
    try:
        values = np.asarray(rows, dtype=np.float64)
    except (TypeError, ValueError):  # string labels
        return set()
    finite = np.isfinite(values.reshape(len(values), -1)).all(axis=1)
    return set(np.flatnonzero(~finite).tolist())


# -- masters ----------------------------------------------------------------------------------


class FitResponse(BaseModel):
    """A master's answer to ``fit``: the seed's ``"ok"``, and who took part."""

    fit: Literal["ok"] = "ok"
    answered: list[str]
    failed: dict[str, str]
    n_rounds: int | None = None
    converged: bool | None = None
    loss: float | None = None
