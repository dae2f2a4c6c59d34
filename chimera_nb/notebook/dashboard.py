"""A live dashboard of a lab: the master's flowchart, loss, latency, workers, and controls.

Who runs what, and why:

* The master publishes every flowchart step on its event bus, on the kit's event-loop thread,
  thousands of times a second in a fast fit. The dashboard's subscriber only writes down
  what happened (a few assignments under a lock) and marks charts as out of date.
* One daemon thread, ``chimera-dashboard-<lab>``, redraws what is out of date, each part at
  its own pace: the flowchart at most 10 times a second, the loss and the status line 4
  times, the latency charts and the worker table once, and only when something changed
  (an unchanged picture sends nothing). That is at most ~21 widget messages a second, well
  below the ~1,000/s above which the Jupyter server silently drops them. Charts are PNGs
  drawn by matplotlib, one at a time and within a CPU budget (see ``_PNG_DUTY``), so a
  slow machine gets fewer pictures rather than a slower fit. All of this keeps working
  while a cell blocks in ``lab.fit()``: setting a widget's value from another thread is
  fine.
* Button handlers run in the kernel, so they must be quick: kill, slow and stop are; a
  restart waits for the worker to come up, so it runs in a thread. Errors go to the
  dashboard's message area, never up into the notebook. Clicks queue while a cell blocks,
  so the Fit button starts a background fit (``lab.fit(wait=False)``).
"""

from __future__ import annotations

import contextlib
import threading
import time
from io import BytesIO
from typing import Any

import ipywidgets as widgets
import pandas as pd
from matplotlib.figure import Figure

from ..states import ClusterState
from ..logs import TIME_LOG, read_time_log
from ..masters.base import RoundRecord
from ..masters.events import FLOWCHARTS, StepEvent
from ..masters.parameter_server import ParameterServerMaster
from ..plots import plot_latency, plot_latency_over_rounds, plot_loss, worker_table
from ..wire import paths
from .flowchart import flowchart_html

__all__ = ["Dashboard"]

_dashboards: dict[str, Dashboard] = {}  # by lab name: re-running a cell replaces its dashboard

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
_SLOW_SECONDS = 0.2  # what "Slow +200 ms" injects
_DPI = 80
_WIDE = {"left": 0.1, "right": 0.98, "bottom": 0.16, "top": 0.9}  # 8 x 3 inches
_NARROW = {"left": 0.17, "right": 0.97, "bottom": 0.2, "top": 0.9}  # 4 x 3 inches
_ROW_COLORS = {"failed": "#fde2e2", "slow": "#fff3d6", "stopped": "#eeeeee"}


def _png(figure, margins: dict[str, float]) -> bytes:
    """``figure`` as PNG bytes, with fixed margins: the constrained layout that the plot
    functions use would take 40% of the drawing time, several times a second."""
    figure.set_layout_engine("none")
    left, right, bottom, top = margins["left"], margins["right"], margins["bottom"], margins["top"]
    for axes in figure.axes:  # the plot functions draw one axes per figure
        axes.set_position((left, bottom, right - left, top - bottom))
    buffer = BytesIO()
    figure.savefig(buffer, format="png", dpi=_DPI)
    return buffer.getvalue()


class Dashboard:
    """A live view of a :class:`~chimera_nb.Lab`, with buttons to disturb it.

    Shows the seed's flowchart of the master's current action with the active step
    highlighted, the loss per round (with marks where a worker failed, was killed, slowed or
    restarted), each worker's latency from ``chimera_time.log`` as a distribution and over
    rounds, a worker table, and controls: pick a worker, then Kill, Restart or Slow it; Fit
    (in the background) and Stop fit.

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
        previous = _dashboards.get(lab.name)
        if previous is not None:
            previous.close()
        self.lab = lab
        self.reference = reference
        self.redraw_count = dict.fromkeys(_PACE, 0)
        self.fit_handle = None
        self._parameter_server = isinstance(lab.master, ParameterServerMaster)
        # What the subscriber writes down (on the loop thread) and the redraws read.
        self._lock = threading.Lock()
        recent = list(lab.master.events.current.values())
        self._latest: StepEvent | None = max(recent, key=lambda e: e.time) if recent else None
        self._round: int | None = None
        self._visited: set[str] = set()  # steps passed since the flowchart was last drawn
        self._dirty = set(_PACE)
        self._fit_running = False
        self._fit_started: float | None = None
        self._marks: dict[int, list[tuple[str, str]]] = {}
        self._failed_this_fit: set[str] = set()
        self._states: dict[str, str] = {}
        self._reasons: dict[str, str] = {}
        self._delays: dict[str, float] = {}
        self._bagging_fits: list[RoundRecord] = []
        self._busy = 0  # restarts in progress: no status probe meanwhile
        self._killed: set[str] = set()  # killed here, not yet seen back up
        self._changes = 0  # bumped at each change of a state: a probe older than it is stale
        # What only the redraw thread (or refresh()) touches.
        self._draw_lock = threading.RLock()
        self._time_log = pd.DataFrame(
            columns=["time", "worker", "endpoint", "latency_ms", "status", "round", "attempt"]
        )
        self._time_log_size = -1
        self._next_log_read = 0.0
        self._last_drawn = dict.fromkeys(_PACE, 0.0)
        self._housekept = 0.0
        self._png_allowed = 0.0
        self._next_poll = time.monotonic() + _STATUS_POLL
        self._fit_reported = None
        self._last_error = ""
        self._say_lock = threading.Lock()
        self._closed = threading.Event()

        self._build_widgets()
        self._safely(self._poll_status)
        self._poller = threading.Thread()  # the probes after this first one run in threads
        self._safely(self.refresh)
        self._unsubscribe = lab.master.events.subscribe(self._on_event)
        self._thread = threading.Thread(
            target=self._redraw_forever, name=f"chimera-dashboard-{lab.name}", daemon=True
        )
        self._thread.start()
        _dashboards[lab.name] = self

    # -- the widgets --------------------------------------------------------------------------

    def _build_widgets(self) -> None:
        def tagged(widget, name):
            widget.add_class(name)
            return widget

        self.status = tagged(widgets.HTML(), "chimera-status")
        self.flowchart = tagged(widgets.HTML(), "chimera-flowchart")
        self.loss = tagged(widgets.Image(format="png"), "chimera-loss")
        self.latency = tagged(widgets.Image(format="png"), "chimera-latency")
        self.latency_rounds = tagged(widgets.Image(format="png"), "chimera-latency-rounds")
        self.workers = tagged(widgets.HTML(), "chimera-workers")
        self.worker_choice = widgets.Dropdown(
            options=self.lab.cluster.names, description="worker", layout={"width": "190px"}
        )

        def button(description, name, width, **options):
            widget = widgets.Button(description=description, layout={"width": width}, **options)
            return tagged(widget, name)

        self.fit_button = button("Fit", "chimera-fit", "90px", icon="play")
        self.kill_button = button("Kill", "chimera-kill", "80px", button_style="danger")
        self.restart_button = button("Restart", "chimera-restart", "90px")
        self.slow_button = button("Slow +200 ms", "chimera-slow", "130px", button_style="warning")
        self.stop_button = button("Stop fit", "chimera-stop", "110px", icon="stop")
        self.messages = tagged(
            widgets.Output(layout={"max_height": "120px", "overflow": "auto"}), "chimera-messages"
        )
        self.fit_button.on_click(self._fit)
        self.kill_button.on_click(self._kill)
        self.restart_button.on_click(self._restart)
        self.slow_button.on_click(self._slow)
        self.stop_button.on_click(self._stop)
        self.worker_choice.observe(lambda _change: self._label_slow_button(), "value")

        # The charts shrink with the notebook's width; the flowchart keeps its size.
        self.loss.layout = {"width": "100%", "height": "auto"}
        for image in (self.latency, self.latency_rounds):
            image.layout = {"width": "50%", "height": "auto"}
        left = widgets.VBox(
            [widgets.HTML("<i>Seed flowchart, live: active step highlighted</i>"), self.flowchart],
            layout={"flex": "0 0 auto", "width": "470px"},
        )
        right = widgets.VBox(
            [self.loss, widgets.HBox([self.latency, self.latency_rounds])],
            layout={"flex": "1 1 0%", "min_width": "0", "max_width": "660px"},
        )
        controls = widgets.VBox(
            [
                widgets.HBox(
                    [self.worker_choice, self.kill_button, self.restart_button, self.slow_button]
                ),
                widgets.HBox([self.fit_button, self.stop_button]),
                self.messages,
            ]
        )
        self.widget = tagged(
            widgets.VBox(
                [
                    self.status,
                    widgets.HBox([left, right]),
                    widgets.HBox([self.workers, controls], layout={"grid_gap": "24px"}),
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

    # -- what the master's events say (loop thread: cheap) -------------------------------------

    def _on_event(self, event: StepEvent) -> None:
        with self._lock:
            self._latest = event
            self._visited.add(event.step)
            self._dirty.add("flowchart")
            if event.round_number is not None:
                self._round = event.round_number
            fit = event.machine.endswith("fit")
            if fit and event.step == "B":  # a fit starts: its rounds, marks and records are new
                self._fit_running, self._fit_started = True, event.time
                self._round, self._marks, self._failed_this_fit = None, {}, set()
                self._bagging_fits = []
                self._dirty.update(_PACE)
            elif fit and event.step == list(FLOWCHARTS[event.machine].steps)[-1]:  # the end
                self._fit_running = False
                self._dirty.update(_PACE)
            elif "loss" in event.detail:
                self._dirty.update(("loss", "status"))
            if "failed" in event.detail:
                self._note_replies(event)

    def _note_replies(self, event: StepEvent) -> None:
        """Who failed and who answered a round (under ``_lock``)."""
        where = f", round {event.round_number}" if event.round_number is not None else ""
        for name, reason in event.detail["failed"].items():
            if name not in self._failed_this_fit:
                self._failed_this_fit.add(name)
                self._mark(f"{name} failed", "tab:red")
            if self._states.get(name) != "failed" or self._reasons.get(name) == "killed":
                self._reasons[name] = f"{reason}{where}"
            self._states[name] = "failed"
            self._changes += 1
        for name in event.detail["answered"]:
            if name in self._killed:  # its reply to this round came before the kill
                continue
            if self._states.get(name) in ("failed", "stopped", None):
                self._states[name] = "slow" if self._delays.get(name) else "up"
                self._reasons.pop(name, None)
                self._changes += 1
                if name in self._failed_this_fit:
                    self._failed_this_fit.discard(name)
                    self._mark(f"{name} back", "tab:green")
        if not self._parameter_server and event.machine == "aggregation fit":
            number = len(self._bagging_fits) + 1
            failed = dict(event.detail["failed"])
            self._bagging_fits.append(
                RoundRecord(number, list(event.detail["answered"]), failed, {})
            )
        self._dirty.update(("workers", "status"))

    def _mark(self, text: str, color: str) -> None:
        """A mark on the loss chart at the current round (under ``_lock``)."""
        if self._fit_running:
            self._marks.setdefault(self._round or 0, []).append((text, color))
            self._dirty.add("loss")

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
                self._say(message, error=True)

    def _redraw_due(self) -> None:
        """Redraw each part that is out of date and was not redrawn within its pace."""
        with self._draw_lock:
            self._redraw_due_locked()

    def _redraw_due_locked(self) -> None:
        now = time.monotonic()
        if now - self._housekept >= 1.0:
            self._housekept = now
            self._check_fit_handle()
            if self._read_time_log():
                with self._lock:
                    self._dirty.update(("latency", "latency_rounds", "workers"))
            if now >= self._next_poll and not self._busy and not self._poller.is_alive():
                self._next_poll = now + _STATUS_POLL
                self._poller = threading.Thread(  # a frozen worker takes 1 s to time out
                    target=self._safely,
                    args=(self._poll_status,),
                    name=f"chimera-dashboard-{self.lab.name}-status",
                    daemon=True,
                )
                self._poller.start()
        with self._lock:
            due = {p for p in self._dirty if now - self._last_drawn[p] >= _PACE[p]}
            parts = due - _PNG_PARTS.keys()  # HTML is cheap; a PNG is one chart at a time, in turn
            if now >= self._png_allowed and due & _PNG_PARTS.keys():  # the longest wait, weighted
                parts.add(
                    max(
                        due & _PNG_PARTS.keys(),
                        key=lambda p: (now - self._last_drawn[p]) * _PNG_PARTS[p],
                    )
                )
            self._dirty -= parts
        if not parts:
            return
        self._draw(parts)
        for part in parts:
            self._last_drawn[part] = now
        if parts & _PNG_PARTS.keys():
            spent = time.monotonic() - now
            self._png_allowed = time.monotonic() + spent * (1 / _PNG_DUTY - 1)

    def refresh(self) -> None:
        """Redraw everything now, in this thread (also rereads the time log)."""
        with self._draw_lock:
            self._time_log_size, self._next_log_read = -1, 0.0
            self._read_time_log()
            with self._lock:
                self._dirty.clear()
            self._draw(set(_PACE))
            self._last_drawn = dict.fromkeys(_PACE, time.monotonic())

    def _draw(self, parts: set[str]) -> None:
        with self._draw_lock:
            with self._lock:  # a consistent copy of what the events said
                latest, marks = self._latest, {r: list(m) for r, m in self._marks.items()}
                visited = self._visited if "flowchart" in parts else set()
                if visited:  # one more picture later, without this trail
                    self._visited = set()
                    self._dirty.add("flowchart")
                states, reasons, delays = (
                    dict(self._states),
                    dict(self._reasons),
                    dict(self._delays),
                )
                fit_started, bagging_fits = self._fit_started, list(self._bagging_fits)
            machine = latest.machine if latest else self._fit_machine()
            if "flowchart" in parts:
                self._assign(
                    "flowchart",
                    self.flowchart,
                    flowchart_html(FLOWCHARTS[machine], self.active_step, visited),
                )
            if "status" in parts:
                self._assign("status", self.status, self._status_html(machine, states))
            if "loss" in parts:
                self._assign("loss", self.loss, _png(self._loss_figure(marks), _WIDE))
            calls = self._current_calls(fit_started)
            endpoint = (
                paths.SGD_FIT_STEP
                if self._parameter_server
                else (paths.MODEL_FIT, paths.MODEL_PREDICT)
            )
            if "latency" in parts:
                notes = {
                    name: f"+{seconds * 1000:g} ms" for name, seconds in delays.items() if seconds
                }
                figure = plot_latency(calls, endpoint=endpoint, notes=notes, figsize=(4.0, 3.0))
                self._assign("latency", self.latency, _png(figure, _NARROW))
            if "latency_rounds" in parts:
                figure = plot_latency_over_rounds(calls, endpoint=endpoint, figsize=(4.0, 3.0))
                self._assign("latency_rounds", self.latency_rounds, _png(figure, _NARROW))
            if "workers" in parts:
                history = self._history(bagging_fits, calls)
                table = worker_table(
                    history, {**dict.fromkeys(self.lab.cluster.names), **states}, delays=delays
                )
                self._assign("workers", self.workers, _table_html(table, reasons))

    def _assign(self, part: str, widget, value) -> None:
        """Set a widget's value; an unchanged value sends nothing, so it is not counted."""
        if widget.value != value:
            widget.value = value
            self.redraw_count[part] += 1

    def _fit_machine(self) -> str:
        return "parameter-server fit" if self._parameter_server else "aggregation fit"

    def _status_html(self, machine: str, states: dict[str, str]) -> str:
        master = self.lab.master
        parts = [f"<b>{master.role}</b>", machine.split()[-1]]
        if self._parameter_server:
            rounds = self._round if self._fit_running else len(getattr(master, "history_", []))
            # max_iter updates take max_iter + 1 rounds: the last one only evaluates
            parts.append(f"round {rounds or 0} / {master.max_iter + 1}")
        counts: dict[str, int] = {}
        for name in self.lab.cluster.names:
            state = states.get(name) or "unknown"
            counts[state] = counts.get(state, 0) + 1
        summary = ", ".join(f"{n} {state}" for state, n in counts.items())
        parts.append(f"{len(self.lab.cluster.names)} workers ({summary})")
        if self.lab.cluster.state is ClusterState.CLOSED:
            parts.append("lab closed")
        elif self._fit_running:
            parts.append("fitting")
        return '<div style="font-size:15px">' + " &middot; ".join(parts) + "</div>"

    def _loss_figure(self, marks: dict[int, list[tuple[str, str]]]):
        master = self.lab.master
        if not self._parameter_server:  # nothing to plot: say why, in the chart's place
            figure = Figure(figsize=(8.0, 3.0))
            axes = figure.add_subplot()
            axes.axis("off")
            axes.text(
                0.5,
                0.5,
                f"No loss per round: {master.role} has no rounds.\n"
                "Each worker fits its member once; predictions are averaged.",
                ha="center",
                va="center",
                fontsize=12,
            )
            return figure
        max_iter = master.max_iter
        return plot_loss(
            list(getattr(master, "loss_curve_", [])),
            reference=self.reference,
            marks={r: (", ".join(text for text, _ in m), m[0][1]) for r, m in marks.items()},
            n_rounds=max_iter + 1 if max_iter <= 2000 else None,
            figsize=(8.0, 3.0),
        )

    def _read_time_log(self) -> bool:
        """Reread ``chimera_time.log`` if it grew; True if it did. Reading a long log takes
        a while, so the next read waits at least ten times as long (<10% of the time)."""
        path = self.lab.cluster.run_dir / TIME_LOG
        try:
            size = path.stat().st_size
        except OSError:
            return False
        if size == self._time_log_size or time.monotonic() < self._next_log_read:
            return False
        started = time.monotonic()
        try:
            frame = read_time_log(path)
        except (ValueError, TypeError):  # a line half written: next time
            return False
        self._next_log_read = time.monotonic() + 10 * (time.monotonic() - started)
        self._time_log, self._time_log_size = frame, size
        return True

    def _current_calls(self, fit_started: float | None) -> pd.DataFrame:
        """The time log's calls since the current (or last) fit started."""
        calls = self._time_log
        if fit_started is not None and len(calls):
            calls = calls[calls["time"] >= pd.Timestamp.fromtimestamp(fit_started - 0.001)]
        return calls

    def _history(self, bagging_fits: list[RoundRecord], calls: pd.DataFrame) -> list:
        if self._parameter_server:
            return list(getattr(self.lab.master, "history_", []))
        if bagging_fits and len(calls):  # a bagging fit has no rounds: latency from the log
            ok = calls[calls["status"] == "200"]
            bagging_fits[-1] = RoundRecord(
                bagging_fits[-1].round_number,
                bagging_fits[-1].answered,
                bagging_fits[-1].failed,
                ok.groupby("worker")["latency_ms"].last().to_dict(),
            )
        return bagging_fits

    def _poll_status(self) -> None:
        """Ask the cluster who is up (a network probe while it runs: never from the loop
        thread; before and after, all workers are "stopped")."""
        with self._lock:
            changes = self._changes
        found = {name: state.value for name, state in self.lab.cluster.status().items()}
        with self._lock:
            if changes == self._changes and found != {n: self._states.get(n) for n in found}:
                self._states.update(found)
                for name, state in found.items():
                    if state != "failed":
                        self._reasons.pop(name, None)
                    if state != "slow":
                        self._delays.pop(name, None)
                    if state != "failed":
                        self._killed.discard(name)
                self._dirty.update(("workers", "status"))
        self._label_slow_button()

    def _check_fit_handle(self) -> None:
        handle = self.fit_handle
        if handle is None or not handle.done() or self._fit_reported is handle:
            return
        self._fit_reported = handle
        try:
            master = handle.result(timeout=0)
        except Exception as error:
            self._say(f"fit failed: {error}", error=True)
        else:
            rounds = len(getattr(master, "history_", []))
            self._say(f"fit done{f' after {rounds} rounds' if rounds else ''}")

    # -- controls (kernel thread: quick, never raise) ---------------------------------------

    def _say(self, text: str, *, error: bool = False) -> None:
        with self._say_lock:
            (self.messages.append_stderr if error else self.messages.append_stdout)(text + "\n")
            if len(self.messages.outputs) > 6:
                self.messages.outputs = self.messages.outputs[-6:]

    @contextlib.contextmanager
    def _reporting(self, action: str):
        try:
            yield
        except Exception as error:
            self._say(f"{action} failed: {error}", error=True)

    def _fit(self, _button=None) -> None:
        with self._reporting("Fit"):
            if self._fit_running or (self.fit_handle is not None and not self.fit_handle.done()):
                self._say("a fit is already running: stop it first")
                return
            self.fit_handle = self.lab.fit(wait=False)
            self._say("fit started in the background")

    def _stop(self, _button=None) -> None:
        with self._reporting("Stop fit"):
            starting = self.fit_handle is not None and not self.fit_handle.done()
            if not (self._fit_running or starting):  # a stop now would end the next fit early
                self._say("no fit is running")
                return
            self.lab.master.stop()
            self._say("stop requested: the fit ends after this round")

    def _kill(self, _button=None) -> None:
        name = self.worker_choice.value
        with self._lock:  # first: the master may see the failure while kill() waits
            self._states[name], self._reasons[name] = "failed", "killed"
            self._killed.add(name)
            self._delays.pop(name, None)
            self._changes += 1
            if name not in self._failed_this_fit:
                self._failed_this_fit.add(name)
                self._mark(f"{name} killed", "tab:red")
            self._dirty.update(("workers", "status", "latency"))
        with self._reporting(f"Kill {name}"):
            self.lab.cluster.kill(name)
            self._say(f"{name} killed")
        self._next_poll = 0.0  # a probe soon: it corrects the table if the kill failed
        self._label_slow_button()

    def _restart(self, _button=None) -> None:
        name = self.worker_choice.value
        self._say(f"restarting {name}...")
        with self._lock:
            self._busy += 1

        def restart() -> None:
            try:
                with self._reporting(f"Restart {name}"):
                    self.lab.cluster.restart(name)
                    with self._lock:
                        self._states[name] = "up"
                        self._killed.discard(name)
                        self._changes += 1
                        self._reasons.pop(name, None)
                        self._delays.pop(name, None)
                        self._failed_this_fit.discard(name)
                        self._mark(f"{name} restarted", "tab:green")
                        self._dirty.update(("workers", "status", "latency"))
                    self._label_slow_button()
                    self._say(f"{name} restarted")
            finally:
                with self._lock:
                    self._busy -= 1

        threading.Thread(
            target=restart, name=f"chimera-dashboard-{self.lab.name}-restart", daemon=True
        ).start()

    def _slow(self, _button=None) -> None:
        name = self.worker_choice.value
        seconds = 0.0 if self._is_slow(name) else _SLOW_SECONDS
        with self._reporting(f"Slow {name}"):
            self.lab.cluster.slow(name, seconds)
            with self._lock:
                self._delays[name] = seconds
                self._states[name] = "slow" if seconds else "up"
                self._changes += 1
                text = f"{name} +{seconds * 1000:g} ms" if seconds else f"{name} normal speed"
                self._mark(text, "tab:orange")
                self._dirty.update(("workers", "status", "latency"))
            self._label_slow_button()
            self._say(
                f"{name} answers {seconds * 1000:g} ms late"
                if seconds
                else f"{name} is back to normal speed"
            )

    def _label_slow_button(self) -> None:
        slow = self._is_slow(self.worker_choice.value)
        self.slow_button.description = "Normal speed" if slow else "Slow +200 ms"

    def _is_slow(self, name: str) -> bool:
        """Slowed from here, or (seen by a status probe) from a cell."""
        return bool(self._delays.get(name)) or self._states.get(name) == "slow"

    # -- what a notebook and a test read --------------------------------------------------

    @property
    def active_step(self) -> str:
        """The letter of the latest step the master published ("A", idle, before any)."""
        latest = self._latest
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
        if _dashboards.get(self.lab.name) is self:
            del _dashboards[self.lab.name]

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        if self._closed.is_set():
            return f"Dashboard(lab {self.lab.name!r}, closed)"
        latest = self._latest
        machine = latest.machine if latest else self._fit_machine()
        with self._lock:
            states = [self._states.get(name) or "unknown" for name in self.lab.cluster.names]
        counts = ", ".join(f"{states.count(s)} {s}" for s in dict.fromkeys(states))
        return (
            f"Dashboard(lab {self.lab.name!r}, {machine} step {self.active_step}, "
            f"{len(states)} workers: {counts})"
        )


def _table_html(table: pd.DataFrame, reasons: dict[str, str]) -> str:
    """The worker table, a row per worker coloured by state (``data-state`` for tests)."""
    cell = "border:1px solid #999;padding:2px 8px"
    head = "".join(
        f'<th style="{cell};background:#f4f4f4">{h}</th>'
        for h in ("worker", "state", "last latency", "samples", "rounds answered")
    )
    rows = []
    for name, row in table.iterrows():
        state = row["state"] or "unknown"
        why = reasons.get(name) if state == "failed" else None
        why = why or row["detail"]
        text = f"{state.upper() if state == 'failed' else state}" + (f" ({why})" if why else "")
        latency = row["last latency, ms"]
        latency = "—" if state == "failed" or pd.isna(latency) else f"{latency:.1f} ms"
        samples = "—" if pd.isna(row["samples"]) else f"{row['samples']:,}"
        color = _ROW_COLORS.get(state, "white")
        cells = "".join(
            f'<td style="{cell}">{value}</td>'
            for value in (name, text, latency, samples, row["rounds answered"])
        )
        rows.append(
            f'<tr data-worker="{name}" data-state="{state}" style="background:{color}">{cells}</tr>'
        )
    return (
        '<table class="chimera-workers-table" style="border-collapse:collapse;'
        f'font:12px sans-serif"><tr>{head}</tr>{"".join(rows)}</table>'
    )
