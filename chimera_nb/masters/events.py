"""The small event bus on which a master publishes every step change of its flowcharts.

A master calls :meth:`EventBus.publish` with its flowchart and the step's letter at each step;
anything may subscribe: the status log, a progress bar, the notebook dashboard. An event
carries the machine's name, so a subscriber never needs to know which master sent it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from .flowchart import Flowchart

__all__ = ["EventBus", "StepEvent", "Subscriber"]

log = logging.getLogger("chimera_status")


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
    """Publish step events to subscribers; remember the latest event of each machine.

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
        self, chart: Flowchart, step: str, round_number: int | None = None, **detail
    ) -> StepEvent:
        """Announce that the master entered ``step`` of ``chart`` (in ``round_number``)."""
        event = StepEvent(chart.machine, step, chart.label(step), time.time(), round_number, detail)
        self.recent.append(event)
        self.current[chart.machine] = event
        with self._lock:
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            try:
                subscriber(event)
            except Exception:  # a broken widget must not stop training
                log.exception("event subscriber %r failed on %s", subscriber, event)
        return event
