"""The pipeline stage worker: it holds a contiguous range of a network's layers, and passes
activations forward and gradients backward to its neighbours (pipeline parallelism, the
course's model parallelism by layers; GPipe, PipeDream).

The master sets the pipeline up (each stage: its layers, its neighbours' URLs) and then, each
step, sends every stage its ops: its list of a schedule (:mod:`~chimera_nb.algorithms.
pipeline_schedules`). The stages run their lists at the same time:

* ``("F", i)``: take micro-batch ``i``'s input (the first stage: rows of its data; the others:
  the activation the previous stage POSTed into this stage's inbox, waited for at most
  ``timeout`` seconds), run the layers, *stash* what the backward needs, POST the output to
  the next stage (the last stage instead computes the loss's gradient);
* ``("B", i)``: take micro-batch ``i``'s output gradient (from the next stage's POST, or the
  loss), compute and add up the layers' gradients, POST the input gradient to the previous
  stage, and free the stash.

Sends run in the background and the receiver only stores a frame, so a stage never waits for
its neighbour's work to send, only to receive. After its last op the stage takes one
gradient step with the summed gradients (the loss is the batch's mean, so micro-batches'
gradients add up to the batch's) and answers the master with its loss, the most activations
it held at once, and its spans: one per computed op (``"compute F(3)"``) and one per send.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import aiohttp
import numpy as np
from fastapi import FastAPI, HTTPException, Request, Response

from ..algorithms.mlp import (
    Layer,
    LayerCache,
    backward_layers,
    forward_layers,
    sgd_step,
    softmax,
    softmax_cross_entropy,
)
from ..algorithms.pipeline_schedules import Op, compute_label, micro_batch_slices
from ..spans import Span
from ..wire import decode_frame, paths
from ..wire.encoding import BodyError
from ..wire.pipeline_models import (
    PipelineDataResponse,
    PipelineLayer,
    PipelineMessageMeta,
    PipelineSetupRequest,
    PipelineStepRequest,
    PipelineStepResponse,
    PipelineWeightsResponse,
)
from ..wire.server import error_responses
from ..wire.topology_models import PeerSpan
from .base import Worker
from .pipeline_link import PipelineInbox, PipelineLink
from .ring_link import RingLinkError

__all__ = ["PipelineStageWorker"]

_FRAME = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
_FRAME_BODY = {"requestBody": {"required": True, "content": _FRAME}}
_ACTIVATION, _GRADIENT = "activation", "gradient"


@dataclass(frozen=True)
class _Stage:
    """Everything one fit's setup gave a stage, replaced whole by the next setup."""

    setup: PipelineSetupRequest
    layers: list[Layer]  # replaced in place by each step's update
    inbox: PipelineInbox  # the frames from both neighbours
    forward: PipelineLink | None  # to the next stage
    backward: PipelineLink | None  # to the previous stage


@dataclass
class _StepRun:
    """One step's state on one stage: the stash (a forward's caches, until its backward),
    the gradients summed so far, the sends in flight and the spans."""

    request: PipelineStepRequest
    session: aiohttp.ClientSession  # to both neighbours
    stash: dict[int, tuple[list[LayerCache], np.ndarray | None]] = field(default_factory=dict)
    weights_gradients: list[np.ndarray] = field(default_factory=list)
    bias_gradients: list[np.ndarray] = field(default_factory=list)
    sends: list[asyncio.Task] = field(default_factory=list)
    spans: list[Span] = field(default_factory=list)
    outputs: dict[int, np.ndarray] = field(default_factory=dict)
    peak: int = 0
    loss_sum: float = 0.0

    def raise_failed_sends(self) -> None:
        """A send that failed ends the step now, not at the neighbour's timeout."""
        for task in self.sends:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]


class PipelineStageWorker(Worker):
    """A stage of a pipeline-parallel multilayer perceptron (:class:`~chimera_nb.
    PipelineMaster`). It holds the training data like any worker: the first stage reads the
    features of a step's rows, the last stage their labels, the others neither.

    Endpoints: ``GET /v1/chimera/pipeline/data`` (rows, features, classes), ``POST
    .../setup`` (its layers and neighbours), ``POST .../step`` (run ops, see the module's
    docstring), ``POST .../activation`` and ``.../gradient`` (frames from its neighbours),
    ``GET .../weights`` (its layers).

    Examples
    --------
    >>> from chimera_nb import PipelineStageWorker
    >>> PipelineStageWorker()
    PipelineStageWorker()
    """

    role = "PipelineStageWorker"
    _stage: _Stage | None = None

    def setup(self, request: PipelineSetupRequest) -> None:
        """Join a pipeline: keep the layers, open an empty inbox, link the neighbours."""
        if request.stage == 0 and len(request.layers[0].weights) != self.X_.shape[1]:
            raise BodyError(
                "layers",
                f"the first layer takes {len(request.layers[0].weights)} inputs, but this "
                f"stage's data has {self.X_.shape[1]} features",
            )
        token = getattr(self, "token_", None)
        links = [
            PipelineLink(name, url, path, what, self.name_, token) if name and url else None
            for name, url, path, what in (
                (request.next, request.next_url, paths.PIPELINE_ACTIVATION, _ACTIVATION),
                (request.previous, request.previous_url, paths.PIPELINE_GRADIENT, _GRADIENT),
            )
        ]
        layers = [
            Layer(np.array(layer.weights, dtype=np.float64), np.array(layer.bias, dtype=np.float64))
            for layer in request.layers
        ]
        self._stage = _Stage(request, layers, PipelineInbox(), *links)

    # -- one step ------------------------------------------------------------------------------

    async def run_step(self, request: PipelineStepRequest) -> PipelineStepResponse:
        """Run this stage's ops of one step (see the module's docstring)."""
        stage = self._require_stage(request.fit_id)
        inputs, labels, n_rows = self._step_data(stage, request)
        timeout = aiohttp.ClientTimeout(total=stage.setup.timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            run = _StepRun(request, session)
            try:
                for op in request.ops:
                    run.raise_failed_sends()
                    if op[0] == "F":
                        await self._forward(stage, run, op[1], inputs, labels, n_rows)
                    else:
                        await self._backward(stage, run, op[1])
                await asyncio.gather(*run.sends)
            finally:
                for task in run.sends:
                    task.cancel()
                stage.inbox.drop(request.step)
        if request.training:
            stage.layers[:] = sgd_step(
                stage.layers, run.weights_gradients, run.bias_gradients, stage.setup.learning_rate
            )
        outputs = [run.outputs[i] for i in sorted(run.outputs)]
        return PipelineStepResponse(
            step=request.step,
            loss_sum=run.loss_sum,
            n_rows=n_rows,
            peak_stashed=run.peak,
            spans=[PeerSpan.of(span) for span in run.spans],
            probabilities=np.concatenate(outputs).tolist() if outputs else None,
        )

    def _step_data(
        self, stage: _Stage, request: PipelineStepRequest
    ) -> tuple[np.ndarray | None, np.ndarray | None, int]:
        """The features this stage reads (the first stage), the labels (the last, training)
        and the batch's number of rows (0 where the stage cannot know it: predicting, past
        the first stage)."""
        setup = stage.setup
        if request.n_microbatches > setup.n_microbatches:
            raise BodyError(
                "n_microbatches",
                f"is {request.n_microbatches}, but the pipeline was set up for at most "
                f"{setup.n_microbatches}",
            )
        inputs = labels = None
        if request.training:
            rows = np.array(request.rows, dtype=np.int64)
            if rows.max() >= len(self.X_):
                raise BodyError(
                    "rows", f"row {rows.max()} is not among this stage's {len(self.X_)}"
                )
            inputs = self.X_[rows] if setup.stage == 0 else None
            if setup.last:
                index = {label: i for i, label in enumerate(setup.classes or [])}
                labels = np.array([index.get(label, -1) for label in self.y_[rows]])
                if (labels < 0).any():
                    raise BodyError("rows", "hold labels that are not among the setup's classes")
            return inputs, labels, len(rows)
        if setup.stage == 0:
            if request.inputs is None:
                raise BodyError("inputs", "the first stage needs the rows to predict")
            inputs = np.array(request.inputs, dtype=np.float64).reshape(len(request.inputs), -1)
            if inputs.shape[1] != stage.layers[0].n_in:
                raise BodyError(
                    "inputs", f"rows have {inputs.shape[1]} values, not {stage.layers[0].n_in}"
                )
            return inputs, None, len(inputs)
        return None, None, 0

    async def _forward(
        self,
        stage: _Stage,
        run: _StepRun,
        index: int,
        inputs: np.ndarray | None,
        labels: np.ndarray | None,
        n_rows: int,
    ) -> None:
        """``("F", index)``: input, layers, stash, send (or the loss, at the last stage)."""
        request, setup = run.request, stage.setup
        part = micro_batch_slices(n_rows, request.n_microbatches)[index] if n_rows else None
        if inputs is not None:
            x = inputs[part]
        else:
            x = await self._receive(stage, request, _ACTIVATION, index)
        started, clock = time.time(), time.perf_counter()
        output, caches = forward_layers(stage.layers, x, ends_with_output=setup.last)
        gradient = None
        if setup.last and request.training:
            loss_sum, gradient = softmax_cross_entropy(output, labels[part], n_rows)
            run.loss_sum += loss_sum
        elif setup.last:
            run.outputs[index] = softmax(output)
        if request.training:
            run.stash[index] = (caches, gradient)
            run.peak = max(run.peak, len(run.stash))
        await self._computed(stage, run, ("F", index), started, clock)
        if stage.forward is not None:
            self._send(stage.forward, run, output, index)

    async def _backward(self, stage: _Stage, run: _StepRun, index: int) -> None:
        """``("B", index)``: output gradient, the layers' gradients (added up), send back."""
        caches, gradient = run.stash[index]
        if gradient is None:
            gradient = await self._receive(stage, run.request, _GRADIENT, index)
        started, clock = time.time(), time.perf_counter()
        weights, bias, input_gradient = backward_layers(
            stage.layers, caches, gradient, ends_with_output=stage.setup.last
        )
        if run.weights_gradients:
            for total, part in zip(run.weights_gradients + run.bias_gradients, weights + bias):
                total += part
        else:
            run.weights_gradients, run.bias_gradients = weights, bias
        del run.stash[index]
        await self._computed(stage, run, ("B", index), started, clock)
        if stage.backward is not None:
            self._send(stage.backward, run, input_gradient, index)

    async def _computed(
        self, stage: _Stage, run: _StepRun, op: Op, started: float, clock: float
    ) -> None:
        """End an op's compute: last at least ``emulated_op_seconds`` (a larger model, for
        teaching), and leave its span."""
        rest = stage.setup.emulated_op_seconds - (time.perf_counter() - clock)
        if rest > 0:
            await asyncio.sleep(rest)
        run.spans.append(
            Span(
                worker=self.name_,
                endpoint=compute_label(op),
                start=started,
                end=started + (time.perf_counter() - clock),
                status="200",
                round_number=run.request.step,
                peer=self.name_,
            )
        )

    def _send(self, link: PipelineLink, run: _StepRun, array: np.ndarray, index: int) -> None:
        """POST ``array`` to a neighbour in the background: the next op need not wait."""
        request = run.request
        meta = PipelineMessageMeta(
            fit_id=request.fit_id,
            step=request.step,
            micro_batch=index,
            n_rows=len(array),
            sender=self.name_,
        )
        run.sends.append(asyncio.create_task(link.send(run.session, array, meta, run.spans)))

    async def _receive(
        self, stage: _Stage, request: PipelineStepRequest, kind: str, index: int
    ) -> np.ndarray:
        """Micro-batch ``index``'s activation (or gradient) from its neighbour."""
        setup = stage.setup
        sender = (setup.previous if kind == _ACTIVATION else setup.next) or ""
        where = f"stage {setup.stage} ({self.name_})"
        return await stage.inbox.get(request.step, kind, index, sender, where, setup.timeout)

    def _deliver(self, kind: str, meta: PipelineMessageMeta, array: np.ndarray) -> None:
        """A frame from a neighbour: checked, then put where its op will look for it."""
        stage = self._require_stage(meta.fit_id)
        setup = stage.setup
        if meta.micro_batch >= setup.n_microbatches:
            raise BodyError(
                "micro_batch",
                f"is {meta.micro_batch}, but the pipeline has {setup.n_microbatches} "
                "micro-batches per step",
            )
        has_sender = setup.stage > 0 if kind == _ACTIVATION else not setup.last
        if not has_sender:
            raise HTTPException(409, f"stage {setup.stage} takes no {kind}s: no stage sends it one")
        width = stage.layers[0].n_in if kind == _ACTIVATION else stage.layers[-1].n_out
        if len(array) != meta.n_rows * width:
            raise BodyError(
                "body",
                f"the {kind} of micro-batch {meta.micro_batch} has {len(array)} numbers, but "
                f"{meta.n_rows} rows of {width} (this stage's "
                f"{'inputs' if kind == _ACTIVATION else 'outputs'}) are {meta.n_rows * width}",
            )
        stage.inbox.put(meta.step, kind, meta.micro_batch, array.reshape(meta.n_rows, width))

    def _require_stage(self, fit_id: str | None = None) -> _Stage:
        """This stage's pipeline; 409 if none, or (``fit_id`` given) another fit's."""
        if self._stage is None:
            raise HTTPException(
                409,
                f"{self.name_} is in no pipeline yet: the master POSTs {paths.PIPELINE_SETUP} "
                "first (PipelineMaster.fit does)",
            )
        if fit_id is not None and fit_id != self._stage.setup.fit_id:
            raise HTTPException(
                409,
                f"fit {fit_id} is not this stage's: {self.name_} is in fit "
                f"{self._stage.setup.fit_id}",
            )
        return self._stage

    # -- the endpoints ------------------------------------------------------------------------

    def _add_routes(self, app: FastAPI) -> None:
        @app.get(paths.PIPELINE_DATA, response_model=PipelineDataResponse)
        async def pipeline_data() -> PipelineDataResponse:
            classes = np.unique(self.y_).tolist() if len(self.y_) else []
            return PipelineDataResponse(
                n_samples=len(self.X_), columns=self.columns_, classes=classes
            )

        @app.post(paths.PIPELINE_SETUP, responses=error_responses(422))
        async def pipeline_setup(body: PipelineSetupRequest) -> dict[str, int]:
            self.setup(body)
            return {"stage": body.stage, "n_stages": body.n_stages}

        @app.post(
            paths.PIPELINE_STEP,
            response_model=PipelineStepResponse,
            # 409: no pipeline or another fit's; 502, 504: a neighbour or a link failed
            responses=error_responses(409, 422, 502, 504),
        )
        async def pipeline_step(body: PipelineStepRequest) -> PipelineStepResponse:
            if self.delay_:
                await asyncio.sleep(self.delay_)  # a straggler, made on purpose
            try:
                return await self.run_step(body)
            except RingLinkError as error:
                raise HTTPException(error.status, str(error)) from None

        for path, kind in (
            (paths.PIPELINE_ACTIVATION, _ACTIVATION),
            (paths.PIPELINE_GRADIENT, _GRADIENT),
        ):
            self._add_frame_route(app, path, kind)

        @app.get(paths.PIPELINE_WEIGHTS, response_model=PipelineWeightsResponse)
        async def pipeline_weights() -> PipelineWeightsResponse:
            stage = self._require_stage()
            layers = [PipelineLayer.of(layer.weights, layer.bias) for layer in stage.layers]
            return PipelineWeightsResponse(layers=layers)

    def _add_frame_route(self, app: FastAPI, path: str, kind: str) -> None:
        @app.post(
            path,
            status_code=204,
            openapi_extra=_FRAME_BODY,
            responses=error_responses(409, 422),
            name=f"pipeline_{kind}",
        )
        async def frame(request: Request) -> Response:
            (array,), meta = decode_frame(await request.body(), request.headers, [kind])
            self._deliver(kind, PipelineMessageMeta.model_validate(meta), array)
            return Response(status_code=204)
