"""A master's flowchart as a figure, from the layout the dashboard draws as HTML."""

from __future__ import annotations

from typing import TYPE_CHECKING

from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch

from .chart import Chart

if TYPE_CHECKING:
    from ..masters.flowchart import Flowchart

__all__ = ["plot_flowchart"]


def plot_flowchart(flowchart: Flowchart, active: str | None = None) -> Figure:
    """A master's flowchart (``master.flowcharts``): one box per step, lettered as in the
    seed, the ``active`` step in orange.

    Each box is a patch with ``gid="step-<letter>"``, so a test or a script can find it.
    The dashboard draws the same layout in the browser.
    """
    from ..masters.flowchart import (
        ACTIVE_COLOR,
        ACTIVE_EDGE_COLOR,
        ARROW_COLOR,
        EDGE_COLOR,
        MAIN_COLOR,
        SIDE_COLOR,
        layout,
    )

    chart = layout(flowchart)
    # pixels of the layout as data units, at 100 pixels per inch
    figure = Chart(figsize=(chart.width / 100, (chart.height + 24) / 100))
    axes = figure.add_axes((0, 0, 1, chart.height / (chart.height + 24)))
    axes.set_xlim(0, chart.width)
    axes.set_ylim(chart.height, 0)
    axes.axis("off")
    figure.suptitle(flowchart.machine, x=0.02, y=0.99, ha="left", va="top", fontsize=10)
    for route in chart.routes:
        xs, ys = zip(*route.points)
        style = (0, (4, 3)) if route.dashed else "-"
        axes.plot(xs[:-1], ys[:-1], color=ARROW_COLOR, lw=1, ls=style)
        axes.annotate(
            "",
            xy=route.points[-1],
            xytext=route.points[-2],
            arrowprops={"arrowstyle": "-|>", "color": ARROW_COLOR, "lw": 1, "ls": style},
        )
        if route.label:
            leftward = route.points[-1][0] < route.points[-2][0]
            axes.text(
                *route.label_at,
                route.label,
                fontsize=7,
                color="#444",
                ha="right" if leftward else "left",
            )
    for box in chart.boxes.values():
        is_active = box.letter == active
        axes.add_patch(
            FancyBboxPatch(
                (box.x, box.y),
                box.width,
                box.height,
                boxstyle="round,pad=0,rounding_size=3",
                facecolor=ACTIVE_COLOR if is_active else SIDE_COLOR if box.side else MAIN_COLOR,
                edgecolor=ACTIVE_EDGE_COLOR if is_active else EDGE_COLOR,
                lw=2 if is_active else 1,
                gid=f"step-{box.letter}",
            )
        )
        axes.text(box.x + 6, box.center_y, box.letter, fontsize=8, weight="bold", va="center")
        axes.text(box.x + 22, box.center_y, box.label, fontsize=8, va="center")
    return figure
