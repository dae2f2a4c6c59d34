"""Type aliases and protocols shared by every layer, named once so that signatures read alike."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal, Protocol, Union, runtime_checkable

import numpy as np
import numpy.typing as npt

from .states import ClusterState, WorkerState

__all__ = [
    "ClassLabel",
    "Cluster",
    "Endpoints",
    "Matrix",
    "ModelType",
    "Shard",
    "Vector",
    "WorkerURL",
]

#: A 1-D float64 array, e.g. a bias or a flattened gradient.
Vector = npt.NDArray[np.float64]

#: A 2-D float64 array of shape ``(n_samples, n_features)`` or ``(n_classes, n_features)``.
Matrix = npt.NDArray[np.float64]

#: The indices of the rows that one worker holds.
Shard = npt.NDArray[np.intp]

#: The base URL of a worker server, such as ``"http://127.0.0.1:5001"``.
WorkerURL = str

#: Which workers a master drives: worker name -> base URL.
Endpoints = Mapping[str, WorkerURL]

#: The two model families of the seed's ``SGDWorker`` and ``ParameterServerMaster``.
ModelType = Literal["regressor", "classifier"]

#: A class label as it travels in JSON.
ClassLabel = Union[int, float, str]


@runtime_checkable
class Cluster(Protocol):
    """What a master (and a dashboard) needs of a set of running workers.

    Every backend (``LocalCluster``, ``DockerCluster``, ``SwarmCluster``,
    ``AttachedCluster``) is one; so is anything else that can say where its workers listen.
    A master also accepts a plain mapping of worker name to URL.
    """

    @property
    def name(self) -> str: ...

    @property
    def names(self) -> list[str]:
        """The workers' names, in order."""
        ...

    @property
    def endpoints(self) -> Mapping[str, WorkerURL]:
        """Worker name -> base URL."""
        ...

    @property
    def token(self) -> str | None:
        """The shared token the workers require, sent by the master (None: no token)."""
        ...

    @property
    def state(self) -> ClusterState: ...

    @property
    def run_dir(self) -> Path | None:
        """Where the workers' logs and the masters' log files go."""
        ...

    def status(self) -> Mapping[str, WorkerState]:
        """Each worker's state, probed now."""
        ...
