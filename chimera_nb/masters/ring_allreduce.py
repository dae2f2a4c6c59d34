"""Ring all-reduce: data-parallel gradient descent with no parameter server in the middle.

Each :class:`~chimera_nb.RingWorker` keeps a replica of the model. In a round the workers
average their gradients among themselves, passing chunks to their right neighbour
(reduce-scatter, then all-gather: :mod:`chimera_nb.algorithms.ring`), and every replica
takes the same step. The master only sets the ring up, starts each round and collects the
loss; weights never travel through it, so no machine receives N gradients a round.

Read the flowchart, then :meth:`RingAllReduceMaster._fit` and ``_run_rounds``: one named
method per lettered step. Steps H and I happen on the workers, while the master waits in E;
it publishes them when the replies report them (with the spans of the workers' calls).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .._exceptions import ChimeraError, FitDivergedError, QuorumError
from .._types import ModelType
from ..wire import paths
from ..wire.topology_models import RingRoundRequest, RingRoundResponse, RingSetupRequest
from .base import Master, Quorum
from .broadcast import Broadcast, PendingBroadcast
from .estimator import Interval
from .flowchart import Flowchart, chain
from .history import RoundRecord
from .linear_model import GRADIENT_DESCENT_CONSTRAINTS, PARAMETER_SERVER_PREDICT, FittedLinearModel
from .ring_client import RingClient

__all__ = ["RING_ALLREDUCE_FIT", "RingAllReduceMaster"]

#: The ring's fit: the master starts a round (D) and waits (E) while the workers
#: reduce-scatter (H) and all-gather and step (I); then it checks convergence (J).
RING_ALLREDUCE_FIT = Flowchart(
    "ring all-reduce fit",
    {
        "A": "idle",
        "B": "fit request received",
        "C": "initial fit + ring setup",
        "D": "start round on every worker",
        "E": "wait: every worker's reply",
        "F": "a worker or link failed?",
        "G": "error to client",
        "H": "reduce-scatter (on workers)",
        "I": "all-gather + step (on workers)",
        "J": "converged or max_iter?",
        "K": "collect a replica's weights",
        "L": "ok to client",
        "M": "end",
    },
    chain("ABCDEF")
    + (
        ("F", "G", "yes"),
        ("F", "H", "no"),
        ("H", "I", ""),
        ("I", "J", ""),
        ("J", "D", "no: next round"),
        ("J", "K", "yes"),
        ("K", "L", ""),
        ("L", "M", ""),
        ("G", "M", ""),
    ),
)


class FirstFailureEndsRound:
    """The ring's round policy: a round needs every worker, so it closes when all have
    answered or at the first failure (the calls still running are cancelled; their workers
    give up waiting for their neighbours within ``ring_timeout``)."""

    deadline = None

    def closes(
        self, answered: Sequence[str], failed: Mapping[str, str], n_workers: int, elapsed: float
    ) -> bool:
        return bool(failed) or len(answered) >= n_workers

    def __repr__(self) -> str:
        return "FirstFailureEndsRound()"


def _bytes_sent(replies: Broadcast) -> dict[str, int]:
    """The bytes of chunks each worker sent its right neighbour in a round (from spans)."""
    return {
        name: sum(span.bytes_sent for span in reply.spans)
        for name, reply in replies.results.items()
    }


class RingAllReduceMaster(FittedLinearModel, Master):
    """Distributed gradient descent for linear models over a ring of
    :class:`~chimera_nb.RingWorker` s.

    Parameters
    ----------
    model_type : {"regressor", "classifier"}
    learning_rate, learning_rate_schedule, power_t, max_iter, tol, alpha
        As :class:`~chimera_nb.ParameterServerMaster`'s; every replica applies them.
    ring_timeout : float, default=10.0
        Seconds a worker waits for its neighbour (its chunk, or its answer) before the
        round fails.
    timeout : float, optional
        Per call from the master to a worker; must exceed the ring's work in a round.

    Attributes
    ----------
    coef_, intercept_, classes_, standardizer_, loss_curve_, n_iter_, converged_
        As :class:`~chimera_nb.ParameterServerMaster`'s.
    ring_ : list of str
        The workers in ring order: each sends to the next, the last to the first.
    history_ : list of RoundRecord
        Per round: the loss, who answered, each worker's latency, and in ``extra`` the
        bytes each worker sent its neighbour.
    spans_ : SpanLog
        The master's calls, and the workers' calls to their neighbours (``peer`` set).

    Notes
    -----
    Every worker ends the all-reduce with the same bits (each chunk's sum is computed once,
    then copied), so the replicas never drift apart. With the gradients weighted by shard
    size, a round is one step of full-batch gradient descent: the same step as a
    :class:`~chimera_nb.ParameterServerMaster` with ``batch_size=None``. The ring needs every
    worker and every link: a round with a failure fails the fit, naming the link.

    Examples
    --------
    >>> from chimera_nb import RingAllReduceMaster
    >>> RingAllReduceMaster("regressor", learning_rate=0.2)
    RingAllReduceMaster('regressor', learning_rate=0.2) [not fitted]
    """

    role = "RingAllReduceMaster"
    fit_path = paths.RING_ALLREDUCE_FIT
    predict_path = paths.RING_ALLREDUCE_PREDICT
    flowcharts = (RING_ALLREDUCE_FIT, PARAMETER_SERVER_PREDICT)
    quorum: Quorum = "all"  # a ring needs every member
    max_retries = 0  # a ring step cannot be redone by one worker alone

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
        ring_timeout: float = 10.0,
        timeout: float | None = None,
    ) -> None:
        self.model_type = model_type
        self.learning_rate = learning_rate
        self.learning_rate_schedule = learning_rate_schedule
        self.power_t = power_t
        self.max_iter = max_iter
        self.tol = tol
        self.alpha = alpha
        self.ring_timeout = ring_timeout
        self.timeout = timeout

    _parameter_constraints = {
        "timeout": Master._parameter_constraints["timeout"],
        **GRADIENT_DESCENT_CONSTRAINTS,
        "ring_timeout": [Interval(float, 0, None, closed="neither")],
    }

    @property
    def max_rounds(self) -> int:
        """``max_iter`` updates take ``max_iter + 1`` rounds: the last one only evaluates."""
        return self.max_iter + 1

    def _client(self, endpoints: Any, **options: Any) -> RingClient:
        return RingClient.like(super()._client(endpoints, **options))

    # -- fit: one named step per letter -------------------------------------------------------

    async def _fit(self, client: RingClient) -> None:
        self.events.publish(RING_ALLREDUCE_FIT, "B", n_workers=len(client.endpoints))
        try:
            await self._initial_fit(client)  # C
            await self._run_rounds(client)  # D ... J, round after round
            await self._collect_weights(client)  # K
            self._model = self._training  # the new model replaces the old one whole
        except ChimeraError as error:
            self.events.publish(RING_ALLREDUCE_FIT, "G", error=str(error))
            raise
        else:
            loss = self.loss_curve_[-1]
            self.events.publish(RING_ALLREDUCE_FIT, "L", n_rounds=len(self.history_), loss=loss)
        finally:
            self.events.publish(RING_ALLREDUCE_FIT, "M")

    async def _run_rounds(self, client: RingClient) -> None:
        self.loss_curve_: list[float] = []
        self.n_iter_, self.converged_ = 0, False
        for round_number in range(1, self.max_iter + 2):
            pending = self._start_round(client, round_number)  # D
            replies = await self._wait_for_replies(pending, round_number)  # E
            self._check_replies(replies, round_number)  # F -> G
            self._report_ring_steps(replies, round_number)  # H, I: done on the workers
            converged = self._check_convergence(replies, round_number)  # J
            if converged or round_number > self.max_iter or self._stop_requested:
                self.converged_ = converged
                return

    async def _initial_fit(self, client: RingClient) -> None:
        """Step C: the columns from a data sample, the global standardization from every
        worker's statistics (as a parameter server's), zero weights; then each worker is
        told its place in the ring, its right neighbour and its replica's starting point."""
        self.events.publish(RING_ALLREDUCE_FIT, "C")
        await self._start_from_zero(client)
        names = list(client.endpoints)
        self.ring_ = names
        self._fit_id = uuid.uuid4().hex  # workers refuse a late chunk of an earlier fit
        setups = {name: self._setup_for(client, position) for position, name in enumerate(names)}
        outcome = await client.broadcast(client.ring_setup, setups).wait()
        self._check_quorum(outcome, len(names), "the ring setup")

    def _peer_endpoints(self, client: RingClient) -> dict[str, str]:
        """Where workers reach each other: a cluster's ``peer_endpoints`` (container names on
        a Docker network), else the URLs the master calls."""
        return getattr(self._workers, "peer_endpoints", None) or client.endpoints

    def _setup_for(self, client: RingClient, position: int) -> RingSetupRequest:
        """What the worker at ``position`` needs: neighbours, standardization, weights."""
        ring, model = self.ring_, self._training
        right = ring[(position + 1) % len(ring)]
        standardizer = model.standardizer
        return RingSetupRequest(
            fit_id=self._fit_id,
            position=position,
            n_workers=len(ring),
            left=ring[position - 1],
            right=right,
            right_url=self._peer_endpoints(client)[right],
            feature_mean=standardizer.feature_mean.tolist(),
            feature_scale=standardizer.feature_scale.tolist(),
            target_mean=standardizer.target_mean,
            target_scale=standardizer.target_scale,
            weights=model.weights.ravel().tolist(),
            bias=model.bias.tolist(),
            classes=model.classes or None,
            learning_rate=self.learning_rate,
            learning_rate_schedule=self.learning_rate_schedule,
            power_t=self.power_t,
            alpha=self.alpha,
            tol=self.tol,
            timeout=self.ring_timeout,
        )

    def _start_round(self, client: RingClient, round_number: int) -> PendingBroadcast:
        """Step D: ask every worker to run the round; the last one only evaluates."""
        self.events.publish(RING_ALLREDUCE_FIT, "D", round_number)
        request = RingRoundRequest(
            round_number=round_number, take_step=round_number <= self.max_iter
        )
        calls = dict.fromkeys(self.ring_, request)
        return client.broadcast(client.ring_round, calls, round_number=round_number)

    async def _wait_for_replies(self, pending: PendingBroadcast, round_number: int) -> Broadcast:
        """Step E: every worker's reply; the first failure ends the round at once."""
        self.events.publish(RING_ALLREDUCE_FIT, "E", round_number)
        replies = await pending.wait(FirstFailureEndsRound())
        detail = {"answered": replies.answered, "failed": replies.failed}
        self.events.publish(RING_ALLREDUCE_FIT, "F", round_number, **detail)
        return replies

    def _check_replies(self, replies: Broadcast, round_number: int) -> None:
        """Step F: a ring needs every worker and every link; say which failed."""
        for reply in replies.results.values():  # the workers' calls to their neighbours
            for span in reply.spans:
                self.spans_.record(span.span())
        if not replies.failed:
            return
        reasons = "; ".join(f"{name}: {reason}" for name, reason in replies.failed.items())
        self._record(replies, round_number)
        ring = " -> ".join([*self.ring_, self.ring_[0]])
        raise QuorumError(
            f"round {round_number} of the ring failed ({reasons}). A ring needs every worker "
            f"and every link between neighbours ({ring}); the other workers' calls were "
            "cancelled. Check the worker named (cluster.status()), heal a partition "
            "(cluster.heal()), or raise ring_timeout if the network is only slow.",
            replies.answered,
            dict(replies.failed),
        )

    def _report_ring_steps(self, replies: Broadcast, round_number: int) -> None:
        """Steps H and I, as the workers report them: the bytes each sent its neighbour."""
        n_steps = len(self.ring_) - 1
        self.events.publish(RING_ALLREDUCE_FIT, "H", round_number, steps=n_steps)
        self.events.publish(
            RING_ALLREDUCE_FIT, "I", round_number, steps=n_steps, bytes=_bytes_sent(replies)
        )

    def _check_convergence(self, replies: Broadcast, round_number: int) -> bool:
        """Step J: the loss over all samples, and whether the step was below ``tol``."""
        answers: list[RingRoundResponse] = list(replies.results.values())
        first = answers[0]  # every replica computed the same step
        loss = sum(a.loss_sum for a in answers) / sum(a.n_samples for a in answers)
        loss += first.penalty
        self.events.publish(RING_ALLREDUCE_FIT, "J", round_number, loss=loss)
        if not np.isfinite(loss):
            raise FitDivergedError(
                f"the fit diverged: the loss became {loss} at round {round_number}. Lower the "
                f"learning rate (now {self.learning_rate})."
            )
        self.n_iter_ += first.stepped
        self._record_round(replies, round_number, loss, first)
        return first.update_norm < self.tol

    def _record_round(
        self, replies: Broadcast, round_number: int, loss: float, first: RingRoundResponse
    ) -> RoundRecord:
        record = self._record(
            replies,
            round_number,
            n_samples={name: reply.n_samples for name, reply in replies.results.items()},
            loss=loss,
            learning_rate=first.learning_rate,
            update_norm=first.update_norm,
            extra={"bytes_sent": _bytes_sent(replies)},
        )
        self.loss_curve_.append(loss)
        return record

    async def _collect_weights(self, client: RingClient) -> None:
        """Step K: the fitted weights, from the replica of the first worker of the ring."""
        self.events.publish(RING_ALLREDUCE_FIT, "K")
        weights, bias = (await client.ring_weights(self.ring_[0]))[0]
        self._training.weights = weights.reshape(self._training.weights.shape).copy()
        self._training.bias = bias.copy()
