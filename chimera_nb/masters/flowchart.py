"""A master's flowchart as data (lettered steps and arrows), and where each box and arrow goes.

Every master follows a flowchart: the seed's lettered state machines for the parameter server
and bagging, and one of its own for each new algorithm. The master's fit loop calls one named
method per step and publishes each step change on its event bus (:mod:`.events`), so that
anything (the status log, a progress bar, the dashboard) can follow it.

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

from dataclasses import dataclass

__all__ = [
    "ACTIVE_COLOR",
    "ACTIVE_EDGE_COLOR",
    "ARROW_COLOR",
    "EDGE_COLOR",
    "MAIN_COLOR",
    "SIDE_COLOR",
    "VISITED_COLOR",
    "Box",
    "Flowchart",
    "FlowchartLayout",
    "Route",
    "chain",
    "layout",
]


@dataclass(frozen=True)
class Flowchart:
    """A machine's steps (letter -> short label, in order) and its arrows ``(from, to, label)``.

    ``machine`` names it in events ("parameter-server fit"). The first step is where the
    machine idles, the second is the request that starts an action (:attr:`start`), the last
    is where the action ends (:attr:`last`).
    """

    machine: str
    steps: dict[str, str]
    edges: tuple[tuple[str, str, str], ...] = ()

    def label(self, letter: str) -> str:
        return self.steps[letter]

    @property
    def first(self) -> str:
        return next(iter(self.steps))

    @property
    def start(self) -> str:
        return list(self.steps)[1]

    @property
    def last(self) -> str:
        return list(self.steps)[-1]

    def __hash__(self) -> int:  # the steps are a dict: hash what identifies the chart
        return hash((self.machine, tuple(self.steps.items()), self.edges))


def chain(letters: str) -> tuple[tuple[str, str, str], ...]:
    """Unlabelled arrows from each letter to the next: ``chain("ABC")`` is A->B, B->C."""
    return tuple((a, b, "") for a, b in zip(letters, letters[1:]))


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
