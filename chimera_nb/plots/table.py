"""One row per worker, and the few words a crowded view shows of why a worker failed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from ..masters.history import RoundRecord

__all__ = ["short_reason", "worker_table"]

#: The words a failure reason starts with, and what a crowded view says for it.
_SHORT = {
    "killed": "killed",
    "timed out": "timed out",
    "connection refused": "refused",
    "refused": "refused",
    "disconnected": "disconnected",
    "connection lost": "connection lost",
    "paused": "paused",
}
_MOST = 20  # characters of any other reason


def short_reason(reason: str, round_number: int | None = None) -> str:
    """A failure reason in a few words, with its round: ``"killed at round 197"`` for
    ``"killed"``, ``"connection lost at round 8"`` for ``"connection lost ([Errno 104]
    Connection reset by peer)"``. A view shows this and keeps the whole reason for a
    tooltip or the log, so that a long error never widens a table or squeezes its buttons."""
    known = [short for start, short in _SHORT.items() if reason.lower().startswith(start)]
    short = known[0] if known else reason.split(" (")[0].split(":")[0].strip()
    if len(short) > _MOST:
        short = short[:_MOST].rsplit(" ", 1)[0] + "…"
    return f"{short} at round {round_number}" if round_number is not None else short


def worker_table(
    history: Sequence[RoundRecord],
    states: Mapping[str, str] | None = None,
    *,
    delays: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """One row per worker: its state (and why), last latency, samples, rounds answered.

    Parameters
    ----------
    history : list of RoundRecord
        A master's ``history_`` (who answered and who failed each round).
    states : mapping of worker name to state, optional
        ``WorkerState`` values or strings (``cluster.status()``); by default a worker is
        "up" if it answered the last round, else "failed".
    delays : mapping of worker name to seconds, optional
        Delays injected with ``cluster.slow``: noted beside a slow worker's state.

    Returns
    -------
    DataFrame
        Indexed by ``worker``; columns ``state``, ``detail`` ("connection refused, round
        22"), ``last latency, ms``, ``samples`` and ``rounds answered`` ("21/37").
    """
    states, delays = states or {}, delays or {}
    names = list(states)
    answered: dict[str, int] = {}
    last_answer: dict[str, RoundRecord] = {}
    last_failure: dict[str, RoundRecord] = {}
    for record in history:  # one pass: a long fit has many rounds
        for name in record.answered:
            answered[name] = answered.get(name, 0) + 1
            last_answer[name] = record
        for name in record.failed:
            last_failure[name] = record
    names += [n for n in [*last_answer, *last_failure] if n not in names]
    rows = []
    for name in names:
        state = states.get(name)
        if state is None:
            state = "failed" if history and name in history[-1].failed else "up"
        state = getattr(state, "value", state)
        detail = ""
        if state == "failed" and name in last_failure:
            failure = last_failure[name]
            detail = f"{failure.failed[name]}, round {failure.round_number}"
        elif state == "slow" and delays.get(name):
            detail = f"+{delays[name] * 1000:g} ms injected"
        last = last_answer.get(name)
        rows.append(
            {
                "worker": name,
                "state": state,
                "detail": detail,
                "last latency, ms": last.latency_ms.get(name) if last else None,
                "samples": last.n_samples.get(name) if last else None,
                "rounds answered": f"{answered.get(name, 0)}/{len(history)}",
            }
        )
    columns = ["worker", "state", "detail", "last latency, ms", "samples", "rounds answered"]
    table = pd.DataFrame(rows, columns=columns).set_index("worker")
    table["last latency, ms"] = table["last latency, ms"].astype(float)
    table["samples"] = table["samples"].astype("Int64")
    return table
