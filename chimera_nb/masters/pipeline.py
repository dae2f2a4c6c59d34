"""Pipeline parallelism: a multilayer perceptron whose layers are cut across stage workers.

What the course calls model parallelism by layers (GPipe, PipeDream): each
:class:`~chimera_nb.PipelineStageWorker` holds a contiguous range of the layers; a batch is cut
into micro-batches whose activations flow forward stage to stage and whose gradients flow
back. A *schedule* says in which order each stage runs its forwards and backwards (GPipe: all
forwards, then all backwards; 1F1B: one of each in turn, holding fewer activations at once);
the stages idle part of each step, the *bubble*, ``(p - 1) / (m + p - 1)`` in theory.

Read the flowchart, then :meth:`PipelineMaster._fit` and ``_step``: one named method per
lettered step. Steps H and I happen on the stages while the master waits in E; it publishes
them when the replies report them, with the spans of every op and every send.
"""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np

from .._exceptions import (
    ChimeraError,
    ConfigurationError,
    FitDivergedError,
    QuorumError,
    WorkerError,
)
from ..algorithms.mlp import Layer, epoch_batches, init_layers
from ..algorithms.pipeline_schedules import (
    Schedule,
    bubble_fraction,
    make_pipeline_schedule,
    measured_bubble,
    ops_from_spans,
    schedule_ops,
    split_layers,
)
from ..wire import paths
from ..wire.pipeline_models import PipelineLayer, PipelineSetupRequest, PipelineStepRequest
from .base import Master
from .broadcast import Broadcast, PendingBroadcast
from .estimator import HasMethods, Interval, Options
from .flowchart import Flowchart, chain
from .pipeline_client import PipelineClient
from .pipeline_predict import PIPELINE_PREDICT, PipelinePredictions
from .ring_allreduce import FirstFailureEndsRound

__all__ = ["PIPELINE_FIT", "PipelineMaster"]

#: A step is D (send each stage its ops) to J; the stages run H (forwards) and I (backwards
#: and the gradient step) while the master waits in E.
PIPELINE_FIT = Flowchart(
    "pipeline fit",
    {
        "A": "idle",
        "B": "fit request received",
        "C": "initial layers + pipeline setup",
        "D": "send each stage its ops (schedule)",
        "E": "wait: every stage's reply",
        "F": "a stage or link failed?",
        "G": "error to client",
        "H": "forwards, stage to stage",
        "I": "backwards + step (on stages)",
        "J": "epochs done?",
        "K": "collect every stage's layers",
        "L": "ok to client",
        "M": "end",
    },
    chain("ABCDEF")
    + (
        ("F", "G", "yes"),
        ("F", "H", "no"),
        ("H", "I", ""),
        ("I", "J", ""),
        ("J", "D", "no: next batch"),
        ("J", "K", "yes"),
        ("K", "L", ""),
        ("L", "M", ""),
        ("G", "M", ""),
    ),
)


class _LayerWidths:
    """The constraint of ``hidden_layer_sizes``: a tuple (or list) of integers >= 1."""

    def __call__(self, value: Any) -> bool:
        widths = value if isinstance(value, (tuple, list)) else [0]
        return all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in widths)

    def __str__(self) -> str:
        return "a tuple of integers >= 1 (the widths of the hidden layers)"


class PipelineMaster(PipelinePredictions, Master):
    """A pipeline-parallel multilayer perceptron classifier over
    :class:`~chimera_nb.PipelineStageWorker` s (one stage per worker, in the cluster's order).

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(64,)
        The hidden layers (ReLU); with the output layer, at least as many layers as stages.
    n_microbatches : int, default=4
        ``m``: each batch is cut into this many micro-batches.
    schedule : {"gpipe", "1f1b"} or callable, default="1f1b"
        The order of each stage's forwards and backwards: a name, or ``schedule(p, m)``
        returning one list of ``("F", i)`` / ``("B", i)`` per stage (a lab's function).
    learning_rate : float, default=0.1
    max_iter : int, default=20
        Epochs: passes over the data.
    batch_size : int or None, default=64
        Rows per step (None: every row, full-batch gradient descent).
    random_state : int or None
        Seeds the initial layers and each epoch's shuffle (:func:`~chimera_nb.algorithms.
        mlp.fit_mlp` replays the fit in one process).
    stage_timeout : float, default=10.0
        Seconds a stage waits for a neighbour's activation or gradient before the step fails.
    emulated_op_seconds : float, default=0.0
        Each forward and backward lasts at least this long on its stage: a larger model, so
        that the bubble shows against the HTTP calls (a teaching knob).
    timeout : float, optional
        Per call from the master to a stage; must exceed a step's work.

    Attributes
    ----------
    classes_, columns_ : list
    coefs_, intercepts_ : list of ndarray
        Every layer's weights ``(n_in, n_out)`` and bias, collected from the stages.
    stages_ : list of str
        The workers in pipeline order; ``stage_layers_``: the layers each holds.
    loss_curve_ : list of float
        Mean training loss per epoch.
    history_ : list of RoundRecord
        Per step: the loss, each stage's latency, and in ``extra`` the measured bubble, its
        theory, and each stage's peak of stashed activations.
    spans_ : SpanLog
        The master's calls, every op each stage computed (``"compute F(3)"``) and every
        activation or gradient a stage sent (``peer`` set).

    Examples
    --------
    >>> from chimera_nb import PipelineMaster
    >>> PipelineMaster((64, 32), n_microbatches=8, schedule="gpipe")
    PipelineMaster((64, 32), n_microbatches=8, schedule='gpipe') [not fitted]
    """

    role = "PipelineMaster"
    fit_path = paths.PIPELINE_PARALLEL_FIT
    predict_path = paths.PIPELINE_PARALLEL_PREDICT
    flowcharts = (PIPELINE_FIT, PIPELINE_PREDICT)
    quorum = "all"  # a pipeline needs every stage
    max_retries = 0  # a stage's ops cannot be redone alone

    def __init__(
        self,
        hidden_layer_sizes: tuple[int, ...] = (64,),
        *,
        n_microbatches: int = 4,
        schedule: str | Schedule = "1f1b",
        learning_rate: float = 0.1,
        max_iter: int = 20,
        batch_size: int | None = 64,
        random_state: int | None = None,
        stage_timeout: float = 10.0,
        emulated_op_seconds: float = 0.0,
        timeout: float | None = None,
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.n_microbatches = n_microbatches
        self.schedule = schedule
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.random_state = random_state
        self.stage_timeout = stage_timeout
        self.emulated_op_seconds = emulated_op_seconds
        self.timeout = timeout

    _parameter_constraints = {
        "timeout": Master._parameter_constraints["timeout"],
        "random_state": Master._parameter_constraints["random_state"],
        "hidden_layer_sizes": [_LayerWidths()],
        "n_microbatches": [Interval(int, 1, 1024, closed="both")],
        "schedule": [Options("gpipe", "1f1b"), HasMethods("__call__")],
        "learning_rate": [Interval(float, 0, None, closed="neither")],
        "max_iter": [Interval(int, 1, None, closed="left")],
        "batch_size": [None, Interval(int, 1, None, closed="left")],
        "stage_timeout": [Interval(float, 0, 600, closed="right")],
        "emulated_op_seconds": [Interval(float, 0, 10, closed="both")],
    }

    def _client(self, endpoints: Any, **options: Any) -> PipelineClient:
        return PipelineClient.like(super()._client(endpoints, **options))

    # -- fit: one named step per letter -------------------------------------------------------

    async def _fit(self, client: PipelineClient) -> None:
        self.events.publish(PIPELINE_FIT, "B", n_workers=len(client.endpoints))
        try:
            await self._initial_fit(client)  # C
            for epoch in range(1, self.max_iter + 1):
                losses = [
                    await self._step(client, rows, epoch)  # D ... I
                    for rows in epoch_batches(self._n_samples, self.batch_size, self.seed_, epoch)
                ]
                self.loss_curve_.append(float(np.mean(losses)))
                if self._epochs_done(epoch) or self._stop_requested:  # J
                    break
            await self._collect_layers(client)  # K
        except ChimeraError as error:
            self.events.publish(PIPELINE_FIT, "G", error=str(error))
            raise
        else:
            self.events.publish(
                PIPELINE_FIT, "L", n_rounds=len(self.history_), loss=self.loss_curve_[-1]
            )
        finally:
            self.events.publish(PIPELINE_FIT, "M")

    async def _step(self, client: PipelineClient, rows: np.ndarray, epoch: int) -> float:
        """Steps D to I of one batch; its mean loss."""
        step, m = self._next_step(), min(self.n_microbatches, len(rows))
        pending = self._send_ops(client, rows, step, m)  # D
        replies = await self._wait_for_stages(pending, step)  # E
        self._check_replies(replies, step)  # F -> G
        return self._report_step(replies, step, epoch, m)  # H, I

    async def _initial_fit(self, client: PipelineClient) -> None:
        """Step C: what the data holds, the initial layers (seeded) cut into balanced stages,
        and each stage's setup."""
        self.events.publish(PIPELINE_FIT, "C")
        names = list(client.endpoints)
        await self._describe_data(client, names)
        sizes = [len(self.columns_), *self.hidden_layer_sizes, len(self.classes_)]
        try:
            parts = split_layers(len(sizes) - 1, len(names))
        except ValueError as error:
            raise ConfigurationError(f"PipelineMaster: {error}") from None
        drawn = int(np.random.SeedSequence().generate_state(1)[0])
        self.seed_ = drawn if self.random_state is None else self.random_state
        layers = init_layers(sizes, self.seed_)
        self.stages_, self.stage_layers_ = names, [list(part) for part in parts]
        self._fit_id, self._steps = uuid.uuid4().hex, 0
        self.loss_curve_: list[float] = []
        peers = getattr(self._workers, "peer_endpoints", None) or client.endpoints
        setups = {
            name: self._setup_for(s, [layers[i] for i in parts[s]], peers)
            for s, name in enumerate(names)
        }
        outcome = await client.broadcast(client.pipeline_setup, setups).wait()
        self._check_quorum(outcome, len(names), "the pipeline setup")

    async def _describe_data(self, client: PipelineClient, names: list[str]) -> None:
        """The columns, classes and rows every stage holds: the same everywhere, since a
        step names rows by index (the first stage reads their features, the last their
        labels)."""
        described = await client.broadcast(client.pipeline_data, names).wait()
        self._check_quorum(described, len(names), "the data request")
        first = described.results[names[0]]
        for name, answer in described.results.items():
            if answer != first:
                raise WorkerError(
                    f"{name} holds other data than {names[0]} ({answer.n_samples} rows, classes "
                    f"{answer.classes}, not {first.n_samples}, {first.classes}): every stage "
                    "needs the same rows"
                )
        if len(first.classes) < 2:
            raise WorkerError(
                f"a classifier needs 2 classes or more; the stages hold {first.classes}"
            )
        self.classes_, self.columns_ = first.classes, first.columns
        self._n_samples = first.n_samples

    def _setup_for(
        self, s: int, layers: list[Layer], peers: dict[str, str]
    ) -> PipelineSetupRequest:
        """What stage ``s`` needs: its layers, its neighbours, how to step."""
        names = self.stages_
        previous = names[s - 1] if s > 0 else None
        following = names[s + 1] if s + 1 < len(names) else None
        return PipelineSetupRequest(
            fit_id=self._fit_id,
            stage=s,
            n_stages=len(names),
            n_microbatches=self.n_microbatches,
            layers=[PipelineLayer.of(layer.weights, layer.bias) for layer in layers],
            previous=previous,
            previous_url=previous and peers[previous],
            next=following,
            next_url=following and peers[following],
            classes=self.classes_ if following is None else None,
            learning_rate=self.learning_rate,
            timeout=self.stage_timeout,
            emulated_op_seconds=self.emulated_op_seconds,
        )

    def _next_step(self) -> int:
        self._steps += 1
        return self._steps

    def _schedule_ops(self, m: int) -> list[list[tuple[str, int]]]:
        """Each stage's ops for ``m`` micro-batches, checked before any is sent."""
        try:
            return schedule_ops(make_pipeline_schedule(self.schedule), len(self.stages_), m)
        except ValueError as error:
            raise ConfigurationError(f"PipelineMaster's schedule: {error}") from None

    def _send_ops(
        self, client: PipelineClient, rows: np.ndarray, step: int, m: int
    ) -> PendingBroadcast:
        """Step D: every stage gets its list of the schedule for ``m`` micro-batches, and
        the batch's rows."""
        ops = self._schedule_ops(m)
        self.events.publish(PIPELINE_FIT, "D", step, n_microbatches=m)
        requests = {
            name: PipelineStepRequest(
                fit_id=self._fit_id, step=step, n_microbatches=m, ops=ops[s], rows=rows.tolist()
            )
            for s, name in enumerate(self.stages_)
        }
        return client.broadcast(client.pipeline_step, requests, round_number=step)

    async def _wait_for_stages(self, pending: PendingBroadcast, step: int) -> Broadcast:
        """Step E: every stage's reply; the first failure ends the step at once."""
        self.events.publish(PIPELINE_FIT, "E", step)
        replies = await pending.wait(FirstFailureEndsRound())
        self.events.publish(
            PIPELINE_FIT, "F", step, answered=replies.answered, failed=replies.failed
        )
        return replies

    def _check_replies(self, replies: Broadcast, step: int) -> None:
        """Step F: a pipeline needs every stage and every link; say which failed."""
        for reply in replies.results.values():  # the stages' ops and sends
            for span in reply.spans:
                self.spans_.record(span.span())
        if not replies.failed:
            return
        reasons = "; ".join(f"{name}: {reason}" for name, reason in replies.failed.items())
        self._record(replies, step)
        raise QuorumError(
            f"step {step} of the pipeline failed ({reasons}). A pipeline needs every stage and "
            f"every link between neighbours ({' -> '.join(self.stages_)}); the other stages' "
            "calls were cancelled. Check the worker named (cluster.status()), or raise "
            "stage_timeout if the network is only slow.",
            replies.answered,
            dict(replies.failed),
        )

    def _report_step(self, replies: Broadcast, step: int, epoch: int, m: int) -> float:
        """Steps H and I, as the stages report them: the loss, the bubble measured from the
        compute spans beside its theory, and each stage's peak of stashed activations."""
        answers = {name: replies.results[name] for name in self.stages_}
        ran = ops_from_spans(span for answer in answers.values() for span in answer.spans)
        busy = {name: [(start, end) for _, start, end in ops] for name, ops in ran.items()}
        bubble, theory = measured_bubble(busy), bubble_fraction(len(self.stages_), m)
        peaks = {name: a.peak_stashed for name, a in answers.items()}
        self.events.publish(PIPELINE_FIT, "H", step, n_microbatches=m)
        self.events.publish(PIPELINE_FIT, "I", step, bubble=bubble, peak_stashed=peaks)
        last = answers[self.stages_[-1]]
        loss = last.loss_sum / last.n_rows
        if not np.isfinite(loss):
            raise FitDivergedError(
                f"the fit diverged: the loss became {loss} at step {step}. Lower the learning "
                f"rate (now {self.learning_rate})."
            )
        self._record(
            replies,
            step,
            n_samples={name: a.n_rows for name, a in answers.items()},
            loss=loss,
            learning_rate=self.learning_rate,
            extra={
                "epoch": epoch,
                "n_microbatches": m,
                "peak_stashed": peaks,
                "bubble": bubble,
                "bubble_theory": theory,
            },
        )
        return loss

    def _epochs_done(self, epoch: int) -> bool:
        """Step J: after ``max_iter`` epochs."""
        self.events.publish(PIPELINE_FIT, "J", epoch, loss=self.loss_curve_[-1])
        return epoch >= self.max_iter

    async def _collect_layers(self, client: PipelineClient) -> None:
        """Step K: every stage's layers, in pipeline order: the fitted network."""
        self.events.publish(PIPELINE_FIT, "K")
        outcome = await client.broadcast(client.pipeline_weights, self.stages_).wait()
        self._check_quorum(outcome, len(self.stages_), "collecting the layers")
        layers = [layer for name in self.stages_ for layer in outcome.results[name].layers]
        self.coefs_ = [np.array(layer.weights) for layer in layers]
        self.intercepts_ = [np.array(layer.bias) for layer in layers]
