"""A flowchart as HTML, with the active step highlighted: the dashboard's live picture.

Plain strings, no matplotlib: the dashboard redraws it up to ten times a second. The layout
(where each box and arrow goes) is :func:`chimera_nb.masters.flowchart.layout`, shared with
:func:`chimera_nb.plots.plot_flowchart`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from html import escape

from ...masters.flowchart import (
    ACTIVE_COLOR,
    ACTIVE_EDGE_COLOR,
    ARROW_COLOR,
    EDGE_COLOR,
    MAIN_COLOR,
    SIDE_COLOR,
    VISITED_COLOR,
    Flowchart,
    FlowchartLayout,
    layout,
)

__all__ = ["flowchart_html"]

_BOX_STYLE = (
    "position:absolute;left:{x}px;top:{y}px;width:{w}px;height:{h}px;box-sizing:border-box;"
    "background:{background};border:{border};border-radius:3px;padding:0 6px;"
    "font:12px/{line}px sans-serif;white-space:nowrap;overflow:hidden;text-overflow:ellipsis;"
    "color:#222"
)


def _svg(chart_layout: FlowchartLayout) -> str:
    """The arrows: polylines with a small triangle at the end, and their labels."""
    parts = []
    for route in chart_layout.routes:
        points = " ".join(f"{x:g},{y:g}" for x, y in route.points)
        dash = ' stroke-dasharray="4 3"' if route.dashed else ""
        parts.append(
            f'<polyline points="{points}" fill="none" stroke="{ARROW_COLOR}" '
            f'stroke-width="1.2"{dash}/>'
        )
        (x0, _), (x1, y1) = route.points[-2], route.points[-1]
        if x0 == x1:  # vertical, pointing down
            head = f"{x1 - 4:g},{y1 - 6:g} {x1 + 4:g},{y1 - 6:g} {x1:g},{y1:g}"
        elif x1 > x0:  # pointing right
            head = f"{x1 - 6:g},{y1 - 4:g} {x1 - 6:g},{y1 + 4:g} {x1:g},{y1:g}"
        else:  # pointing left
            head = f"{x1 + 6:g},{y1 - 4:g} {x1 + 6:g},{y1 + 4:g} {x1:g},{y1:g}"
        parts.append(f'<polygon points="{head}" fill="{ARROW_COLOR}"/>')
        if route.label:
            x, y = route.label_at
            anchor = "end" if route.points[-1][0] < route.points[-2][0] else "start"
            parts.append(
                f'<text x="{x:g}" y="{y:g}" font-size="9" font-family="sans-serif" '
                f'fill="#444" text-anchor="{anchor}">{escape(route.label)}</text>'
            )
    return (
        f'<svg width="{chart_layout.width:g}" height="{chart_layout.height:g}" '
        'style="position:absolute;left:0;top:0">' + "".join(parts) + "</svg>"
    )


@functools.lru_cache(maxsize=64)
def _static_parts(chart: Flowchart) -> tuple[FlowchartLayout, str]:
    """The layout and the arrows, computed once per flowchart."""
    chart_layout = layout(chart)
    return chart_layout, _svg(chart_layout)


def flowchart_html(chart: Flowchart, active: str | None = None, visited: Iterable[str] = ()) -> str:
    """``chart`` as HTML with the ``active`` step highlighted.

    ``visited`` steps (those passed since the last picture) are tinted: a fit's rounds take
    milliseconds and most of that is spent waiting (step E), so the latest step alone
    would hide the loop D-E-F-H-I-J-K that the master runs through.

    The DOM is a contract for the browser test: the wrapper is
    ``<div class="chimera-flowchart-body" data-machine=... data-active-step=...>``, each step
    a ``<div class="chimera-step" data-step="D">``, the active one also ``chimera-step-active``,
    the visited ones ``chimera-step-visited``.
    """
    visited = set(visited)
    chart_layout, svg = _static_parts(chart)
    boxes = []
    for box in chart_layout.boxes.values():
        is_active = box.letter == active
        was_visited = box.letter in visited and not is_active
        style = _BOX_STYLE.format(
            x=f"{box.x:g}",
            y=f"{box.y:g}",
            w=f"{box.width:g}",
            h=f"{box.height:g}",
            line=f"{box.height - 2:g}",
            background=ACTIVE_COLOR
            if is_active
            else VISITED_COLOR
            if was_visited
            else SIDE_COLOR
            if box.side
            else MAIN_COLOR,
            border=f"2px solid {ACTIVE_EDGE_COLOR}" if is_active else f"1px solid {EDGE_COLOR}",
        )
        classes = "chimera-step" + (
            " chimera-step-active" if is_active else " chimera-step-visited" if was_visited else ""
        )
        boxes.append(
            f'<div class="{classes}" data-step="{box.letter}" style="{style}">'
            f"<b>{box.letter}</b>&nbsp; {escape(box.label)}</div>"
        )
    return (
        f'<div class="chimera-flowchart-body" data-machine="{escape(chart.machine)}" '
        f'data-active-step="{escape(active or "")}" style="position:relative;'
        f'width:{chart_layout.width:g}px;height:{chart_layout.height:g}px">'
        + svg
        + "".join(boxes)
        + "</div>"
    )
