"""Each worker's latency: boxes with their outliers, and a line per worker over rounds.

A straggler shows as outliers first (a worker answering 200 ms late now and then), so the
boxes keep them: a box alone would hide a worker that is fast most of the time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Union

import numpy as np
import pandas as pd
from matplotlib import cbook
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .chart import Chart, log_ms_axis

__all__ = ["Endpoint", "latency_boxes", "plot_latency", "plot_latency_over_rounds"]

Endpoint = Union[str, tuple[str, ...], None]


def _calls(time_log: pd.DataFrame, endpoint: Endpoint) -> pd.DataFrame:
    """The successful calls to ``endpoint`` (a path suffix, several, or None for all)."""
    calls = time_log if endpoint is None else time_log[time_log["endpoint"].str.endswith(endpoint)]
    return calls[calls["status"] == "200"]


def _endpoint_name(endpoint: Endpoint) -> str:
    if endpoint is None:
        return "call"
    return "/".join(
        e.rsplit("/", 1)[-1] for e in ([endpoint] if isinstance(endpoint, str) else endpoint)
    )


def _no_calls_yet(axes) -> None:
    axes.text(0.5, 0.5, "no calls yet", ha="center", va="center", transform=axes.transAxes)
    axes.set_xticks([])
    axes.set_yticks([])


def latency_boxes(
    latencies: Mapping[str, Sequence[float]], *, max_outliers: int = 40
) -> list[dict]:
    """Box-plot numbers per worker, by matplotlib's rule (whiskers at 1.5 times the
    interquartile range, points beyond them are outliers), for the dashboard to draw what
    :func:`plot_latency` draws.

    Returns one dict per worker with ``worker``, ``n``, ``q1``, ``median``, ``q3``, ``low``
    and ``high`` (the whiskers) and ``outliers`` (the ``max_outliers`` farthest from the
    median, so that a long fit sends a bounded list).
    """
    boxes = []
    for worker, values in latencies.items():
        values = np.asarray(values, dtype=float)
        if not len(values):
            continue
        stats = cbook.boxplot_stats(values)[0]
        outliers = np.asarray(stats["fliers"])
        farthest = outliers[np.argsort(-np.abs(outliers - stats["med"]))[:max_outliers]]
        boxes.append(
            {
                "worker": worker,
                "n": len(values),
                "q1": float(stats["q1"]),
                "median": float(stats["med"]),
                "q3": float(stats["q3"]),
                "low": float(stats["whislo"]),
                "high": float(stats["whishi"]),
                "outliers": sorted(float(v) for v in farthest),
            }
        )
    return boxes


def plot_latency(
    time_log: pd.DataFrame,
    *,
    endpoint: Endpoint = "fit-step",
    notes: Mapping[str, str] | None = None,
    figsize: tuple[float, float] = (4.8, 3.6),
) -> Figure:
    """Distribution of each worker's latency (box plot with outliers, log scale) from the
    time log (:func:`chimera_nb.logs.read_time_log`) or spans (``spans_.to_frame()``);
    ``endpoint`` filters by path suffix (or suffixes), and ``notes`` go under a worker's
    name (``{"worker4": "+200 ms"}``)."""
    calls = _calls(time_log, endpoint)
    workers = sorted(calls["worker"].unique())
    figure = Chart(figsize=figsize, layout="constrained")
    axes = figure.subplots()
    axes.set_title("Per-worker latency")
    if not workers:
        _no_calls_yet(axes)
        return figure
    notes = notes or {}
    axes.boxplot(
        [calls.loc[calls["worker"] == w, "latency_ms"] for w in workers],
        tick_labels=[f"{w}\n({notes[w]})" if notes.get(w) else w for w in workers],
        flierprops={"marker": ".", "markersize": 4, "markeredgecolor": "tab:red"},
    )
    log_ms_axis(axes)
    axes.set(ylabel=f"{_endpoint_name(endpoint)} latency, ms")
    return figure


def plot_latency_over_rounds(
    time_log: pd.DataFrame,
    *,
    endpoint: Endpoint = "fit-step",
    figsize: tuple[float, float] = (4.8, 3.6),
) -> Figure:
    """Each worker's latency per round (log scale): a straggler shows as a line on top.

    Calls made outside rounds (a bagging fit asks each worker once) are drawn in the
    order they were made, against the call number. The legend sits beside the axes, so it
    never covers a line.
    """
    calls = _calls(time_log, endpoint)
    by_round = calls.dropna(subset=["round"])
    figure = Chart(figsize=figsize, layout="constrained")
    axes = figure.subplots()
    axes.set_title("Latency over rounds")
    if calls.empty:
        _no_calls_yet(axes)
        return figure
    x_label = "round" if len(by_round) else "call"
    for worker, rows in (by_round if len(by_round) else calls).groupby("worker"):
        if x_label == "round":
            per_round = rows.groupby("round")["latency_ms"].max()
            x, y = per_round.index.astype(int), per_round.to_numpy()
        else:
            x, y = range(1, len(rows) + 1), rows["latency_ms"].to_numpy()
        axes.plot(x, y, lw=1, marker="o" if len(y) < 20 else None, ms=3, label=worker)
    log_ms_axis(axes)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set(xlabel=x_label, ylabel="latency, ms")
    if x_label == "call":
        axes.set_title("Latency per call")
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    return figure
