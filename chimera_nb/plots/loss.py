"""The loss per round, with marks where something happened."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from matplotlib.figure import Figure

from .chart import Chart

__all__ = ["plot_loss"]


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
