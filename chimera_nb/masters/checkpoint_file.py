"""A checkpoint's file: how a parameter server's state is written and read back.

A checkpoint is one ``.npz`` file: the arrays (weights and bias in standardized units, the
standardizer's means and scales) as float64 arrays; the round, seeds, loss curve and the
master's parameters as a JSON document (``meta``); the history as JSON lines, one record a
line (``history``). No pickle: it is read with ``np.load(..., allow_pickle=False)``, so
opening a checkpoint runs no code.

It is written **atomically**: to a temporary file in the same folder, flushed to the disk
(``fsync``), then renamed over the previous checkpoint (``os.replace``, which is atomic). A
crash at any moment leaves the last complete checkpoint, never half of one. The file is made
with mode 0600 in a folder made with mode 0700; a folder that is a symbolic link, not yours,
or writable by others is refused, as the clusters' run folders are.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import stat
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._exceptions import ConfigurationError
from ..algorithms import Standardizer
from .history import RoundRecord
from .linear_model import LinearModel

__all__ = [
    "DEFAULT_CHECKPOINT_DIR",
    "Checkpoint",
    "checkpoint_file",
    "read_checkpoint",
    "write_checkpoint",
]

#: Bumped when the layout changes, so that an old file is refused with a clear message.
FORMAT_VERSION = 1
#: Where checkpoints go when ``checkpoint_dir`` is None: a folder beside the notebook.
DEFAULT_CHECKPOINT_DIR = "chimera_checkpoints"
_ARRAYS = ("weights", "bias", "feature_mean", "feature_scale")


@dataclass
class Checkpoint:
    """A fit's state after ``round_number`` rounds (whose weights were updated that often).

    ``params`` are the master's constructor arguments that JSON can hold; ``unsaved`` names
    the others (a custom ``aggregator`` object), which ``from_checkpoint`` must be given.
    """

    role: str
    round_number: int
    params: dict[str, Any]
    model: LinearModel  # weights in standardized units
    worker_seeds: dict[str, int]
    n_iter: int
    loss_curve: list[float]
    history: list[RoundRecord]
    converged: bool = False
    unsaved: list[str] = dataclasses.field(default_factory=list)
    path: Path | None = None  # where it was read from (not saved)


def checkpoint_file(folder: str | os.PathLike, role: str) -> Path:
    """The checkpoint of a master of this ``role`` in ``folder``: one file, replaced each
    time (``chimera_checkpoints/ParameterServerMaster.npz``)."""
    return Path(folder) / f"{role}.npz"


# -- writing ---------------------------------------------------------------------------------


def write_checkpoint(
    checkpoint: Checkpoint, folder: str | os.PathLike, *, encoded: list[str] | None = None
) -> Path:
    """Write ``checkpoint`` to ``folder`` atomically (see the module's docstring); return
    the file's path.

    ``encoded``: the history's records already encoded as JSON, which this extends with the
    records since. A master keeps it between checkpoints, so each record is encoded once
    (at round 1,000, encoding the whole history again would cost more than the round).
    """
    folder = Path(folder)
    _private_folder(folder)
    target = checkpoint_file(folder, checkpoint.role)
    descriptor, temporary = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as file:  # mkstemp made it 0600, with O_EXCL
            np.savez(file, **_to_arrays(checkpoint, [] if encoded is None else encoded))
            file.flush()
            os.fsync(file.fileno())  # on the disk before it takes the checkpoint's name
        os.replace(temporary, target)  # atomic: readers see the old file or the new one
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    _sync_folder(folder)  # the rename itself survives a power cut
    return target


def _to_arrays(checkpoint: Checkpoint, encoded: list[str]) -> dict[str, np.ndarray]:
    model = checkpoint.model
    meta = {
        "version": FORMAT_VERSION,
        "role": checkpoint.role,
        "round_number": checkpoint.round_number,
        "params": checkpoint.params,
        "unsaved": checkpoint.unsaved,
        "model_type": model.model_type,
        "classes": model.classes,
        "columns": model.columns,
        "target_mean": model.standardizer.target_mean,
        "target_scale": model.standardizer.target_scale,
        "worker_seeds": checkpoint.worker_seeds,
        "n_iter": checkpoint.n_iter,
        "loss_curve": checkpoint.loss_curve,
        "converged": checkpoint.converged,
    }
    encoded.extend(json.dumps(vars(r), default=_plain) for r in checkpoint.history[len(encoded) :])
    text = json.dumps(meta, default=_plain)  # floats keep every digit: they read back equal
    numbers = {  # float64 only: an object array would be pickled, which a reader refuses
        "weights": model.weights,
        "bias": model.bias,
        "feature_mean": model.standardizer.feature_mean,
        "feature_scale": model.standardizer.feature_scale,
    }
    arrays = {name: np.asarray(value, dtype=np.float64) for name, value in numbers.items()}
    history = "\n".join(encoded)  # JSON lines: one record a line
    return {"meta": _bytes(text), "history": _bytes(history), **arrays}


def _bytes(text: str) -> np.ndarray:
    return np.frombuffer(text.encode(), dtype=np.uint8)


def _plain(value: Any) -> Any:
    """numpy numbers as Python's; anything else JSON cannot hold as its text."""
    return value.item() if isinstance(value, np.generic) else str(value)


def _private_folder(folder: Path) -> None:
    """Make ``folder`` (mode 0700) or check it: a link, or a folder others may write in,
    would let another user choose what a later resume reads."""
    with contextlib.suppress(FileExistsError):
        folder.mkdir(mode=0o700, parents=True)
    info = os.lstat(folder)
    problem = None
    if stat.S_ISLNK(info.st_mode):
        problem = "is a symbolic link"
    elif not stat.S_ISDIR(info.st_mode):
        problem = "is not a folder"
    elif hasattr(os, "getuid") and info.st_uid != os.getuid():
        problem = f"belongs to user id {info.st_uid}, not to you"
    elif info.st_mode & 0o022:
        problem = f"may be written by other users (mode {stat.filemode(info.st_mode)})"
    if problem is not None:
        raise ConfigurationError(
            f"the checkpoint folder {folder} {problem}, so another user could change what a "
            "resumed fit reads; nothing was written. Pick another checkpoint_dir= (a folder "
            f"of yours), or fix this one (chmod 700 {folder})."
        )


def _sync_folder(folder: Path) -> None:
    if not hasattr(os, "O_DIRECTORY"):  # Windows: os.replace is durable enough there
        return
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


# -- reading ---------------------------------------------------------------------------------


def read_checkpoint(path: str | os.PathLike, role: str) -> Checkpoint:
    """The checkpoint at ``path`` (its file, or the folder it was written to).

    Raises
    ------
    ConfigurationError
        There is none, it is not a checkpoint (cut short, another file), it was written by
        another kind of master, or by another version of the format.
    """
    file = Path(path)
    if file.is_dir():
        file = checkpoint_file(file, role)
    if not file.is_file():
        raise ConfigurationError(
            f"there is no checkpoint at {file}; a fit writes one every k rounds when the "
            "master has checkpoint_every=k (in checkpoint_dir, default "
            f"{DEFAULT_CHECKPOINT_DIR}/)."
        )
    try:
        with np.load(file, allow_pickle=False) as stored:
            meta = json.loads(stored["meta"].tobytes().decode())
            lines = stored["history"].tobytes().decode().splitlines()
            arrays = {name: stored[name] for name in _ARRAYS}
        checkpoint = _from_arrays(meta, arrays, role)
        checkpoint.history = [RoundRecord(**json.loads(line)) for line in lines]
    except ConfigurationError:
        raise
    except (OSError, EOFError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as error:
        raise ConfigurationError(
            f"{file} is not a readable checkpoint ({type(error).__name__}: {error}). It may "
            "be another file or cut short; resume from another checkpoint, or fit afresh."
        ) from None
    checkpoint.path = file
    return checkpoint


def _from_arrays(meta: dict[str, Any], arrays: dict[str, np.ndarray], role: str) -> Checkpoint:
    if meta.get("version") != FORMAT_VERSION:
        raise ConfigurationError(
            f"this checkpoint has format version {meta.get('version')!r}, but this chimera-nb "
            f"reads version {FORMAT_VERSION}: resume it with the chimera-nb that wrote it."
        )
    if meta["role"] != role:
        raise ConfigurationError(
            f"this checkpoint was written by a {meta['role']}, not a {role}: load it with "
            f"{meta['role']}.from_checkpoint."
        )
    weights, bias = arrays["weights"], arrays["bias"]
    n_features = len(meta["columns"])
    if weights.shape != (len(bias), n_features) or arrays["feature_mean"].shape != (n_features,):
        raise ValueError(f"weights of shape {weights.shape} for {n_features} columns")
    standardizer = Standardizer(
        arrays["feature_mean"],
        arrays["feature_scale"],
        meta["target_mean"],
        meta["target_scale"],
    )
    model = LinearModel(
        meta["model_type"], standardizer, meta["classes"], meta["columns"], weights, bias
    )
    return Checkpoint(
        role=meta["role"],
        round_number=meta["round_number"],
        params=meta["params"],
        model=model,
        worker_seeds=meta["worker_seeds"],
        n_iter=meta["n_iter"],
        loss_curve=meta["loss_curve"],
        history=[],
        converged=meta["converged"],
        unsaved=meta["unsaved"],
    )
