"""The dashboard's buttons: pick a worker, then Kill, Restart or Slow it; Fit and Stop fit.

Button handlers run in the kernel, so they must be quick: kill, slow and stop are; a restart
waits for the worker to come up, so it runs in a thread. Errors go to the message area, never
up into the notebook. Clicks queue while a cell blocks, so the Fit button starts a
background fit (``master.fit(cluster, wait=False)``).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets

from ...masters.running import FitHandle
from .state import DashboardState

__all__ = ["Controls"]

_SLOW_SECONDS = 0.2  # what "Slow +200 ms" injects
_MESSAGES_KEPT = 6


def tagged(widget: widgets.Widget, name: str) -> widgets.Widget:
    """``widget`` with a CSS class, so a browser test (or a stylesheet) can find it."""
    widget.add_class(name)
    return widget


class Controls:
    """The buttons of a lab's dashboard and what each does.

    Parameters
    ----------
    lab : Lab
    state : DashboardState
        Written at once by each action, so that the table shows it before the next probe.
    on_change : callable
        Called after an action that changes a worker (asks for a status probe soon).
    """

    def __init__(self, lab: Any, state: DashboardState, on_change: Callable[[], None]) -> None:
        self.lab = lab
        self.state = state
        self.on_change = on_change
        self.fit_handle: FitHandle | None = None
        self._reported: FitHandle | None = None
        self._say_lock = threading.Lock()

        self.worker_choice = widgets.Dropdown(
            options=lab.cluster.names, description="worker", layout={"width": "190px"}
        )
        self.fit_button = self._button("Fit", "chimera-fit", "90px", icon="play")
        self.kill_button = self._button("Kill", "chimera-kill", "80px", button_style="danger")
        self.restart_button = self._button("Restart", "chimera-restart", "90px")
        self.slow_button = self._button(
            "Slow +200 ms", "chimera-slow", "130px", button_style="warning"
        )
        self.stop_button = self._button("Stop fit", "chimera-stop", "110px", icon="stop")
        self.messages = tagged(
            widgets.Output(layout={"max_height": "120px", "overflow": "auto"}), "chimera-messages"
        )
        self.fit_button.on_click(self.fit)
        self.kill_button.on_click(self.kill)
        self.restart_button.on_click(self.restart)
        self.slow_button.on_click(self.slow)
        self.stop_button.on_click(self.stop)
        self.worker_choice.observe(lambda _change: self.label_slow_button(), "value")
        self.widget = widgets.VBox(
            [
                widgets.HBox(
                    [self.worker_choice, self.kill_button, self.restart_button, self.slow_button]
                ),
                widgets.HBox([self.fit_button, self.stop_button]),
                self.messages,
            ]
        )

    @staticmethod
    def _button(description: str, name: str, width: str, **options: Any) -> widgets.Button:
        return tagged(
            widgets.Button(description=description, layout={"width": width}, **options), name
        )

    # -- messages -------------------------------------------------------------------------------

    def say(self, text: str, *, error: bool = False) -> None:
        """A line in the message area (the last few are kept)."""
        with self._say_lock:
            (self.messages.append_stderr if error else self.messages.append_stdout)(text + "\n")
            if len(self.messages.outputs) > _MESSAGES_KEPT:
                self.messages.outputs = self.messages.outputs[-_MESSAGES_KEPT:]

    @contextlib.contextmanager
    def _reporting(self, action: str):
        try:
            yield
        except Exception as error:
            self.say(f"{action} failed: {error}", error=True)

    # -- the actions ----------------------------------------------------------------------------

    def _fit_running(self) -> bool:
        starting = self.fit_handle is not None and not self.fit_handle.done()
        return self.state.fit_running or starting

    def fit(self, _button: Any = None) -> None:
        with self._reporting("Fit"):
            if self._fit_running():
                self.say("a fit is already running: stop it first")
                return
            self.fit_handle = self.lab.fit(wait=False)
            self.say("fit started in the background")

    def stop(self, _button: Any = None) -> None:
        with self._reporting("Stop fit"):
            if not self._fit_running():  # a stop now would end the next fit early
                self.say("no fit is running")
                return
            self.lab.master.stop()
            self.say("stop requested: the fit ends after this round")

    def kill(self, _button: Any = None) -> None:
        name = self.worker_choice.value
        self.state.note_killed(name)
        with self._reporting(f"Kill {name}"):
            self.lab.cluster.kill(name)
            self.say(f"{name} killed")
        self.on_change()  # a probe soon: it corrects the table if the kill failed
        self.label_slow_button()

    def restart(self, _button: Any = None) -> None:
        name = self.worker_choice.value
        self.say(f"restarting {name}...")
        with self.state.lock:
            self.state.busy += 1

        def restart() -> None:
            try:
                with self._reporting(f"Restart {name}"):
                    self.lab.cluster.restart(name)
                    self.state.note_restarted(name)
                    self.label_slow_button()
                    self.say(f"{name} restarted")
            finally:
                with self.state.lock:
                    self.state.busy -= 1

        threading.Thread(
            target=restart, name=f"chimera-dashboard-{self.lab.name}-restart", daemon=True
        ).start()

    def slow(self, _button: Any = None) -> None:
        name = self.worker_choice.value
        seconds = 0.0 if self.state.is_slow(name) else _SLOW_SECONDS
        with self._reporting(f"Slow {name}"):
            self.lab.cluster.slow(name, seconds)
            self.state.note_delay(name, seconds)
            self.label_slow_button()
            self.say(
                f"{name} answers {seconds * 1000:g} ms late"
                if seconds
                else f"{name} is back to normal speed"
            )

    def label_slow_button(self) -> None:
        slow = self.state.is_slow(self.worker_choice.value)
        self.slow_button.description = "Normal speed" if slow else "Slow +200 ms"

    def report_fit(self) -> None:
        """Say once how the Fit button's fit ended."""
        handle = self.fit_handle
        if handle is None or not handle.done() or self._reported is handle:
            return
        self._reported = handle
        try:
            master = handle.result(timeout=0)
        except Exception as error:
            self.say(f"fit failed: {error}", error=True)
        else:
            rounds = len(getattr(master, "history_", []))
            self.say(f"fit done{f' after {rounds} rounds' if rounds else ''}")
