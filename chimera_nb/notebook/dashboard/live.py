"""The live part of the dashboard: one anywidget whose traits the browser draws.

Why one widget drawn in the browser rather than matplotlib PNGs: a PNG of a chart costs the
kernel 30-150 ms of CPU (holding the GIL, which slows the fit) and 10-60 kB per frame, so the
old dashboard could redraw its charts only now and then, and they lagged the fit by hundreds
of rounds. Here the kernel sends numbers (a thinned loss curve, box-plot numbers, the last
rounds' calls) and the browser draws them as SVG, in a millisecond.

How it is synced: the redraw thread sets only the traits that changed, all inside one
``hold_sync()``, so each tick sends at most one message with whole, idempotent values (the
Jupyter server silently drops messages above ~1,000 a second: a lost delta would stay lost,
a lost whole value is replaced by the next). Values are new objects each time, never changed
in place (an in-place change does not sync).
"""

from __future__ import annotations

import anywidget
import traitlets

from .browser import CSS, ESM

__all__ = ["LiveView"]


class LiveView(anywidget.AnyWidget):
    """What the browser draws; each trait has a drawing function of the same name in
    :mod:`.browser.views`.

    Attributes
    ----------
    status : dict
        The status line (master, action, round, rounds/s, workers, mode, closed).
    chart, step : dict
        The flowchart being followed (its layout), and its active and visited steps.
    workers : list of dict
        The cluster view: one entry per worker (see :func:`.views.workers_data`).
    loss, round_time, latency, timeline : dict or list
        The charts' numbers.
    replay : dict
        Slow motion: the frames of the round to play (see :mod:`.replay`).
    sent : int
        Messages sent so far (each a batch of the traits that changed).
    """

    _esm = ESM
    _css = CSS
    status = traitlets.Dict().tag(sync=True)
    chart = traitlets.Dict().tag(sync=True)
    step = traitlets.Dict().tag(sync=True)
    workers = traitlets.List().tag(sync=True)
    loss = traitlets.Dict().tag(sync=True)
    round_time = traitlets.Dict().tag(sync=True)
    latency = traitlets.List().tag(sync=True)
    timeline = traitlets.Dict().tag(sync=True)
    replay = traitlets.Dict().tag(sync=True)

    def __init__(self, **values) -> None:
        super().__init__(**values)
        self.sent = 0  # messages sent (each a batch of changed traits)

    def assign(self, values: dict) -> list[str]:
        """Set the traits whose value changed, in one message; returns their names."""
        changed = [name for name, value in values.items() if getattr(self, name) != value]
        if changed:
            with self.hold_sync():
                for name in changed:
                    setattr(self, name, values[name])
            self.sent += 1
        return changed
