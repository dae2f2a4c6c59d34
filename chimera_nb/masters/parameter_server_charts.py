"""The parameter server's fit flowcharts: the seed's synchronous round (BSP), and the clocked
loop of stale-synchronous (SSP) and asynchronous (ASP) training.

The letters mean the same step in every chart where they can (D sends weights, E waits, H
gathers, I aggregates, J checks, K updates), so a student comparing them sees what changed:
in BSP one broadcast waits for every worker; in SSP and ASP each worker has its own D-E-H
loop, and a *clock* closes (I) when every worker has sent its gradient of that clock.
"""

from __future__ import annotations

from ..algorithms.consistency import Consistency
from .flowchart import Flowchart, chain

__all__ = [
    "PARAMETER_SERVER_FIT",
    "PARAMETER_SERVER_FIT_ASP",
    "PARAMETER_SERVER_FIT_SSP",
    "fit_chart",
]

#: The seed's fit flowchart: a round is D (broadcast) to K (update), then back to D.
PARAMETER_SERVER_FIT = Flowchart(
    "parameter-server fit",
    {
        "A": "idle",
        "B": "fit request received",
        "C": "initial fit on sample",
        "D": "broadcast fit-step",
        "E": "wait: reply / timeout / retries",
        "F": "all workers failed?",
        "G": "error to client",
        "H": "gather gradients",
        "I": "weighted mean",
        "J": "converged or max_iter?",
        "K": "update weights",
        "L": "ok to client",
        "M": "end",
    },
    chain("ABCDEF")
    + (
        ("F", "G", "yes"),
        ("F", "H", "no"),
        ("H", "I", ""),
        ("I", "J", ""),
        ("J", "K", "no"),
        ("K", "D", "next round"),
        ("J", "L", "yes"),
        ("L", "M", ""),
        ("G", "M", ""),
    ),
)


def _clocked(machine: str, start: str) -> Flowchart:
    """The per-worker loop of SSP and ASP; ``start`` says when a worker may start a step."""
    return Flowchart(
        machine,
        {
            "A": "idle",
            "B": "fit request received",
            "C": "initial fit on sample",
            "D": start,
            "E": "wait: its reply / timeout",
            "F": "too few workers left?",
            "G": "error to client",
            "H": "apply its gradient at once",
            "I": "clock closed: weighted mean",
            "J": "converged or budget spent?",
            "K": "re-base weights",
            "L": "ok to client",
            "M": "end",
        },
        chain("ABCDEF")
        + (
            ("F", "G", "yes"),
            ("F", "H", "no"),
            ("H", "I", "all sent this clock"),
            ("I", "J", ""),
            ("J", "K", "no"),
            ("K", "D", "next clock"),
            ("J", "L", "yes"),
            ("L", "M", ""),
            ("G", "M", ""),
        ),
    )


#: Stale-synchronous parallel: a worker waits only if it is ``s`` clocks ahead.
PARAMETER_SERVER_FIT_SSP = _clocked("parameter-server fit (SSP)", "worker <= s clocks ahead? send")
#: Asynchronous parallel: a worker never waits for the others.
PARAMETER_SERVER_FIT_ASP = _clocked("parameter-server fit (ASP)", "send weights to the worker")


def fit_chart(consistency: Consistency) -> Flowchart:
    """The fit flowchart a parameter server follows under ``consistency``."""
    if getattr(consistency, "synchronous", False):
        return PARAMETER_SERVER_FIT
    asynchronous = getattr(consistency, "name", "") == "asp"
    return PARAMETER_SERVER_FIT_ASP if asynchronous else PARAMETER_SERVER_FIT_SSP
