"""What a master's ``history_`` and ``spans_`` say, read a little at a time.

A long fit leaves thousands of records and spans; rereading them all several times a second
would cost more than the fit. :class:`FitReader` remembers how far it read and takes only
what is new, keeping what the charts need: the loss per round, when each round started, the
last calls (for the timeline) and each worker's recent latencies (for the boxes). A new fit
starts a new ``history_`` and ``spans_`` (see ``Master._begin_fit``), and the reader starts
over with it.

Only the dashboard's redraw thread uses a reader.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from ...plots import TimelineRound, latency_boxes, timeline_rounds
from ...spans import Span

__all__ = ["FitReader", "thin"]

_SPANS_KEPT = 4000  # recent calls kept for the timeline
_LATENCIES_KEPT = 1000  # recent successful calls per worker, for the boxes
_POINTS = 600  # most points of a line the browser draws


def thin(xs: list, ys: list, most: int = _POINTS) -> tuple[list, list]:
    """Every k-th point of a long line, and always the last: a 10,000-round loss curve
    looks the same in 600 points, and a message stays small."""
    if len(xs) <= most:
        return list(xs), list(ys)
    step = -(-len(xs) // most)
    keep = list(range(0, len(xs) - 1, step)) + [len(xs) - 1]
    return [xs[i] for i in keep], [ys[i] for i in keep]


class FitReader:
    """Reads one master's records and spans incrementally.

    Attributes
    ----------
    losses : list of (int, float)
        (round, loss) of each fit round that measured a loss.
    round_starts : dict of int to float
        When each round's first call was sent (seconds since the epoch).
    answered : dict of str to int
        Rounds each worker answered; ``n_records`` counts the rounds.
    last : dict of str to (float or None, int or None)
        Each worker's latest latency (ms) and sample count.
    """

    def __init__(self, master: Any) -> None:
        self.master = master
        self._history: list | None = None
        self._spans: Any = None
        self._reset_history([])
        self._reset_spans(None)

    def _reset_history(self, history: list) -> None:
        self._history, self._records_read = history, 0
        self.losses: list[tuple[int, float]] = []
        self.answered: dict[str, int] = {}
        self.last: dict[str, tuple[float | None, int | None]] = {}
        self.n_records = 0

    def _reset_spans(self, spans: Any) -> None:
        self._spans, self._spans_read = spans, 0
        self.recent: deque[Span] = deque(maxlen=_SPANS_KEPT)
        self.latencies: dict[str, deque[float]] = {}
        self.round_starts: dict[int, float] = {}

    def read(self) -> bool:
        """Take what is new since the last read; True if anything was."""
        return self._read_history() | self._read_spans()

    def _read_history(self) -> bool:
        history = getattr(self.master, "history_", None)
        if history is None:
            return False
        if history is not self._history:  # a new fit
            self._reset_history(history)
        new = history[self._records_read :]
        self._records_read += len(new)
        for record in new:
            self.n_records += 1
            if record.action == "fit" and record.loss is not None:
                self.losses.append((record.round_number, record.loss))
            for name in record.answered:
                self.answered[name] = self.answered.get(name, 0) + 1
                self.last[name] = (record.latency_ms.get(name), record.n_samples.get(name))
        return bool(new)

    def _read_spans(self) -> bool:
        spans = getattr(self.master, "spans_", None)
        if spans is None:
            return False
        if spans is not self._spans:  # a new fit
            self._reset_spans(spans)
        count = spans.count
        if count == self._spans_read:
            return False
        kept = spans.snapshot()
        new = kept[-min(count - self._spans_read, len(kept)) :]
        self._spans_read = count
        for span in new:
            self.recent.append(span)
            if span.ok and span.peer != span.worker:  # a call, not a stage's own compute
                latencies = self.latencies.setdefault(span.worker, deque(maxlen=_LATENCIES_KEPT))
                latencies.append(span.latency_ms)
            if span.round_number is not None:
                first = self.round_starts.get(span.round_number, span.start)
                self.round_starts[span.round_number] = min(first, span.start)
        return True

    # -- what the charts draw ------------------------------------------------------------

    def round_times(self) -> tuple[list[int], list[float]]:
        """Milliseconds from each round's first send to the next round's (the master's own
        time and any slow-motion hold included: what a round really takes)."""
        rounds = sorted(self.round_starts)
        starts = [self.round_starts[r] for r in rounds]
        return rounds[:-1], [(b - a) * 1e3 for a, b in zip(starts, starts[1:])]

    def rounds_per_second(self, window: float | None = 2.0) -> float | None:
        """Rounds started in the last ``window`` seconds of the fit, per second (None: over
        the whole fit)."""
        if len(self.round_starts) < 2:
            return None
        starts = sorted(self.round_starts.values())
        recent = starts if window is None else [s for s in starts if s >= starts[-1] - window]
        if len(recent) < 2:  # rounds slower than the window: the last two rounds
            recent = starts[-2:]
        span = recent[-1] - recent[0]
        return (len(recent) - 1) / span if span > 0 else None

    def timeline(self, last_rounds: int) -> list[TimelineRound]:
        return timeline_rounds(self.recent, last_rounds)

    def staleness(self) -> dict[tuple[str, int | None], int]:
        """How stale each recent gradient was, by worker and clock (the spans' ``staleness``,
        under SSP and ASP; empty elsewhere): for the timeline's tooltips."""
        return {
            (span.worker, span.round_number): span.staleness
            for span in self.recent
            if span.staleness is not None
        }

    def boxes(self, names: list[str]) -> list[dict]:
        """Box-plot numbers of each worker's recent latencies, in the order of ``names``."""
        order = [n for n in names if n in self.latencies] + sorted(set(self.latencies) - set(names))
        return latency_boxes({name: list(self.latencies[name]) for name in order})
