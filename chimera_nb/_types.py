"""Type aliases shared by every layer, named once so that signatures read alike."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, Union

import numpy as np
import numpy.typing as npt

__all__ = ["ClassLabel", "Endpoints", "Matrix", "ModelType", "Shard", "Vector", "WorkerURL"]

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
