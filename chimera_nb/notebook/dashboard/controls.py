"""The dashboard's buttons: pick a worker, then Kill, Restart or Slow it, give it 20 ms more
latency or cut it off (Partition, then Heal); Fit and Stop fit; Slow motion, Step one round
and Full speed; and which master to follow.

Button handlers run in the kernel, so they must be quick: kill, slow, stop and the pacer's
switches are; a restart waits for the worker to come up, so it runs in a thread. What a click
changes on a worker reaches the view through the cluster's fault listener (the same path as a
call from a cell), so the buttons write no state of their own. Errors go to the message area,
newest first, never up into the notebook. Clicks queue while a cell blocks, so the Fit button
starts a background fit (``master.fit(cluster, wait=False)``). The network buttons call the
cluster's network emulation (``cluster.network``, ``partition`` and ``heal``).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from html import escape
from typing import Any

import ipywidgets as widgets

from ...masters.running import FitHandle

__all__ = ["Controls", "pacer_mode", "tagged"]

_SLOW_SECONDS = 0.2  # what "Slow +200 ms" injects
_LATENCY_MS = 20.0  # what "+20 ms latency" adds to the worker's network
_SLOW_MOTION = 1.0  # seconds per round in slow motion
_MESSAGES_KEPT = 6
_FOLLOW_ANY = ("follow any master on these workers", "any")  # (label, value) of the menu


def tagged(widget: widgets.Widget, name: str) -> widgets.Widget:
    """``widget`` with a CSS class, so a browser test (or a stylesheet) can find it."""
    widget.add_class(name)
    return widget


def pacer_mode(master: Any) -> str:
    """ "full speed", "slow motion" or "paused", as ``master.pacer`` is set (by a button or
    a cell)."""
    pacer = master.pacer
    return "paused" if pacer.paused else "slow motion" if pacer.seconds_per_round else "full speed"


class Controls:
    """The buttons of a lab's dashboard and what each does.

    Parameters
    ----------
    lab : Lab
    following : callable
        Returns the master the dashboard follows now (Stop fit and the pacer act on it).
    is_slow : callable
        ``is_slow(name)``: whether a worker is slowed now (the Slow button's label).
    """

    def __init__(
        self, lab: Any, following: Callable[[], Any], is_slow: Callable[[str], bool]
    ) -> None:
        self.lab = lab
        self.following = following
        self.is_slow = is_slow
        self.fit_handle: FitHandle | None = None
        self._reported: FitHandle | None = None
        self._say_lock = threading.Lock()
        self.said: list[tuple[str, str]] = []  # (kind, text), newest first

        self.worker_choice = tagged(
            widgets.Dropdown(
                options=lab.cluster.names, description="worker", layout={"width": "200px"}
            ),
            "chimera-worker-choice",
        )
        self.kill_button = self._button("Kill", "chimera-kill", "76px", button_style="danger")
        self.restart_button = self._button("Restart", "chimera-restart", "96px")
        self.slow_button = self._button("Slow +200 ms", "chimera-slow", "148px")
        self.latency_button = self._button(
            f"+{_LATENCY_MS:g} ms latency", "chimera-latency", "156px"
        )
        self.partition_button = self._button("Partition", "chimera-partition", "104px")
        self.heal_button = self._button("Heal", "chimera-heal", "76px")
        self.fit_button = self._button("Fit", "chimera-fit", "76px", icon="play")
        self.stop_button = self._button("Stop fit", "chimera-stop", "110px", icon="stop")
        self.slow_motion_button = self._button("Slow motion", "chimera-slow-motion", "136px")
        self.step_button = self._button("Step one round", "chimera-step-round", "160px")
        self.full_speed_button = self._button("Full speed", "chimera-full-speed", "120px")
        self.master_choice = tagged(
            widgets.Dropdown(
                options=[_FOLLOW_ANY], description="master", layout={"width": "430px"}
            ),
            "chimera-master-choice",
        )
        self.messages = tagged(
            widgets.HTML(
                '<div class="cl-placeholder">What the buttons do shows here, newest first.</div>',
                layout={"max_height": "124px", "width": "360px", "overflow": "hidden"},
            ),
            "chimera-messages",
        )
        for button, action in [
            (self.kill_button, self.kill),
            (self.restart_button, self.restart),
            (self.slow_button, self.slow),
            (self.latency_button, self.latency),
            (self.partition_button, self.partition),
            (self.heal_button, self.heal),
            (self.fit_button, self.fit),
            (self.stop_button, self.stop),
            (self.slow_motion_button, self.slow_motion),
            (self.step_button, self.step),
            (self.full_speed_button, self.full_speed),
        ]:
            button.on_click(action)
        self.worker_choice.observe(lambda _change: self.label_slow_button(), "value")
        row = {"flex_flow": "row wrap", "align_items": "center"}
        buttons = widgets.VBox(
            [
                widgets.HBox(
                    [
                        self.worker_choice,
                        self.kill_button,
                        self.restart_button,
                        self.slow_button,
                        self.latency_button,
                        self.partition_button,
                        self.heal_button,
                    ],
                    layout=row,
                ),
                widgets.HBox(
                    [
                        self.fit_button,
                        self.stop_button,
                        self.slow_motion_button,
                        self.step_button,
                        self.full_speed_button,
                    ],
                    layout=row,
                ),
                self.master_choice,
            ],
            layout={"flex": "1 1 520px"},
        )
        self.widget = widgets.HBox(
            [buttons, self.messages], layout={"flex_flow": "row wrap", "grid_gap": "4px 16px"}
        )

    @staticmethod
    def _button(description: str, name: str, width: str, **options: Any) -> widgets.Button:
        return tagged(
            widgets.Button(description=description, layout={"width": width}, **options), name
        )

    @property
    def inputs(self) -> list[widgets.DOMWidget]:
        """Every button and menu, in the order shown."""
        return [
            self.worker_choice,
            self.kill_button,
            self.restart_button,
            self.slow_button,
            self.latency_button,
            self.partition_button,
            self.heal_button,
            self.fit_button,
            self.stop_button,
            self.slow_motion_button,
            self.step_button,
            self.full_speed_button,
            self.master_choice,
        ]

    def disable(self) -> None:
        """Every control off: the lab (or the dashboard) is closed."""
        for control in self.inputs:
            control.disabled = True

    # -- messages -------------------------------------------------------------------------------

    def say(self, text: str, *, error: bool = False) -> None:
        """A line at the top of the message area (the last few are kept, newest first; a
        long line is cut, and whole in its tooltip)."""
        with self._say_lock:
            self.said = [("error" if error else "info", text), *self.said][:_MESSAGES_KEPT]
            self.messages.value = "".join(
                f'<div class="chimera-message" data-kind="{kind}" title="{escape(line)}">'
                f"{escape(line)}</div>"
                for kind, line in self.said
            )

    @contextlib.contextmanager
    def _reporting(self, action: str):
        try:
            yield
        except Exception as error:
            self.say(f"{action} failed: {error}", error=True)

    # -- the actions ----------------------------------------------------------------------------

    def fit(self, _button: Any = None) -> None:
        with self._reporting("Fit"):
            if self.lab.master.fitting:
                self.say("a fit is already running: stop it first")
                return
            self.fit_handle = self.lab.fit(wait=False)
            self.say("fit started in the background")

    def stop(self, _button: Any = None) -> None:
        master = self.following()
        with self._reporting("Stop fit"):
            if not master.fitting:  # a stop now would end the next fit early
                self.say("no fit is running")
                return
            master.stop()
            self.say("stop requested: the fit ends after this round")

    def kill(self, _button: Any = None) -> None:
        name = self.worker_choice.value
        with self._reporting(f"Kill {name}"):
            self.lab.cluster.kill(name)
            self.say(f"{name} killed")
        self.label_slow_button()

    def restart(self, _button: Any = None) -> None:
        name = self.worker_choice.value
        self.say(f"restarting {name}...")

        def restart() -> None:
            with self._reporting(f"Restart {name}"):
                self.lab.cluster.restart(name)
                self.label_slow_button()
                self.say(f"{name} restarted")

        threading.Thread(
            target=restart, name=f"chimera-dashboard-{self.lab.name}-restart", daemon=True
        ).start()

    def slow(self, _button: Any = None) -> None:
        name = self.worker_choice.value
        seconds = 0.0 if self.is_slow(name) else _SLOW_SECONDS
        with self._reporting(f"Slow {name}"):
            self.lab.cluster.slow(name, seconds)
            self.label_slow_button()
            self.say(
                f"{name} answers {seconds * 1000:g} ms late"
                if seconds
                else f"{name} is back to normal speed"
            )

    def label_slow_button(self) -> None:
        """The Slow and latency buttons say what a click would do to the chosen worker."""
        slow = self.is_slow(self.worker_choice.value)
        self.slow_button.description = "Normal speed" if slow else "Slow +200 ms"
        latency = getattr(self._network_of(self.worker_choice.value), "latency_ms", 0)
        self.latency_button.description = (
            "Normal latency" if latency else f"+{_LATENCY_MS:g} ms latency"
        )

    # -- the emulated network (cluster.network, partition, heal) ---------------------------

    def _network_of(self, name: str) -> Any:
        """The worker's emulated network settings (None: a normal network)."""
        if not name:
            return None
        return self.lab.cluster.networks().get(name)

    def latency(self, _button: Any = None) -> None:
        """Add 20 ms to the chosen worker's round trips, or take them off again (its bandwidth
        and drop rate stay)."""
        name = self.worker_choice.value
        with self._reporting(f"Latency of {name}"):
            current = self._network_of(name)
            latency_ms = 0.0 if getattr(current, "latency_ms", 0) else _LATENCY_MS
            self.lab.cluster.network(
                name,
                latency_ms=latency_ms,
                bandwidth_mbps=getattr(current, "bandwidth_mbps", None),
                drop=getattr(current, "drop", 0.0),
                seed=getattr(current, "seed", None),
            )
            self.label_slow_button()
            self.say(
                f"{name}'s network adds {latency_ms:g} ms to each call"
                if latency_ms
                else f"{name}'s network adds no latency"
            )

    def partition(self, _button: Any = None) -> None:
        name = self.worker_choice.value
        with self._reporting(f"Partition {name}"):
            self.lab.cluster.partition([name])
            self.say(f"{name} partitioned: every call to it fails until Heal")

    def heal(self, _button: Any = None) -> None:
        with self._reporting("Heal"):
            cut = [n for n, s in self.lab.cluster.networks().items() if s.partitioned]
            self.lab.cluster.heal()
            self.say(f"healed: {', '.join(cut)} answer again" if cut else "no partition to heal")

    def slow_motion(self, _button: Any = None) -> None:
        pacer = self.following().pacer
        pacer.full_speed()
        pacer.slow_motion(_SLOW_MOTION)
        self.say(f"slow motion: one round every {_SLOW_MOTION:g} s, replayed step by step")

    def step(self, _button: Any = None) -> None:
        pacer = self.following().pacer
        pacer.pause()
        pacer.step()
        self.say("one round let through; the next waits for Step one round")

    def full_speed(self, _button: Any = None) -> None:
        self.following().pacer.full_speed()
        self.say("full speed")

    # -- what the redraw thread updates ---------------------------------------------------------

    def list_workers(self, names: list[str]) -> None:
        """The cluster's members now (workers join and leave) as the worker menu's choices."""
        if list(self.worker_choice.options) != names:
            chosen = self.worker_choice.value
            self.worker_choice.options = names
            self.worker_choice.value = chosen if chosen in names else (names or [None])[0]

    def list_masters(self, masters: list[Any], lab_master: Any) -> None:
        """The masters seen fitting these workers, as choices of the master menu."""
        options = [_FOLLOW_ANY] + [
            (f"{m.role} #{i}" + (" (the lab's master)" if m is lab_master else ""), m)
            for i, m in enumerate(masters, 1)
        ]
        if [label for label, _ in options] != [label for label, _ in self.master_choice.options]:
            value = self.master_choice.value
            self.master_choice.options = options
            kept = any(m is value for _, m in options)
            self.master_choice.value = value if kept else _FOLLOW_ANY[1]

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
