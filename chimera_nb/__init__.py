"""chimera-nb: a Jupyter-first teaching kit for distributed machine learning.

Masters coordinate workers over REST at the paths of the Chimera framework: a
:class:`ParameterServerMaster` trains linear models with :class:`SGDWorker` s (data
parallelism); an :class:`AggregationMaster` bags scikit-learn estimators on
:class:`RegressionWorker` s or :class:`ClassificationWorker` s (the seed's "model" and
"hybrid" parallelism). Workers run as local processes (:class:`LocalCluster`), Docker containers
(:class:`DockerCluster`), Swarm services (:class:`SwarmCluster`) or anywhere by URL
(:class:`AttachedCluster`), or, for a seed-style project, through :func:`run`.

>>> from chimera_nb import LocalCluster, ParameterServerMaster, SGDWorker  # doctest: +SKIP
>>> with LocalCluster.from_shards(SGDWorker("regressor"), X, y, n_workers=3) as cluster:  # doctest: +SKIP
...     master = ParameterServerMaster("regressor").fit(cluster)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._exceptions import (
    ChimeraError,
    ClusterError,
    ConfigurationError,
    DatasetError,
    FitCancelledError,
    FitDivergedError,
    FitInProgressError,
    NotFittedError,
    QuorumError,
    WorkerError,
)

if TYPE_CHECKING:
    from .cluster import AttachedCluster, DockerCluster, LocalCluster, SwarmCluster, WorkerState
    from .logs import read_time_log
    from .masters import (
        AggregationMaster,
        EventBus,
        FeatureSplitMaster,
        FederatedAveragingMaster,
        ParameterServerMaster,
        PipelineMaster,
        RingAllReduceMaster,
        ShardedParameterServerMaster,
        StepEvent,
    )
    from .notebook import Lab
    from .seed import ChimeraSettings, load_settings, run
    from .workers import (
        ClassificationWorker,
        FeatureSplitWorker,
        FederatedClient,
        ParameterShard,
        PipelineStageWorker,
        RegressionWorker,
        RingWorker,
        SGDWorker,
        ShardedSGDWorker,
    )

from ._version import __version__  # noqa: F401 - the package's version, chimera_nb.__version__

__all__ = [
    "AggregationMaster",
    "AttachedCluster",
    "ChimeraError",
    "ChimeraSettings",
    "ClassificationWorker",
    "ClusterError",
    "ConfigurationError",
    "DatasetError",
    "FitCancelledError",
    "FitDivergedError",
    "FitInProgressError",
    "DockerCluster",
    "EventBus",
    "FeatureSplitMaster",
    "FeatureSplitWorker",
    "FederatedAveragingMaster",
    "FederatedClient",
    "Lab",
    "LocalCluster",
    "NotFittedError",
    "ParameterServerMaster",
    "ParameterShard",
    "PipelineMaster",
    "PipelineStageWorker",
    "QuorumError",
    "RegressionWorker",
    "RingAllReduceMaster",
    "RingWorker",
    "SGDWorker",
    "ShardedParameterServerMaster",
    "ShardedSGDWorker",
    "StepEvent",
    "SwarmCluster",
    "WorkerError",
    "WorkerState",
    "load_settings",
    "read_time_log",
    "run",
]

# Public names are imported on first use (PEP 562): the worker fork server imports this
# package too, and should not pay for the masters' HTTP client or the CLI it never uses.
_LAZY = {
    "AggregationMaster": ".masters",
    "AttachedCluster": ".cluster",
    "ChimeraSettings": ".seed",
    "ClassificationWorker": ".workers",
    "DockerCluster": ".cluster",
    "EventBus": ".masters",
    "FeatureSplitMaster": ".masters",
    "FeatureSplitWorker": ".workers",
    "FederatedAveragingMaster": ".masters",
    "FederatedClient": ".workers",
    "Lab": ".notebook",
    "LocalCluster": ".cluster",
    "ParameterServerMaster": ".masters",
    "ParameterShard": ".workers",
    "PipelineMaster": ".masters",
    "PipelineStageWorker": ".workers",
    "RegressionWorker": ".workers",
    "RingAllReduceMaster": ".masters",
    "RingWorker": ".workers",
    "SGDWorker": ".workers",
    "ShardedParameterServerMaster": ".masters",
    "ShardedSGDWorker": ".workers",
    "StepEvent": ".masters",
    "SwarmCluster": ".cluster",
    "WorkerState": ".cluster",
    "load_settings": ".seed",
    "read_time_log": ".logs",
    "run": ".seed",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
