"""Helpers for the graded labs (``notebooks/labs/``): put a student's code into a real fit, and
keep what the run did so that a grader can check it.

A student writes the pure pieces of an algorithm: a shard's gradient, an aggregation rule, a
soft vote, a round policy, a consistency rule. These helpers run them where they belong, on
real workers and a real master, and keep the run's protocol trace:

* :func:`setup` starts a lab: a time limit on every cell, and the worker launcher warmed up;
* :class:`LabSGDWorker`, :class:`LabClassificationWorker`, :class:`LabRingWorker`: workers
  that compute with the student's function (it travels to the worker process as source,
  :mod:`.shipping`): a gradient, a bootstrap sample, a top-k encoder, a ring step;
* :class:`BaggingMaster`: a bagging master whose bootstrap seeds come from the student;
* :func:`start_cluster`, :func:`fit`, :func:`run`: a small cluster (slowed or killed workers
  included), a fit whose student rules run under time limits, and the :class:`LabRun` it
  leaves: ``history``, ``spans``, ``rule_calls``, ``round_seconds()``...;
* :func:`central_twin`: the same rounds on one machine, to compare a distributed fit with;
  :func:`ring_allreduce_with`: a ring all-reduce in one process, from the student's steps;
* :func:`time_limit`: stop code that runs too long (every test of a lab uses it).

Why so careful with time: an autograder runs many notebooks in a row, and a student's loop
that never ends must fail its question, not hang the grading. Every piece of student code
here runs on a main thread under a limit (:mod:`.limits`, :mod:`.handover`), and every
cluster closes when its run ends.

Examples
--------
>>> from chimera_nb import ParameterServerMaster, labs  # doctest: +SKIP
>>> lab_run = labs.run(
...     ParameterServerMaster("regressor", max_iter=20, aggregator=MyWeightedMean()),
...     labs.LabSGDWorker("regressor", gradient=my_squared_loss_gradient),
...     X, y, n_workers=3, proportions=[0.6, 0.3, 0.1],
... )
>>> lab_run.ok, lab_run.history[-1].answered  # doctest: +SKIP
(True, ['worker1', 'worker2', 'worker3'])
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .colab import unpack_public_tests, write_public_tests
    from .handover import RuleCall
    from .limits import TimeLimitError, limit_cells, time_limit
    from .masters import BaggingMaster
    from .ring import ring_allreduce_with
    from .runs import LabRun, fit, run, start_cluster
    from .twin import CentralTwin, central_twin
    from .workers import LabClassificationWorker, LabRingWorker, LabSGDWorker

__all__ = [
    "BaggingMaster",
    "CentralTwin",
    "LabClassificationWorker",
    "LabRingWorker",
    "LabRun",
    "LabSGDWorker",
    "RuleCall",
    "TimeLimitError",
    "central_twin",
    "fit",
    "limit_cells",
    "ring_allreduce_with",
    "run",
    "setup",
    "start_cluster",
    "time_limit",
    "unpack_public_tests",
    "write_public_tests",
]

#: Seconds any cell of a lab may run (every cell of the kit's labs takes a few seconds).
CELL_TIME_LIMIT = 45.0

# Imported on first use (PEP 562): a lab worker's process imports this package for
# LabSGDWorker and should not pay for masters, clusters or otter.
_LAZY = {
    "BaggingMaster": ".masters",
    "CentralTwin": ".twin",
    "LabClassificationWorker": ".workers",
    "LabRingWorker": ".workers",
    "LabRun": ".runs",
    "LabSGDWorker": ".workers",
    "RuleCall": ".handover",
    "TimeLimitError": ".limits",
    "central_twin": ".twin",
    "fit": ".runs",
    "limit_cells": ".limits",
    "ring_allreduce_with": ".ring",
    "run": ".runs",
    "start_cluster": ".runs",
    "time_limit": ".limits",
    "unpack_public_tests": ".colab",
    "write_public_tests": ".colab",
}


def setup(cell_time_limit: float | None = CELL_TIME_LIMIT) -> None:
    """Start a lab notebook: stop any cell that runs longer than ``cell_time_limit`` seconds
    (a loop that never ends fails its cell, and the grading goes on), and start the worker
    launcher in the background so that the first cluster starts fast."""
    from ..cluster import start_launcher
    from .limits import limit_cells

    limited = limit_cells(cell_time_limit)
    start_launcher()
    if limited:
        print(f"Lab ready: a cell that runs longer than {cell_time_limit:g} s is stopped.")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
