"""Cluster backends: start and stop workers, and tell a master where they listen.

Every backend is a :class:`BaseCluster` (module ``base``), which owns the lifecycle, the
registry by name, health waits, ``status()`` and the faults; a backend only says how its
workers start, stop, crash and freeze. :func:`cluster_class` gives a backend's class by the
name ``CHIMERA_BACKEND`` uses.

* ``LocalCluster`` (module ``process``) runs workers as local processes, the default.
* ``DockerCluster`` (module ``docker``) runs each worker in a Docker container.
* ``SwarmCluster`` (module ``swarm``) runs each worker as a Docker Swarm service, on one
  machine or several.
* ``AttachedCluster`` (module ``attach``) uses workers already running anywhere, by URL.

All are imported on first use (PEP 562) rather than here: the zygote runs as a module of
this package, and should not pay for httpx, the Docker SDK and the cluster code it never
uses.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ..states import ClusterState, WorkerState

if TYPE_CHECKING:
    from ._images import build_worker_image
    from ._options import feature_block_workers, shard_workers
    from .attach import AttachedCluster
    from .base import BaseCluster, cluster_class
    from .docker import DockerCluster
    from .process import LocalCluster, shutdown_launcher, start_launcher, sweep_stale_workers
    from .swarm import SwarmCluster

__all__ = [
    "AttachedCluster",
    "BaseCluster",
    "ClusterState",
    "DockerCluster",
    "LocalCluster",
    "SwarmCluster",
    "WorkerState",
    "build_worker_image",
    "cluster_class",
    "feature_block_workers",
    "shard_workers",
    "shutdown_launcher",
    "start_launcher",
    "sweep_stale_workers",
]

_LAZY = {
    "AttachedCluster": ".attach",
    "BaseCluster": ".base",
    "DockerCluster": ".docker",
    "LocalCluster": ".process",
    "SwarmCluster": ".swarm",
    "build_worker_image": "._images",
    "cluster_class": ".base",
    "feature_block_workers": "._options",
    "shard_workers": "._options",
    "shutdown_launcher": ".process",
    "start_launcher": ".process",
    "sweep_stale_workers": ".process",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
