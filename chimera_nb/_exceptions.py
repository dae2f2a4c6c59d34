"""The exceptions chimera-nb raises, as one tree.

::

    ChimeraError                 every error the kit raises on purpose
    ├── ConfigurationError       a constructor argument, CHIMERA_* variable or project file is wrong
    │   └── FitDivergedError     the loss grew without bound: the learning rate is too large
    ├── DatasetError             a dataset could not be downloaded, read or parsed
    ├── NotFittedError           predict (or coef_) was asked for before fit
    ├── FitInProgressError       a second fit was asked of a master that is fitting
    ├── FitCancelledError        a running fit was abandoned (cancel_fit, a shutdown)
    ├── ClusterError             workers could not be started, or the cluster was used after close
    └── WorkerError              a worker answered with an error, or not at all
        └── QuorumError          a round reached fewer workers than the quorum asks for

Each message says what happened, what was expected and what to do about it.
"""

from __future__ import annotations

__all__ = [
    "ChimeraError",
    "ClusterError",
    "ConfigurationError",
    "DatasetError",
    "FitCancelledError",
    "FitDivergedError",
    "FitInProgressError",
    "NotFittedError",
    "QuorumError",
    "WorkerError",
]


class ChimeraError(Exception):
    """Base class of every error chimera-nb raises on purpose."""


class ConfigurationError(ChimeraError, ValueError):
    """Raised when an argument, a ``CHIMERA_*`` variable or a seed project file is invalid.

    Raised before anything starts, so that no worker is left running.
    """


class FitDivergedError(ConfigurationError):
    """Raised when a fit diverges (the loss, or the weights the workers are sent, overflow):
    a setting is wrong, most often the learning rate; the message says which to lower."""


class DatasetError(ChimeraError):
    """Raised when a dataset cannot be downloaded, read or parsed."""


class NotFittedError(ChimeraError, AttributeError):
    """Raised when a master is asked to predict before ``fit`` succeeded."""


class FitInProgressError(ChimeraError, RuntimeError):
    """Raised when a master that is fitting is asked to fit again (from another thread, a
    notebook cell, or its REST endpoint): two fits at once would corrupt one model."""


class FitCancelledError(ChimeraError):
    """Raised by a fit that was abandoned before it ended (``master.cancel_fit()``, or the
    master shutting down); the master keeps the model it had before that fit."""


class ClusterError(ChimeraError, RuntimeError):
    """Raised when workers cannot be started, or a closed cluster is used again."""


class WorkerError(ChimeraError, RuntimeError):
    """Raised when a worker answers with an error or does not answer at all."""


class QuorumError(WorkerError):
    """Raised when fewer workers answered a round than the master's quorum requires.

    Attributes
    ----------
    answered : list of str
        Names of the workers that answered.
    failed : dict of str to str
        Worker name -> why it failed ("timed out after 2.0 s", "connection refused", ...).
    """

    def __init__(self, message: str, answered: list[str], failed: dict[str, str]) -> None:
        super().__init__(message)
        self.answered = answered
        self.failed = failed
