"""A bagging master whose seeds come from a student's function (lab 2).

:class:`~chimera_nb.AggregationMaster` draws one bootstrap seed per worker from its
``random_state`` in step C. :class:`BaggingMaster` asks a function instead, so that the seeds
the workers receive in a real fit are the student's: ``seeds(random_state, n_workers)``.
"""

from __future__ import annotations

from collections.abc import Callable

from ..masters import AggregationMaster
from ..masters.estimator import HasMethods
from .contracts import check_seeds

__all__ = ["BaggingMaster"]


class BaggingMaster(AggregationMaster):
    """An :class:`~chimera_nb.AggregationMaster` whose step C draws the workers' bootstrap
    seeds with ``seeds(random_state, n_workers) -> list of int``.

    Parameters
    ----------
    seeds : function, optional
        Your rule for one seed per worker from the master's seed; None: the kit's
        (``numpy.random.SeedSequence(random_state).generate_state(n_workers)``).
    quorum, timeout, max_retries, combiner, random_state
        As for :class:`~chimera_nb.AggregationMaster`.

    Examples
    --------
    >>> BaggingMaster(seeds=worker_seeds, random_state=0)  # doctest: +SKIP
    BaggingMaster(seeds=<function worker_seeds ...>, random_state=0) [not fitted]
    """

    _parameter_constraints = {
        **AggregationMaster._parameter_constraints,
        "seeds": [None, HasMethods("__call__")],
    }

    def __init__(
        self,
        *,
        seeds: Callable | None = None,
        quorum=None,
        timeout: float | None = None,
        max_retries: int | None = None,
        combiner=None,
        random_state: int | None = None,
    ) -> None:
        super().__init__(
            quorum=quorum,
            timeout=timeout,
            max_retries=max_retries,
            combiner=combiner,
            random_state=random_state,
        )
        self.seeds = seeds

    def _draw_seeds(self, n_workers: int) -> list[int]:
        """Step C's seeds, from :attr:`seeds` (the kit's rule without one), checked."""
        if self.seeds is None:
            return super()._draw_seeds(n_workers)
        name = getattr(self.seeds, "__name__", None) or repr(self.seeds)
        return check_seeds(self.seeds(self.random_state, n_workers), name, n_workers)
