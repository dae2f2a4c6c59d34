"""How the labels are spread over the clients: the picture of a non-IID split.

An IID split gives every client bars of the same colours in the same proportions; a
Dirichlet(0.1) split gives most clients one or two colours, and some clients many more rows
than others. Counts, not only which labels: a client with 3 rows of a class barely has it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from .chart import Chart

__all__ = ["label_counts", "plot_label_distribution"]


def label_counts(
    labels_per_client: Mapping[str, Any] | Sequence[Any],
) -> tuple[list[str], list[Any], np.ndarray]:
    """Client names, the classes (sorted) and the count of each class on each client, of
    shape ``(n_clients, n_classes)``.

    ``labels_per_client``: a mapping client name -> its labels, a list of label arrays
    (named ``client1``, ``client2``...), or a list of ``(X_k, y_k)`` shards as
    :func:`~chimera_nb.algorithms.sharding.split` returns them.
    """
    if isinstance(labels_per_client, Mapping):
        named = {name: np.asarray(labels) for name, labels in labels_per_client.items()}
    else:
        named = {
            f"client{k}": np.asarray(item[1] if isinstance(item, tuple) else item)
            for k, item in enumerate(labels_per_client, start=1)
        }
    if not named:
        raise ValueError("labels_per_client is empty: give one array of labels per client")
    classes = np.unique(np.concatenate([labels.ravel() for labels in named.values()]))
    counts = np.array(
        [[np.count_nonzero(labels == label) for label in classes] for labels in named.values()]
    )
    return list(named), classes.tolist(), counts


def plot_label_distribution(
    labels_per_client: Mapping[str, Any] | Sequence[Any],
    *,
    title: str = "Labels per client",
    figsize: tuple[float, float] = (6.4, 3.6),
) -> Figure:
    """Stacked bars, one per client: how many rows of each class it holds (see
    :func:`label_counts` for what ``labels_per_client`` may be).

    Examples
    --------
    >>> from chimera_nb.algorithms import split
    >>> import numpy as np
    >>> y = np.repeat(np.arange(10), 50)
    >>> figure = plot_label_distribution(split(y, y, 5, "dirichlet", alpha=0.1, random_state=0))
    """
    clients, classes, counts = label_counts(labels_per_client)
    figure = Chart(figsize=figsize, layout="constrained")
    axes = figure.subplots()
    colors = [_class_color(index, len(classes)) for index in range(len(classes))]
    bottom = np.zeros(len(clients))
    for index, label in enumerate(classes):
        axes.bar(clients, counts[:, index], bottom=bottom, color=colors[index], label=str(label))
        bottom += counts[:, index]
    axes.set(xlabel="client", ylabel="rows", title=title)
    axes.legend(title="class", loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    return figure


def _class_color(index: int, n_classes: int) -> Any:
    """A class's colour: tab10 for up to 10 classes, then tab20, then a continuous map."""
    if n_classes <= 10:
        return colormaps["tab10"](index)
    if n_classes <= 20:
        return colormaps["tab20"](index)
    return colormaps["viridis"](index / max(n_classes - 1, 1))
