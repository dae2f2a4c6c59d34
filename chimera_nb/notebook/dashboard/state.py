"""What the dashboard knows, written down as it happens, read back to draw.

Three sources write here, from three threads: the master's events (on the kit's event loop,
thousands a second in a fast fit, so each write is a few assignments under a lock), the
cluster's fault calls (:meth:`~chimera_nb.LocalCluster.on_fault`: a button, or any cell),
and the cluster's status probes (a thread of the dashboard). The redraw thread reads a
consistent copy with :meth:`DashboardState.snapshot`.

Worker states are :class:`~chimera_nb.WorkerState` values. A probe can be older than a fault
call (a kill seen before the probe that started before it came back), so every change bumps a
counter and a probe that started before the latest change is ignored.

The cluster announces more than faults to the same listener: heartbeats (``cluster.watch()``)
making a worker SUSPECT or FAILED, a worker joining (``add_worker``) or leaving
(``remove_worker``), a worker's emulated network changing. What the listener's arguments do
not say (did it join or leave, since when, how many heartbeats it missed, its network) the
dashboard reads from the cluster and passes as a :class:`Change`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime

from ...masters.events import StepEvent
from ...masters.flowchart import Flowchart
from ...plots import short_reason
from ...states import WorkerFault, WorkerState

__all__ = ["Change", "DashboardState", "Failure", "Snapshot"]

_ROUNDS_KEPT = 6  # rounds whose steps are kept for slow motion's replay
_NO_HEALTH = "no answer to GET /health"  # why a probe found a worker failed
# the marks' colours
_RED = "#d62728"  # down
_GREEN = "#2ca02c"  # back
_ORANGE = "#ff7f0e"  # slower or faster
_PURPLE = "#9467bd"  # suspected
_BLUE = "#1f77b4"  # joined
_GREY = "#7f7f7f"  # left


def _clock(timestamp: float, *, millis: bool = False) -> str:
    """The time of day of a ``time.time()``: ``"17:42:03"``, or ``"17:42:03.120"``."""
    text = datetime.fromtimestamp(timestamp).strftime("%H:%M:%S.%f")
    return text[:12] if millis else text[:8]


@dataclass(frozen=True)
class Failure:
    """Why a worker is down: the whole reason, and the round it happened in."""

    reason: str
    round_number: int | None
    at: float | None = None  # when the heartbeats declared it failed (a time.time())
    on_purpose: bool = False  # a kill, disconnect or partition: undone only by a cluster call

    @property
    def short(self) -> str:
        """A few words for a crowded view: ``"killed at round 197"``, or for a worker the
        heartbeats gave up on, the time of day: ``"missed 3 heartbeats at 17:42:03"``."""
        if self.at is not None:
            return f"{short_reason(self.reason)} at {_clock(self.at)}"
        return short_reason(self.reason, self.round_number)


@dataclass(frozen=True)
class Change:
    """What a fault listener's call means beyond the worker's new state, as the dashboard
    read it from the cluster: whether the worker just joined or left the cluster, since when
    it is in its state and how many heartbeats it missed (``cluster.membership()``), and its
    emulated network in words (``cluster.networks()``; empty: a normal network)."""

    joined: bool = False
    left: bool = False
    since: float | None = None
    missed: int = 0
    network: str = ""


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
    networks: dict[str, str]
    clocks: dict[str, tuple[int, int]]


@dataclass
class DashboardState:
    """The dashboard's memory of the master it follows: the latest step, the fit's progress
    and marks, the steps of the last rounds (with their times), and each worker's state
    (and why it failed, its injected delay, its emulated network, and under SSP or ASP its
    latest clock and staleness)."""

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
    networks: dict[str, str] = field(default_factory=dict)  # name -> "+20 ms, 5% drop"
    byzantine: set[str] = field(default_factory=set)  # who corrupts its answers now
    clocks: dict[str, tuple[int, int]] = field(default_factory=dict)  # (clock, staleness)
    changes: int = 0  # bumped at each change of a worker's state
    lock: threading.Lock = field(default_factory=threading.Lock)

    def follow(self, fit_chart: Flowchart) -> None:
        """Another master is followed: forget the fit of the previous one (not the workers,
        which are the same)."""
        with self.lock:
            self.fit_chart, self.latest, self.round_number = fit_chart, None, None
            self.visited, self.marks, self.round_steps = set(), [], {}
            self.fit_running, self.failed_this_fit, self.clocks = False, set(), {}

    # -- the master's events (loop thread: cheap) ---------------------------------------

    def on_event(self, event: StepEvent) -> None:
        with self.lock:
            self.latest = event
            self.visited.add(event.step)
            fit = event.machine == self.fit_chart.machine
            if fit and event.step == self.fit_chart.start:  # a new fit: new rounds and marks
                self.fit_running = True
                self.round_number, self.marks, self.round_steps = None, [], {}
                self.failed_this_fit, self.clocks = set(), {}
            elif fit and event.step == self.fit_chart.last:
                self.fit_running = False
            if event.round_number is not None:
                self.round_number = event.round_number
                if fit:
                    self._note_step(event)
            if "failed" in event.detail:
                self._note_replies(event)
            elif "staleness" in event.detail and "worker" in event.detail:  # SSP, ASP: H
                self.clocks[event.detail["worker"]] = (
                    event.round_number or 0,
                    event.detail["staleness"],
                )

    def _note_step(self, event: StepEvent) -> None:
        """Keep the steps of the last rounds, for slow motion (under the lock). Under SSP and
        ASP a slow worker's clocks come after faster workers' later ones: the oldest go."""
        steps = self.round_steps.get(event.round_number)
        if steps is None:
            steps = self.round_steps[event.round_number] = []
            if len(self.round_steps) > _ROUNDS_KEPT:
                del self.round_steps[min(self.round_steps)]
        steps.append((event.step, event.time))

    def _note_replies(self, event: StepEvent) -> None:
        """Who failed and who answered a broadcast (under the lock)."""
        for name, reason in event.detail["failed"].items():
            if name not in self.failed_this_fit:
                self.failed_this_fit.add(name)
                self._mark(f"{name} failed", _RED)
            if self.states.get(name) is not WorkerState.FAILED:
                self.failures[name] = Failure(reason, event.round_number)
                self.states[name] = WorkerState.FAILED
                self.changes += 1
        for name in event.detail["answered"]:
            failure = self.failures.get(name)
            if failure is not None and failure.on_purpose:
                continue  # an answer sent before the kill: only a restart brings it back
            if self.states.get(name) in (WorkerState.FAILED, WorkerState.STOPPED, None):
                self.states[name] = WorkerState.SLOW if self.delays.get(name) else WorkerState.UP
                self.failures.pop(name, None)
                self.changes += 1
                if name in self.failed_this_fit:
                    self.failed_this_fit.discard(name)
                    self._mark(f"{name} back", _GREEN)

    def _mark(self, text: str, color: str) -> None:
        """A mark on the loss chart at the current round (under the lock)."""
        if self.fit_running:
            self.marks.append((self.round_number or 0, text, color))

    # -- what a fault call did (any thread) ----------------------------------------------

    def on_fault(
        self,
        name: str,
        state: WorkerState,
        fault: WorkerFault | None,
        delay: float,
        change: Change = Change(),
    ) -> None:
        """A kill, pause, slow, restart or network change from a button or a cell, a verdict
        of the heartbeats, or a worker joining or leaving."""
        with self.lock:
            self.changes += 1
            if change.left:
                self._forget(name)
                self._mark(f"{name} removed", _GREY)
                return
            was, network_was = self.states.get(name), self.networks.get(name, "")
            self.states[name], self.delays[name] = state, delay
            if change.network:
                self.networks[name] = change.network
            else:
                self.networks.pop(name, None)
            if change.joined:
                self.failures.pop(name, None)
                self._mark(f"{name} joined", _BLUE)
            elif state is WorkerState.FAILED:
                self._note_failure(name, fault, was, change)
            else:
                self.failures.pop(name, None)
                self._note_recovery(name, state, fault, was, delay)
            if change.network != network_was and state is not WorkerState.FAILED:
                self._mark(f"{name} network {change.network or 'normal'}", _ORANGE)
            lying = fault is WorkerFault.BYZANTINE
            if lying != (name in self.byzantine):  # cluster.byzantine() turned it, or back
                (self.byzantine.add if lying else self.byzantine.discard)(name)
                self._mark(f"{name} Byzantine" if lying else f"{name} honest", _RED)

    def _note_failure(
        self, name: str, fault: WorkerFault | None, was: WorkerState | None, change: Change
    ) -> None:
        """Why it failed: a kill, disconnect or partition says what it did; otherwise (no
        fault, or a pause, which leaves a worker slow) the heartbeats gave up on it (under
        the lock)."""
        if fault is not None and fault is not WorkerFault.PAUSED:
            self.failures[name] = Failure(fault.value, self.round_number, on_purpose=True)
            self._mark(f"{name} {fault.value}", _RED)
        elif was is not WorkerState.FAILED or self._failure_reason(name) in ("", _NO_HEALTH):
            missed = f"missed {change.missed} heartbeat{'' if change.missed == 1 else 's'}"
            at = change.since
            when = f" (failed at {_clock(at, millis=True)})" if at is not None else ""
            self.failures[name] = Failure(missed + when, self.round_number, at)
            self._mark(f"{name} failed (heartbeat)", _RED)
        self.failed_this_fit.add(name)

    def _failure_reason(self, name: str) -> str:
        failure = self.failures.get(name)
        return failure.reason if failure is not None else ""

    def _note_recovery(
        self,
        name: str,
        state: WorkerState,
        fault: WorkerFault | None,
        was: WorkerState | None,
        delay: float,
    ) -> None:
        """A mark for what changed in a worker that is not failed (under the lock). A worker
        a fit gave up on and the heartbeats now suspect is still in doubt, not back."""
        if state is WorkerState.SUSPECT:
            if was is not state:
                self._mark(f"{name} suspect", _PURPLE)
        elif was is WorkerState.FAILED:
            self.failed_this_fit.discard(name)
            self._mark(f"{name} back", _GREEN)
        elif was is WorkerState.SUSPECT:
            self._mark(f"{name} answers again", _GREEN)
        elif fault is None and state is not was:
            words = f"+{delay * 1000:g} ms" if delay else "slow"
            self._mark(f"{name} {words if state is WorkerState.SLOW else 'normal speed'}", _ORANGE)

    def _forget(self, name: str) -> None:
        """A worker left the cluster (under the lock)."""
        for memory in (self.states, self.failures, self.delays, self.networks, self.clocks):
            memory.pop(name, None)
        self.byzantine.discard(name)
        self.failed_this_fit.discard(name)

    def note_networks(self, networks: dict[str, str]) -> None:
        """Each worker's emulated network in words, as the cluster holds it now (a probe)."""
        with self.lock:
            self.networks = {name: words for name, words in networks.items() if words}

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
                    self.failures[name] = Failure(_NO_HEALTH, self.round_number)
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
                dict(self.networks),
                dict(self.clocks),
            )
