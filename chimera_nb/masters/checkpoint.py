"""Checkpoints of a parameter server's fit, so that a fit survives a crash of its master.

Every ``checkpoint_every`` rounds the master saves what it would need to go on: the weights,
the round, the seeds of the mini-batches, the loss curve and the history (the file is
:mod:`.checkpoint_file`'s job: written atomically, read without pickle). A master made by
:meth:`CheckpointedFit.from_checkpoint` then continues at the next round, as if nothing had
happened: with the same weights, learning rate and mini-batches, the weights it ends with are
those of an uninterrupted fit, and its loss curve and history hold every round once.

Examples
--------
>>> master = ParameterServerMaster(checkpoint_every=10)  # doctest: +SKIP
>>> master.fit(cluster)  # the master's process dies at round 57  # doctest: +SKIP
>>> master = ParameterServerMaster.from_checkpoint("chimera_checkpoints")  # doctest: +SKIP
>>> master.fit(cluster)  # rounds 51 to the end  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any, ClassVar

import numpy as np

from .._exceptions import ConfigurationError
from ..algorithms import make_schedule
from ..logs import status_logger
from .checkpoint_file import DEFAULT_CHECKPOINT_DIR, Checkpoint, read_checkpoint, write_checkpoint
from .estimator import Constraint, Interval
from .linear_model import LinearModel

__all__ = ["CHECKPOINT_CONSTRAINTS", "CheckpointedFit"]


class _FolderPath:
    """A constraint: the path of a folder, as a ``str`` or a ``pathlib.Path``."""

    def __call__(self, value: Any) -> bool:
        return isinstance(value, (str, os.PathLike))

    def __str__(self) -> str:
        return "a folder's path (a str or a pathlib.Path)"


#: The constraints of the two parameters, for the master's table.
CHECKPOINT_CONSTRAINTS: dict[str, list[Constraint]] = {
    "checkpoint_every": [None, Interval(int, 1, None, closed="left")],
    "checkpoint_dir": [None, _FolderPath()],
}


class CheckpointedFit:
    """Mixin of :class:`~chimera_nb.ParameterServerMaster`: write a checkpoint every
    ``checkpoint_every`` rounds (:meth:`_maybe_checkpoint`), and resume from one
    (:meth:`from_checkpoint`, then ``fit``)."""

    role: ClassVar[str]
    checkpoint_every: int | None = None
    checkpoint_dir: str | None = None
    _resume_from: Checkpoint | None = None
    #: The first round of the running fit: 1, or the round after a checkpoint's.
    _first_round: int = 1

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, **params: Any) -> Any:
        """A master that continues the checkpointed fit at ``path`` (the checkpoint file, or
        the folder it was written to): its next ``fit(workers)`` starts at the round after
        the checkpoint's, with its weights, seeds, loss curve and history.

        The master has the checkpoint's parameters, changed by ``params`` (say a larger
        ``max_iter``, or the ``aggregator`` object a checkpoint cannot hold); it predicts
        with the checkpoint's weights until that fit ends.

        Raises
        ------
        ConfigurationError
            No readable checkpoint at ``path``, or ``params`` change its ``model_type``.
        """
        checkpoint = read_checkpoint(path, cls.role)
        saved = checkpoint.model.model_type
        if params.get("model_type", saved) != saved:
            raise ConfigurationError(
                f"{checkpoint.path} holds a {saved}'s weights; it cannot resume as a "
                f"{params['model_type']}: drop model_type=, or fit a new master."
            )
        saved_params = {k: v for k, v in checkpoint.params.items() if k in cls._parameter_names()}
        master = cls(**{**saved_params, **params})
        missing = [name for name in checkpoint.unsaved if name not in params]
        if missing:  # the resumed fit would use their defaults
            message = "%s cannot hold %s: pass them to from_checkpoint"
            status_logger.warning(message, checkpoint.path, ", ".join(missing))
        master._resume_from = checkpoint
        master._model = checkpoint.model
        master.history_, master.loss_curve_ = list(checkpoint.history), checkpoint.loss_curve
        return master

    def _start_or_resume(self, names: list[str]) -> None:
        """End of step C: where the fit starts. Afresh: at round 1, one mini-batch seed per
        worker drawn from ``random_state``. A master made by :meth:`from_checkpoint`: at the
        round after the checkpoint's, with its weights, seeds, losses and history, once the
        workers are checked to hold the data it was fitted on."""
        self._schedule = make_schedule(
            self.learning_rate_schedule, self.learning_rate, self.power_t
        )
        seeds = np.random.SeedSequence(self.random_state).generate_state(len(names))
        self.worker_seeds_ = dict(zip(names, seeds.tolist()))
        self.loss_curve_: list[float] = []
        self.n_iter_, self.converged_, self._first_round = 0, False, 1
        self._encoded_history: list[str] = []
        checkpoint = self._resume_from
        if checkpoint is None:
            return
        _check_same_model(checkpoint, self.model_type, self._training)
        self._resume_from = None  # resumed once: the next fit starts afresh
        saved = checkpoint.model
        self._training = dataclasses.replace(
            saved, weights=saved.weights.copy(), bias=saved.bias.copy()
        )
        # The checkpoint's seed of each worker it knew: their mini-batches go on as before.
        self.worker_seeds_.update({n: s for n, s in checkpoint.worker_seeds.items() if n in names})
        self.history_.extend(checkpoint.history)
        self.loss_curve_, self.n_iter_ = list(checkpoint.loss_curve), checkpoint.n_iter
        self._first_round = checkpoint.round_number + 1
        message = "%s resumed from checkpoint %s at round %d"
        status_logger.info(message, self.role, checkpoint.path, checkpoint.round_number)

    def _maybe_checkpoint(self, round_number: int) -> None:
        """After step K: every ``checkpoint_every`` rounds, save the fit's state."""
        if not self.checkpoint_every or round_number % self.checkpoint_every:
            return
        started = time.perf_counter()
        folder = self.checkpoint_dir or DEFAULT_CHECKPOINT_DIR
        encoded = self._encoded_history  # the records written before, as JSON
        path = write_checkpoint(self._checkpoint(round_number), folder, encoded=encoded)
        milliseconds = 1000 * (time.perf_counter() - started)
        message = "%s checkpoint of round %d written to %s (%.1f ms)"
        status_logger.info(message, self.role, round_number, path, milliseconds)

    def _checkpoint(self, round_number: int) -> Checkpoint:
        """The running fit's state after ``round_number`` rounds."""
        params = {
            k: os.fspath(v) if isinstance(v, os.PathLike) else v
            for k, v in self.get_params().items()
        }
        saved = {
            k: v for k, v in params.items() if v is None or isinstance(v, (bool, int, float, str))
        }
        return Checkpoint(
            role=self.role,
            round_number=round_number,
            params=saved,
            model=self._training,
            worker_seeds=self.worker_seeds_,
            n_iter=self.n_iter_,
            loss_curve=self.loss_curve_,
            history=self.history_,
            converged=self.converged_,
            unsaved=sorted(set(params) - set(saved)),
        )


def _check_same_model(checkpoint: Checkpoint, model_type: str, fresh: LinearModel) -> None:
    """Refuse to resume on workers whose data the checkpoint's model cannot be fitted on
    (other columns or classes), or as another kind of model; warn if the data's statistics
    moved (the checkpoint's standardization is kept, so its weights keep their meaning)."""
    saved = checkpoint.model
    differences = []
    if model_type != saved.model_type:
        differences.append(f"model_type is {model_type!r}, the checkpoint's {saved.model_type!r}")
    if fresh.columns != saved.columns:
        missing = [c for c in saved.columns if c not in fresh.columns]
        extra = [c for c in fresh.columns if c not in saved.columns]
        how = f"missing {missing}, extra {extra}" if missing or extra else "in another order"
        differences.append(f"the workers' columns differ from the checkpoint's ({how})")
    if fresh.classes != saved.classes:
        differences.append(
            f"the workers' classes are {fresh.classes}, the checkpoint's {saved.classes}"
        )
    if differences:
        raise ConfigurationError(
            f"cannot resume from {checkpoint.path}: " + "; ".join(differences) + ". Resume on "
            "the workers (and data) the checkpoint's fit ran on, or fit a new master."
        )
    if not np.allclose(fresh.standardizer.feature_mean, saved.standardizer.feature_mean, rtol=1e-9):
        status_logger.warning(
            "resuming from %s on data whose means differ from the checkpoint's: the fit goes "
            "on, but will not end where the interrupted one would have",
            checkpoint.path,
        )
