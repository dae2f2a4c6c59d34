"""The seed's state-machine flowcharts as data, and the small event bus that publishes every
step change of a master.

Each master action (parameter-server fit and predict, aggregation fit and predict) walks a
flowchart whose steps the seed lettered A, B, C...; the letters and labels below follow the
seed's text. A master calls :meth:`EventBus.publish` at every step, and anything may
subscribe: the status log, a progress bar, the notebook dashboard.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["FLOWCHARTS", "EventBus", "Flowchart", "StepEvent"]

log = logging.getLogger("chimera_status")


@dataclass(frozen=True)
class Flowchart:
    """A machine's steps (letter -> short label) and its arrows ``(from, to, label)``."""

    machine: str
    steps: dict[str, str]
    edges: tuple[tuple[str, str, str], ...] = ()

    def label(self, letter: str) -> str:
        return self.steps[letter]


def _chain(letters: str) -> tuple[tuple[str, str, str], ...]:
    return tuple((a, b, "") for a, b in zip(letters, letters[1:]))


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
    _chain("ABCDEF")
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

PARAMETER_SERVER_PREDICT = Flowchart(
    "parameter-server predict",
    {
        "A": "idle",
        "B": "predict request received",
        "C": "model fitted?",
        "D": "predictions to client",
        "E": "error to client",
        "F": "end",
    },
    (
        ("A", "B", ""),
        ("B", "C", ""),
        ("C", "D", "yes"),
        ("C", "E", "no"),
        ("D", "F", ""),
        ("E", "F", ""),
    ),
)

AGGREGATION_FIT = Flowchart(
    "aggregation fit",
    {
        "A": "idle",
        "B": "fit request received",
        "C": "broadcast model/fit",
        "D": "wait: reply / timeout / retries",
        "E": "at least one success?",
        "F": "error to client",
        "G": "receive ok from workers",
        "H": "ok to client",
        "I": "end",
    },
    _chain("ABCDE")
    + (("E", "G", "yes"), ("E", "F", "no"), ("G", "H", ""), ("H", "I", ""), ("F", "I", "")),
)

AGGREGATION_PREDICT = Flowchart(
    "aggregation predict",
    {
        "A": "idle",
        "B": "predict request received",
        "C": "broadcast model/predict",
        "D": "wait: reply / timeout / retries",
        "E": "at least one success?",
        "F": "error to client",
        "G": "receive predictions",
        "H": "aggregate: mean",
        "I": "predictions to client",
        "J": "end",
    },
    _chain("ABCDE")
    + (
        ("E", "G", "yes"),
        ("E", "F", "no"),
        ("G", "H", ""),
        ("H", "I", ""),
        ("I", "J", ""),
        ("F", "J", ""),
    ),
)

#: Every flowchart by machine name.
FLOWCHARTS = {
    chart.machine: chart
    for chart in (
        PARAMETER_SERVER_FIT,
        PARAMETER_SERVER_PREDICT,
        AGGREGATION_FIT,
        AGGREGATION_PREDICT,
    )
}


@dataclass(frozen=True)
class StepEvent:
    """A master entered ``step`` of ``machine`` at ``time`` (``time.time()`` seconds)."""

    machine: str
    step: str
    label: str
    time: float
    round_number: int | None = None
    detail: dict = field(default_factory=dict)


Subscriber = Callable[[StepEvent], None]


class EventBus:
    """Publish step events to subscribers; remember the latest state of each machine.

    Subscribers run synchronously in the thread that publishes (the master's event loop), so
    they must be quick: a widget should store the event and redraw on its own schedule. A
    subscriber that raises is logged and never breaks a fit.
    """

    def __init__(self, history: int = 1000) -> None:
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()
        self.recent: deque[StepEvent] = deque(maxlen=history)
        self.current: dict[str, StepEvent] = {}

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Call ``subscriber(event)`` for every event; returns a function that unsubscribes."""
        with self._lock:
            self._subscribers.append(subscriber)

        def unsubscribe() -> None:
            with self._lock:
                if subscriber in self._subscribers:
                    self._subscribers.remove(subscriber)

        return unsubscribe

    def publish(
        self, machine: str, step: str, round_number: int | None = None, **detail
    ) -> StepEvent:
        event = StepEvent(
            machine, step, FLOWCHARTS[machine].label(step), time.time(), round_number, detail
        )
        self.recent.append(event)
        self.current[machine] = event
        with self._lock:
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            try:
                subscriber(event)
            except Exception:  # a broken widget must not stop training
                log.exception("event subscriber %r failed on %s", subscriber, event)
        return event
