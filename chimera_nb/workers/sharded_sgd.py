"""The SGD worker of sharded parameter servers: it pulls its weights from the shards and
pushes its gradient slices back to them; the master only starts the rounds.

Once per fit (and again whenever a shard joins) the master sends a *plan*
(:class:`~chimera_nb.wire.topology_models.ShardedPlan`): which shard holds which block, how the blocks
cut the weights, and the global standardization. A round (``sgd/sharded-step``) is then:

1. pull every block from the shard holding it (standardized weights), and join them;
2. convert the weights to raw units and compute the shard's gradient there, exactly as for
   the star (:meth:`SGDWorker.fit_step`), and convert the gradient back, as the star's master
   does (:class:`~chimera_nb.algorithms.Standardizer`);
3. cut the gradient into the same blocks and push each shard its slices;
4. answer the master: samples, loss, and the spans of the calls to the shards.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass

import numpy as np
from fastapi import FastAPI, HTTPException

from ..algorithms import ParameterBlocks, Standardizer, n_outputs
from ..wire import BodyError, FitStep, paths
from ..wire.server import error_responses
from ..wire.topology_models import ShardedPlan, ShardedStepRequest, ShardedStepResponse
from .sgd import SGDWorker
from .shard_client import ShardCaller, ShardCallError

__all__ = ["ShardedSGDWorker"]


@dataclass
class _Plan:
    """A plan as a worker uses it."""

    version: int
    layout: ParameterBlocks
    holdings: dict[str, list[str]]  # shard -> the blocks it holds
    standardizer: Standardizer
    classes: list | None
    caller: ShardCaller


class ShardedSGDWorker(SGDWorker):
    """An :class:`SGDWorker` that also takes part in sharded parameter-server rounds (driven
    by :class:`~chimera_nb.ShardedParameterServerMaster`); it still answers the star's
    ``fit-step``, so one cluster serves both masters.

    Examples
    --------
    >>> from chimera_nb import ShardedSGDWorker
    >>> ShardedSGDWorker("regressor")
    ShardedSGDWorker('regressor')
    """

    role = "ShardedSGDWorker"
    _plan: _Plan | None = None

    async def use_plan(self, plan: ShardedPlan) -> None:
        """Follow ``plan`` from now on (its version must come with each round). A plan that
        does not fit this worker's shard is refused (422 naming the field) before anything
        changes: the plan in use stays."""
        self._check_plan(plan)
        if self._plan is not None:
            await self._plan.caller.close()
        holdings: dict[str, list[str]] = {}
        for block, shard in plan.placement.items():
            holdings.setdefault(shard, []).append(block)
        self._plan = _Plan(
            plan.version,
            ParameterBlocks(plan.n_outputs, plan.n_features, plan.n_blocks),
            holdings,
            Standardizer(
                np.array(plan.feature_mean),
                np.array(plan.feature_scale),
                plan.target_mean,
                plan.target_scale,
            ),
            plan.classes,
            ShardCaller(self.name_, plan.shards, getattr(self, "token_", None)),
        )

    def _check_plan(self, plan: ShardedPlan) -> None:
        """What the plan's model cannot check alone: its layout fits this shard's features
        and classes (the weights the shards hold then fit :meth:`fit_step`)."""
        if plan.n_features != self.X_.shape[1]:
            raise BodyError(
                "n_features",
                f"is {plan.n_features} but this shard has {self.X_.shape[1]} features "
                f"{self.columns_}",
            )
        n_classes = 0
        if self.model_type == "classifier":
            n_classes = self._class_indices(plan.classes)[0]  # 422 if a label is missing
        expected = n_outputs(self.model_type, n_classes)
        if plan.n_outputs != expected:
            raise BodyError(
                "n_outputs",
                f"is {plan.n_outputs} but a {self.model_type} with {n_classes or 'no'} classes "
                f"has {expected} row(s) of weights",
            )

    async def sharded_step(self, request: ShardedStepRequest) -> ShardedStepResponse:
        """One round: pull, compute, push (see the module)."""
        plan = self._plan
        if plan is None or plan.version != request.plan_version:
            have = "no plan" if plan is None else f"plan version {plan.version}"
            raise HTTPException(
                409,
                f"round {request.round_number} needs plan version {request.plan_version}, "
                f"but {self.name_} has {have}: send the plan first ({paths.SGD_SHARDED_PLAN})",
            )
        if self.delay_:
            await asyncio.sleep(self.delay_)  # a straggler, made on purpose
        round_number, caller = request.round_number, plan.caller
        try:
            pulled = await asyncio.gather(
                *(caller.pull(s, b, round_number) for s, b in plan.holdings.items())
            )  # 1
            blocks = {name: block for answer, _ in pulled for name, block in answer.items()}
            weights, bias = self._join(plan, blocks)
            raw = plan.standardizer.weights_to_raw(weights, bias)  # 2
            result = self.fit_step(FitStep(*raw, plan.classes))
            gradient = plan.standardizer.gradient_from_raw(
                result.weights_gradient, result.bias_gradient
            )
            slices = plan.layout.split(*gradient)  # 3
            pushed = await asyncio.gather(
                *(
                    caller.push(s, {b: slices[b] for b in names}, result.n_samples, round_number)
                    for s, names in plan.holdings.items()
                )
            )
        except ShardCallError as error:
            raise HTTPException(502, f"{self.name_}: {error}") from None
        spans = [span for _, span in pulled] + list(pushed)
        return ShardedStepResponse(  # 4
            n_samples=result.n_samples,
            loss=plan.standardizer.loss_from_raw(result.loss),
            spans=[asdict(span) for span in spans],
        )

    def _join(self, plan: _Plan, blocks: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """The weights the shards sent, joined; a block of another size than the plan's
        layout says means the shards hold another fit's weights (409: send a new plan)."""
        try:
            weights, bias = plan.layout.join(blocks)
            if bias.shape != (plan.layout.n_outputs,):
                raise ValueError(f"'bias' has {bias.size} values, not {plan.layout.n_outputs}")
            return weights, bias
        except ValueError as error:
            raise HTTPException(
                409,
                f"{self.name_}: the shards' blocks do not fit plan version {plan.version} "
                f"({error}): they hold another layout; the master sends a new plan when it "
                "fits again",
            ) from None

    def _add_routes(self, app: FastAPI) -> None:
        super()._add_routes(app)

        @app.post(paths.SGD_SHARDED_PLAN, responses=error_responses(422))
        async def sharded_plan(body: ShardedPlan) -> dict[str, int]:
            await self.use_plan(body)
            return {"version": body.version}

        @app.post(
            paths.SGD_SHARDED_STEP,
            response_model=ShardedStepResponse,
            # 409: no plan, or another plan's version; 502: a call to a shard failed
            responses=error_responses(409, 422, 502),
        )
        async def sharded_step(body: ShardedStepRequest) -> ShardedStepResponse:
            return await self.sharded_step(body)
