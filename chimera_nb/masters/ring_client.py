"""The master's calls to ring workers: :class:`WorkerClient`'s seam, with the ring's endpoints.

The same timeouts, spans and error messages as every call of a master; only the three ring
endpoints are new (:class:`~chimera_nb.RingWorker`).
"""

from __future__ import annotations

import json

from .._types import Matrix, Vector
from ..wire import JSON, decode_frame, paths
from ..wire.topology_models import RingRoundRequest, RingRoundResponse, RingSetupRequest
from .client import WorkerClient

__all__ = ["RingClient"]


class RingClient(WorkerClient):
    """A :class:`WorkerClient` that also sets up ring workers, starts their rounds and reads
    their replicas."""

    async def ring_setup(self, name: str, request: RingSetupRequest) -> tuple[dict, float]:
        """Give ``name`` its place in the ring and its replica's starting point."""
        return await self._call(
            name,
            "POST",
            paths.RING_SETUP,
            lambda reply: json.loads(reply.content),
            body=request.model_dump_json().encode(),
            headers={"content-type": JSON},
        )

    async def ring_round(
        self, name: str, request: RingRoundRequest, round_number: int | None = None
    ) -> tuple[RingRoundResponse, float]:
        """Run one round on ``name``: its gradient, its part of the all-reduce, its step."""
        return await self._call(
            name,
            "POST",
            paths.RING_ROUND,
            lambda reply: RingRoundResponse.model_validate_json(reply.content),
            round_number=round_number,
            body=request.model_dump_json().encode(),
            headers={"content-type": JSON},
        )

    async def ring_weights(self, name: str) -> tuple[tuple[Matrix, Vector], float]:
        """The weights and bias of ``name``'s replica (standardized units)."""

        def parse(reply) -> tuple[Matrix, Vector]:
            (weights, bias), _ = decode_frame(reply.content, reply.headers, ["weights", "bias"])
            return weights, bias

        return await self._call(name, "GET", paths.RING_WEIGHTS, parse)
