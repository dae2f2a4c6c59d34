"""The ring all-reduce worker: it keeps a replica of the model and averages gradients with
the other workers, passing chunks around a ring, with no parameter server in the middle.

A round, as the worker at ``position`` of a ring of N sees it (the master only starts it):

1. compute its shard's gradient at its replica's weights, in standardized units, and weight
   it by its shard size: the vector ``[n_k * gradient, n_k]``;
2. run the ring all-reduce of :mod:`chimera_nb.algorithms.ring` on that vector over HTTP:
   each of the 2(N - 1) steps POSTs one chunk to the right neighbour, then waits (at most
   ``timeout`` seconds) for the chunk the left neighbour sends, which the chunk endpoint has
   put in this worker's inbox (an ``asyncio.Queue``);
3. divide the summed gradients by the summed ``n_k`` (the weighted mean, as a parameter
   server's), add the L2 term and take the step, the same step on every replica;
4. answer the master with its loss times ``n_k`` and the spans of its calls to its neighbour.

The HTTP side of step 2 (one chunk's call, its span, its errors) is in :mod:`.ring_link`.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import numpy as np
from fastapi import FastAPI, HTTPException, Request, Response

from ..algorithms import (
    LearningRateSchedule,
    Standardizer,
    l2_penalty,
    make_schedule,
    update_step,
)
from ..algorithms.ring import RingPhase, RingStep, chunk_slices, ring_steps
from ..spans import Span
from ..wire import FitStep, decode_frame, encode_frame, paths
from ..wire.encoding import BodyError
from ..wire.server import error_responses
from ..wire.topology_models import (
    PeerSpan,
    RingChunkMeta,
    RingRoundRequest,
    RingRoundResponse,
    RingSetupRequest,
)
from .ring_link import RingLink, RingLinkError
from .sgd import SGDWorker

__all__ = ["RingWorker"]

# The chunk and weights routes carry raw float64 frames (chimera_nb.wire.encoding), which
# FastAPI cannot describe from a model: their bodies are published by hand, for /docs.
_FRAME = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
_CHUNK_BODY = {"requestBody": {"required": True, "content": _FRAME}}
_WEIGHTS_ANSWERS = {
    200: {"description": "The replica's weights and bias, as a binary frame", "content": _FRAME},
    **error_responses(409),
}


@dataclass(frozen=True)
class _Ring:
    """Everything one fit's setup gave a worker, replaced whole by the next setup: a round
    holds on to its own, so a round of an earlier fit that ends late cannot read the new
    fit's inbox or step its replica."""

    setup: RingSetupRequest
    standardizer: Standardizer
    schedule: LearningRateSchedule
    slices: list[slice]  # where the vector [n_k * gradient, n_k] is cut into chunks
    inbox: asyncio.Queue  # (RingChunkMeta, chunk) from the left neighbour, in order
    link: RingLink  # to the right neighbour


class RingWorker(SGDWorker):
    """A worker for ring all-reduce training of linear models
    (:class:`~chimera_nb.RingAllReduceMaster`).

    Besides an :class:`SGDWorker`'s endpoints (a data sample and column statistics, which the
    master needs for the global standardization), it answers:

    * ``POST /v1/chimera/ring/setup``: its place in the ring, its right neighbour's URL, the
      standardization and the starting weights of its replica, the learning rate and ``alpha``;
    * ``POST /v1/chimera/ring/round``: one round (see the module's docstring);
    * ``POST /v1/chimera/ring/chunk``: a chunk from its left neighbour (binary float64);
    * ``GET /v1/chimera/ring/weights``: its replica (binary float64 weights and bias).

    Parameters
    ----------
    model_type : {"regressor", "classifier"}

    Examples
    --------
    >>> from chimera_nb import RingWorker
    >>> RingWorker("regressor")
    RingWorker('regressor')
    """

    role = "RingWorker"
    ring_: RingSetupRequest | None = None
    _ring: _Ring | None = None

    # -- the replica --------------------------------------------------------------------------

    def setup(self, request: RingSetupRequest) -> None:
        """Join a ring: keep the request, build the replica, start with an empty inbox."""
        if len(request.feature_mean) != self.X_.shape[1]:
            raise BodyError(
                "feature_mean",
                f"has {len(request.feature_mean)} values but this shard has "
                f"{self.X_.shape[1]} features {self.columns_}",
            )
        self.bias_ = np.array(request.bias, dtype=np.float64)
        self.weights_ = np.array(request.weights, dtype=np.float64).reshape(len(self.bias_), -1)
        self.rounds_ = 0  # rounds this replica has stepped
        d = self.weights_.size + self.bias_.size + 1  # gradients and the sample count
        self.ring_ = request
        self._ring = _Ring(
            request,
            Standardizer(
                np.array(request.feature_mean),
                np.array(request.feature_scale),
                request.target_mean,
                request.target_scale,
            ),
            make_schedule(request.learning_rate_schedule, request.learning_rate, request.power_t),
            chunk_slices(d, request.n_workers),
            asyncio.Queue(),
            RingLink(request.right, request.right_url, self.name_, getattr(self, "token_", None)),
        )

    def _weighted_gradient(
        self, ring: _Ring, weights: np.ndarray, bias: np.ndarray
    ) -> tuple[np.ndarray, int, float]:
        """Step 1: ``[n_k * gradient, n_k]`` of this shard at the replica's weights (in
        standardized units, as a parameter server converts a worker's gradient), ``n_k`` and
        the shard's mean loss."""
        raw_weights, raw_bias = ring.standardizer.weights_to_raw(weights, bias)
        result = self.fit_step(FitStep(raw_weights, raw_bias, ring.setup.classes))
        weights_gradient, bias_gradient = ring.standardizer.gradient_from_raw(
            result.weights_gradient, result.bias_gradient
        )
        n = result.n_samples
        vector = np.concatenate([n * weights_gradient.ravel(), n * bias_gradient, [n]])
        return vector, n, ring.standardizer.loss_from_raw(result.loss)

    async def run_round(self, request: RingRoundRequest) -> RingRoundResponse:
        """One round: gradient, ring all-reduce, step (see the module's docstring)."""
        ring, weights, bias = self._require_ring(), self.weights_, self.bias_
        vector, n_samples, loss = self._weighted_gradient(ring, weights, bias)  # 1
        spans: list[Span] = []
        total = await self._allreduce(ring, vector, request.round_number, spans)  # 2
        n_weights = weights.size  # 3: the weighted mean, the L2 term, the step
        weights_gradient = (total[:n_weights] / total[-1]).reshape(weights.shape)
        bias_gradient = total[n_weights:-1] / total[-1]
        penalty, penalty_gradient = l2_penalty(weights, ring.setup.alpha)
        learning_rate = ring.schedule(request.round_number)
        new_weights, new_bias, norm = update_step(
            weights, bias, weights_gradient + penalty_gradient, bias_gradient, learning_rate
        )
        # a round of an earlier fit that ended late must not step the new fit's replica
        stepped = request.take_step and norm >= ring.setup.tol and self._ring is ring
        if stepped:
            self.weights_, self.bias_ = new_weights, new_bias
            self.rounds_ += 1
        return RingRoundResponse(  # 4
            round_number=request.round_number,
            n_samples=n_samples,
            loss_sum=loss * n_samples,
            penalty=penalty,
            learning_rate=learning_rate,
            update_norm=norm,
            stepped=stepped,
            spans=[PeerSpan.of(span) for span in spans],
        )

    # -- the all-reduce over HTTP -------------------------------------------------------------

    async def _allreduce(
        self, ring: _Ring, vector: np.ndarray, round_number: int, spans: list[Span]
    ) -> np.ndarray:
        """Step 2: the sum of every worker's ``vector``, by the schedule of
        :func:`~chimera_nb.algorithms.ring.ring_steps` (the arithmetic of its twin,
        :func:`~chimera_nb.algorithms.ring.ring_allreduce`)."""
        setup, slices = ring.setup, ring.slices
        buffer = vector.copy()
        send = setup.position  # reduce-scatter's first step sends the worker's own chunk
        async with ring.link.session(setup.timeout) as session:
            for step in ring_steps(setup.position, setup.n_workers):
                meta = RingChunkMeta(
                    fit_id=setup.fit_id,
                    round_number=round_number,
                    phase=step.phase.value,
                    step=step.step,
                    index=send,
                    sender=self.name_,
                )
                # send first, then wait: a chunk is queued at once by its receiver, so no
                # worker waits for one that waits for it
                await ring.link.send(session, buffer[slices[send]], meta, spans)
                received = await self._receive(ring, step, round_number)
                send = self._ring_step(ring, buffer, step, received)
        return buffer

    def _ring_step(
        self, ring: _Ring, buffer: np.ndarray, step: RingStep, received: np.ndarray
    ) -> int:
        """One step's arithmetic, in place: add the received chunk to this worker's copy
        (reduce-scatter) or replace its copy (all-gather). Returns the chunk to send at the
        next step, which is always the one just updated (a lab's worker does this step with
        a student's function: :class:`chimera_nb.labs.LabRingWorker`)."""
        if step.phase is RingPhase.REDUCE_SCATTER:
            buffer[ring.slices[step.receive]] += received
        else:
            buffer[ring.slices[step.receive]] = received
        return step.receive

    async def _receive(self, ring: _Ring, step: RingStep, round_number: int) -> np.ndarray:
        """The chunk of ``step`` from the left neighbour, waited for at most ``timeout`` s."""
        setup = ring.setup
        what = (
            f"chunk {step.receive} ({step.phase.value} step {step.step + 1} of "
            f"{setup.n_workers - 1}, round {round_number})"
        )
        started = time.monotonic()
        try:
            meta, chunk = await asyncio.wait_for(ring.inbox.get(), setup.timeout)
        except asyncio.TimeoutError:
            raise RingLinkError(
                504,
                f"{self.name_} waited {time.monotonic() - started:.3g} s for {what} from its "
                f"left neighbour {setup.left}, and none came: the link {setup.left} -> "
                f"{self.name_} failed, or {setup.left} did",
            ) from None
        got = (meta.round_number, meta.phase, meta.step, meta.index)
        if got != (round_number, step.phase.value, step.step, step.receive):
            raise RingLinkError(
                409,
                f"{self.name_} expected {what} from {setup.left} but {meta.sender} sent "
                f"chunk {meta.index} ({meta.phase} step {meta.step + 1}, round "
                f"{meta.round_number}): the ring is out of step; fit again",
            )
        return chunk

    def _require_ring(self) -> _Ring:
        if self._ring is None:
            raise HTTPException(
                409,
                f"{self.name_} is in no ring yet: the master POSTs {paths.RING_SETUP} before "
                "the first round (RingAllReduceMaster.fit does)",
            )
        return self._ring

    def _queue_chunk(self, meta: RingChunkMeta, chunk: np.ndarray) -> None:
        """A chunk from the left neighbour: checked, then queued for the round that waits."""
        ring = self._require_ring()
        setup = ring.setup
        if meta.fit_id != setup.fit_id:
            raise HTTPException(
                409,
                f"a chunk of fit {meta.fit_id} came late: {self.name_} is in fit {setup.fit_id}",
            )
        if meta.index >= setup.n_workers:
            raise BodyError("index", f"is {meta.index}, but the ring has {setup.n_workers} chunks")
        expected = ring.slices[meta.index].stop - ring.slices[meta.index].start
        if len(chunk) != expected:
            raise BodyError("body", f"chunk {meta.index} has {len(chunk)} numbers, not {expected}")
        ring.inbox.put_nowait((meta, chunk))

    # -- the endpoints ------------------------------------------------------------------------

    def _add_routes(self, app: FastAPI) -> None:
        super()._add_routes(app)

        @app.post(paths.RING_SETUP, responses=error_responses(422))
        async def ring_setup(body: RingSetupRequest) -> dict[str, int]:
            self.setup(body)
            return {"position": body.position, "n_workers": body.n_workers}

        @app.post(
            paths.RING_ROUND,
            response_model=RingRoundResponse,
            # 409: no ring yet, or out of step; 502 and 504: a link of the ring failed
            responses=error_responses(409, 422, 502, 504),
        )
        async def ring_round(body: RingRoundRequest) -> RingRoundResponse:
            if self.delay_:
                await asyncio.sleep(self.delay_)  # a straggler, made on purpose
            try:
                return await self.run_round(body)
            except RingLinkError as error:
                raise HTTPException(error.status, str(error)) from None

        @app.post(
            paths.RING_CHUNK,
            status_code=204,
            openapi_extra=_CHUNK_BODY,
            responses=error_responses(409, 422),
        )
        async def ring_chunk(request: Request) -> Response:
            (chunk,), meta = decode_frame(await request.body(), request.headers, ["chunk"])
            self._queue_chunk(RingChunkMeta.model_validate(meta), chunk)
            return Response(status_code=204)

        @app.get(paths.RING_WEIGHTS, response_class=Response, responses=_WEIGHTS_ANSWERS)
        async def ring_weights() -> Response:
            self._require_ring()
            body, headers = encode_frame([self.weights_, self.bias_], {"rounds": self.rounds_})
            return Response(body, headers=headers)
