"""Sharded parameter servers: the weights live on S parameter shards, placed by a hash ring.

Read the flowchart (:data:`SHARDED_FIT`), then :meth:`ShardedParameterServerMaster._fit` and
``_run_rounds``, which call one named method per lettered step. What differs from the star
(:class:`~chimera_nb.ParameterServerMaster`): no weights and no gradients pass through the
master. It places the blocks (D), starts each round (E), and the workers pull their weights
from the shards and push their gradient slices to them; each shard averages its slices and
proposes its part of the step (H), the master adds up the parts of the update's norm to
decide convergence (I), and the shards take the step (J). When a shard joins the servers'
cluster, the ring says which blocks move, and only those move (K).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from .._exceptions import ChimeraError, FitDivergedError, WorkerError
from .._types import ModelType
from ..algorithms import HashRing, Move, ParameterBlocks, make_schedule
from ..spans import Span
from ..wire import paths
from ..wire.topology_models import (
    ShardCommitRequest,
    ShardedPlan,
    ShardedStepRequest,
    ShardProposeRequest,
)
from .base import Master, Quorum
from .broadcast import Broadcast
from .client import WorkerClient
from .endpoints import resolve_endpoints
from .estimator import Interval
from .flowchart import Flowchart, chain
from .linear_model import GRADIENT_DESCENT_CONSTRAINTS, PARAMETER_SERVER_PREDICT, FittedLinearModel
from .shard_client import ShardedClient

__all__ = ["SHARDED_FIT", "ShardedParameterServerMaster"]

SHARDED_FIT = Flowchart(
    "sharded parameter-server fit",
    {
        "A": "idle",
        "B": "fit request received",
        "C": "initial fit on sample",
        "D": "place blocks by the hash ring",
        "E": "round: workers pull, compute, push",
        "F": "too few workers answered?",
        "G": "error to client",
        "H": "shards: mean, propose step",
        "I": "converged or max_iter?",
        "J": "shards: take the step",
        "K": "shard joined? move its blocks",
        "L": "ok to client",
        "M": "end",
    },
    chain("ABCDEF")
    + (
        ("F", "G", "yes"),
        ("F", "H", "no"),
        ("H", "I", ""),
        ("I", "J", "no"),
        ("J", "K", ""),
        ("K", "E", "next round"),
        ("I", "L", "yes"),
        ("L", "M", ""),
        ("G", "M", ""),
    ),
)


class ShardedParameterServerMaster(FittedLinearModel, Master):
    """Distributed gradient descent with the weights on S parameter shards.

    ``ShardedParameterServerMaster("regressor", servers=shards).fit(workers)``: ``workers``
    are :class:`~chimera_nb.ShardedSGDWorker` s holding the data, ``servers`` are
    :class:`~chimera_nb.ParameterShard` s (a cluster, or a mapping of name to URL). Full
    batch and BSP only: each round equals one round of ``ParameterServerMaster`` (and of
    full-batch gradient descent on all the data).

    Parameters
    ----------
    model_type : {"regressor", "classifier"}
    servers : cluster or mapping of str to str
        The parameter shards. A shard the cluster adds during a fit joins the ring before the
        next round, and the blocks the ring gives it move to it.
    n_blocks : int or None, default=None
        Weight columns are cut into this many blocks (plus the bias); None: one per column.
    virtual_nodes : int, default=64
        Points per shard on the hash ring.
    learning_rate, learning_rate_schedule, power_t, max_iter, tol, alpha, quorum, timeout,
    max_retries
        As for :class:`~chimera_nb.ParameterServerMaster`.

    Attributes
    ----------
    coef_, intercept_, classes_, standardizer_, history_, spans_, loss_curve_, n_iter_,
    converged_
        As for :class:`~chimera_nb.ParameterServerMaster`; ``spans_`` also holds the workers'
        calls to the shards (``peer`` is the calling worker).
    placement_ : dict of str to str
        Block -> the shard holding it, at the end of the fit.
    moves_ : list of (round_number, shard, list of Move)
        The blocks that moved when a shard joined before ``round_number``.

    Examples
    --------
    >>> from chimera_nb import ShardedParameterServerMaster
    >>> ShardedParameterServerMaster("regressor", servers={"shard1": "http://127.0.0.1:9"})
    ShardedParameterServerMaster('regressor', servers={'shard1': 'http://127.0.0.1:9'}) [not fitted]
    """

    role = "ShardedParameterServerMaster"
    fit_path = paths.SHARDED_PARAMETER_SERVER_FIT
    predict_path = paths.SHARDED_PARAMETER_SERVER_PREDICT
    flowcharts = (SHARDED_FIT, PARAMETER_SERVER_PREDICT)

    def __init__(
        self,
        model_type: ModelType = "regressor",
        *,
        servers: Any = None,
        n_blocks: int | None = None,
        virtual_nodes: int = 64,
        learning_rate: float = 0.1,
        learning_rate_schedule: str = "constant",
        power_t: float = 0.25,
        max_iter: int = 1000,
        tol: float = 1e-6,
        alpha: float = 0.0,
        quorum: Quorum = None,
        timeout: float | None = None,
        max_retries: int | None = None,
    ) -> None:
        self.model_type = model_type
        self.servers = servers
        self.n_blocks = n_blocks
        self.virtual_nodes = virtual_nodes
        self.learning_rate = learning_rate
        self.learning_rate_schedule = learning_rate_schedule
        self.power_t = power_t
        self.max_iter = max_iter
        self.tol = tol
        self.alpha = alpha
        self.quorum = quorum
        self.timeout = timeout
        self.max_retries = max_retries

    _parameter_constraints = {
        **Master._parameter_constraints,
        **GRADIENT_DESCENT_CONSTRAINTS,
        "n_blocks": [None, Interval(int, 1, None, closed="left")],
        "virtual_nodes": [Interval(int, 1, None, closed="left")],
    }

    @property
    def max_rounds(self) -> int:
        return self.max_iter + 1

    def _client(self, endpoints: Any, **options: Any) -> ShardedClient:
        return ShardedClient.like(super()._client(endpoints, **options))

    # -- fit: one named step per letter -----------------------------------------------------

    async def _fit(self, client: WorkerClient) -> None:
        self.events.publish(SHARDED_FIT, "B", n_workers=len(client.endpoints))
        servers = resolve_endpoints(self.servers)
        try:
            async with ShardedClient.like(client, servers) as shards:
                await self._initial_fit(client)  # C
                await self._place_blocks(client, shards)  # D
                await self._run_rounds(client, shards)  # E ... K, round after round
                self._model = await self._pull_model(shards)  # L
        except ChimeraError as error:
            self.events.publish(SHARDED_FIT, "G", error=str(error))
            raise
        else:
            self.events.publish(SHARDED_FIT, "L", n_rounds=len(self.history_))
        finally:
            self.events.publish(SHARDED_FIT, "M")

    async def _run_rounds(self, client: ShardedClient, shards: ShardedClient) -> None:
        for round_number in range(1, self.max_iter + 2):
            replies = await self._start_round(client, round_number)  # E
            self._check_quorum(replies, len(client.endpoints), f"round {round_number}")  # F -> G
            loss, norm = await self._propose_on_shards(shards, replies, round_number)  # H
            converged = self._check_convergence(loss, norm, round_number)  # I
            if converged or round_number > self.max_iter or self._stop_requested:
                self.converged_ = converged
                return
            await self._commit_on_shards(shards, round_number)  # J
            await self._follow_servers(client, shards, round_number + 1)  # K, then back to E

    async def _initial_fit(self, client: WorkerClient) -> None:
        """Step C: as the star's: columns from a data sample, the global standardization and
        classes from every worker's statistics, and zero weights."""
        self.events.publish(SHARDED_FIT, "C")
        await self._start_from_zero(client)
        self._schedule = make_schedule(
            self.learning_rate_schedule, self.learning_rate, self.power_t
        )
        self.loss_curve_: list[float] = []
        self.n_iter_, self.converged_ = 0, False

    async def _place_blocks(self, client: ShardedClient, shards: ShardedClient) -> None:
        """Step D: cut the weights into blocks, place them by the hash ring, give each shard
        its blocks, and tell every worker where they live."""
        self.events.publish(SHARDED_FIT, "D")
        weights = self._training.weights
        n_blocks = self.n_blocks or weights.shape[1]
        self._layout = ParameterBlocks(weights.shape[0], weights.shape[1], n_blocks)
        self._ring = HashRing(shards.endpoints, self.virtual_nodes, blocks=self._layout.names)
        self.placement_, self.moves_ = self._ring.placement(), []
        blocks = self._layout.split(weights, self._training.bias)
        held = {
            shard: {b: blocks[b] for b, s in self.placement_.items() if s == shard}
            for shard in shards.endpoints
        }
        await _all(shards.broadcast(shards.shard_hold, held, reset=True), "placing the blocks")
        self._plan_version = 0
        await self._send_plan(client, shards)

    async def _send_plan(self, client: ShardedClient, shards: ShardedClient) -> None:
        standardizer = self._training.standardizer
        plan = ShardedPlan(
            version=self._plan_version,
            shards=dict(shards.endpoints),
            placement=self.placement_,
            n_outputs=self._layout.n_outputs,
            n_features=self._layout.n_features,
            n_blocks=self._layout.n_blocks,
            classes=self._training.classes or None,
            feature_mean=standardizer.feature_mean.tolist(),
            feature_scale=standardizer.feature_scale.tolist(),
            target_mean=standardizer.target_mean,
            target_scale=standardizer.target_scale,
        )
        plans = dict.fromkeys(client.endpoints, plan)
        await _all(client.broadcast(client.sharded_plan, plans), "sending the plan")

    async def _start_round(self, client: ShardedClient, round_number: int) -> Broadcast:
        """Step E: every worker pulls its weights from the shards, computes its gradient and
        pushes the slices; it answers with its samples, loss and the spans of those calls."""
        self.events.publish(SHARDED_FIT, "E", round_number)
        step = ShardedStepRequest(round_number=round_number, plan_version=self._plan_version)
        steps = dict.fromkeys(client.endpoints, step)
        replies = await client.broadcast(
            client.sharded_step, steps, round_number=round_number
        ).wait()
        for answer in replies.results.values():
            for span in answer.spans:
                self.spans_.record(Span(**span))
        self.events.publish(
            SHARDED_FIT, "F", round_number, answered=replies.answered, failed=replies.failed
        )
        self._replies = replies
        return replies

    async def _propose_on_shards(
        self, shards: ShardedClient, replies: Broadcast, round_number: int
    ) -> tuple[float, float]:
        """Step H: each shard averages the slices of the workers that answered and proposes
        its part of the step; the round's loss and the update's norm, from all parts."""
        self.events.publish(SHARDED_FIT, "H", round_number)
        request = ShardProposeRequest(
            round_number=round_number,
            workers=replies.answered,
            learning_rate=self._schedule(round_number),
            alpha=self.alpha,
        )
        parts = await _all(
            shards.broadcast(shards.shard_propose, dict.fromkeys(self._holders(), request)),
            f"round {round_number}",
        )
        answers = list(replies.results.values())
        loss = float(np.average([a.loss for a in answers], weights=[a.n_samples for a in answers]))
        loss += sum(part.penalty for part in parts.values())
        if not np.isfinite(loss):
            raise FitDivergedError(
                f"the fit diverged: the loss became {loss} at round {round_number}. Lower the "
                f"learning rate (now {self.learning_rate})."
            )
        return loss, float(np.sqrt(sum(part.norm2 for part in parts.values())))

    def _check_convergence(self, loss: float, norm: float, round_number: int) -> bool:
        """Step I: record the round; it converged when the step would move less than tol."""
        self.events.publish(SHARDED_FIT, "I", round_number, loss=loss)
        replies = self._replies
        self._record(
            replies,
            round_number,
            n_samples={name: answer.n_samples for name, answer in replies.results.items()},
            loss=loss,
            learning_rate=self._schedule(round_number),
            update_norm=norm,
        )
        self.loss_curve_.append(loss)
        return norm < self.tol

    async def _commit_on_shards(self, shards: ShardedClient, round_number: int) -> None:
        """Step J: every shard takes its proposed step."""
        self.events.publish(SHARDED_FIT, "J", round_number)
        commits = dict.fromkeys(self._holders(), ShardCommitRequest(round_number=round_number))
        await _all(
            shards.broadcast(shards.shard_commit, commits, round_number=round_number),
            f"round {round_number}",
        )
        self.n_iter_ += 1

    async def _follow_servers(
        self, client: ShardedClient, shards: ShardedClient, round_number: int
    ) -> None:
        """Step K: a shard the servers' cluster added joins the ring; the blocks the ring now
        gives it move from their old shard to it, and the workers get the new plan."""
        current = getattr(self.servers, "endpoints", None)
        if not isinstance(current, dict):
            return
        joined, _ = shards.follow({**shards.endpoints, **current})
        if not joined:
            return
        self.events.publish(SHARDED_FIT, "K", round_number, joined=joined)
        for shard in joined:
            moves = self._ring.add(shard)
            await self._move_blocks(shards, moves)
            self.moves_.append((round_number, shard, moves))
        self.placement_ = self._ring.placement()
        self._plan_version += 1
        await self._send_plan(client, shards)

    async def _move_blocks(self, shards: ShardedClient, moves: list[Move]) -> None:
        """Each moved block: read from its old shard, held by the new one, dropped by the old."""
        for source in sorted({move.source for move in moves}):
            names = [move.block for move in moves if move.source == source]
            blocks, _ = await _one(shards.shard_pull(source, names), source)
            target = next(move.target for move in moves if move.source == source)
            await _one(shards.shard_hold(target, blocks), target)
            await _one(shards.shard_drop(source, names), source)

    async def _pull_model(self, shards: ShardedClient) -> Any:
        """Step L: the fitted weights, read back from the shards."""
        pulled = await _all(
            shards.broadcast(shards.shard_pull, self._holders()), "reading the weights"
        )
        blocks = {name: block for answer in pulled.values() for name, block in answer.items()}
        weights, bias = self._layout.join(blocks)
        return dataclasses.replace(self._training, weights=weights, bias=bias)

    def _holders(self) -> list[str]:
        """The shards holding at least one block (the others take no part in a round)."""
        return sorted(set(self.placement_.values()))


async def _all(pending: Any, what: str) -> dict[str, Any]:
    """Every shard (or worker) must answer a control call; the answers by name."""
    outcome = await pending.wait()
    if outcome.failed:
        raise WorkerError(f"{what}: {outcome.failed} (every parameter shard must answer)")
    return outcome.results


async def _one(call: Any, name: str) -> Any:
    try:
        return await call
    except WorkerError as error:
        raise WorkerError(f"moving blocks: {name} {error}") from None
