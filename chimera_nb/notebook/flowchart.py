"""Where each box and arrow of a seed flowchart goes, and the flowchart as HTML.

One layout serves two drawings: the dashboard's HTML (redrawn ~10 times a second, so it is
plain strings, no matplotlib) and :func:`chimera_nb.plots.plot_flowchart` (a figure for
scripts). How the layout is chosen:

1. The *main column* is the longest path from the first step to the last along forward
   arrows (ties go to the earlier letter): idle, request, broadcast, wait... end.
2. Every other step is a *side box*, placed right of the step that branches to it (G
   "error to client" beside F "all workers failed?").
3. Arrows down the main column are straight; a branch is a horizontal arrow; an arrow
   from a side box back up (K "update weights" -> D, the next round) runs up an inner lane;
   one that goes on down (G -> M) runs down an outer, dashed lane.

The active step is orange; the HTML also tints the steps passed since the last picture,
so that the loop of a round (D E F H I J K) shows even when rounds take milliseconds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from html import escape

from ..masters.events import Flowchart

__all__ = [
    "ACTIVE_COLOR",
    "ACTIVE_EDGE_COLOR",
    "ARROW_COLOR",
    "EDGE_COLOR",
    "MAIN_COLOR",
    "SIDE_COLOR",
    "VISITED_COLOR",
    "Box",
    "FlowchartLayout",
    "Route",
    "flowchart_html",
    "layout",
]

# Geometry in pixels (the HTML uses them as they are; the figure as data units).
_ROW, _BOX_HEIGHT, _TOP = 35, 24, 6
_MAIN_X, _MAIN_WIDTH = 8, 232
_SIDE_X, _SIDE_WIDTH = 288, 136
_LANE_GAP = 16

MAIN_COLOR, SIDE_COLOR, EDGE_COLOR = "#e8f0fe", "#f2f2f2", "#7a8fb8"
ACTIVE_COLOR, ACTIVE_EDGE_COLOR, VISITED_COLOR = "#ffa500", "#b36b00", "#ffe2b0"
ARROW_COLOR = "#666666"


@dataclass(frozen=True)
class Box:
    """One step: its letter and label, and its rectangle (``x, y`` top left, in pixels)."""

    letter: str
    label: str
    x: float
    y: float
    width: float
    height: float
    side: bool  # a branch beside the main column

    @property
    def center_y(self) -> float:
        return self.y + self.height / 2


@dataclass(frozen=True)
class Route:
    """An arrow as a polyline (the head is at the last point) with its label."""

    source: str
    target: str
    points: tuple[tuple[float, float], ...]
    label: str
    label_at: tuple[float, float]
    dashed: bool = False


@dataclass(frozen=True)
class FlowchartLayout:
    machine: str
    boxes: dict[str, Box]
    routes: tuple[Route, ...]
    width: float
    height: float


def _main_column(chart: Flowchart) -> list[str]:
    """Step 1 of the module docstring: the longest forward path from the first step."""
    letters = list(chart.steps)
    order = {letter: i for i, letter in enumerate(letters)}
    longest: dict[str, list[str]] = {}
    for letter in reversed(letters):  # every forward arrow leads to a later letter
        nexts = sorted(
            (b for a, b, _ in chart.edges if a == letter and order[b] > order[a]), key=order.get
        )
        tails = [longest[b] for b in nexts]
        longest[letter] = [letter] + (max(tails, key=len) if tails else [])
    return longest[letters[0]]


def layout(chart: Flowchart) -> FlowchartLayout:
    """Boxes and arrows of ``chart``."""
    main = _main_column(chart)
    boxes: dict[str, Box] = {}
    for row, letter in enumerate(main):
        y = _TOP + row * _ROW
        boxes[letter] = Box(
            letter, chart.steps[letter], _MAIN_X, y, _MAIN_WIDTH, _BOX_HEIGHT, False
        )
    taken: set[int] = set()
    for letter in chart.steps:
        if letter in boxes:
            continue
        sources = [a for a, b, _ in chart.edges if b == letter and a in main]
        row = main.index(sources[0]) if sources else len(main)
        while row in taken:  # two branches from one row: the next row down
            row += 1
        taken.add(row)
        y = _TOP + row * _ROW
        boxes[letter] = Box(letter, chart.steps[letter], _SIDE_X, y, _SIDE_WIDTH, _BOX_HEIGHT, True)

    side_right = _SIDE_X + _SIDE_WIDTH
    inner_lane, outer_lane = side_right + _LANE_GAP, side_right + 2 * _LANE_GAP
    routes = []
    for source, target, label in chart.edges:
        a, b = boxes[source], boxes[target]
        if not a.side and not b.side and main.index(target) == main.index(source) + 1:
            x = a.x + a.width / 2
            points = ((x, a.y + a.height), (x, b.y))
            routes.append(Route(source, target, points, label, (x + 6, b.y - 2)))
        elif not a.side and b.side:
            points = ((a.x + a.width, a.center_y), (b.x, b.center_y))
            routes.append(Route(source, target, points, label, (a.x + a.width + 6, a.center_y - 4)))
        else:  # back up (a loop: inner lane) or on down (outer lane, dashed)
            back = b.y < a.y
            lane = inner_lane if back else outer_lane
            points = (
                (a.x + a.width, a.center_y),
                (lane, a.center_y),
                (lane, b.center_y),
                (b.x + b.width, b.center_y),
            )
            routes.append(
                Route(
                    source,
                    target,
                    points,
                    label,
                    (lane - 4, b.center_y - 4 if back else b.center_y + 10),
                    dashed=not back,
                )
            )
    height = max(box.y + box.height for box in boxes.values()) + _TOP
    return FlowchartLayout(chart.machine, boxes, tuple(routes), outer_lane + 8, height)


# -- HTML ------------------------------------------------------------------------------------

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


_cache: dict[tuple, tuple[FlowchartLayout, str]] = {}


def _static_parts(chart: Flowchart) -> tuple[FlowchartLayout, str]:
    """The layout and the arrows, computed once per flowchart (its steps hold a dict, so
    the flowchart itself cannot be a cache key)."""
    key = (chart.machine, tuple(chart.steps.items()), chart.edges)
    if key not in _cache:
        chart_layout = layout(chart)
        _cache[key] = chart_layout, _svg(chart_layout)
    return _cache[key]


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
