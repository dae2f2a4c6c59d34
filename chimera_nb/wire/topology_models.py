"""Request and answer bodies of the topologies beyond the star (issue 12): sharded parameter
servers (placed by consistent hashing) and ring all-reduce. Kept apart from
:mod:`.models` (the seed's bodies and the kit's common ones), whose rules they share."""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import BaseModel, Field, Strict, model_validator

from ..algorithms import ParameterBlocks
from ..spans import Span
from .models import Number, _Body

__all__ = [
    "PeerSpan",
    "RingChunkMeta",
    "RingRoundRequest",
    "RingRoundResponse",
    "RingSetupRequest",
    "ShardBlocksRequest",
    "ShardCommitRequest",
    "ShardProposeRequest",
    "ShardProposeResponse",
    "ShardedPlan",
    "ShardedStepRequest",
    "ShardedStepResponse",
]


# -- sharded parameter servers (issue 12) -----------------------------------------------------

#: A block's name ("w0", "w1", ..., "bias") or a server's.
Name = Annotated[str, Field(min_length=1, max_length=128)]
#: A class label, as the schema says: an integer, a number or a string. Strict, unlike the
#: seed's :data:`.models.Label`: JSON's ``true`` is refused, not read as the label 1.
StrictLabel = Union[Annotated[int, Strict()], Number, Annotated[str, Strict()]]
#: A column's scale: a standardization divides by it.
Scale = Annotated[Number, Field(gt=0.0)]


class ShardBlocksRequest(_Body):
    """Which blocks a parameter shard should send (``pull``; None: all it holds) or forget
    (``drop``)."""

    blocks: list[Name] | None = None


class ShardProposeRequest(_Body):
    """Aggregate round ``round_number``'s gradient slices of ``workers`` (in that order,
    weighted by their samples), add the L2 term ``alpha`` and propose the step."""

    round_number: Annotated[int, Strict(), Field(ge=1)]
    workers: list[Name] = Field(min_length=1)
    learning_rate: Annotated[Number, Field(gt=0.0)]
    alpha: Annotated[Number, Field(ge=0.0)] = 0.0


class ShardProposeResponse(BaseModel):
    """This shard's part of the update's squared norm and of the L2 penalty."""

    norm2: float
    penalty: float


class ShardCommitRequest(_Body):
    """Take the step proposed for ``round_number``."""

    round_number: Annotated[int, Strict(), Field(ge=1)]


class ShardedPlan(_Body):
    """What an SGD worker needs for sharded rounds: where each block lives (``placement``,
    block -> shard; ``shards``, shard -> URL), how the blocks cut the weights, the classes,
    and the global standardization (weights live on the shards in standardized units).

    A plan is checked whole when it comes, so that a round never finds out too late that a
    block has no shard: ``placement`` places every block of the layout
    (:class:`~chimera_nb.algorithms.ParameterBlocks`) and nothing else, on shards of
    ``shards``, and the standardization has one mean and one scale per feature."""

    version: Annotated[int, Strict(), Field(ge=0)]
    shards: dict[Name, Name]
    placement: dict[Name, Name]
    n_outputs: Annotated[int, Strict(), Field(ge=1)]
    n_features: Annotated[int, Strict(), Field(ge=1)]
    n_blocks: Annotated[int, Strict(), Field(ge=1)]
    classes: list[StrictLabel] | None = None
    feature_mean: list[Number]
    feature_scale: list[Scale]
    target_mean: Number = 0.0
    target_scale: Scale = 1.0

    @model_validator(mode="after")
    def _consistent(self) -> ShardedPlan:
        if self.n_blocks > self.n_features:
            raise ValueError(
                f"n_blocks is {self.n_blocks}, more than n_features = {self.n_features}: "
                "a block holds at least one column"
            )
        for field in ("feature_mean", "feature_scale"):
            if len(getattr(self, field)) != self.n_features:
                raise ValueError(
                    f"{field} has {len(getattr(self, field))} values; n_features = "
                    f"{self.n_features} expected"
                )
        blocks = ParameterBlocks(self.n_outputs, self.n_features, self.n_blocks).names
        unplaced = [block for block in blocks if block not in self.placement]
        unknown = sorted(set(self.placement) - set(blocks))
        if unplaced or unknown:
            raise ValueError(
                f"placement must place every block of the layout {blocks} and no other: "
                f"{unplaced} have no shard" + (f", {unknown} are no blocks" if unknown else "")
            )
        strangers = sorted(set(self.placement.values()) - set(self.shards))
        if strangers:
            raise ValueError(f"placement names shards {strangers} that are not in 'shards'")
        return self


class ShardedStepRequest(_Body):
    """Run round ``round_number`` with the plan of version ``plan_version``: pull the
    weights from the shards, compute this shard's gradient, push its slices."""

    round_number: Annotated[int, Strict(), Field(ge=1)]
    plan_version: Annotated[int, Strict(), Field(ge=0)]


class ShardedStepResponse(BaseModel):
    """A worker's answer to a sharded round: its samples, its loss (standardized units) and
    the spans of its calls to the shards, for the master's ``spans_``."""

    n_samples: int
    loss: float
    spans: list[dict]


# -- ring all-reduce (issue 12) ---------------------------------------------------------------

#: The largest ring a worker joins. A worker cuts its vector into one chunk per worker, at
#: setup, and a million chunks already take seconds; a classroom's ring is far smaller.
MAX_RING = 1000


class RingSetupRequest(_Body):
    """A worker's place in the ring and everything its replica of the model needs: the
    global standardization (from the master's statistics), the starting weights (standardized
    units, flattened row-major as a fit-step's) and how to step. ``fit_id`` names the fit:
    chunks of an earlier fit that arrive late are refused."""

    fit_id: str = Field(min_length=1, max_length=64)
    position: Annotated[int, Strict(), Field(ge=0)]
    n_workers: Annotated[int, Strict(), Field(ge=1, le=MAX_RING)]
    left: str = Field(min_length=1)
    right: str = Field(min_length=1)
    right_url: str = Field(min_length=1)
    feature_mean: list[Number]
    feature_scale: list[Scale]
    target_mean: Number = 0.0
    target_scale: Scale = 1.0
    weights: list[Number]
    bias: list[Number] = Field(min_length=1)
    classes: list[StrictLabel] | None = None
    learning_rate: Annotated[Number, Field(gt=0.0)]
    learning_rate_schedule: Literal["constant", "invscaling"] = "constant"
    power_t: Annotated[Number, Field(ge=0.0)] = 0.25
    alpha: Annotated[Number, Field(ge=0.0)] = 0.0
    tol: Annotated[Number, Field(ge=0.0)] = 0.0
    timeout: Annotated[Number, Field(gt=0.0)] = 10.0  # s to wait for a neighbour

    @model_validator(mode="after")
    def _consistent(self) -> RingSetupRequest:
        if self.position >= self.n_workers:
            raise ValueError(f"position {self.position} is not in a ring of {self.n_workers}")
        if len(self.feature_scale) != len(self.feature_mean):
            raise ValueError("feature_scale and feature_mean need one number per feature each")
        if len(self.weights) != len(self.bias) * len(self.feature_mean):
            raise ValueError(
                f"weights has {len(self.weights)} values; len(bias) * features = "
                f"{len(self.bias) * len(self.feature_mean)} expected"
            )
        return self


class RingRoundRequest(_Body):
    """Start a round: compute, all-reduce, and (``take_step``) step unless below ``tol``."""

    round_number: Annotated[int, Strict(), Field(ge=1)]
    take_step: Annotated[bool, Strict()] = True


class RingChunkMeta(_Body):
    """The ``X-Chimera-Meta`` of a chunk a worker sends its right neighbour: which round,
    phase, step and chunk it is, and who sent it (the body: the chunk's float64 numbers)."""

    fit_id: str = Field(min_length=1, max_length=64)
    round_number: Annotated[int, Strict(), Field(ge=1)]
    phase: Literal["reduce-scatter", "all-gather"]
    step: Annotated[int, Strict(), Field(ge=0)]
    index: Annotated[int, Strict(), Field(ge=0)]
    sender: str = Field(min_length=1)


class PeerSpan(BaseModel):
    """A :class:`~chimera_nb.spans.Span` of a worker-to-worker call, as it travels to the
    master in a round's reply."""

    worker: str
    endpoint: str
    start: float
    end: float
    status: str
    round_number: int | None = None
    attempt: int = 1
    bytes_sent: int = 0
    bytes_received: int = 0
    peer: str | None = None
    worker_url: str = ""

    @classmethod
    def of(cls, span: Span) -> PeerSpan:
        return cls(**{name: getattr(span, name) for name in cls.model_fields})

    def span(self) -> Span:
        return Span(**self.model_dump())


class RingRoundResponse(BaseModel):
    """A worker's round: its shard's loss (standardized, times ``n_samples``, so the master
    can weight it), the step its replica took, and the spans of its calls to its neighbour."""

    round_number: int
    n_samples: int
    loss_sum: float
    penalty: float
    learning_rate: float
    update_norm: float
    stepped: bool
    spans: list[PeerSpan]
