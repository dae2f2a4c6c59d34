"""Charts of a fit, each a plain function returning a matplotlib ``Figure``.

They build ``matplotlib.figure.Figure`` objects directly (no pyplot state), so they are safe
from any thread, work in scripts and the CLI (``fig.savefig("loss.png")``), and display in a
notebook as they are. The dashboard draws the same charts live.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

__all__ = ["plot_latency", "plot_latency_over_rounds", "plot_loss"]


def plot_loss(
    losses: Sequence[float],
    *,
    reference: float | None = None,
    title: str = "Loss per round",
    label: str = "train loss (standardized)",
    marks: dict[int, str] | None = None,
) -> Figure:
    """Loss per round, with an optional reference line (e.g. one machine's optimum) and
    vertical marks at rounds where something happened (``{22: "worker3 killed"}``)."""
    figure = Figure(figsize=(6.4, 3.6), layout="constrained")
    axes = figure.subplots()
    axes.plot(range(1, len(losses) + 1), losses, lw=2, label=label)
    if reference is not None:
        axes.axhline(reference, ls="--", color="tab:green", label="one-machine optimum")
    for round_number, text in (marks or {}).items():
        axes.axvline(round_number, ls=":", color="tab:red")
        axes.annotate(
            text,
            (round_number, 1),
            xycoords=("data", "axes fraction"),
            xytext=(3, -12),
            textcoords="offset points",
            color="tab:red",
            fontsize=8,
        )
    axes.set(xlabel="round", ylabel="loss", title=title)
    axes.legend(loc="upper right")
    return figure


# Log-scale ticks as plain milliseconds ("3", "10", "200"), not "3x10^0".
_MILLISECONDS = FuncFormatter(lambda value, _position: f"{value:g}")


def _log_ms_axis(axes) -> None:
    axes.set_yscale("log")
    axes.yaxis.set_major_formatter(_MILLISECONDS)
    axes.yaxis.set_minor_formatter(_MILLISECONDS)


def _calls(time_log: pd.DataFrame, endpoint: str | None) -> pd.DataFrame:
    calls = time_log if endpoint is None else time_log[time_log["endpoint"].str.endswith(endpoint)]
    return calls[calls["status"] == "200"]


def plot_latency(time_log: pd.DataFrame, *, endpoint: str | None = "fit-step") -> Figure:
    """Distribution of each worker's latency (box plot, log scale) from the time log
    (:func:`chimera_nb.logs.read_time_log`); ``endpoint`` filters by path suffix."""
    calls = _calls(time_log, endpoint)
    workers = sorted(calls["worker"].unique())
    figure = Figure(figsize=(4.8, 3.6), layout="constrained")
    axes = figure.subplots()
    axes.boxplot(
        [calls.loc[calls["worker"] == w, "latency_ms"] for w in workers],
        tick_labels=workers,
        showfliers=False,
    )
    _log_ms_axis(axes)
    axes.set(ylabel=f"{endpoint or 'call'} latency, ms", title="Per-worker latency")
    return figure


def plot_latency_over_rounds(
    time_log: pd.DataFrame, *, endpoint: str | None = "fit-step"
) -> Figure:
    """Each worker's latency per round (log scale): a straggler shows as a line on top."""
    calls = _calls(time_log, endpoint).dropna(subset=["round"])
    figure = Figure(figsize=(4.8, 3.6), layout="constrained")
    axes = figure.subplots()
    for worker, rows in calls.groupby("worker"):
        per_round = rows.groupby("round")["latency_ms"].max()
        axes.plot(per_round.index.astype(int), per_round.to_numpy(), lw=1, label=worker)
    _log_ms_axis(axes)
    axes.set(xlabel="round", ylabel="latency, ms", title="Latency over rounds")
    axes.legend(ncols=2, fontsize=8)
    return figure
