"""Charts of a fit, each a plain function returning a matplotlib ``Figure``.

They build ``matplotlib.figure.Figure`` objects directly (no pyplot state), so they are safe
from any thread, work in scripts and the CLI (``fig.savefig("loss.png")``), and display in a
notebook as they are. The dashboard draws the same charts live.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Union

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

if TYPE_CHECKING:
    from .masters.flowchart import Flowchart
    from .masters.history import RoundRecord

__all__ = [
    "Chart",
    "plot_flowchart",
    "plot_latency",
    "plot_latency_over_rounds",
    "plot_loss",
    "worker_table",
]


class Chart(Figure):
    """A matplotlib ``Figure`` that shows itself in a notebook as a PNG, with no pyplot and
    no ``%matplotlib inline`` needed (the kit never touches pyplot's global state)."""

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=100)
        return buffer.getvalue()


def plot_loss(
    losses: Sequence[float],
    *,
    reference: float | None = None,
    title: str = "Loss per round",
    label: str = "train loss (standardized)",
    marks: Mapping[int, str | tuple[str, str]] | None = None,
    n_rounds: int | None = None,
    figsize: tuple[float, float] = (6.4, 3.6),
) -> Figure:
    """Loss per round, with an optional reference line (e.g. one machine's optimum) and
    vertical marks at rounds where something happened (``{22: "worker3 killed"}``, or
    ``{22: ("worker3 slowed", "tab:orange")}`` for another colour than red).

    ``n_rounds`` fixes the x axis to rounds 0..n_rounds (e.g. ``max_iter``), so that a
    live chart shows how far the fit has come.
    """
    figure = Chart(figsize=figsize, layout="constrained")
    axes = figure.subplots()
    axes.plot(range(1, len(losses) + 1), losses, lw=2, label=label)
    if reference is not None:
        axes.axhline(reference, ls="--", color="tab:green", label="one-machine optimum")
    last_round = max(n_rounds or 0, len(losses), 1)
    for i, (round_number, mark) in enumerate(sorted((marks or {}).items())):
        text, color = (mark, "tab:red") if isinstance(mark, str) else mark
        axes.axvline(round_number, ls=":", color=color)
        on_the_left = round_number > 0.7 * last_round  # keep the text inside the axes
        axes.annotate(
            text,
            (round_number, 1),
            xycoords=("data", "axes fraction"),
            xytext=(-3 if on_the_left else 3, -12 - 11 * (i % 4)),  # close marks: other lines
            textcoords="offset points",
            ha="right" if on_the_left else "left",
            color=color,
            fontsize=8,
        )
    if n_rounds is not None:
        axes.set_xlim(0, max(n_rounds, len(losses), 1))
    if not len(losses):
        axes.text(0.5, 0.5, "no rounds yet", ha="center", va="center", transform=axes.transAxes)
        axes.set_yticks([])
    axes.set(xlabel="round", ylabel="loss", title=title)
    axes.legend(loc="center right")  # the marks' text runs along the top
    return figure


# Log-scale ticks as plain milliseconds ("3", "10", "200"), not "3x10^0".
_MILLISECONDS = FuncFormatter(lambda value, _position: f"{value:g}")


def _log_ms_axis(axes) -> None:
    """Log scale labelled 1, 2, 5, 10, 20, 50... ms: a straggler's 200 ms and a healthy
    worker's 2 ms both read at a glance, and labels never pile up."""
    axes.set_yscale("log")
    axes.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    axes.yaxis.set_major_formatter(_MILLISECONDS)
    axes.yaxis.set_minor_formatter(NullFormatter())


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


def plot_latency(
    time_log: pd.DataFrame,
    *,
    endpoint: Endpoint = "fit-step",
    notes: Mapping[str, str] | None = None,
    figsize: tuple[float, float] = (4.8, 3.6),
) -> Figure:
    """Distribution of each worker's latency (box plot, log scale) from the time log
    (:func:`chimera_nb.logs.read_time_log`); ``endpoint`` filters by path suffix (or
    suffixes), and ``notes`` go under a worker's name (``{"worker4": "+200 ms"}``)."""
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
        showfliers=False,
    )
    _log_ms_axis(axes)
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
    order they were made, against the call number.
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
    _log_ms_axis(axes)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set(xlabel=x_label, ylabel="latency, ms")
    if x_label == "call":
        axes.set_title("Latency per call")
    axes.legend(ncols=2, fontsize=8)
    return figure


def plot_flowchart(flowchart: Flowchart, active: str | None = None) -> Figure:
    """A master's flowchart (``master.flowcharts``): one box per step, lettered as in the
    seed, the ``active`` step in orange.

    Each box is a patch with ``gid="step-<letter>"``, so a test or a script can find it.
    The dashboard draws the same layout as HTML.
    """
    from .masters.flowchart import (
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


def worker_table(
    history: Sequence[RoundRecord],
    states: Mapping[str, str] | None = None,
    *,
    delays: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """One row per worker: its state (and why), last latency, samples, rounds answered.

    Parameters
    ----------
    history : list of RoundRecord
        A master's ``history_`` (who answered and who failed each round).
    states : mapping of worker name to state, optional
        ``WorkerState`` values or strings (``cluster.status()``); by default a worker is
        "up" if it answered the last round, else "failed".
    delays : mapping of worker name to seconds, optional
        Delays injected with ``cluster.slow``: noted beside a slow worker's state.

    Returns
    -------
    DataFrame
        Indexed by ``worker``; columns ``state``, ``detail`` ("connection refused, round
        22"), ``last latency, ms``, ``samples`` and ``rounds answered`` ("21/37").
    """
    states, delays = states or {}, delays or {}
    names = list(states)
    answered: dict[str, int] = {}
    last_answer: dict[str, RoundRecord] = {}
    last_failure: dict[str, RoundRecord] = {}
    for record in history:  # one pass: a long fit has many rounds
        for name in record.answered:
            answered[name] = answered.get(name, 0) + 1
            last_answer[name] = record
        for name in record.failed:
            last_failure[name] = record
    names += [n for n in [*last_answer, *last_failure] if n not in names]
    rows = []
    for name in names:
        state = states.get(name)
        if state is None:
            state = "failed" if history and name in history[-1].failed else "up"
        state = getattr(state, "value", state)
        detail = ""
        if state == "failed" and name in last_failure:
            failure = last_failure[name]
            detail = f"{failure.failed[name]}, round {failure.round_number}"
        elif state == "slow" and delays.get(name):
            detail = f"+{delays[name] * 1000:g} ms injected"
        last = last_answer.get(name)
        rows.append(
            {
                "worker": name,
                "state": state,
                "detail": detail,
                "last latency, ms": last.latency_ms.get(name) if last else None,
                "samples": last.n_samples.get(name) if last else None,
                "rounds answered": f"{answered.get(name, 0)}/{len(history)}",
            }
        )
    columns = ["worker", "state", "detail", "last latency, ms", "samples", "rounds answered"]
    table = pd.DataFrame(rows, columns=columns).set_index("worker")
    table["last latency, ms"] = table["last latency, ms"].astype(float)
    table["samples"] = table["samples"].astype("Int64")
    return table
