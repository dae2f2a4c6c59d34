"""What every round leaves behind: a :class:`RoundRecord` in the master's ``history_``.

Failures are data: each record says who answered, who failed and why, so the quorum, the
error messages, the REST answers, the dashboard and the graders all read the same record.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["RoundRecord", "all_failures"]


@dataclass
class RoundRecord:
    """One round (or one broadcast) of a master, as it happened.

    Attributes
    ----------
    round_number : int
        1 for the first round of a fit (for a master without rounds, such as bagging, the
        number of the broadcast since the fit started).
    answered : list of str
        The workers that answered, in the order the master asked them.
    failed : dict of str to str
        Worker -> why it failed ("timed out after 2 s", "connection refused").
    latency_ms : dict of str to float
        Worker -> how long its successful call took (from its span).
    n_samples : dict of str to int
        Worker -> how many samples its answer covered (its weight).
    loss : float or None
        The training loss the round measured, if the algorithm has one.
    learning_rate, update_norm : float or None
        The step size used and the size of the step taken.
    cancelled : dict of str to str
        Worker -> why the round closed without it (backup workers: the slowest are not
        waited for); its answer, had it come, is not in the round.
    action : str
        Which master action the record belongs to: "fit" or "predict".
    extra : dict
        Whatever else an algorithm records (staleness, bytes...).
    time : float
        When the round ended (``time.time()``): plots of loss against wall-clock time.
    """

    round_number: int
    answered: list[str]
    failed: dict[str, str]
    latency_ms: dict[str, float]
    n_samples: dict[str, int] = field(default_factory=dict)
    loss: float | None = None
    learning_rate: float | None = None
    update_norm: float | None = None
    cancelled: dict[str, str] = field(default_factory=dict)
    action: str = "fit"
    extra: dict[str, Any] = field(default_factory=dict)
    time: float = field(default_factory=time.time)


def all_failures(history: Sequence[RoundRecord]) -> dict[str, str]:
    """Each worker that failed in any record, with its first failure and its round."""
    failures: dict[str, str] = {}
    for record in history:
        for name, reason in record.failed.items():
            failures.setdefault(name, f"{reason} (round {record.round_number})")
    return failures
