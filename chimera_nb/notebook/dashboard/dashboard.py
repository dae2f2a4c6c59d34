"""A live dashboard of a lab: the flowchart, the cluster, the charts, the timeline, controls.

Who runs what, and why:

* The master publishes every flowchart step on its event bus, on the kit's event-loop thread,
  thousands of times a second in a fast fit; the cluster announces every fault call (a kill
  from a button or from a cell); the status probe asks the workers every two seconds. Each
  only writes down what happened (:mod:`.state`).
* One daemon thread, ``chimera-dashboard-<lab>``, looks ten times a second, reads what is new
  in the master's records and spans (:mod:`.reading`, at most four times a second), and sets
  the live view's traits that changed in one message (:mod:`.live`): at most ten messages a
  second, far below the ~1,000/s above which the Jupyter server drops them. The browser draws
  (:mod:`.browser`); nothing is rendered in the kernel. All of this keeps working while a
  cell blocks in ``lab.fit()``.
* It reads only the shape every master has: its ``flowcharts``, events, ``history_``,
  ``spans_``, ``max_rounds``, ``pacer`` and the cluster's ``status()``; never a concrete
  master class, so a new algorithm gets a dashboard for free. It follows whichever master
  fits the lab's workers (:mod:`.following`).
* The workers shown are the cluster's members now (``cluster.names``): a worker added with
  ``add_worker`` gets its box, row and timeline lane at the next tick, a removed one leaves
  them (a mark on the loss chart says when). While the cluster sends heartbeats
  (``cluster.watch()``, or ``heartbeats=`` here) their verdicts come through the fault
  listener: suspect, failed with the time it failed, answering again.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import ipywidgets as widgets

from ..._registry import ByName
from ...plots import timeline_rounds
from ...states import ClusterState
from .controls import Controls, pacer_mode, tagged
from .following import Following
from .live import LiveView
from .reading import FitReader
from .replay import replay_frames
from .state import Change, DashboardState, Snapshot
from .views import (
    TIMELINE_ROUNDS,
    flowchart_data,
    loss_data,
    network_words,
    round_time_data,
    status_data,
    timeline_data,
    workers_data,
)

__all__ = ["Dashboard"]

_dashboards: ByName[Dashboard] = ByName()  # re-running a cell replaces its lab's dashboard

_TICK = 0.1  # seconds between two looks (and at most one message each)
_READ_EVERY = 0.25  # seconds between two reads of the records and spans
_SLOW_PARTS_EVERY = 0.5  # the latency boxes and the timeline
_STATUS_POLL = 2.0  # seconds between two cluster.status() probes (a worker may crash)


class Dashboard:
    """A live view of a :class:`~chimera_nb.Lab`, with buttons to disturb it.

    Shows the status line (master, round, rounds per second, workers), the flowchart of the
    master's current action with the active step highlighted, the cluster (the master and a
    box per worker, crossed out when it fails, its link lit while a call is out), the loss
    per round (with marks where a worker failed, was killed, slowed or restarted, and its
    excess over ``reference`` on a log scale), the time per round, each worker's latency with
    outliers, and a timeline of the last rounds' calls. Buttons kill, restart or slow a
    worker, add latency to its network or partition it (and heal), fit and stop, and switch
    between full speed, slow motion and one round per click.

    Parameters
    ----------
    lab : Lab
    reference : float, optional
        The loss one machine reaches (the optimum); drawn dashed, and the excess over it.
    heartbeats : float, optional
        Seconds between two heartbeats: the dashboard starts ``lab.cluster.watch(heartbeats)``
        (if the lab runs and nobody watches yet) and stops it when it closes, so a frozen
        worker shows suspect, then failed with the time it failed. Off by default: heartbeats
        add a thread and change what ``cluster.status()`` returns, which a notebook should
        choose (``lab.cluster.watch()`` from a cell shows the same).

    Attributes
    ----------
    widget : ipywidgets.VBox
        The whole dashboard; a notebook displays the dashboard through it.
    live : LiveView
        What the browser draws (``live.sent`` counts the messages sent).
    controls : Controls
        The buttons (``controls.said``: the messages shown, newest first).
    fit_handle : FitHandle or None
        The fit started by the Fit button.

    Notes
    -----
    Creating a dashboard for a lab closes the previous dashboard of a lab with that name, so
    re-running a cell leaves no thread behind. Once the lab is closed, the dashboard says so,
    disables its controls and stops.

    Examples
    --------
    >>> dashboard = lab.dashboard()  # doctest: +SKIP
    >>> dashboard  # the last line of a cell shows it  # doctest: +SKIP
    >>> lab.fit()  # the flowchart and the charts move while this cell runs  # doctest: +SKIP
    """

    def __init__(
        self, lab: Any, *, reference: float | None = None, heartbeats: float | None = None
    ) -> None:
        self.lab = lab
        self.reference = reference
        self._members = set(lab.cluster.names)  # who joined or left, for the fault listener
        self.state = DashboardState(lab.master.flowcharts[0])
        self._reader = FitReader(lab.master)
        self._unsubscribe_events = lambda: None
        self._switch_lock = threading.Lock()
        self._draw_lock = threading.RLock()
        self._last = {"read": 0.0, "slow": 0.0, "poll": 0.0, "housekeeping": 0.0}
        self._replayed: int | None = None  # the round slow motion replayed last
        self._latest_round = None  # the calls of the latest complete round read
        self._slow_parts_stale = False  # new records since the timeline and boxes were drawn
        self._last_error = ""
        self._closed = threading.Event()

        self.following = Following(lab, self._follow)
        self._follow(lab.master)
        self.controls = Controls(lab, lambda: self.following.master, self.state.is_slow)
        self.controls.master_choice.observe(
            lambda change: self.following.pin(None if change["new"] == "any" else change["new"]),
            "value",
        )
        controls = self.controls  # the buttons by name, for a notebook or a test:
        self.worker_choice, self.master_choice = controls.worker_choice, controls.master_choice
        self.kill_button, self.restart_button = controls.kill_button, controls.restart_button
        self.slow_button, self.fit_button = controls.slow_button, controls.fit_button
        self.latency_button = controls.latency_button
        self.partition_button, self.heal_button = controls.partition_button, controls.heal_button
        self.stop_button, self.step_button = controls.stop_button, controls.step_button
        self.slow_motion_button = controls.slow_motion_button
        self.full_speed_button, self.messages = controls.full_speed_button, controls.messages
        self.live = tagged(LiveView(), "chimera-live-view")
        self.widget = tagged(widgets.VBox([self.controls.widget, self.live]), "chimera-dashboard")
        self._unsubscribe_faults = lab.cluster.on_fault(self._on_fault)
        self._watching = False  # whether this dashboard started the heartbeats
        if heartbeats and lab.cluster.state is ClusterState.RUNNING and not lab.cluster.watching:
            lab.cluster.watch(heartbeats)
            self._watching = True
        self._safely(self._poll_status)
        self._poller = threading.Thread()  # the probes after this first one run in threads
        self.refresh()
        self._thread = threading.Thread(
            target=self._redraw_forever, name=f"chimera-dashboard-{lab.name}", daemon=True
        )
        self._thread.start()
        _dashboards.replace(lab.name, self)

    @property
    def fit_handle(self):
        return self.controls.fit_handle

    @property
    def master(self) -> Any:
        """The master the dashboard follows now."""
        return self.following.master

    # -- following a master --------------------------------------------------------------

    def _follow(self, master: Any) -> None:
        """Show ``master`` from its next step on (quick: it may run on the event loop, in
        the announcement of a fit that is about to start)."""
        with self._switch_lock:
            previous = self._reader.master
            pacer = master.pacer  # made now: a fit is held only by a pacer there at its start
            if master is not previous:  # slow motion stays on for the next master's fit
                if previous.pacer.paused:
                    pacer.pause()
                elif previous.pacer.seconds_per_round:
                    pacer.slow_motion(previous.pacer.seconds_per_round)
            self._unsubscribe_events()
            self.state.follow(master.flowcharts[0])
            self._reader = FitReader(master)
            self._unsubscribe_events = master.events.subscribe(self.state.on_event)

    # -- redrawing ---------------------------------------------------------------------------

    def _redraw_forever(self) -> None:
        while not self._closed.wait(_TICK):
            if self.lab.cluster.state is ClusterState.CLOSED:  # the lab is gone: last picture
                self._stop_listening()
                self.controls.disable()
                self._safely(self._poll_status)  # every worker "stopped", without a probe
                self._safely(self.refresh)
                return
            self._safely(self._redraw_due)

    def _safely(self, work) -> None:
        """Run ``work``; show what it raised in the messages (once, not at every tick)."""
        try:
            work()
        except Exception as error:  # a broken part must not stop the others
            message = f"dashboard: {type(error).__name__}: {error}"
            if message != self._last_error:
                self._last_error = message
                self.controls.say(message, error=True)

    def _redraw_due(self) -> None:
        now = time.monotonic()
        if now - self._last["housekeeping"] >= 1.0:
            self._housekeep(now)
        new = False
        if now - self._last["read"] >= _READ_EVERY:
            self._last["read"] = now
            new = self._reader.read()
        self._slow_parts_stale |= new
        slow_parts = self._slow_parts_stale and now - self._last["slow"] >= _SLOW_PARTS_EVERY
        if slow_parts:  # also after the fit's last records: final the moment it ends
            self._last["slow"], self._slow_parts_stale = now, False
        self._draw(charts=new, slow_parts=slow_parts)

    def _housekeep(self, now: float) -> None:
        """Once a second: report the Fit button's fit, list the masters, probe the workers."""
        self._last["housekeeping"] = now
        self.controls.report_fit()
        self.controls.list_masters(self.following.seen, self.lab.master)
        self.controls.list_workers(self.lab.cluster.names)
        if now - self._last["poll"] >= _STATUS_POLL and not self._poller.is_alive():
            self._last["poll"] = now
            self._poller = threading.Thread(  # a frozen worker takes 1 s to time out
                target=self._safely,
                args=(self._poll_status,),
                name=f"chimera-dashboard-{self.lab.name}-status",
                daemon=True,
            )
            self._poller.start()

    def refresh(self) -> None:
        """Read everything and redraw every part now, in this thread."""
        self._reader.read()
        self._draw(charts=True, slow_parts=True)

    def _draw(self, *, charts: bool, slow_parts: bool) -> None:
        with self._draw_lock:
            reader = self._reader
            master = reader.master
            snapshot = self.state.snapshot()
            names = self.lab.cluster.names
            closed = self.lab.cluster.state is ClusterState.CLOSED or self._closed.is_set()
            machine = snapshot.latest.machine if snapshot.latest else master.flowcharts[0].machine
            charts_by_machine = {c.machine: c for c in master.flowcharts}
            chart = charts_by_machine.get(machine, master.flowcharts[0])
            mode = pacer_mode(master)
            watching = None if closed else self.lab.cluster.watching
            values: dict[str, Any] = {
                "status": status_data(
                    master,
                    snapshot,
                    reader,
                    names,
                    mode=mode,
                    lab_closed=closed,
                    heartbeats=watching.interval if watching else None,
                ),
                "chart": flowchart_data(chart),
                "step": {
                    "active": snapshot.latest.step if snapshot.latest else chart.first,
                    "visited": sorted(snapshot.visited),
                },
            }
            if charts:
                values["loss"] = loss_data(master, snapshot, reader, self.reference)
                values["round_time"] = round_time_data(reader)
            if slow_parts:
                rounds = reader.timeline(TIMELINE_ROUNDS)
                values["timeline"] = timeline_data(rounds, names, reader.staleness())
                values["latency"] = reader.boxes(names)
                complete = rounds[:-1] if snapshot.fit_running else rounds  # not in flight
                self._latest_round = complete[-1] if complete else None
            values["workers"] = workers_data(names, snapshot, reader, self._latest_round)
            if mode != "full speed":
                values.update(self._replay(master, snapshot, reader))
            self.live.assign(values)
            self.controls.label_slow_button()  # a cell may have slowed the chosen worker

    def _replay(self, master: Any, snapshot: Snapshot, reader: FitReader) -> dict:
        """Slow motion: the frames of the round that ended last, once per round."""
        ended = [r for r in snapshot.round_steps if r != snapshot.round_number]
        if not snapshot.fit_running and snapshot.round_number in snapshot.round_steps:
            ended.append(snapshot.round_number)  # the fit's last round
        if not ended or max(ended) == self._replayed:
            return {}
        self._replayed = number = max(ended)
        reader.read()
        calls = timeline_rounds(reader.recent, 1, ending_at=number)
        pacer = master.pacer
        seconds = 2.5 if pacer.paused else min(max(0.85 * pacer.seconds_per_round, 0.5), 4.0)
        frames = replay_frames(
            snapshot.round_steps[number],
            calls[0] if calls and calls[0].round_number == number else None,
            seconds * 1000,
        )
        return {"replay": {"round": number, "frames": frames}}

    def _poll_status(self) -> None:
        """Ask the cluster who is up (a network probe while it runs: never from the loop
        thread; before and after, all workers are "stopped")."""
        with self.state.lock:
            changes = self.state.changes
        self.state.apply_probe(dict(self.lab.cluster.status()), changes)
        self.state.note_networks({name: self._network(name) for name in self.lab.cluster.names})

    # -- what the cluster announces (any thread: a button, a cell, the heartbeats) ----------

    def _on_fault(self, name: str, state: Any, fault: Any, delay: float) -> None:
        """Note a fault call, a heartbeat's verdict, or a worker joining or leaving, with what
        the cluster knows of it now (no network call)."""
        cluster = self.lab.cluster
        members = set(cluster.names)
        joined = name in members and name not in self._members
        left = name not in members and name in self._members
        self._members = members
        status = cluster.membership().get(name)
        change = Change(
            joined=joined,
            left=left,
            since=status.since if status is not None else None,
            missed=status.missed if status is not None else 0,
            network=self._network(name),
        )
        self.state.on_fault(name, state, fault, delay, change)

    def _network(self, name: str) -> str:
        """A worker's emulated network in words (empty: a normal network)."""
        return network_words(self.lab.cluster.networks().get(name))

    # -- what a notebook and a test read --------------------------------------------------

    @property
    def active_step(self) -> str:
        """The letter of the latest step the master published ("A", idle, before any)."""
        latest = self.state.latest
        return latest.step if latest is not None else "A"

    def _stop_listening(self) -> None:
        self._unsubscribe_events()
        self._unsubscribe_faults()
        self.following.close()

    def close(self) -> None:
        """Stop updating, stop listening to the master and the cluster, disable the
        controls, and say so (the last picture stays on the page)."""
        if self._closed.is_set():
            return
        self._closed.set()
        self._stop_listening()
        if self._watching and self.lab.cluster.state is ClusterState.RUNNING:
            self.lab.cluster.unwatch()
        for thread in (self._thread, self._poller):
            if thread.is_alive() and thread is not threading.current_thread():
                thread.join(timeout=10)
        self.controls.disable()
        self._safely(lambda: self._draw(charts=False, slow_parts=False))
        _dashboards.forget(self.lab.name, self)

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        if self._closed.is_set():
            return f"Dashboard(lab {self.lab.name!r}, closed)"
        latest = self.state.latest
        machine = latest.machine if latest else self.state.fit_chart.machine
        with self.state.lock:
            states = [self.state.states.get(name) for name in self.lab.cluster.names]
        names = [state.value if state is not None else "unknown" for state in states]
        counts = ", ".join(f"{names.count(s)} {s}" for s in dict.fromkeys(names))
        return (
            f"Dashboard(lab {self.lab.name!r}, {machine} step {self.active_step}, "
            f"{len(names)} workers: {counts})"
        )
