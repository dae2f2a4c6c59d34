"""The master's calls of sharded parameter servers: to the SGD workers (send the plan, start a
round) and to the parameter shards (place, read, move and update the blocks).

A :class:`~.client.WorkerClient` with more endpoints, so every call has its timeout, retries,
span and time-log line, as every other call of a master.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..wire import paths
from ..wire.topology_models import (
    ShardBlocksRequest,
    ShardCommitRequest,
    ShardedPlan,
    ShardedStepRequest,
    ShardedStepResponse,
    ShardProposeRequest,
    ShardProposeResponse,
)
from ..workers.parameter_shard import blocks_frame, read_blocks
from .client import WorkerClient, _json, _model

__all__ = ["ShardedClient"]


class ShardedClient(WorkerClient):
    """A :class:`WorkerClient` that also speaks to parameter shards and sharded workers."""

    @classmethod
    def like(
        cls, client: WorkerClient, endpoints: Mapping[str, str] | None = None
    ) -> ShardedClient:
        """A client with ``client``'s settings (timeout, retries, spans, pacer, token, encoding)
        for ``endpoints`` (by default ``client``'s)."""
        return cls(
            client.endpoints if endpoints is None else endpoints,
            timeout=client.timeout,
            max_retries=client.max_retries,
            encoding=client.encoding,
            token=client.token if endpoints is None else None,
            spans=client.spans,
            pacer=client.pacer,
        )

    # -- SGD workers -------------------------------------------------------------------------

    async def sharded_plan(self, name: str, plan: ShardedPlan) -> tuple[dict, float]:
        return await self._call(
            name, "POST", paths.SGD_SHARDED_PLAN, lambda reply: {}, **_json(plan)
        )

    async def sharded_step(
        self, name: str, request: ShardedStepRequest, round_number: int | None = None
    ) -> tuple[ShardedStepResponse, float]:
        return await self._call(
            name,
            "POST",
            paths.SGD_SHARDED_STEP,
            _model(ShardedStepResponse),
            round_number=round_number,
            **_json(request),
        )

    # -- parameter shards --------------------------------------------------------------------

    async def shard_hold(
        self, name: str, blocks: Mapping[str, np.ndarray], reset: bool = False
    ) -> tuple[dict, float]:
        """Give shard ``name`` these blocks to hold (``reset``: forget the others first)."""
        body, headers = blocks_frame(blocks, reset=reset)
        return await self._call(
            name, "POST", paths.SHARD_BLOCKS, lambda reply: {}, body=body, headers=headers
        )

    async def shard_pull(
        self, name: str, blocks: list[str] | None = None
    ) -> tuple[dict[str, np.ndarray], float]:
        return await self._call(
            name,
            "POST",
            paths.SHARD_PULL,
            lambda reply: read_blocks(reply.content, reply.headers)[0],
            **_json(ShardBlocksRequest(blocks=blocks)),
        )

    async def shard_drop(self, name: str, blocks: list[str]) -> tuple[dict, float]:
        return await self._call(
            name,
            "POST",
            paths.SHARD_DROP,
            lambda reply: {},
            **_json(ShardBlocksRequest(blocks=blocks)),
        )

    async def shard_propose(
        self, name: str, request: ShardProposeRequest, round_number: int | None = None
    ) -> tuple[ShardProposeResponse, float]:
        return await self._call(
            name,
            "POST",
            paths.SHARD_PROPOSE,
            _model(ShardProposeResponse),
            round_number=round_number,
            **_json(request),
        )

    async def shard_commit(
        self, name: str, request: ShardCommitRequest, round_number: int | None = None
    ) -> tuple[dict, float]:
        return await self._call(
            name,
            "POST",
            paths.SHARD_COMMIT,
            lambda reply: {},
            round_number=round_number,
            **_json(request),
        )
