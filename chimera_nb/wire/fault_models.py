"""Request bodies of the fault controls added after :mod:`chimera_nb.wire.models` filled up:
the Byzantine fault (a worker that answers, wrongly; see :mod:`chimera_nb.algorithms.robust`)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from .models import Number, Seed, _Body

__all__ = ["ByzantineRequest"]


class ByzantineRequest(_Body):
    """Make a worker corrupt what it answers to training calls (its gradient, or a client's
    update), or, with ``kind`` None, answer honestly again.

    ``sign-flip`` sends ``-scale * g``; ``scaled`` sends ``scale * g``; ``noise`` sends
    Gaussian noise of standard deviation ``scale`` instead of ``g``, drawn from ``seed``.
    ``scale`` None takes the kind's default (1, 10 and 1).
    """

    kind: Literal["sign-flip", "noise", "scaled"] | None = None
    scale: Annotated[Number, Field(gt=0.0, le=1e6)] | None = None
    seed: Seed | None = None

    def honest(self) -> bool:
        """Whether these settings leave the answers as they are."""
        return self.kind is None
