"""The parameter server of data parallelism: distributed (stochastic) gradient descent.

Read the flowchart (the seed's steps A-M), then :meth:`_fit` and :meth:`_run_rounds`, which
call one named method per lettered step. The rule that turns the gradients into one is an
object (``aggregator``); the rest (quorum, events, ``history_``, spans, REST) is the base's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._exceptions import ChimeraError, FitDivergedError
from .._types import ModelType
from ..algorithms import (
    Compressor,
    Gradient,
    GradientAggregator,
    RoundPolicy,
    ShardGradient,
    WeightedMean,
    l2_penalty,
    update_step,
)
from ..wire import Encoding, FitStep, paths
from .base import Master, Quorum
from .broadcast import Broadcast, PendingBroadcast
from .checkpoint import CHECKPOINT_CONSTRAINTS, CheckpointedFit
from .client import WorkerClient
from .compression import CompressedGradients
from .consistency_switch import ConsistencySwitch
from .estimator import HasMethods, Interval, Options
from .history import RoundRecord
from .linear_model import (
    GRADIENT_DESCENT_CONSTRAINTS,
    PARAMETER_SERVER_PREDICT,
    FittedLinearModel,
    ProposedUpdate,
)
from .parameter_server_charts import PARAMETER_SERVER_FIT

__all__ = ["PARAMETER_SERVER_FIT", "PARAMETER_SERVER_PREDICT", "ParameterServerMaster"]


class ParameterServerMaster(
    CompressedGradients, ConsistencySwitch, FittedLinearModel, CheckpointedFit, Master
):
    """Distributed gradient descent for linear models, with :class:`~chimera_nb.SGDWorker` s.

    Each round the master sends the current weights to every worker (``fit-step``), each worker
    returns the mean gradient of its shard, and the master averages them weighted by shard size
    and takes one step, following the seed's flowchart (steps A-M, published on :attr:`events`).

    Parameters
    ----------
    model_type : {"regressor", "classifier"}
        Linear regression (squared loss), or logistic (2 classes) / softmax (3+) regression.
    learning_rate : float, default=0.1
        Step size in standardized units (see Notes).
    learning_rate_schedule : {"constant", "invscaling"}, default="constant"
        ``"invscaling"`` divides the step by ``round_number ** power_t``.
    power_t : float, default=0.25
    max_iter : int, default=1000
        Most updates of the weights; the fit then stops.
    tol : float, default=1e-6
        Stop when an update would move the weights less than this (Euclidean norm).
    alpha : float, default=0.0
        L2 penalty ``alpha/2 ||W||^2`` on the standardized weights (not on the bias).
    batch_size : int or None, default=None
        None: each worker uses its whole shard (gradient descent, equal to one machine's).
        An int: each worker draws this many rows per round (stochastic gradient descent).
    quorum : None, int or "all", default=None
        Workers that must answer a round for it to count: None means at least one.
    encoding : {"json", "binary"}, default="json"
        How weights and gradients travel: the seed's JSON, or raw float64 (much cheaper
        for large models).
    timeout, max_retries : float and int, optional
        Per call to a worker; default to ``CHIMERA_WORKERS_ENDPOINTS_TIMEOUT`` (100 s) and
        ``CHIMERA_WORKERS_ENDPOINTS_MAX_RETRIES`` (0).
    aggregator : GradientAggregator, optional
        The rule that combines the workers' gradients; default :class:`WeightedMean`.
    round_policy : RoundPolicy, optional
        When a round may close: default :class:`~chimera_nb.algorithms.WaitForAll` (BSP);
        ``FirstK(k)`` closes after the first k replies (the rest are backup workers).
    backup_workers : int, default=0
        BSP with ``b`` backup workers: each round uses the first N - b replies and cancels
        the slowest b (recorded in ``history_[r].cancelled``); ``FirstK(N - b)`` for short.
    consistency : {"bsp", "ssp", "asp"} or a rule object, default="bsp"
        BSP: every round waits for every worker. SSP: a worker runs at most ``staleness``
        clocks ahead of the slowest. ASP: no worker waits. Under SSP and ASP each gradient is
        applied as it arrives (see :mod:`chimera_nb.masters.clocks`); SSP(0) equals BSP. A
        rule object with ``may_start(clock, slowest)`` runs as SSP does, with that rule.
    staleness : int, optional
        ``s`` for ``consistency="ssp"`` (required there, refused elsewhere).
    staleness_aware : bool, default=False
        SSP and ASP: divide the step of a gradient by ``1 + k``, ``k`` the full steps the
        weights took while it was computed (:func:`~chimera_nb.algorithms.staleness_aware`).
    compression : TopK, QSGD or None, default=None
        Workers send compressed gradients (:mod:`~chimera_nb.masters.compression`).
    random_state : int or None
        Seeds the mini-batches (one seed per worker, kept in ``worker_seeds_``).
    checkpoint_every, checkpoint_dir : int and str, optional
        Save the fit every k rounds (in ``chimera_checkpoints/``), to resume after a crash:
        ``ParameterServerMaster.from_checkpoint("chimera_checkpoints").fit(workers)``.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,) or (n_outputs, n_features)
        Weights in the original units of the data.
    intercept_ : ndarray of shape (n_outputs,)
    classes_ : list
        The classes, in the order of the rows of ``coef_`` (classifiers only).
    standardizer_ : Standardizer
        The global standardization built from the workers' statistics.
    history_ : list of RoundRecord
        Per round: loss, who answered, who failed and why, latencies.
    spans_ : SpanLog
        One span per call to a worker (``spans_.to_frame()`` for a DataFrame).
    worker_seeds_ : dict of str to int
        The mini-batch seed of each worker, drawn from ``random_state``.
    loss_curve_ : list of float
    updates_ : list of AppliedUpdate
        SSP and ASP: every gradient applied, with its worker, clock and staleness.
    n_iter_ : int
        Updates made (SSP and ASP: clocks closed).
    converged_ : bool

    Notes
    -----
    The master standardizes features (and a regression target) with means and standard
    deviations aggregated from all workers, and keeps its weights in those units, so the
    default learning rate works on raw data such as wine quality. Workers still compute
    gradients on their raw shards: the master converts weights on the way out and gradients
    on the way back (:class:`~chimera_nb.algorithms.Standardizer`). Gradients are averaged
    **weighted by shard size**, so with ``batch_size=None`` a round is exactly one step of
    full-batch gradient descent on all the data; the seed's unweighted mean is not.

    The last round computes a gradient but makes no update (the flowchart checks
    convergence before updating), so its loss is the loss of the returned model.

    One fit at a time (a second raises ``FitInProgressError``; REST: 409). A fit publishes its
    model whole when it ends: during a refit, ``predict`` and ``coef_`` answer from the last
    fitted model, which a failed or cancelled fit leaves in place.

    Examples
    --------
    >>> from chimera_nb import ParameterServerMaster
    >>> ParameterServerMaster("regressor", learning_rate=0.2)
    ParameterServerMaster('regressor', learning_rate=0.2) [not fitted]
    """

    role = "ParameterServerMaster"
    fit_path = paths.PARAMETER_SERVER_FIT
    predict_path = paths.PARAMETER_SERVER_PREDICT

    def __init__(
        self,
        model_type: ModelType = "regressor",
        *,
        learning_rate: float = 0.1,
        learning_rate_schedule: str = "constant",
        power_t: float = 0.25,
        max_iter: int = 1000,
        tol: float = 1e-6,
        alpha: float = 0.0,
        batch_size: int | None = None,
        quorum: Quorum = None,
        encoding: Encoding = "json",
        timeout: float | None = None,
        max_retries: int | None = None,
        aggregator: GradientAggregator | None = None,
        round_policy: RoundPolicy | None = None,
        backup_workers: int = 0,
        consistency: str = "bsp",
        staleness: int | None = None,
        staleness_aware: bool = False,
        compression: Compressor | None = None,
        random_state: int | None = None,
        checkpoint_every: int | None = None,
        checkpoint_dir: str | None = None,
    ) -> None:
        self.model_type = model_type
        self.learning_rate = learning_rate
        self.learning_rate_schedule = learning_rate_schedule
        self.power_t = power_t
        self.max_iter = max_iter
        self.tol = tol
        self.alpha = alpha
        self.batch_size = batch_size
        self.quorum = quorum
        self.encoding = encoding
        self.timeout = timeout
        self.max_retries = max_retries
        self.aggregator = aggregator
        self.round_policy = round_policy
        self.backup_workers = backup_workers
        self.consistency = consistency
        self.staleness = staleness
        self.staleness_aware = staleness_aware
        self.compression = compression
        self.random_state = random_state
        self.checkpoint_every = checkpoint_every
        self.checkpoint_dir = checkpoint_dir

    _parameter_constraints = {
        **Master._parameter_constraints,
        **GRADIENT_DESCENT_CONSTRAINTS,
        "batch_size": [None, Interval(int, 1, None, closed="left")],
        "encoding": [Options("json", "binary")],
        "aggregator": [None, HasMethods("aggregate")],
        "round_policy": [None, HasMethods("closes")],
        **ConsistencySwitch._parameter_constraints,
        **CHECKPOINT_CONSTRAINTS,
    }

    @property
    def max_rounds(self) -> int:
        """``max_iter`` updates take ``max_iter + 1`` rounds: the last one only evaluates."""
        return self.max_iter + 1

    def _client_options(self) -> dict[str, Any]:
        return {"encoding": self.encoding}

    # -- fit: the seed's flowchart, one named step per letter ------------------------------

    async def _fit(self, client: WorkerClient) -> None:
        self.events.publish(self._chart, "B", n_workers=len(client.endpoints))
        try:
            await self._initial_fit(client)  # C
            await self._run_rounds(client)  # D ... K, round after round
            self._model = self._training  # the new model replaces the old one whole
        except ChimeraError as error:
            self.events.publish(self._chart, "G", error=str(error))
            raise
        else:
            self.events.publish(
                self._chart, "L", n_rounds=len(self.history_), loss=self.loss_curve_[-1]
            )
        finally:
            self.events.publish(self._chart, "M")

    async def _run_rounds(self, client: WorkerClient) -> None:
        if not getattr(self._consistency, "synchronous", False):  # SSP or ASP: a loop each
            await self._run_clocks(client)
            return
        self.updates_ = []  # BSP applies one aggregated step per round, no single gradients
        for round_number in range(self._first_round, self.max_iter + 2):
            self._follow_membership(client, round_number)
            converged, update = await self._round(client, round_number)  # D ... J
            if converged or round_number > self.max_iter or self._stop_requested:
                self.converged_ = converged
                return
            self._update_model(update, round_number)  # K, then back to D
            self._maybe_checkpoint(round_number)  # every checkpoint_every rounds

    async def _round(self, client: WorkerClient, round_number: int) -> tuple[bool, ProposedUpdate]:
        """Steps D to J of one BSP round: whether it converged, and the update it proposes."""
        pending = self._broadcast_fit_step(client, round_number)  # D
        replies = await self._wait_for_replies(pending, round_number, len(client.endpoints))  # E
        self._check_replies(replies, len(client.endpoints), round_number)  # F -> G
        gradients = self._gather_gradients(replies, round_number)  # H
        gradient, loss = self._aggregate(gradients, round_number)  # I
        converged, update = self._check_convergence(gradient, loss, round_number)  # J
        self._record_round(replies, round_number, loss, update)
        return converged, update

    async def _initial_fit(self, client: WorkerClient) -> None:
        """Step C: learn the columns from a data sample (the seed's way: the first worker
        that answers), the global statistics and classes from every worker, and start from
        zero weights."""
        self.events.publish(self._chart, "C")
        statistics = await self._start_from_zero(client)
        self._expected_samples = {  # each worker's weight in a step, until it answers
            name: answer.n_samples if self.batch_size is None else self.batch_size
            for name, answer in statistics.items()
        }
        self._start_or_resume(
            list(client.endpoints)
        )  # round 1, schedule, mini-batch seeds; or a checkpoint's

    def _broadcast_fit_step(self, client: WorkerClient, round_number: int) -> PendingBroadcast:
        """Step D: send every worker the current weights, in raw units (each with its own
        mini-batch seed)."""
        self.events.publish(self._chart, "D", round_number)
        if self.batch_size is None:  # every worker gets the same request: encoded once
            steps = dict.fromkeys(client.endpoints, self._fit_step_for("", round_number))
        else:
            steps = {name: self._fit_step_for(name, round_number) for name in client.endpoints}
        return client.broadcast(client.fit_step, steps, round_number=round_number)

    def _fit_step_for(self, name: str, round_number: int) -> FitStep:
        """What one worker is asked in a round: the current weights in raw units, and its
        mini-batch seed."""
        weights, bias = self._training.raw()
        classes = self._training.classes or None
        seed = self._batch_seed(name, round_number)
        return FitStep(weights, bias, classes, self.batch_size, seed, self._compression_request())

    def _batch_seed(self, name: str, round_number: int) -> int | None:
        """A different, reproducible mini-batch per worker and round."""
        if self.batch_size is None:
            return None
        if name not in self.worker_seeds_:  # joined mid-fit: the next seed of the sequence
            n_seeds = len(self.worker_seeds_) + 1
            seeds = np.random.SeedSequence(self.random_state).generate_state(n_seeds)
            self.worker_seeds_[name] = int(seeds[-1])
        return int(
            np.random.SeedSequence([self.worker_seeds_[name], round_number]).generate_state(1)[0]
        )

    async def _wait_for_replies(
        self, pending: PendingBroadcast, round_number: int, n_workers: int
    ) -> Broadcast:
        """Step E: each worker answers, times out or runs out of retries (or the round
        policy closes the round without the slowest); then F asks whether enough answered."""
        self.events.publish(self._chart, "E", round_number)
        replies = await pending.wait(self._round_policy(n_workers))
        detail = {"answered": replies.answered, "failed": replies.failed}
        self.events.publish(self._chart, "F", round_number, cancelled=replies.cancelled, **detail)
        return replies

    def _check_replies(self, replies: Broadcast, n_workers: int, round_number: int) -> None:
        """Step F: enough workers answered (the quorum); if every worker refused the weights
        as unusable (422), the fit diverged: say so, rather than blame the quorum."""
        refused = [r for r in replies.failed.values() if r.startswith("answered HTTP 422")]
        if not replies.results and replies.failed and len(refused) == len(replies.failed):
            raise self._diverged(f"every worker refused round {round_number}: {refused[0]}")
        self._check_quorum(replies, n_workers, f"round {round_number}")

    def _diverged(self, what: str) -> FitDivergedError:
        return FitDivergedError(
            f"the fit diverged: {what}. Lower the learning rate (now {self.learning_rate})."
        )

    def _gather_gradients(self, replies: Broadcast, round_number: int) -> dict[str, ShardGradient]:
        """Step H: the answers of the workers that replied, by name, in standardized units."""
        self.events.publish(self._chart, "H", round_number)
        return {name: self._decoded(result) for name, result in replies.results.items()}

    def _aggregate(
        self, gradients: dict[str, ShardGradient], round_number: int
    ) -> tuple[Gradient, float]:
        """Step I: one gradient from many (the aggregator's rule), plus the L2 term, and the
        loss over all samples."""
        self.events.publish(self._chart, "I", round_number)
        gradient = (self.aggregator or WeightedMean()).aggregate(gradients)
        penalty, penalty_gradient = l2_penalty(self._training.weights, self.alpha)
        answers = list(gradients.values())
        loss = float(np.average([a.loss for a in answers], weights=[a.n_samples for a in answers]))
        loss += penalty
        if not np.isfinite(loss):
            raise self._diverged(f"the loss became {loss} at round {round_number}")
        return Gradient(gradient.weights + penalty_gradient, gradient.bias), loss

    def _check_convergence(
        self, gradient: Gradient, loss: float, round_number: int
    ) -> tuple[bool, ProposedUpdate]:
        """Step J: the update this gradient proposes, and whether it is below ``tol``."""
        self.events.publish(self._chart, "J", round_number, loss=loss)
        learning_rate, model = self._schedule(round_number), self._training
        new_weights, new_bias, norm = update_step(
            model.weights, model.bias, gradient.weights, gradient.bias, learning_rate
        )
        return norm < self.tol, ProposedUpdate(new_weights, new_bias, norm, learning_rate)

    def _update_model(self, update: ProposedUpdate, round_number: int) -> None:
        """Step K: take the step."""
        self.events.publish(self._chart, "K", round_number)
        self._training.weights, self._training.bias = update.weights, update.bias
        self.n_iter_ += 1

    def _record_round(
        self, replies: Broadcast, round_number: int, loss: float, update: ProposedUpdate
    ) -> RoundRecord:
        record = self._record(
            replies,
            round_number,
            n_samples={name: result.n_samples for name, result in replies.results.items()},
            loss=loss,
            learning_rate=update.learning_rate,
            update_norm=update.norm,
        )
        self.loss_curve_.append(loss)
        return record
