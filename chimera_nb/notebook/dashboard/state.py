"""What the dashboard knows, written down as it happens, read back to draw.

Three sources write here, from three threads: the master's events (on the kit's event loop,
thousands a second in a fast fit, so each write is a few assignments under a lock), the
cluster's fault calls (:meth:`~chimera_nb.LocalCluster.on_fault`: a button, or any cell),
and the cluster's status probes (a thread of the dashboard). The redraw thread reads a
consistent copy with :meth:`DashboardState.snapshot`.

Worker states are :class:`~chimera_nb.WorkerState` values. A probe can be older than a fault
call (a kill seen before the probe that started before it came back), so every change bumps a
counter and a probe that started before the latest change is ignored.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from ...masters.events import StepEvent
from ...masters.flowchart import Flowchart
from ...plots import short_reason
from ...states import WorkerFault, WorkerState

__all__ = ["DashboardState", "Failure", "Snapshot"]

_ROUNDS_KEPT = 6  # rounds whose steps are kept for slow motion's replay


@dataclass(frozen=True)
class Failure:
    """Why a worker is down: the whole reason, and the round it happened in."""

    reason: str
    round_number: int | None

    @property
    def short(self) -> str:
        """A few words for a crowded view: ``"killed at round 197"``."""
        return short_reason(self.reason, self.round_number)


@dataclass
class Snapshot:
    """A consistent copy of the state, for one redraw."""

    latest: StepEvent | None
    round_number: int | None
    visited: set[str]
    fit_running: bool
    marks: list[tuple[int, str, str]]
    states: dict[str, WorkerState]
    failures: dict[str, Failure]
    delays: dict[str, float]
    round_steps: dict[int, list[tuple[str, float]]]


@dataclass
class DashboardState:
    """The dashboard's memory of the master it follows: the latest step, the fit's progress
    and marks, the steps of the last rounds (with their times), and each worker's state
    (and why it failed, and its injected delay)."""

    fit_chart: Flowchart
    latest: StepEvent | None = None
    round_number: int | None = None
    visited: set[str] = field(default_factory=set)  # steps passed since the last picture
    fit_running: bool = False
    marks: list[tuple[int, str, str]] = field(default_factory=list)  # (round, text, colour)
    round_steps: dict[int, list[tuple[str, float]]] = field(default_factory=dict)
    failed_this_fit: set[str] = field(default_factory=set)
    states: dict[str, WorkerState] = field(default_factory=dict)
    failures: dict[str, Failure] = field(default_factory=dict)
    delays: dict[str, float] = field(default_factory=dict)
    changes: int = 0  # bumped at each change of a worker's state
    lock: threading.Lock = field(default_factory=threading.Lock)

    def follow(self, fit_chart: Flowchart) -> None:
        """Another master is followed: forget the fit of the previous one (not the workers,
        which are the same)."""
        with self.lock:
            self.fit_chart, self.latest, self.round_number = fit_chart, None, None
            self.visited, self.marks, self.round_steps = set(), [], {}
            self.fit_running, self.failed_this_fit = False, set()

    # -- the master's events (loop thread: cheap) ---------------------------------------

    def on_event(self, event: StepEvent) -> None:
        with self.lock:
            self.latest = event
            self.visited.add(event.step)
            fit = event.machine == self.fit_chart.machine
            if fit and event.step == self.fit_chart.start:  # a new fit: new rounds and marks
                self.fit_running = True
                self.round_number, self.marks, self.round_steps = None, [], {}
                self.failed_this_fit = set()
            elif fit and event.step == self.fit_chart.last:
                self.fit_running = False
            if event.round_number is not None:
                self.round_number = event.round_number
                if fit:
                    self._note_step(event)
            if "failed" in event.detail:
                self._note_replies(event)

    def _note_step(self, event: StepEvent) -> None:
        """Keep the steps of the last rounds, for slow motion (under the lock)."""
        steps = self.round_steps.get(event.round_number)
        if steps is None:
            steps = self.round_steps[event.round_number] = []
            self.round_steps.pop(event.round_number - _ROUNDS_KEPT, None)
        steps.append((event.step, event.time))

    def _note_replies(self, event: StepEvent) -> None:
        """Who failed and who answered a broadcast (under the lock)."""
        for name, reason in event.detail["failed"].items():
            if name not in self.failed_this_fit:
                self.failed_this_fit.add(name)
                self._mark(f"{name} failed", "#d62728")
            if self.states.get(name) is not WorkerState.FAILED:
                self.failures[name] = Failure(reason, event.round_number)
                self.states[name] = WorkerState.FAILED
                self.changes += 1
        for name in event.detail["answered"]:
            if self.states.get(name) in (WorkerState.FAILED, WorkerState.STOPPED, None):
                self.states[name] = WorkerState.SLOW if self.delays.get(name) else WorkerState.UP
                self.failures.pop(name, None)
                self.changes += 1
                if name in self.failed_this_fit:
                    self.failed_this_fit.discard(name)
                    self._mark(f"{name} back", "#2ca02c")

    def _mark(self, text: str, color: str) -> None:
        """A mark on the loss chart at the current round (under the lock)."""
        if self.fit_running:
            self.marks.append((self.round_number or 0, text, color))

    # -- what a fault call did (any thread) ----------------------------------------------

    def on_fault(
        self, name: str, state: WorkerState, fault: WorkerFault | None, delay: float
    ) -> None:
        """A kill, pause, slow or restart, from a button or a cell."""
        with self.lock:
            was = self.states.get(name)
            self.states[name], self.delays[name] = state, delay
            self.changes += 1
            if fault is not None and state is WorkerState.FAILED:
                self.failures[name] = Failure(fault.value, self.round_number)
                self.failed_this_fit.add(name)
                self._mark(f"{name} {fault.value}", "#d62728")
            elif state is not WorkerState.FAILED:
                self.failures.pop(name, None)
                if was is WorkerState.FAILED:
                    self.failed_this_fit.discard(name)
                    self._mark(f"{name} back", "#2ca02c")
                elif fault is None and state is not was:
                    text = f"{name} +{delay * 1000:g} ms" if delay else f"{name} normal speed"
                    self._mark(text, "#ff7f0e")

    def is_slow(self, name: str) -> bool:
        """Slowed (by a button or a cell), or seen slow by a status probe."""
        with self.lock:
            return bool(self.delays.get(name)) or self.states.get(name) is WorkerState.SLOW

    # -- what a status probe found (a probe thread) ------------------------------------------

    def apply_probe(self, found: dict[str, WorkerState], changes_before: int) -> None:
        """Take the states a probe found, unless something changed since it started."""
        with self.lock:
            if changes_before != self.changes:
                return
            for name, state in found.items():
                if state is self.states.get(name):
                    continue
                self.states[name] = state
                self.changes += 1
                if state is not WorkerState.FAILED:
                    self.failures.pop(name, None)
                elif name not in self.failures:
                    self.failures[name] = Failure("no answer to GET /health", self.round_number)
                if state is not WorkerState.SLOW:
                    self.delays.pop(name, None)

    # -- for the redraw ----------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """A copy for one redraw. The flowchart's trail of visited steps is handed over once
        (the steps passed since the previous picture)."""
        with self.lock:
            visited, self.visited = self.visited, set()
            return Snapshot(
                self.latest,
                self.round_number,
                visited,
                self.fit_running,
                list(self.marks),
                dict(self.states),
                dict(self.failures),
                dict(self.delays),
                {r: list(steps) for r, steps in self.round_steps.items()},
            )
