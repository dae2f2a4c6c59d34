"""Consistency models: when a worker of a parameter server may start its next step.

Each worker counts its steps: its *clock* ``c`` is the number of gradients it has sent. The
master's weights have absorbed every gradient of the clocks that *closed* (every worker
sent that clock's gradient); a worker that starts clock ``c`` while only ``r`` clocks closed
computes its gradient on weights that miss up to ``c - r`` clocks of updates: its
*staleness*.

* **BSP**, bulk-synchronous parallel: nobody starts clock ``c + 1`` before clock ``c``
  closed: staleness is always 0 and one straggler slows every round.
* **SSP(s)**, stale-synchronous parallel (Ho et al., "More Effective Distributed ML via a
  Stale Synchronous Parallel Parameter Server", NIPS 2013): a worker may run at most ``s``
  clocks ahead of the slowest, so no gradient is staler than ``s``. SSP(0) is BSP.
* **ASP**, asynchronous parallel (Hogwild-style parameter servers): never wait; staleness
  is unbounded.

A rule sees only clocks, never a connection: :meth:`Consistency.may_start` is the wait rule
a parameter server asks before each step (and a lab asks students to write).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["ASP", "BSP", "SSP", "Consistency", "make_consistency", "staleness_aware"]


@dataclass(frozen=True)
class Consistency:
    """How far ahead of the slowest worker a worker may run, in clocks.

    Parameters
    ----------
    name : {"bsp", "ssp", "asp"}
    staleness : float
        ``s``: the most clocks a worker may be ahead of the slowest (0 for BSP, ``inf`` for
        ASP), hence the stalest gradient the master may apply.
    """

    name: str
    staleness: float

    def may_start(self, clock: int, slowest: int) -> bool:
        """Whether a worker that has sent ``clock`` gradients may compute the next one while
        the slowest worker has sent ``slowest``: at most ``staleness`` clocks ahead."""
        return clock - slowest <= self.staleness

    @property
    def synchronous(self) -> bool:
        """Every worker waits for the round (BSP): the master may run plain rounds."""
        return self.name == "bsp"

    def __repr__(self) -> str:
        if self.name == "ssp":
            return f"SSP({self.staleness:g})"
        return self.name.upper() + "()"


def BSP() -> Consistency:
    """Bulk-synchronous parallel: every worker waits for the round."""
    return Consistency("bsp", 0)


def SSP(staleness: int) -> Consistency:
    """Stale-synchronous parallel: at most ``staleness`` clocks ahead of the slowest."""
    if not isinstance(staleness, int) or isinstance(staleness, bool) or staleness < 0:
        raise ValueError(f"staleness must be an int >= 0, got {staleness!r}")
    return Consistency("ssp", staleness)


def ASP() -> Consistency:
    """Asynchronous parallel: never wait for another worker."""
    return Consistency("asp", math.inf)


def make_consistency(name: str, staleness: int | None = None) -> Consistency:
    """The rule called ``name`` ("bsp", "ssp" with ``staleness``, "asp")."""
    if name == "ssp":
        if staleness is None:
            raise ValueError("consistency='ssp' needs staleness=s (clocks ahead of the slowest)")
        return SSP(staleness)
    if staleness is not None:
        raise ValueError(f"staleness applies only to consistency='ssp', not {name!r}")
    if name == "bsp":
        return BSP()
    if name == "asp":
        return ASP()
    raise ValueError(f"consistency must be 'bsp', 'ssp' or 'asp', got {name!r}")


def staleness_aware(learning_rate: float, steps_behind: int) -> float:
    """The step size for a gradient computed ``steps_behind`` steps ago: ``learning_rate /
    (1 + steps_behind)``.

    A stale gradient points where the weights were, not where they are, so it earns a
    smaller step. Zhang, Gupta, Lian and Liu ("Staleness-aware Async-SGD for Distributed
    Deep Learning", IJCAI 2016) divide the learning rate by the staleness: the number of
    server updates (each worth one gradient of every learner) applied between a gradient's
    read and its own update. The parameter server counts the same: gradients applied while
    it computed, divided by the number of workers. Adding 1 keeps a fresh gradient's step
    unchanged, so BSP and SSP(0) are not affected.

    Note the difference with SSP's *staleness* (clocks ahead of the slowest worker): under
    ASP a fast worker may be hundreds of clocks ahead of a persistent straggler while its
    weights miss only the straggler's rare updates; dividing by that would stop it.
    """
    return learning_rate / (1 + steps_behind)
