"""The master's call of federated clients (``fed/fit``): a :class:`~.client.WorkerClient` with
one more endpoint, so every call has its timeout, retries, span and time-log line."""

from __future__ import annotations

from ..wire import paths
from ..wire.federated_models import FederatedFit, FederatedFitResult
from .client import WorkerClient

__all__ = ["FederatedCalls"]


class FederatedCalls(WorkerClient):
    """A :class:`WorkerClient` that also asks a client for a round of local training."""

    async def fed_fit(
        self, name: str, request: FederatedFit, round_number: int | None = None
    ) -> tuple[FederatedFitResult, float]:
        """Client ``name``'s new weights after local training from ``request``'s."""
        body, headers = request.encode()
        return await self._call(
            name,
            "POST",
            paths.FED_FIT,
            lambda reply: FederatedFitResult.decode(reply.content, reply.headers),
            round_number=round_number,
            body=body,
            headers=headers,
        )
