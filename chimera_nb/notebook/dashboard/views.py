"""What each part of the live view shows, as plain data for the browser to draw.

Each function reads only the shape every master has (``role``, ``max_rounds``, ``flowcharts``,
``history_`` and ``spans_`` through a :class:`~.reading.FitReader`) and the dashboard's state,
never a concrete master class, so a new algorithm gets its dashboard for free. The values are
small dicts and lists of numbers and strings: JSON for the widget (:mod:`.live`), and easy to
check in a test.
"""

from __future__ import annotations

import functools
from typing import Any

from ...masters.flowchart import Flowchart, layout
from ...plots import TimelineRound, side_by_side
from ...states import WorkerState
from .reading import FitReader, thin
from .state import Snapshot

__all__ = [
    "flowchart_data",
    "loss_data",
    "network_words",
    "round_time_data",
    "status_data",
    "timeline_data",
    "workers_data",
]

TIMELINE_ROUNDS = 40  # rounds the browser can scroll back through


@functools.lru_cache(maxsize=32)
def flowchart_data(chart: Flowchart) -> dict:
    """The boxes and arrows of a flowchart (its layout, :func:`~chimera_nb.masters.flowchart.
    layout`), for the browser to draw and highlight."""
    drawn = layout(chart)
    return {
        "machine": chart.machine,
        "width": drawn.width,
        "height": drawn.height,
        "boxes": [
            {"letter": b.letter, "label": b.label, "x": b.x, "y": b.y, "w": b.width, "h": b.height}
            | {"side": b.side}
            for b in drawn.boxes.values()
        ],
        "routes": [
            {"points": r.points, "label": r.label, "at": r.label_at, "dashed": r.dashed}
            for r in drawn.routes
        ],
    }


def status_data(
    master: Any,
    snapshot: Snapshot,
    reader: FitReader,
    names: list[str],
    *,
    mode: str,
    lab_closed: bool,
    heartbeats: float | None = None,
) -> dict:
    """The status line: the master, its action, the round out of the most, rounds per
    second, the workers' states, whether it runs at full speed or in slow motion, and the
    seconds between two heartbeats while the cluster sends them (``cluster.watch()``)."""
    machine = snapshot.latest.machine if snapshot.latest else master.flowcharts[0].machine
    fitting = snapshot.fit_running and not lab_closed
    rounds = snapshot.round_number if fitting else reader.n_records
    counts: dict[str, int] = {}
    for name in names:
        state = snapshot.states.get(name)
        key = state.value if state is not None else "unknown"
        counts[key] = counts.get(key, 0) + 1
    per_second = reader.rounds_per_second(2.0 if fitting else None)
    return {
        "role": master.role,
        "action": machine.split()[-1],
        "round": rounds or 0,
        "max_rounds": master.max_rounds,
        "rounds_per_s": None if per_second is None else round(per_second, 1),
        "workers": ", ".join(f"{n} {state}" for state, n in counts.items()),
        "n_workers": len(names),
        "fitting": fitting,
        "closed": lab_closed,
        "mode": mode,
        "heartbeats": heartbeats,
    }


def loss_data(master: Any, snapshot: Snapshot, reader: FitReader, reference: float | None):
    """The loss per round (thinned to a few hundred points, the last round always in),
    the marks of what happened, and the one-machine reference if there is one."""
    rounds, losses = thin([r for r, _ in reader.losses], [v for _, v in reader.losses])
    return {
        "rounds": rounds,
        "values": losses,
        "last_round": rounds[-1] if rounds else 0,
        "max_rounds": master.max_rounds,
        "reference": reference,
        "marks": snapshot.marks[-12:],
        "no_rounds": master.max_rounds is None,
    }


def round_time_data(reader: FitReader) -> dict:
    rounds, times = reader.round_times()
    rounds, times = thin(rounds, [round(t, 3) for t in times])
    return {"rounds": rounds, "ms": times}


def timeline_data(
    rounds: list[TimelineRound],
    names: list[str],
    staleness: dict[tuple[str, int | None], int] | None = None,
) -> dict:
    """The last rounds' calls as lanes (one per worker): each call ``[lane, start, end,
    ok, staleness]`` in ms from its round's first send, each round at its place on a common
    axis. ``staleness`` (SSP and ASP, by worker and clock: see
    :meth:`~.reading.FitReader.staleness`) says how many clocks the weights the call was
    computed on had missed; None elsewhere."""
    staleness = staleness or {}
    lanes = list(names) + sorted({c.worker for r in rounds for c in r.calls} - set(names))
    lane = {name: i for i, name in enumerate(lanes)}
    offsets, total = side_by_side(rounds)
    return {
        "lanes": lanes,
        "total": round(total, 3),
        "rounds": [
            {
                "round": r.round_number,
                "offset": round(offset, 3),
                "barrier": round(r.barrier_ms, 3),
                "calls": [
                    [
                        lane[c.worker],
                        round(c.start_ms, 3),
                        round(c.end_ms, 3),
                        c.ok,
                        staleness.get((c.worker, r.round_number)),
                    ]
                    for c in r.calls
                ],
            }
            for offset, r in zip(offsets, rounds)
        ],
    }


def workers_data(
    names: list[str], snapshot: Snapshot, reader: FitReader, latest: TimelineRound | None
) -> list[dict]:
    """One entry per worker for the cluster view: its state, a short failure reason (the
    whole one for a tooltip), its delay, its emulated network, its latest latency and
    samples, the rounds it answered, whether it answered last in the latest round (the
    straggler), and under SSP or ASP its latest clock and how many clocks it ran ahead of
    the slowest (its staleness: None elsewhere)."""
    ended = {c.worker: c.end_ms for c in latest.calls if c.ok} if latest else {}
    last_to_answer = max(ended, key=ended.get) if len(ended) > 1 else None
    entries = []
    for name in names:
        state = snapshot.states.get(name)
        failure = snapshot.failures.get(name) if state is WorkerState.FAILED else None
        latency, samples = reader.last.get(name, (None, None))
        clock, ahead = snapshot.clocks.get(name, (None, None))
        entries.append(
            {
                "name": name,
                "state": state.value if state is not None else "unknown",
                "short": failure.short if failure else "",
                "why": failure.reason if failure else "",
                "delay_ms": round(snapshot.delays.get(name, 0.0) * 1000),
                "latency_ms": None if latency is None or failure else round(latency, 2),
                "round_ms": round(ended[name], 2) if name in ended else None,
                "samples": samples,
                "answered": f"{reader.answered.get(name, 0)}/{reader.n_records}",
                "last": name == last_to_answer,
                "network": snapshot.networks.get(name, ""),
                "clock": clock,
                "ahead": ahead,
            }
        )
    return entries


def network_words(settings: Any) -> str:
    """A worker's emulated network (``cluster.networks()[name]``) in a few words:
    ``"+20 ms, 100 Mbit/s, 5% drop"``; empty for a normal one. A partition is left out: the
    worker shows failed, "partitioned"."""
    if settings is None:
        return ""
    words = []
    if getattr(settings, "latency_ms", 0):
        words.append(f"+{settings.latency_ms:g} ms")
    if getattr(settings, "bandwidth_mbps", None):
        words.append(f"{settings.bandwidth_mbps:g} Mbit/s")
    if getattr(settings, "drop", 0):
        words.append(f"{settings.drop * 100:g}% drop")
    return ", ".join(words)
