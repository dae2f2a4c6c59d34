"""Checking what a user hands a cluster: worker names and targets, and per-worker options
given as a list or a mapping. Every mistake is a :class:`~chimera_nb.ConfigurationError`
raised before anything starts (the rules themselves are in :mod:`chimera_nb.validation`)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .._exceptions import ConfigurationError
from ..validation import validate_worker_name, validate_worker_ports

if TYPE_CHECKING:
    from ._records import WorkerRecord

__all__ = [
    "checked_target",
    "named_targets",
    "owned_workers",
    "per_worker",
    "shard_workers",
    "with_shard",
]

R = TypeVar("R", bound="WorkerRecord")


def named_targets(workers: Any) -> dict[str, Any]:
    if isinstance(workers, Mapping):
        targets = dict(workers)
    elif isinstance(workers, Sequence) and not isinstance(workers, (str, bytes)):
        targets = {f"worker{k}": target for k, target in enumerate(workers, start=1)}
    else:
        raise ConfigurationError(
            "workers must be a list of workers or a mapping name -> worker, got "
            f"{type(workers).__name__}; for one worker, write [worker]."
        )
    if not targets:
        raise ConfigurationError("workers is empty; a cluster needs at least one worker.")
    for name in targets:
        validate_worker_name(name)
    return targets


def checked_target(name: str, target: Any, cwd: Path) -> Any:
    if isinstance(target, (str, os.PathLike)):
        script = Path(target) if Path(target).is_absolute() else cwd / target
        if not script.is_file():
            raise ConfigurationError(f"Worker {name!r}: there is no worker script {script}.")
        return script
    if not callable(getattr(target, "serve", None)):
        raise ConfigurationError(
            f"Worker {name!r} is a {type(target).__name__}, which has no serve() method. "
            f"Pass a worker such as SGDWorker(), or the path of a worker script."
        )
    return target


def per_worker(value: Any, names: list[str], what: str, default: Any) -> dict[str, Any]:
    """One value per worker, from a mapping (missing names get ``default``) or a list."""
    if value is None:
        return dict.fromkeys(names, default)
    if isinstance(value, Mapping):
        unknown = sorted(set(value) - set(names))
        if unknown:
            raise ConfigurationError(
                f"{what} names {unknown}, which are not workers of this cluster ({names})."
            )
        return {name: value.get(name, default) for name in names}
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        if len(value) != len(names):
            raise ConfigurationError(
                f"{what} has {len(value)} entries for {len(names)} workers; give one per "
                f"worker, or a mapping name -> value."
            )
        return dict(zip(names, value))
    raise ConfigurationError(
        f"{what} must be a list (one per worker) or a mapping name -> value, "
        f"got {type(value).__name__}."
    )


def owned_workers(
    record: type[R],
    workers: Any,
    *,
    ports: Any,
    data_dirs: Any,
    cwd: Path,
) -> dict[str, R]:
    """The records of the workers a cluster starts itself (process and container backends):
    each with its checked ``target``, its host ``port`` (0: any free one) and its
    ``data_dir`` (by default ``<cwd>/chimera_train_data/<name>``, as in the seed)."""
    targets = named_targets(workers)
    names = list(targets)
    fixed_ports = validate_worker_ports(per_worker(ports, names, "ports", 0))
    folders = per_worker(data_dirs, names, "data_dirs", None)
    return {
        name: record(
            name,
            target=checked_target(name, target, cwd),
            port=fixed_ports[name],
            data_dir=cwd / (folders[name] or Path("chimera_train_data", name)),
        )
        for name, target in targets.items()
    }


def shard_workers(
    worker: Any,
    X: Any,
    y: Any,
    n_workers: int,
    method: str = "contiguous",
    proportions: Sequence[float] | None = None,
    random_state: int | None = None,
    alpha: float | None = None,
    labels_per_worker: int | None = None,
) -> list[Any]:
    """``n_workers`` copies of ``worker``, copy k holding shard k of ``X, y``
    (``worker.with_data(X_k, y_k)``); what every backend's ``from_shards`` builds on.
    ``alpha`` and ``labels_per_worker`` are for the non-IID methods of
    :func:`~chimera_nb.algorithms.sharding.split`."""
    from ..algorithms.sharding import split

    _require_with_data(worker)
    try:
        shards = split(
            X,
            y,
            n_workers,
            method,  # type: ignore[arg-type]  # split names the methods it knows
            proportions=proportions,
            random_state=random_state,
            alpha=alpha,
            labels_per_worker=labels_per_worker,
        )
    except ValueError as error:
        raise ConfigurationError(f"Cannot split the data into shards: {error}") from error
    return [worker.with_data(X_k, y_k) for X_k, y_k in shards]


def with_shard(worker: Any, X: Any, y: Any) -> Any:
    """``worker.with_data(X, y)``: a worker holding its own shard; ``worker`` itself when
    neither ``X`` nor ``y`` is given (what ``add_worker`` starts)."""
    if X is None and y is None:
        return worker
    if X is None or y is None:
        raise ConfigurationError(
            "Give both X and y (the new worker's shard), or neither; got only "
            f"{'y' if X is None else 'X'}."
        )
    _require_with_data(worker)
    return worker.with_data(X, y)


def _require_with_data(worker: Any) -> None:
    if not callable(getattr(worker, "with_data", None)):
        raise ConfigurationError(
            f"{type(worker).__name__} has no with_data(X, y) method, so it cannot be "
            "given a shard. Pass a chimera-nb worker such as SGDWorker()."
        )


def feature_block_workers(
    worker: Any,
    X: Any,
    n_blocks: int | None,
    replicas: int = 1,
    blocks: Sequence[Sequence[int]] | None = None,
) -> dict[str, Any]:
    """The grid of feature-split workers: ``replicas`` contiguous row groups by ``n_blocks``
    contiguous column blocks (or the given ``blocks`` of column indices), each worker
    ``worker.with_block(X_rc, first_row)``; named ``block1, ...`` or, with replicas,
    ``rows1-block1, ...``. No labels: they stay with the master."""
    import numpy as np

    from ..algorithms.sharding import contiguous_shards
    from ..algorithms.vertical import feature_blocks, split_columns

    if not callable(getattr(worker, "with_block", None)):
        raise ConfigurationError(
            f"{type(worker).__name__} has no with_block(X) method: a feature split needs "
            "FeatureSplitWorker(...)"
        )
    n_features = np.shape(X)[1]
    try:
        columns = feature_blocks(n_features, None if blocks is not None else n_blocks, blocks)
        row_groups = contiguous_shards(len(X), replicas)
    except ValueError as error:
        raise ConfigurationError(f"Cannot split the data into feature blocks: {error}") from error
    workers = {}
    for r, rows in enumerate(row_groups, 1):
        part = X.iloc[rows] if hasattr(X, "iloc") else np.asarray(X)[rows]
        for c, (X_rc, block) in enumerate(zip(split_columns(part, columns), columns), 1):
            name = f"block{c}" if replicas == 1 else f"rows{r}-block{c}"
            names = None if hasattr(X, "columns") else [f"x{j}" for j in block]  # global names
            workers[name] = worker.with_block(X_rc, int(rows[0]), names)
    return workers
