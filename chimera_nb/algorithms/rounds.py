"""When a synchronous round may close: the rule a parameter server asks as replies come in.

Bulk-synchronous training waits for every worker, so one straggler slows every round. With
*backup workers* the master starts N workers but closes the round after the first k replies
(or at a deadline), and the slowest are left out of that round's gradient. A rule is an
object with ``closes(answered, failed, n_workers, elapsed)``; it sees only names and times,
never a connection, so a lab asks students to write one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

__all__ = ["FirstK", "RoundPolicy", "WaitForAll"]


class RoundPolicy(Protocol):
    """Decides, after each reply (or failure), whether the round may close now."""

    def closes(
        self,
        answered: Sequence[str],
        failed: Mapping[str, str],
        n_workers: int,
        elapsed: float,
    ) -> bool:
        """``answered``: who replied so far, in order; ``failed``: who failed and why;
        ``elapsed``: seconds since the broadcast. True closes the round: the replies still
        missing are cancelled and left out of this round."""
        ...

    @property
    def deadline(self) -> float | None:
        """Seconds after the broadcast at which the round closes with the replies that came,
        without asking :meth:`closes` again (None: no deadline)."""
        ...


class WaitForAll:
    """Bulk-synchronous parallel (BSP): a round waits for every worker's reply or failure."""

    deadline = None

    def closes(
        self,
        answered: Sequence[str],
        failed: Mapping[str, str],
        n_workers: int,
        elapsed: float,
    ) -> bool:
        return len(answered) + len(failed) >= n_workers

    def __repr__(self) -> str:
        return "WaitForAll()"


class FirstK:
    """Backup workers: close the round after the first ``k`` replies, or ``deadline``
    seconds after the broadcast with whatever came (then the quorum decides).

    Parameters
    ----------
    k : int
        Replies to wait for; with N workers, N - k are backups.
    deadline : float, optional
        Seconds; None waits for k replies (or until every worker answered or failed).
    """

    def __init__(self, k: int, deadline: float | None = None) -> None:
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        self.k = k
        self.deadline = deadline

    def closes(
        self,
        answered: Sequence[str],
        failed: Mapping[str, str],
        n_workers: int,
        elapsed: float,
    ) -> bool:
        if len(answered) >= min(self.k, n_workers):
            return True
        if self.deadline is not None and elapsed >= self.deadline:
            return True
        return len(answered) + len(failed) >= n_workers  # nobody left to wait for

    def __repr__(self) -> str:
        deadline = "" if self.deadline is None else f", deadline={self.deadline:g}"
        return f"FirstK({self.k}{deadline})"
