"""The master's calls to pipeline stage workers: :class:`WorkerClient`'s seam, with the
pipeline's endpoints (:class:`~chimera_nb.PipelineStageWorker`), so every call has its
timeout, span and time-log line."""

from __future__ import annotations

import json

from pydantic import BaseModel

from ..wire import JSON, paths
from ..wire.pipeline_models import (
    PipelineDataResponse,
    PipelineSetupRequest,
    PipelineStepRequest,
    PipelineStepResponse,
    PipelineWeightsResponse,
)
from .client import WorkerClient

__all__ = ["PipelineClient"]


class PipelineClient(WorkerClient):
    """A :class:`WorkerClient` that also sets up stages, runs their steps and reads their
    layers."""

    async def _post_json(self, name: str, path: str, request: BaseModel, parse, **options):
        return await self._call(
            name,
            "POST",
            path,
            parse,
            body=request.model_dump_json().encode(),
            headers={"content-type": JSON},
            **options,
        )

    async def pipeline_data(self, name: str) -> tuple[PipelineDataResponse, float]:
        """What ``name``'s data holds: rows, columns, classes."""
        return await self._call(
            name,
            "GET",
            paths.PIPELINE_DATA,
            lambda reply: PipelineDataResponse.model_validate_json(reply.content),
        )

    async def pipeline_setup(self, name: str, request: PipelineSetupRequest) -> tuple[dict, float]:
        """Give ``name`` its stage: layers, neighbours, learning rate."""
        return await self._post_json(
            name, paths.PIPELINE_SETUP, request, lambda reply: json.loads(reply.content)
        )

    async def pipeline_step(
        self, name: str, request: PipelineStepRequest, round_number: int | None = None
    ) -> tuple[PipelineStepResponse, float]:
        """Run ``name``'s ops of one step."""
        return await self._post_json(
            name,
            paths.PIPELINE_STEP,
            request,
            lambda reply: PipelineStepResponse.model_validate_json(reply.content),
            round_number=round_number,
        )

    async def pipeline_weights(self, name: str) -> tuple[PipelineWeightsResponse, float]:
        """``name``'s layers, as they are now."""
        return await self._call(
            name,
            "GET",
            paths.PIPELINE_WEIGHTS,
            lambda reply: PipelineWeightsResponse.model_validate_json(reply.content),
        )
