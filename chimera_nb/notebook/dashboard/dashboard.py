"""A live dashboard of a lab: the master's flowchart, loss, latency, workers, and controls.

Who runs what, and why:

* The master publishes every flowchart step on its event bus, on the kit's event-loop thread,
  thousands of times a second in a fast fit. The dashboard's subscriber only writes down what
  happened (:mod:`.state`) and marks parts of the picture as out of date.
* One daemon thread, ``chimera-dashboard-<lab>``, redraws what is out of date, each part at
  its own pace: the flowchart at most 10 times a second, the loss and the status line 4
  times, the latency charts and the worker table once, and only when something changed (an
  unchanged picture sends nothing). That is at most ~21 widget messages a second, well below
  the ~1,000/s above which the Jupyter server silently drops them. Charts are PNGs drawn by
  matplotlib, one at a time and within a CPU budget (``_PNG_DUTY``), so a slow machine gets
  fewer pictures rather than a slower fit. All of this keeps working while a cell blocks in
  ``lab.fit()``: setting a widget's value from another thread is fine.
* It reads only the shape every master has: its ``flowcharts``, its events, ``history_``
  (rounds, who answered, losses), ``spans_`` (latencies) and the cluster's ``status()``;
  never a concrete master class, so a new algorithm gets a dashboard for free.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import ipywidgets as widgets
import pandas as pd

from ..._registry import ByName
from ...plots import plot_latency, plot_latency_over_rounds, worker_table
from ...states import ClusterState
from .controls import Controls, tagged
from .flowchart_html import flowchart_html
from .state import PARTS, DashboardState, Snapshot
from .views import NARROW, WIDE, loss_figure, png, status_html, table_html

__all__ = ["Dashboard"]

_dashboards: ByName[Dashboard] = ByName()  # re-running a cell replaces its lab's dashboard

#: Least seconds between two redraws of each part of the dashboard.
_PACE = {
    "flowchart": 0.1,
    "status": 0.25,
    "loss": 0.25,
    "latency": 1.0,
    "latency_rounds": 1.0,
    "workers": 1.0,
}
#: Rendering a PNG holds the GIL for 30-150 ms, which slows down the fit (the event loop
#: waits for the GIL after each reply): after a PNG took t seconds, the next one waits 4 t,
#: so that rendering takes at most a fifth of the time on any machine. When several charts
#: wait, the loss goes twice as often as each latency chart.
_PNG_PARTS = {"loss": 2.0, "latency": 1.0, "latency_rounds": 1.0}
_PNG_DUTY = 0.2
_TICK = 0.05  # how often the redraw thread looks for work
_STATUS_POLL = 5.0  # seconds between cluster.status() probes (a cell may kill a worker)


class Dashboard:
    """A live view of a :class:`~chimera_nb.Lab`, with buttons to disturb it.

    Shows the flowchart of the master's current action with the active step highlighted,
    the loss per round (with marks where a worker failed, was killed, slowed or restarted),
    each worker's latency (from the master's spans) as a distribution and over rounds, a
    worker table, and controls: pick a worker, then Kill, Restart or Slow it; Fit (in the
    background) and Stop fit.

    Parameters
    ----------
    lab : Lab
    reference : float, optional
        A loss to draw as a dashed line, such as one machine's optimum.

    Attributes
    ----------
    widget : ipywidgets.VBox
        The whole dashboard; a notebook displays the dashboard through it.
    redraw_count : dict of str to int
        How many times each part was redrawn: ``flowchart``, ``status``, ``loss``,
        ``latency``, ``latency_rounds``, ``workers``.
    fit_handle : FitHandle or None
        The fit started by the Fit button.

    Notes
    -----
    Creating a dashboard for a lab closes the previous dashboard of a lab with that name, so
    re-running a cell leaves no redraw thread behind. The dashboard also stops redrawing by
    itself once its lab is closed.

    Examples
    --------
    >>> dashboard = lab.dashboard()  # doctest: +SKIP
    >>> dashboard  # the last line of a cell shows it  # doctest: +SKIP
    >>> lab.fit()  # the flowchart and the charts move while this cell runs  # doctest: +SKIP
    """

    def __init__(self, lab: Any, *, reference: float | None = None) -> None:
        self.lab = lab
        self.reference = reference
        self.redraw_count = dict.fromkeys(PARTS, 0)
        self._charts = {chart.machine: chart for chart in lab.master.flowcharts}
        self.state = DashboardState(lab.master.flowcharts[0])
        recent = list(lab.master.events.current.values())
        self.state.latest = max(recent, key=lambda e: e.time) if recent else None
        # What only the redraw thread (or refresh()) touches.
        self._draw_lock = threading.RLock()
        self._calls = pd.DataFrame(columns=["worker", "endpoint", "latency_ms", "status", "round"])
        self._spans_seen = -1
        self._next_span_read = 0.0
        self._last_drawn = dict.fromkeys(PARTS, 0.0)
        self._housekept = 0.0
        self._png_allowed = 0.0
        self._next_poll = time.monotonic() + _STATUS_POLL
        self._last_error = ""
        self._closed = threading.Event()

        self.controls = Controls(lab, self.state, on_change=self._probe_soon)
        self._build_widgets()
        self._safely(self._poll_status)
        self._poller = threading.Thread()  # the probes after this first one run in threads
        self._safely(self.refresh)
        self._unsubscribe = lab.master.events.subscribe(self.state.on_event)
        self._thread = threading.Thread(
            target=self._redraw_forever, name=f"chimera-dashboard-{lab.name}", daemon=True
        )
        self._thread.start()
        _dashboards.replace(lab.name, self)

    # -- the widgets --------------------------------------------------------------------------

    def _build_widgets(self) -> None:
        self.status = tagged(widgets.HTML(), "chimera-status")
        self.flowchart = tagged(widgets.HTML(), "chimera-flowchart")
        self.loss = tagged(widgets.Image(format="png"), "chimera-loss")
        self.latency = tagged(widgets.Image(format="png"), "chimera-latency")
        self.latency_rounds = tagged(widgets.Image(format="png"), "chimera-latency-rounds")
        self.workers = tagged(widgets.HTML(), "chimera-workers")
        controls = self.controls
        self.worker_choice, self.messages = controls.worker_choice, controls.messages
        self.fit_button, self.stop_button = controls.fit_button, controls.stop_button
        self.kill_button, self.restart_button = controls.kill_button, controls.restart_button
        self.slow_button = controls.slow_button

        # The charts shrink with the notebook's width; the flowchart keeps its size.
        self.loss.layout = {"width": "100%", "height": "auto"}
        for image in (self.latency, self.latency_rounds):
            image.layout = {"width": "50%", "height": "auto"}
        left = widgets.VBox(
            [widgets.HTML("<i>Flowchart, live: active step highlighted</i>"), self.flowchart],
            layout={"flex": "0 0 auto", "width": "470px"},
        )
        right = widgets.VBox(
            [self.loss, widgets.HBox([self.latency, self.latency_rounds])],
            layout={"flex": "1 1 0%", "min_width": "0", "max_width": "660px"},
        )
        self.widget = tagged(
            widgets.VBox(
                [
                    self.status,
                    widgets.HBox([left, right]),
                    widgets.HBox([self.workers, controls.widget], layout={"grid_gap": "24px"}),
                ]
            ),
            "chimera-dashboard",
        )

    def _all_widgets(self) -> list:
        found, stack = [], [self.widget]
        while stack:
            widget = stack.pop()
            found.append(widget)
            stack.extend(getattr(widget, "children", ()))
        return found

    @property
    def fit_handle(self):
        return self.controls.fit_handle

    # -- redrawing ---------------------------------------------------------------------------

    def _redraw_forever(self) -> None:
        while not self._closed.wait(_TICK):
            if self.lab.cluster.state is ClusterState.CLOSED:  # the lab is gone: last picture
                self._unsubscribe()
                self._safely(self.refresh)
                return
            self._safely(self._redraw_due)

    def _safely(self, work) -> None:
        """Run ``work``; show what it raised in the messages (once, not at every tick)."""
        try:
            work()
        except Exception as error:  # a broken chart must not stop the others
            message = f"dashboard: {type(error).__name__}: {error}"
            if message != self._last_error:
                self._last_error = message
                self.controls.say(message, error=True)

    def _redraw_due(self) -> None:
        """Redraw each part that is out of date and was not redrawn within its pace."""
        with self._draw_lock:
            now = time.monotonic()
            if now - self._housekept >= 1.0:
                self._housekeep(now)
            with self.state.lock:
                due = {p for p in self.state.dirty if now - self._last_drawn[p] >= _PACE[p]}
            parts = due - _PNG_PARTS.keys()  # HTML is cheap; a PNG is one chart at a time
            if now >= self._png_allowed and due & _PNG_PARTS.keys():  # the longest wait, weighted
                parts.add(
                    max(
                        due & _PNG_PARTS.keys(),
                        key=lambda p: (now - self._last_drawn[p]) * _PNG_PARTS[p],
                    )
                )
            if not parts:
                return
            self._draw(parts)
            for part in parts:
                self._last_drawn[part] = now
            if parts & _PNG_PARTS.keys():
                spent = time.monotonic() - now
                self._png_allowed = time.monotonic() + spent * (1 / _PNG_DUTY - 1)

    def _housekeep(self, now: float) -> None:
        """Once a second: report the Fit button's fit, reread the spans, probe the workers."""
        self._housekept = now
        self.controls.report_fit()
        if self._read_spans():
            with self.state.lock:
                self.state.dirty.update(("latency", "latency_rounds", "workers"))
        with self.state.lock:
            busy = self.state.busy
        if now >= self._next_poll and not busy and not self._poller.is_alive():
            self._next_poll = now + _STATUS_POLL
            self._poller = threading.Thread(  # a frozen worker takes 1 s to time out
                target=self._safely,
                args=(self._poll_status,),
                name=f"chimera-dashboard-{self.lab.name}-status",
                daemon=True,
            )
            self._poller.start()

    def refresh(self) -> None:
        """Redraw everything now, in this thread (also rereads the spans)."""
        with self._draw_lock:
            self._spans_seen, self._next_span_read = -1, 0.0
            self._read_spans()
            self._draw(set(PARTS))
            self._last_drawn = dict.fromkeys(PARTS, time.monotonic())

    def _draw(self, parts: set[str]) -> None:
        snapshot = self.state.take_due(parts)
        master = self.lab.master
        latest = snapshot.latest
        machine = latest.machine if latest else self.state.fit_chart.machine
        states = {name: snapshot.states.get(name) for name in self.lab.cluster.names}
        if "flowchart" in parts:
            active = latest.step if latest else self._charts[machine].first  # idle
            html = flowchart_html(self._charts[machine], active, snapshot.visited)
            self._assign("flowchart", self.flowchart, html)
        if "status" in parts:
            closed = self.lab.cluster.state is ClusterState.CLOSED
            html = status_html(
                master, machine, snapshot.round_number, snapshot.fit_running, states, closed
            )
            self._assign("status", self.status, html)
        if "loss" in parts:
            self._assign(
                "loss", self.loss, png(loss_figure(master, snapshot.marks, self.reference), WIDE)
            )
        if "latency" in parts:
            notes = {n: f"+{s * 1000:g} ms" for n, s in snapshot.delays.items() if s}
            figure = plot_latency(self._calls, endpoint=None, notes=notes, figsize=(4.0, 3.0))
            self._assign("latency", self.latency, png(figure, NARROW))
        if "latency_rounds" in parts:
            figure = plot_latency_over_rounds(self._calls, endpoint=None, figsize=(4.0, 3.0))
            self._assign("latency_rounds", self.latency_rounds, png(figure, NARROW))
        if "workers" in parts:
            self._draw_workers(snapshot, states)

    def _draw_workers(self, snapshot: Snapshot, states: dict) -> None:
        history = list(getattr(self.lab.master, "history_", []))
        table = worker_table(history, states, delays=snapshot.delays)
        self._assign("workers", self.workers, table_html(table, snapshot.reasons))

    def _assign(self, part: str, widget, value) -> None:
        """Set a widget's value; an unchanged value sends nothing, so it is not counted."""
        if widget.value != value:
            widget.value = value
            self.redraw_count[part] += 1

    def _read_spans(self) -> bool:
        """The calls of the master's current fit, from its spans, if new ones came; True if
        they did. Building the table takes a while in a long fit, so the next read waits at
        least ten times as long (<10% of the time)."""
        spans = getattr(self.lab.master, "spans_", None)
        if spans is None or spans.count == self._spans_seen:
            return False
        if time.monotonic() < self._next_span_read:
            return False
        started = time.monotonic()
        calls = spans.to_frame()
        rounds = calls.dropna(subset=["round"])
        self._calls = rounds if len(rounds) else calls  # a fit's rounds, else every call
        self._spans_seen = spans.count
        self._next_span_read = time.monotonic() + 10 * (time.monotonic() - started)
        return True

    def _poll_status(self) -> None:
        """Ask the cluster who is up (a network probe while it runs: never from the loop
        thread; before and after, all workers are "stopped")."""
        with self.state.lock:
            changes = self.state.changes
        self.state.apply_probe(dict(self.lab.cluster.status()), changes)
        self.controls.label_slow_button()

    def _probe_soon(self) -> None:
        self._next_poll = 0.0

    # -- what a notebook and a test read --------------------------------------------------

    @property
    def active_step(self) -> str:
        """The letter of the latest step the master published ("A", idle, before any)."""
        latest = self.state.latest
        return latest.step if latest is not None else "A"

    def close(self) -> None:
        """Stop redrawing, unsubscribe from the master's events and close the widgets."""
        if self._closed.is_set():
            return
        self._closed.set()
        self._unsubscribe()
        for thread in (self._thread, self._poller):
            if thread.is_alive() and thread is not threading.current_thread():
                thread.join(timeout=10)
        for widget in self._all_widgets():
            widget.close()
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
