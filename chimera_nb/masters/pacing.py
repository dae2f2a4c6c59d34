"""Slow motion for a lecture: a master's rounds at human speed, or one round per click.

A fit runs hundreds of rounds a second; a class cannot follow that. A :class:`Pacer` holds
each round's broadcast until its time comes: at most one every
``seconds_per_round``, or, when paused, one per :meth:`Pacer.step`. The master's client asks
the pacer before every broadcast, so any master slows down the same way, and only while a
pacer is set: at full speed nothing is added to a round.
"""

from __future__ import annotations

import asyncio
import time

__all__ = ["Pacer"]

_POLL = 0.02  # seconds between two looks at a paused pacer


class Pacer:
    """How fast a master's rounds may go.

    Examples
    --------
    >>> master.pacer.slow_motion(1.0)   # one round a second  # doctest: +SKIP
    >>> master.pacer.pause(); master.pacer.step()   # one round, then wait  # doctest: +SKIP
    >>> master.pacer.full_speed()  # doctest: +SKIP
    """

    def __init__(self) -> None:
        self.seconds_per_round = 0.0
        self.paused = False
        self._steps = 0  # rounds let through while paused
        self._last = 0.0  # when the last round was let through (time.monotonic)

    @property
    def active(self) -> bool:
        """Whether a broadcast may be held at all."""
        return self.paused or self.seconds_per_round > 0

    def slow_motion(self, seconds_per_round: float) -> None:
        """At most one round every ``seconds_per_round`` (0: full speed)."""
        if not seconds_per_round >= 0:
            raise ValueError(f"seconds_per_round must be >= 0, got {seconds_per_round!r}")
        self.seconds_per_round = float(seconds_per_round)

    def pause(self) -> None:
        """Hold every round until :meth:`step` lets one through."""
        self.paused = True

    def step(self) -> None:
        """Let one round through (while paused)."""
        self._steps += 1

    def full_speed(self) -> None:
        """No pause, no slow motion: the fit runs as fast as it can."""
        self.paused, self.seconds_per_round, self._steps = False, 0.0, 0

    async def before_round(self) -> None:
        """Wait until the next round may be sent (called by the client before a broadcast)."""
        while self.paused and self._steps <= 0:
            await asyncio.sleep(_POLL)
        if self.paused:
            self._steps -= 1
        wait = self._last + self.seconds_per_round - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        self._last = time.monotonic()

    def __repr__(self) -> str:
        if self.paused:
            return "Pacer(paused)"
        if self.seconds_per_round:
            return f"Pacer({self.seconds_per_round:g} s per round)"
        return "Pacer(full speed)"
