"""Who holds what in feature-split model parallelism: a grid of row groups by column blocks.

Each :class:`~chimera_nb.FeatureSplitWorker` says which columns it holds and which rows (the
first row and how many, in the label holder's order). The master builds the grid from those
answers, so that the same master runs both layouts:

* **model parallel** (one row group): worker ``c`` holds column block ``c`` of every row;
* **hybrid** (R row groups): every column block is held R times, once per row group, and the
  R replicas of a block are data parallel: their gradients are averaged, weighted by rows.

The grid is checked before any round: every row group holds the same column blocks, no
column is in two blocks, and the row groups tile the labels' rows exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._exceptions import ConfigurationError, FitDivergedError, QuorumError
from ..algorithms import ColumnStatistics, Standardizer
from ..wire.feature_split_models import BlockResponse
from .broadcast import Broadcast

__all__ = ["FeatureGrid", "RowGroup", "require_every_block"]


@dataclass(frozen=True)
class RowGroup:
    """Rows ``first_row`` to ``first_row + n_samples``; ``workers[c]`` holds block ``c``."""

    first_row: int
    n_samples: int
    workers: list[str]

    @property
    def rows(self) -> slice:
        return slice(self.first_row, self.first_row + self.n_samples)


@dataclass(frozen=True)
class FeatureGrid:
    """The blocks (their columns, in the model's order), the row groups, and each block's
    column statistics merged over the row groups."""

    blocks: list[list[str]]
    row_groups: list[RowGroup]
    statistics: list[ColumnStatistics]

    @classmethod
    def of(cls, answers: dict[str, BlockResponse], n_labels: int) -> FeatureGrid:
        """The grid of these workers' answers (in worker order), for ``n_labels`` labels;
        a :class:`ConfigurationError` saying what does not fit."""
        by_first_row: dict[int, dict[tuple[str, ...], str]] = {}
        for name, answer in answers.items():
            group = by_first_row.setdefault(answer.first_row, {})
            key = tuple(answer.columns)
            if key in group:
                raise ConfigurationError(
                    f"{group[key]} and {name} hold the same columns of the same rows: give "
                    "each row group each column block once"
                )
            group[key] = name
        blocks = list(next(iter(by_first_row.values())))
        cls._check_blocks(blocks, by_first_row)
        row_groups = [
            RowGroup(first, answers[group[blocks[0]]].n_samples, [group[b] for b in blocks])
            for first, group in sorted(by_first_row.items())
        ]
        cls._check_rows(row_groups, answers, n_labels)
        statistics = [
            ColumnStatistics.combine(
                [
                    ColumnStatistics(
                        answers[g.workers[c]].n_samples,
                        np.array(answers[g.workers[c]].feature_sum),
                        np.array(answers[g.workers[c]].feature_m2),
                    )
                    for g in row_groups
                ]
            )
            for c in range(len(blocks))
        ]
        return cls([list(block) for block in blocks], row_groups, statistics)

    @staticmethod
    def _check_blocks(
        blocks: list[tuple[str, ...]], by_first_row: dict[int, dict[tuple[str, ...], str]]
    ) -> None:
        columns = [column for block in blocks for column in block]
        twice = sorted({column for column in columns if columns.count(column) > 1})
        if twice:
            raise ConfigurationError(
                f"columns {twice} are in two blocks: each column belongs to one block"
            )
        for first, group in by_first_row.items():
            if set(group) != set(blocks):
                raise ConfigurationError(
                    f"the row group starting at row {first} holds blocks {sorted(group)} but "
                    f"the first holds {sorted(blocks)}: every row group needs every block"
                )

    @staticmethod
    def _check_rows(
        row_groups: list[RowGroup], answers: dict[str, BlockResponse], n_labels: int
    ) -> None:
        expected_first = 0
        for group in row_groups:
            sizes = {name: answers[name].n_samples for name in group.workers}
            if len(set(sizes.values())) > 1 or group.first_row != expected_first:
                raise ConfigurationError(
                    f"the workers must tile the rows: the row group starting at row "
                    f"{group.first_row} (expected {expected_first}) holds rows {sizes}"
                )
            expected_first += group.n_samples
        if expected_first != n_labels:
            raise ConfigurationError(
                f"the workers hold {expected_first} rows but the master holds {n_labels} "
                "labels: give the master the labels of exactly the rows the workers hold"
            )

    @property
    def columns(self) -> list[str]:
        return [column for block in self.blocks for column in block]

    @property
    def offsets(self) -> list[slice]:
        """Each block's columns within :attr:`columns` (and within the weights)."""
        bounds = np.cumsum([0] + [len(block) for block in self.blocks])
        return [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]

    def block_of(self, name: str) -> int:
        return next(g.workers.index(name) for g in self.row_groups if name in g.workers)

    def holds(self, name: str) -> str:
        """What worker ``name`` holds, for a message: ``"columns ['pH', 'alcohol']"``."""
        if not any(name in group.workers for group in self.row_groups):
            return "a block"
        return f"columns {self.blocks[self.block_of(name)]}"

    def standardizer(self, target: ColumnStatistics | None) -> Standardizer:
        """The standardization of all the columns (block by block), and of a target."""
        return Standardizer.from_statistics(
            ColumnStatistics(
                self.statistics[0].count,
                np.concatenate([s.sum for s in self.statistics]),
                np.concatenate([s.m2 for s in self.statistics]),
            ),
            target,
        )


def require_every_block(replies: Broadcast, what: str, grid: FeatureGrid | None = None) -> None:
    """Every worker must answer: a missing block cannot be left out of a sum of scores, so
    one failure fails the call (a :class:`QuorumError` naming the worker and its columns;
    a :class:`FitDivergedError` if its weights overflowed)."""
    if not replies.failed:
        return
    for name, reason in replies.failed.items():
        if "HTTP 422: learning_rate" in reason:
            raise FitDivergedError(f"the fit diverged: {name} {reason}")
    reasons = "; ".join(
        f"{name} ({grid.holds(name) if grid else 'a block'}) {reason}"
        for name, reason in replies.failed.items()
    )
    raise QuorumError(
        f"{what} reached {len(replies.results)} of {len(replies.results) + len(replies.failed)} "
        f"workers ({reasons}). A feature split needs every block every round (its partial "
        "scores cannot be skipped): restart the worker (cluster.status() shows it) and fit "
        "again.",
        replies.answered,
        dict(replies.failed),
    )
