"""A parameter shard: one of S servers that together hold a model's weights.

A star parameter server holds every weight, and every worker sends it every gradient: its
link carries ``N * d`` numbers a round. With S shards, each holds the blocks a hash ring
gives it (:class:`~chimera_nb.algorithms.HashRing`), and each worker exchanges with each
shard only that shard's slice, so the busiest link carries about ``N * d / S``.

A round, seen from a shard:

1. workers **pull** its blocks (the current weights, standardized units);
2. each worker **pushes** the slices of its gradient for the blocks held here, with its
   number of samples;
3. the master asks it to **propose**: the weighted mean of the round's slices (by samples,
   as the star's :class:`~chimera_nb.algorithms.WeightedMean`), plus the L2 term, and the
   step ``-learning_rate * gradient``; it answers its part of the step's squared norm, so the
   master can decide convergence for the whole model;
4. the master tells it to **commit** the step (or not, when the fit converged).

Blocks travel as binary float64 frames (:mod:`chimera_nb.wire.encoding`), the control
messages as JSON. The shard holds no training data: its ``GET /health`` says 0 samples.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from fastapi import FastAPI, HTTPException, Request, Response

from .._exceptions import ConfigurationError
from ..algorithms import BIAS_BLOCK, weighted_mean
from ..wire import BodyError, decode_frame, encode_frame, paths
from ..wire.fastpath import RawHandler
from ..wire.server import error_responses
from ..wire.topology_models import (
    ShardBlocksRequest,
    ShardCommitRequest,
    ShardProposeRequest,
    ShardProposeResponse,
)
from .base import Worker
from .training_data import TrainingData

__all__ = ["ParameterShard", "blocks_frame"]

_FRAME = {"content": {"application/octet-stream": {"schema": {"type": "string"}}}}


def blocks_frame(blocks: Mapping[str, np.ndarray], **meta: object) -> tuple[bytes, dict[str, str]]:
    """A binary frame of named blocks: their names go in the metadata, in order."""
    return encode_frame(list(blocks.values()), {**meta, "blocks": list(blocks)})


def read_blocks(body: bytes, headers: Mapping[str, str]) -> tuple[dict[str, np.ndarray], dict]:
    """The named blocks of a frame made by :func:`blocks_frame`, and the rest of its meta."""
    names = _names(headers)
    vectors, meta = decode_frame(body, headers, names)
    meta.pop("blocks", None)
    return dict(zip(names, vectors)), meta


def _names(headers: Mapping[str, str]) -> list[str]:
    try:
        names = json.loads(headers.get("x-chimera-meta", "{}")).get("blocks")
    except (ValueError, AttributeError):
        names = None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise BodyError("x-chimera-meta", "must name the frame's blocks: {'blocks': [...]}")
    return names


@dataclass
class _Slices:
    """One worker's gradient slices of one round."""

    n_samples: int
    blocks: dict[str, np.ndarray]


class ParameterShard(Worker):
    """A server holding some blocks of a model's weights, for sharded parameter servers.

    Start S of them like any worker (``LocalCluster([ParameterShard()] * 4, name="shards")``)
    and hand that cluster to :class:`~chimera_nb.ShardedParameterServerMaster`. They hold
    no data; the master places the blocks, the workers pull and push.

    Examples
    --------
    >>> from chimera_nb import ParameterShard
    >>> ParameterShard()
    ParameterShard()
    """

    role = "ParameterShard"

    def with_data(self, X: object, y: object) -> Worker:
        raise ConfigurationError(
            "a ParameterShard holds blocks of the weights, not training data: start it "
            "without X and y (the SGD workers hold the data)"
        )

    def serve(self) -> None:
        """Serve with an empty shard of data (a shard holds parameters, not rows)."""
        self._data = TrainingData([], np.empty((0, 0)), np.empty(0))
        super().serve()

    def load(self, name: str, data: TrainingData) -> ParameterShard:
        super().load(name, data)
        self.blocks_: dict[str, np.ndarray] = {}
        self._slices: dict[int, dict[str, _Slices]] = {}  # round -> worker -> its slices
        self._proposal: tuple[int, dict[str, np.ndarray]] | None = None
        return self

    # -- the arithmetic ----------------------------------------------------------------------

    def hold(self, blocks: Mapping[str, np.ndarray], reset: bool = False) -> None:
        """Keep ``blocks`` (a copy); ``reset`` forgets everything first (a new fit)."""
        if reset:
            self.blocks_, self._slices, self._proposal = {}, {}, None
        self.blocks_.update({name: np.array(vector) for name, vector in blocks.items()})

    def _held(self, names: list[str]) -> None:
        missing = [name for name in names if name not in self.blocks_]
        if missing:
            raise HTTPException(
                409,
                f"{self.name_} does not hold blocks {missing} (it holds {sorted(self.blocks_)}): "
                "the placement used is out of date; ask the master for the current one",
            )

    def push(self, round_number: int, worker: str, slices: _Slices) -> None:
        """Keep a worker's gradient slices of a round until the master asks to propose."""
        self._held(list(slices.blocks))
        self._slices.setdefault(round_number, {})[worker] = slices

    def propose(self, request: ShardProposeRequest) -> ShardProposeResponse:
        """The round's step for the blocks held here: weighted mean of the slices of
        ``request.workers``, plus ``alpha * W`` on weight blocks, times ``-learning_rate``."""
        pushed = self._slices.get(request.round_number, {})
        missing = [worker for worker in request.workers if worker not in pushed]
        if missing:
            raise HTTPException(
                409,
                f"round {request.round_number}: {self.name_} has no gradient slices from "
                f"{missing} (they pushed to another placement, or not at all)",
            )
        answers = [pushed[worker] for worker in request.workers]
        sizes = [answer.n_samples for answer in answers]
        proposal, norm2, penalty = {}, 0.0, 0.0
        for name, block in self.blocks_.items():
            gradient = weighted_mean([answer.blocks[name] for answer in answers], sizes)
            if name != BIAS_BLOCK:  # the L2 penalty leaves the bias alone
                penalty += 0.5 * request.alpha * float(np.sum(block**2))
                gradient = gradient + request.alpha * block
            with np.errstate(over="ignore", invalid="ignore"):
                update = -request.learning_rate * gradient
                norm2 += float(np.sum(update**2))
            proposal[name] = block + update
        self._proposal = (request.round_number, proposal)
        return ShardProposeResponse(norm2=norm2, penalty=penalty)

    def commit(self, round_number: int) -> None:
        """Take the step proposed for ``round_number``; forget that round's slices."""
        if self._proposal is None or self._proposal[0] != round_number:
            raise HTTPException(409, f"{self.name_} has no step proposed for round {round_number}")
        self.blocks_.update(self._proposal[1])
        self._proposal = None
        self._slices = {r: s for r, s in self._slices.items() if r > round_number}

    # -- the endpoints -----------------------------------------------------------------------

    async def _answer_blocks(self, body: bytes, headers: Mapping[str, str]) -> tuple:
        blocks, meta = read_blocks(body, headers)
        self.hold(blocks, reset=bool(meta.get("reset")))
        return 200, b'{"held":%d}' % len(self.blocks_), {"content-type": "application/json"}

    async def _answer_pull(self, body: bytes, headers: Mapping[str, str]) -> tuple:
        names = ShardBlocksRequest.model_validate_json(body or b"{}").blocks
        names = list(self.blocks_) if names is None else names
        self._held(names)
        frame, frame_headers = blocks_frame({name: self.blocks_[name] for name in names})
        return 200, frame, frame_headers

    async def _answer_push(self, body: bytes, headers: Mapping[str, str]) -> tuple:
        blocks, meta = read_blocks(body, headers)
        try:
            round_number, worker = int(meta["round_number"]), str(meta["worker"])
            n_samples = int(meta["n_samples"])
        except (KeyError, TypeError, ValueError):
            raise BodyError(
                "x-chimera-meta", "a push needs 'round_number', 'worker' and 'n_samples'"
            ) from None
        self.push(round_number, worker, _Slices(n_samples, blocks))
        return 200, b'{"pushed":true}', {"content-type": "application/json"}

    def _add_routes(self, app: FastAPI) -> None:
        binary = {
            paths.SHARD_BLOCKS: self._answer_blocks,
            paths.SHARD_PULL: self._answer_pull,
            paths.SHARD_PUSH: self._answer_push,
        }
        for path, handler in binary.items():  # FastAPI routes: a 409 must reach its handler
            app.add_api_route(
                path,
                _raw_route(handler),
                methods=["POST"],
                responses={200: _FRAME, **error_responses(409, 422)},
            )

        @app.post(paths.SHARD_DROP, responses=error_responses(422))
        async def drop(body: ShardBlocksRequest) -> dict[str, list[str]]:
            for name in body.blocks or []:
                self.blocks_.pop(name, None)
            return {"held": sorted(self.blocks_)}

        @app.post(paths.SHARD_PROPOSE, responses=error_responses(409, 422))
        async def propose(body: ShardProposeRequest) -> ShardProposeResponse:
            return self.propose(body)

        @app.post(paths.SHARD_COMMIT, responses=error_responses(409, 422))
        async def commit(body: ShardCommitRequest) -> dict[str, int]:
            self.commit(body.round_number)
            return {"round_number": body.round_number}


def _raw_route(handler: RawHandler):
    """A FastAPI endpoint that hands the raw body and headers to ``handler``."""

    async def endpoint(request: Request) -> Response:
        status, body, headers = await handler(await request.body(), request.headers)
        return Response(body, status, headers=headers)

    return endpoint
