"""Request and answer bodies of pipeline parallelism (issue 14): the master's setup and steps
of :class:`~chimera_nb.PipelineStageWorker` s, and the header of the frames stages send each
other (activations forward, gradients backward). Each body is checked whole when it comes, so
a step never finds out halfway that its ops or its layers do not fit together."""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, Field, Strict, model_validator

from ..algorithms.pipeline_schedules import check_stage_ops
from .models import Number, _Body
from .topology_models import PeerSpan, StrictLabel

__all__ = [
    "MAX_MICROBATCHES",
    "MAX_STAGES",
    "PipelineDataResponse",
    "PipelineLayer",
    "PipelineMessageMeta",
    "PipelineSetupRequest",
    "PipelineStepRequest",
    "PipelineStepResponse",
    "PipelineWeightsResponse",
]

#: The longest pipeline and the most micro-batches a step may have: a classroom's are far
#: smaller, and a bound keeps one body from asking for millions of waits.
MAX_STAGES = 64
MAX_MICROBATCHES = 1024

Count = Annotated[int, Strict(), Field(ge=1)]
Index = Annotated[int, Strict(), Field(ge=0)]
#: A row of a stage's data, by index (bounded: numpy indexes with 64-bit integers).
Row = Annotated[int, Strict(), Field(ge=0, lt=2**62)]
Name = Annotated[str, Field(min_length=1, max_length=128)]
#: ``["F", 3]``: the forward (or ``"B"``, backward) of micro-batch 3.
OpBody = tuple[Literal["F", "B"], Index]


class PipelineLayer(_Body):
    """One dense layer: ``weights`` is ``n_in`` rows of ``n_out`` numbers, ``bias`` ``n_out``."""

    weights: list[list[Number]] = Field(min_length=1)
    bias: list[Number] = Field(min_length=1)

    @classmethod
    def of(cls, weights: np.ndarray, bias: np.ndarray) -> PipelineLayer:
        return cls(weights=weights.tolist(), bias=bias.tolist())

    @model_validator(mode="after")
    def _rectangular(self) -> PipelineLayer:
        widths = {len(row) for row in self.weights}
        if widths != {len(self.bias)}:
            raise ValueError(
                f"weights must be n_in rows of n_out = len(bias) = {len(self.bias)} numbers; "
                f"got rows of {sorted(widths)}"
            )
        return self


class PipelineSetupRequest(_Body):
    """A stage's place in the pipeline: its layers (the network's ``stage``-th contiguous
    range), its neighbours (None at the ends) and how it steps. The last stage holds the
    output layer and needs the ``classes``, in the order of its outputs. ``fit_id`` names the
    fit: frames of an earlier fit that arrive late are refused."""

    fit_id: str = Field(min_length=1, max_length=64)
    stage: Index
    n_stages: Annotated[int, Strict(), Field(ge=1, le=MAX_STAGES)]
    n_microbatches: Annotated[int, Strict(), Field(ge=1, le=MAX_MICROBATCHES)]  # at most
    layers: list[PipelineLayer] = Field(min_length=1)
    previous: Name | None = None
    previous_url: str | None = None
    next: Name | None = None
    next_url: str | None = None
    classes: list[StrictLabel] | None = None
    learning_rate: Annotated[Number, Field(gt=0.0)]
    timeout: Annotated[Number, Field(gt=0.0, le=600.0)] = 10.0  # s to wait for a neighbour
    #: a teaching knob: each forward and backward takes at least this long (a larger model)
    emulated_op_seconds: Annotated[Number, Field(ge=0.0, le=10.0)] = 0.0

    @property
    def last(self) -> bool:
        return self.stage == self.n_stages - 1

    @model_validator(mode="after")
    def _consistent(self) -> PipelineSetupRequest:
        if self.stage >= self.n_stages:
            raise ValueError(f"stage {self.stage} is not in a pipeline of {self.n_stages}")
        for index, (layer, following) in enumerate(zip(self.layers, self.layers[1:])):
            if len(layer.bias) != len(following.weights):
                raise ValueError(
                    f"layers[{index}] has {len(layer.bias)} outputs but layers[{index + 1}] "
                    f"takes {len(following.weights)} inputs"
                )
        for side, exists in (("previous", self.stage > 0), ("next", not self.last)):
            given = getattr(self, side) is not None and getattr(self, f"{side}_url") is not None
            if given != exists:
                raise ValueError(
                    f"{side} and {side}_url are needed exactly when stage {self.stage} of "
                    f"{self.n_stages} has a {side} stage"
                )
        if self.last and (self.classes is None or len(self.classes) != len(self.layers[-1].bias)):
            raise ValueError(
                f"the last stage needs classes, one per output ({len(self.layers[-1].bias)})"
            )
        return self


class PipelineStepRequest(_Body):
    """Run ``ops`` (this stage's part of a schedule) for step ``step``.

    Training (``training``): every stage is given the batch's ``rows`` (indices into the
    stage's data: the first stage reads their features, the last their labels) cut into
    ``n_microbatches``; the stage ends with a gradient step. Predicting: the
    first stage is given the rows to predict as ``inputs``, the ops are forwards only, and
    the last stage answers the probabilities."""

    fit_id: str = Field(min_length=1, max_length=64)
    step: Count
    n_microbatches: Annotated[int, Strict(), Field(ge=1, le=MAX_MICROBATCHES)]
    ops: list[OpBody] = Field(min_length=1, max_length=2 * MAX_MICROBATCHES)
    training: Annotated[bool, Strict()] = True
    rows: list[Row] | None = None
    inputs: list[list[Number]] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> PipelineStepRequest:
        try:
            check_stage_ops(self.ops, self.n_microbatches, training=self.training)
        except ValueError as error:
            raise ValueError(f"ops: {error}") from None
        if self.training and self.rows is None:
            raise ValueError("rows: a training step needs the batch's rows")
        if self.inputs is not None and len({len(row) for row in self.inputs}) > 1:
            raise ValueError("inputs: every row to predict needs the same number of values")
        given = self.rows if self.training else self.inputs
        if given is not None and len(given) < self.n_microbatches:
            field = "rows" if self.training else "inputs"
            raise ValueError(
                f"{field}: {len(given)} rows cannot make {self.n_microbatches} micro-batches"
            )
        return self


class PipelineStepResponse(BaseModel):
    """A stage's step: the loss summed over the batch (the last stage, training), the most
    micro-batches it held activations of at once, the spans of its computing and of its calls
    to its neighbours, and (the last stage, predicting) the class probabilities."""

    step: int
    loss_sum: float
    n_rows: int
    peak_stashed: int
    spans: list[PeerSpan]
    probabilities: list[list[float]] | None = None


class PipelineMessageMeta(_Body):
    """The ``X-Chimera-Meta`` of a frame between stages: an activation (forward) or a
    gradient (backward) of micro-batch ``micro_batch`` of step ``step``, ``n_rows`` rows."""

    fit_id: str = Field(min_length=1, max_length=64)
    step: Count
    micro_batch: Annotated[int, Strict(), Field(ge=0, lt=MAX_MICROBATCHES)]
    n_rows: Count
    sender: Name


class PipelineDataResponse(BaseModel):
    """What a stage's data holds: the master sizes the network's inputs and outputs by it."""

    n_samples: int
    columns: list[str]
    classes: list[StrictLabel]


class PipelineWeightsResponse(BaseModel):
    """A stage's layers, as they are now."""

    layers: list[PipelineLayer]
