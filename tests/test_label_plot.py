"""Tests for chimera_nb.plots.labels: the count of each class on each client."""

from __future__ import annotations

from io import BytesIO

import numpy as np
import pytest

from chimera_nb.algorithms import split
from chimera_nb.plots import label_counts, plot_label_distribution

Y = np.array([0, 0, 1, 2, 2, 2, 1, 0])


def test_label_counts_count_each_class_on_each_client() -> None:
    # Execute
    clients, classes, counts = label_counts({"a": Y[:3], "b": Y[3:]})

    # Assert: a holds 0 0 1; b holds 2 2 2 1 0
    assert clients == ["a", "b"]
    assert classes == [0, 1, 2]
    np.testing.assert_array_equal(counts, [[2, 1, 0], [1, 1, 3]])


def test_label_counts_read_the_shards_split_returns() -> None:
    # Prepare
    shards = split(Y.reshape(-1, 1), Y, 2)

    # Execute
    clients, _, counts = label_counts(shards)

    # Assert
    assert clients == ["client1", "client2"]
    assert counts.sum() == len(Y)


def test_plot_label_distribution_stacks_one_bar_segment_per_class_and_client() -> None:
    # Prepare
    y = np.repeat(np.arange(10), 30)
    shards = split(y, y, 4, "dirichlet", alpha=0.1, random_state=0)

    # Execute
    figure = plot_label_distribution(shards)

    # Assert: 10 classes x 4 clients bars; each client's stack is its shard's size
    axes = figure.axes[0]
    assert len(axes.patches) == 40
    tops = {}
    for bar in axes.patches:
        tops[bar.get_x()] = max(tops.get(bar.get_x(), 0), bar.get_y() + bar.get_height())
    assert sorted(tops.values()) == sorted(len(y_k) for _, y_k in shards)
    assert [text.get_text() for text in axes.get_legend().get_texts()] == [
        str(k) for k in range(10)
    ]
    buffer = BytesIO()
    figure.savefig(buffer, format="png")
    assert buffer.getvalue().startswith(b"\x89PNG")


def test_an_empty_list_of_clients_is_refused() -> None:
    with pytest.raises(ValueError, match="one array of labels per client"):
        label_counts([])
