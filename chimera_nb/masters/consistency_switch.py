"""The parameter server's synchronization switch: BSP rounds (with backup workers), or the
clocked loops of SSP and ASP.

A mixin of :class:`~chimera_nb.ParameterServerMaster`, kept apart so that the master's own
module reads as the seed's flowchart: this one says which flowchart runs, and how a round
closes.
"""

from __future__ import annotations

from typing import ClassVar

from .._exceptions import ConfigurationError
from ..algorithms import FirstK, RoundPolicy
from ..algorithms.consistency import Consistency, make_consistency
from .client import WorkerClient
from .clocks import ClockedRounds
from .estimator import Constraint, HasMethods, Interval, Options
from .flowchart import Flowchart
from .linear_model import PARAMETER_SERVER_PREDICT
from .parameter_server_charts import fit_chart

__all__ = ["ConsistencySwitch"]


class ConsistencySwitch:
    """``consistency``, ``staleness``, ``staleness_aware`` and ``backup_workers`` of a
    parameter server (documented on :class:`~chimera_nb.ParameterServerMaster`)."""

    consistency: str | Consistency
    staleness: int | None
    staleness_aware: bool
    backup_workers: int
    round_policy: RoundPolicy | None

    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        "backup_workers": [Interval(int, 0, None, closed="left")],
        "consistency": [Options("bsp", "ssp", "asp"), HasMethods("may_start")],
        "staleness": [None, Interval(int, 0, None, closed="left")],
        "staleness_aware": [Options(True, False)],
    }

    def _validate_params(self) -> None:
        super()._validate_params()  # type: ignore[misc]
        try:
            synchronous = getattr(self._consistency, "synchronous", False)
        except ValueError as error:
            raise ConfigurationError(f"{type(self).__name__}: {error}") from None
        if self.backup_workers and (self.round_policy is not None or not synchronous):
            raise ConfigurationError(
                f"{type(self).__name__}'s backup_workers applies to BSP rounds without a "
                f"round_policy (got consistency={self.consistency!r}, round_policy="
                f"{self.round_policy!r}): pass one of them"
            )

    @property
    def _consistency(self) -> Consistency:
        """The rule in force: a name ("bsp", "ssp", "asp"), or a rule object of one's own
        (anything with ``may_start(clock, slowest)``, such as a lab's SSP rule)."""
        if isinstance(self.consistency, str):
            return make_consistency(self.consistency, self.staleness)
        return self.consistency

    @property
    def _chart(self) -> Flowchart:
        """The fit flowchart of this master's consistency model."""
        return fit_chart(self._consistency)

    @property
    def flowcharts(self) -> tuple[Flowchart, ...]:
        """The fit flowchart of the consistency model in force, then predict's."""
        return (self._chart, PARAMETER_SERVER_PREDICT)

    def _round_policy(self, n_workers: int) -> RoundPolicy | None:
        """When a BSP round closes: ``backup_workers=b`` waits for the first N - b replies."""
        if self.backup_workers:
            return FirstK(max(1, n_workers - self.backup_workers))
        return self.round_policy

    async def _run_clocks(self, client: WorkerClient) -> None:
        """SSP or ASP (see :mod:`.clocks`), then one round that measures the loss of the
        weights the fit returns (unless a clock converged: its weights are returned)."""
        self.converged_ = await ClockedRounds(self, client, self._consistency).run()
        if not self.converged_:
            await self._round(client, len(self.history_) + 1)  # type: ignore[attr-defined]
