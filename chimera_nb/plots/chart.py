"""What every chart shares: a figure that shows itself in a notebook, and a log axis of
milliseconds that always has enough labels to read."""

from __future__ import annotations

import io
import math

from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

__all__ = ["Chart", "log_ms_axis"]


class Chart(Figure):
    """A matplotlib ``Figure`` that shows itself in a notebook as a PNG, with no pyplot and
    no ``%matplotlib inline`` needed (the kit never touches pyplot's global state)."""

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=100)
        return buffer.getvalue()


# Log-scale ticks as plain milliseconds ("3", "10", "200"), not "3x10^0".
_MILLISECONDS = FuncFormatter(lambda value, _position: f"{value:g}")


def log_ms_axis(axes, axis: str = "y") -> None:
    """A log scale of milliseconds labelled 1, 2, 5, 10, 20, 50... A straggler's 200 ms and
    a healthy worker's 2 ms both read at a glance.

    Over less than a decade (every worker between 1 and 3 ms), 1-2-5 would leave one or two
    labels; there the ticks are 1, 1.5, 2, 3, 5, 7, so that an axis always has at least three.
    Call it after the data is drawn: the ticks depend on the range.
    """
    scale = axes.yaxis if axis == "y" else axes.xaxis
    (axes.set_yscale if axis == "y" else axes.set_xscale)("log")
    low, high = sorted(axes.get_ylim() if axis == "y" else axes.get_xlim())
    decades = math.log10(high / low) if low > 0 else 3.0
    subs = (1.0, 1.5, 2.0, 3.0, 5.0, 7.0) if decades < 1.2 else (1.0, 2.0, 5.0)
    scale.set_major_locator(LogLocator(subs=subs if decades < 4 else (1.0,)))
    scale.set_major_formatter(_MILLISECONDS)
    scale.set_minor_formatter(NullFormatter())
