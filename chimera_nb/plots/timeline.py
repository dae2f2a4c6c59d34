"""Swimlanes of the last rounds, from spans: when each worker was called, when it answered,
and how long it then waited for the slowest (the barrier of a synchronous round).

One lane per worker; each round is drawn from its first send, and rounds sit side by side at
one common scale of milliseconds, separated by a small gap (the master's own time between two
rounds is left out, so that slow motion, which holds a round for a second, does not squeeze
the calls into slivers). In a call's bar the request travels, the worker computes and the
reply travels back: the master sees only the whole, so one bar. The dashboard draws the same
rounds (:func:`timeline_rounds`) in the browser; later topics (staleness, ring steps, pipeline
bubbles) draw on the same lanes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from matplotlib.figure import Figure

from ..spans import Span
from .chart import Chart

__all__ = ["TimelineCall", "TimelineRound", "plot_timeline", "side_by_side", "timeline_rounds"]

GAP = 0.15  # the gap between two rounds, as a share of their mean time


@dataclass(frozen=True)
class TimelineCall:
    """One call in a round, in milliseconds from the round's first send."""

    worker: str
    start_ms: float
    end_ms: float
    ok: bool
    bytes_sent: int = 0
    bytes_received: int = 0


@dataclass(frozen=True)
class TimelineRound:
    """The calls of one round (``round_number`` None: calls made outside rounds)."""

    round_number: int | None
    started: float  # the first send, in seconds since the epoch
    calls: tuple[TimelineCall, ...]

    @property
    def barrier_ms(self) -> float:
        """When the last answer came: a synchronous round waits until then."""
        return max((call.end_ms for call in self.calls), default=0.0)


def timeline_rounds(
    spans: Iterable[Span], last_rounds: int = 8, *, ending_at: int | None = None
) -> list[TimelineRound]:
    """The calls of the last ``last_rounds`` rounds (those up to round ``ending_at``, to
    look back), oldest first. Without any round (a bagging fit), the last calls form one
    block, so the picture is never empty.

    A worker that reports its own work (a pipeline stage: one span per op it computed,
    ``peer`` itself) is drawn by that work alone, not by the master's call around it nor the
    frames its neighbours sent it: its lane then shows its ops, and the gaps between them
    are the pipeline's bubble."""
    by_round: dict[int | None, list[Span]] = {}
    for span in spans:
        by_round.setdefault(span.round_number, []).append(span)
    numbers = sorted(n for n in by_round if n is not None and (ending_at is None or n <= ending_at))
    keys: Sequence[int | None] = numbers[-last_rounds:] if numbers else [None]
    rounds = []
    for key in keys:
        calls = by_round.get(key, [])
        computing = {span.worker for span in calls if span.peer == span.worker}
        calls = [s for s in calls if s.worker not in computing or s.peer == s.worker]
        if not calls:
            continue
        first = min(span.start for span in calls)
        rounds.append(
            TimelineRound(
                key,
                first,
                tuple(
                    TimelineCall(
                        span.worker,
                        (span.start - first) * 1e3,
                        (span.end - first) * 1e3,
                        span.ok,
                        span.bytes_sent,
                        span.bytes_received,
                    )
                    for span in calls
                ),
            )
        )
    return rounds


def side_by_side(rounds: Sequence[TimelineRound]) -> tuple[list[float], float]:
    """Where each round starts on the common axis (ms), and the axis' length."""
    gap = GAP * sum(r.barrier_ms for r in rounds) / max(len(rounds), 1)
    offsets, x = [], 0.0
    for r in rounds:
        offsets.append(x)
        x += r.barrier_ms + gap
    return offsets, max(x - gap, 1e-9)


def _natural(name: str) -> list:
    """``"worker10"`` after ``"worker9"``: numbers in names compare as numbers."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def plot_timeline(
    spans: Iterable[Span],
    *,
    last_rounds: int = 8,
    workers: Sequence[str] | None = None,
    figsize: tuple[float, float] = (8.0, 3.2),
) -> Figure:
    """Swimlanes of the calls of the last ``last_rounds`` rounds (``master.spans_``): a bar
    per call (red if it failed), then a light bar while the worker waits for the slowest.

    ``workers`` orders the lanes (default: by name, ``worker2`` before ``worker10``). A straggler's lane is the one
    with long bars; the others' light bars show the time they wait for it.
    """
    rounds = timeline_rounds(spans, last_rounds)
    names = list(workers or sorted({c.worker for r in rounds for c in r.calls}, key=_natural))
    lane = {name: i for i, name in enumerate(names)}
    figure = Chart(figsize=figsize, layout="constrained")
    axes = figure.subplots()
    axes.set_title(f"Timeline: the calls of the last {len(rounds)} rounds", pad=28)
    if not rounds:
        axes.text(0.5, 0.5, "no calls yet", ha="center", va="center", transform=axes.transAxes)
        axes.set_xticks([])
        axes.set_yticks([])
        return figure
    offsets, total = side_by_side(rounds)
    for x0, r in zip(offsets, rounds):
        for call in r.calls:
            y = lane.setdefault(call.worker, len(lane))
            axes.barh(y, r.barrier_ms - call.end_ms, left=x0 + call.end_ms, color="#e3e3e3")
            color = "tab:blue" if call.ok else "tab:red"
            axes.barh(y, call.end_ms - call.start_ms, left=x0 + call.start_ms, color=color)
        label = "outside rounds" if r.round_number is None else f"round {r.round_number}"
        axes.text(x0, -0.7, f"{label}\n{r.barrier_ms:.1f} ms", fontsize=8, va="bottom")
        axes.axvline(x0 + r.barrier_ms, color="#888", lw=0.8, ls=":")
    axes.set_yticks(range(len(lane)), list(lane))
    axes.set_ylim(len(lane) - 0.5, -1.0)
    axes.set_xlim(0, total)
    axes.set_xticks([])
    axes.set_xlabel("time within each round (rounds side by side; gaps not to scale)")
    return figure
