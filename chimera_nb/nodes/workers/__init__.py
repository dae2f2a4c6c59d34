"""The original's ``chimera.nodes.workers``: the three workers, by their old path."""

from ...workers import ClassificationWorker, RegressionWorker, SGDWorker

__all__ = ["ClassificationWorker", "RegressionWorker", "SGDWorker"]
