"""What the dashboard knows, written down as it happens, read back to draw.

Three sources write here, from three threads: the master's events (on the kit's event loop,
thousands a second in a fast fit, so each write is a few assignments under a lock), the
buttons (the kernel's thread), and the cluster's status probes (a thread of the dashboard).
The redraw thread reads a consistent copy with :meth:`DashboardState.snapshot`.

Worker states are :class:`~chimera_nb.WorkerState` values. A probe can be older than a click
(a kill seen by the table before the probe that started before it came back), so every
change bumps a counter and a probe that started before the latest change is ignored.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from ...masters.events import StepEvent
from ...masters.flowchart import Flowchart
from ...states import WorkerState

__all__ = ["PARTS", "DashboardState", "Snapshot"]

#: The parts of the dashboard that are redrawn on their own.
PARTS = ("flowchart", "status", "loss", "latency", "latency_rounds", "workers")


@dataclass
class Snapshot:
    """A consistent copy of the state, for one redraw."""

    latest: StepEvent | None
    round_number: int | None
    visited: set[str]
    fit_running: bool
    marks: dict[int, list[tuple[str, str]]]
    states: dict[str, WorkerState]
    reasons: dict[str, str]
    delays: dict[str, float]


@dataclass
class DashboardState:
    """The dashboard's memory: the latest step, the fit's progress and marks, each worker's
    state (and why), and which parts of the picture are out of date (``dirty``)."""

    fit_chart: Flowchart
    latest: StepEvent | None = None
    round_number: int | None = None
    visited: set[str] = field(default_factory=set)  # steps passed since the last picture
    dirty: set[str] = field(default_factory=lambda: set(PARTS))
    fit_running: bool = False
    marks: dict[int, list[tuple[str, str]]] = field(default_factory=dict)
    failed_this_fit: set[str] = field(default_factory=set)
    states: dict[str, WorkerState] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    delays: dict[str, float] = field(default_factory=dict)
    killed: set[str] = field(default_factory=set)  # killed here, not yet seen back up
    busy: int = 0  # restarts in progress: no status probe meanwhile
    changes: int = 0  # bumped at each change of a worker's state
    lock: threading.Lock = field(default_factory=threading.Lock)

    # -- the master's events (loop thread: cheap) ---------------------------------------

    def on_event(self, event: StepEvent) -> None:
        with self.lock:
            self.latest = event
            self.visited.add(event.step)
            self.dirty.add("flowchart")
            if event.round_number is not None:
                self.round_number = event.round_number
            fit = event.machine == self.fit_chart.machine
            if fit and event.step == self.fit_chart.start:  # a new fit: new rounds and marks
                self.fit_running = True
                self.round_number, self.marks, self.failed_this_fit = None, {}, set()
                self.dirty.update(PARTS)
            elif fit and event.step == self.fit_chart.last:
                self.fit_running = False
                self.dirty.update(PARTS)
            elif event.round_number is not None:  # a round goes on: its loss may be new
                self.dirty.update(("loss", "status"))
            if "failed" in event.detail:
                self._note_replies(event)

    def _note_replies(self, event: StepEvent) -> None:
        """Who failed and who answered a broadcast (under the lock)."""
        where = f", round {event.round_number}" if event.round_number is not None else ""
        for name, reason in event.detail["failed"].items():
            if name not in self.failed_this_fit:
                self.failed_this_fit.add(name)
                self.mark(f"{name} failed", "tab:red")
            if (
                self.states.get(name) is not WorkerState.FAILED
                or self.reasons.get(name) == "killed"
            ):
                self.reasons[name] = f"{reason}{where}"
            self.states[name] = WorkerState.FAILED
            self.changes += 1
        for name in event.detail["answered"]:
            if name in self.killed:  # its reply to this round came before the kill
                continue
            if self.states.get(name) in (WorkerState.FAILED, WorkerState.STOPPED, None):
                self.states[name] = WorkerState.SLOW if self.delays.get(name) else WorkerState.UP
                self.reasons.pop(name, None)
                self.changes += 1
                if name in self.failed_this_fit:
                    self.failed_this_fit.discard(name)
                    self.mark(f"{name} back", "tab:green")
        self.dirty.update(("workers", "status"))

    def mark(self, text: str, color: str) -> None:
        """A mark on the loss chart at the current round (under the lock)."""
        if self.fit_running:
            self.marks.setdefault(self.round_number or 0, []).append((text, color))
            self.dirty.add("loss")

    # -- what the buttons did (kernel thread) ------------------------------------------------

    def note_killed(self, name: str) -> None:
        with self.lock:  # first: the master may see the failure while kill() waits
            self.states[name], self.reasons[name] = WorkerState.FAILED, "killed"
            self.killed.add(name)
            self.delays.pop(name, None)
            self.changes += 1
            if name not in self.failed_this_fit:
                self.failed_this_fit.add(name)
                self.mark(f"{name} killed", "tab:red")
            self.dirty.update(("workers", "status", "latency"))

    def note_restarted(self, name: str) -> None:
        with self.lock:
            self.states[name] = WorkerState.UP
            self.killed.discard(name)
            self.reasons.pop(name, None)
            self.delays.pop(name, None)
            self.failed_this_fit.discard(name)
            self.changes += 1
            self.mark(f"{name} restarted", "tab:green")
            self.dirty.update(("workers", "status", "latency"))

    def note_delay(self, name: str, seconds: float) -> None:
        with self.lock:
            self.delays[name] = seconds
            self.states[name] = WorkerState.SLOW if seconds else WorkerState.UP
            self.changes += 1
            text = f"{name} +{seconds * 1000:g} ms" if seconds else f"{name} normal speed"
            self.mark(text, "tab:orange")
            self.dirty.update(("workers", "status", "latency"))

    def is_slow(self, name: str) -> bool:
        """Slowed from the dashboard, or (seen by a status probe) from a cell."""
        return bool(self.delays.get(name)) or self.states.get(name) is WorkerState.SLOW

    # -- what a status probe found (a probe thread) ------------------------------------------

    def apply_probe(self, found: dict[str, WorkerState], changes_before: int) -> None:
        """Take the states a probe found, unless something changed since it started."""
        with self.lock:
            if changes_before != self.changes or found == {n: self.states.get(n) for n in found}:
                return
            self.states.update(found)
            for name, state in found.items():
                if state is not WorkerState.FAILED:
                    self.reasons.pop(name, None)
                    self.killed.discard(name)
                if state is not WorkerState.SLOW:
                    self.delays.pop(name, None)
            self.dirty.update(("workers", "status"))

    # -- for the redraw ----------------------------------------------------------------------

    def take_due(self, due: set[str]) -> Snapshot:
        """A copy for drawing ``due``; those parts are no longer dirty. The flowchart's
        trail of visited steps is handed over once, then drawn again without it."""
        with self.lock:
            self.dirty -= due
            visited = self.visited if "flowchart" in due else set()
            if visited:
                self.visited = set()
                self.dirty.add("flowchart")
            return Snapshot(
                self.latest,
                self.round_number,
                visited,
                self.fit_running,
                {r: list(m) for r, m in self.marks.items()},
                dict(self.states),
                dict(self.reasons),
                dict(self.delays),
            )
