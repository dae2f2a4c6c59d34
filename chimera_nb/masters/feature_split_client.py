"""The master's calls of feature-split workers: a :class:`~.client.WorkerClient` with their
endpoints, so every call has its timeout, retries, span and time-log line."""

from __future__ import annotations

from ..wire import paths
from ..wire.feature_split_models import (
    BlockResponse,
    FeatureSplitSetup,
    MatrixFrame,
    SetupResponse,
)
from .client import WorkerClient, _json, _model

__all__ = ["FeatureSplitCalls"]


def _frame(name: str):
    return lambda reply: MatrixFrame.decode(name, reply.content, reply.headers)


class FeatureSplitCalls(WorkerClient):
    """A :class:`WorkerClient` that also speaks to :class:`~chimera_nb.FeatureSplitWorker` s."""

    async def block(self, name: str) -> tuple[BlockResponse, float]:
        """Which columns and rows ``name`` holds, with their statistics."""
        return await self._call(name, "GET", paths.FEATURE_SPLIT_BLOCK, _model(BlockResponse))

    async def setup(self, name: str, body: FeatureSplitSetup) -> tuple[SetupResponse, float]:
        """Start a fit on ``name``: its columns' standardization, zero weights."""
        return await self._call(
            name, "POST", paths.FEATURE_SPLIT_SETUP, _model(SetupResponse), **_json(body)
        )

    async def _frame_call(
        self,
        name: str,
        path: str,
        request: MatrixFrame | None,
        answer: str,
        round_number: int | None,
    ) -> tuple[MatrixFrame, float]:
        body, headers = request.encode() if request is not None else (b"", {})
        return await self._call(
            name,
            "POST",
            path,
            _frame(answer),
            round_number=round_number,
            body=body,
            headers=headers,
        )

    async def scores(
        self, name: str, request: MatrixFrame, round_number: int | None = None
    ) -> tuple[MatrixFrame, float]:
        """Apply the step in ``request``, then ``name``'s partial scores."""
        return await self._frame_call(
            name, paths.FEATURE_SPLIT_SCORES, request, "scores", round_number
        )

    async def gradient(
        self, name: str, request: MatrixFrame, round_number: int | None = None
    ) -> tuple[MatrixFrame, float]:
        """The gradient of ``name``'s block, given the residuals of its rows."""
        return await self._frame_call(
            name, paths.FEATURE_SPLIT_GRADIENT, request, "gradient", round_number
        )

    async def finish(self, name: str) -> tuple[MatrixFrame, float]:
        """End the fit on ``name``: it keeps its weights for predictions, and sends them."""
        return await self._frame_call(name, paths.FEATURE_SPLIT_FINISH, None, "weights", None)

    async def block_scores(
        self, name: str, request: MatrixFrame, round_number: int | None = None
    ) -> tuple[MatrixFrame, float]:
        """Partial scores of new rows (``name``'s columns of them)."""
        return await self._frame_call(
            name, paths.FEATURE_SPLIT_BLOCK_SCORES, request, "scores", round_number
        )
