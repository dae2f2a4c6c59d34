"""The dashboard's pictures, as plain functions of what a master and the state say.

Each reads only the shape every master has (``role``, ``max_rounds``, ``history_``,
``spans_``), never a concrete master class, so a new algorithm gets its dashboard for free.
"""

from __future__ import annotations

from io import BytesIO
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from ...plots import plot_loss
from ...states import WorkerState

__all__ = ["NARROW", "WIDE", "loss_figure", "png", "status_html", "table_html"]

_DPI = 80
WIDE = {"left": 0.1, "right": 0.98, "bottom": 0.16, "top": 0.9}  # 8 x 3 inches
NARROW = {"left": 0.17, "right": 0.97, "bottom": 0.2, "top": 0.9}  # 4 x 3 inches
_ROW_COLORS = {
    WorkerState.FAILED: "#fde2e2",
    WorkerState.SLOW: "#fff3d6",
    WorkerState.STOPPED: "#eeeeee",
}


def png(figure: Figure, margins: dict[str, float]) -> bytes:
    """``figure`` as PNG bytes, with fixed margins: the constrained layout that the plot
    functions use would take 40% of the drawing time, several times a second."""
    figure.set_layout_engine("none")
    left, right, bottom, top = margins["left"], margins["right"], margins["bottom"], margins["top"]
    for axes in figure.axes:  # the plot functions draw one axes per figure
        axes.set_position((left, bottom, right - left, top - bottom))
    buffer = BytesIO()
    figure.savefig(buffer, format="png", dpi=_DPI)
    return buffer.getvalue()


def _state_name(state: WorkerState | None) -> str:
    return state.value if state is not None else "unknown"


def status_html(
    master: Any,
    machine: str,
    round_number: int | None,
    fit_running: bool,
    states: dict[str, WorkerState | None],
    lab_closed: bool,
) -> str:
    """One line: the master, its action, the round out of the most, the workers' states."""
    parts = [f"<b>{master.role}</b>", machine.split()[-1]]
    if master.max_rounds is not None:
        rounds = round_number if fit_running else len(getattr(master, "history_", []))
        parts.append(f"round {rounds or 0} / {master.max_rounds}")
    counts: dict[str, int] = {}
    for state in states.values():
        counts[_state_name(state)] = counts.get(_state_name(state), 0) + 1
    summary = ", ".join(f"{n} {state}" for state, n in counts.items())
    parts.append(f"{len(states)} workers ({summary})")
    if lab_closed:
        parts.append("lab closed")
    elif fit_running:
        parts.append("fitting")
    return '<div style="font-size:15px">' + " &middot; ".join(parts) + "</div>"


def loss_figure(
    master: Any, marks: dict[int, list[tuple[str, str]]], reference: float | None
) -> Figure:
    """The loss of each round of the fit (from ``history_``), with the marks of what
    happened; for a master without rounds, a sentence saying so in the chart's place."""
    if master.max_rounds is None:
        figure = Figure(figsize=(8.0, 3.0))
        axes = figure.add_subplot()
        axes.axis("off")
        axes.text(
            0.5,
            0.5,
            f"No loss per round: {master.role} has no rounds.\n"
            "Each worker fits its member once; predictions are combined.",
            ha="center",
            va="center",
            fontsize=12,
        )
        return figure
    history = list(getattr(master, "history_", []))
    losses = [r.loss for r in history if r.action == "fit" and r.loss is not None]
    return plot_loss(
        losses,
        reference=reference,
        marks={r: (", ".join(text for text, _ in m), m[0][1]) for r, m in marks.items()},
        n_rounds=master.max_rounds if master.max_rounds <= 2001 else None,
        figsize=(8.0, 3.0),
    )


def table_html(table: pd.DataFrame, reasons: dict[str, str]) -> str:
    """The worker table (:func:`chimera_nb.plots.worker_table`), a row per worker coloured by
    its state (``data-state`` for tests)."""
    cell = "border:1px solid #999;padding:2px 8px"
    head = "".join(
        f'<th style="{cell};background:#f4f4f4">{h}</th>'
        for h in ("worker", "state", "last latency", "samples", "rounds answered")
    )
    rows = []
    for name, row in table.iterrows():
        state = row["state"] or "unknown"
        why = reasons.get(name) if state == "failed" else None
        why = why or row["detail"]
        text = f"{state.upper() if state == 'failed' else state}" + (f" ({why})" if why else "")
        latency = row["last latency, ms"]
        latency = "—" if state == "failed" or pd.isna(latency) else f"{latency:.1f} ms"
        samples = "—" if pd.isna(row["samples"]) else f"{row['samples']:,}"
        color = _ROW_COLORS.get(WorkerState(state), "white") if state != "unknown" else "white"
        cells = "".join(
            f'<td style="{cell}">{value}</td>'
            for value in (name, text, latency, samples, row["rounds answered"])
        )
        rows.append(
            f'<tr data-worker="{name}" data-state="{state}" style="background:{color}">{cells}</tr>'
        )
    return (
        '<table class="chimera-workers-table" style="border-collapse:collapse;'
        f'font:12px sans-serif"><tr>{head}</tr>{"".join(rows)}</table>'
    )
