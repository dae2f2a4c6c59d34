"""Cluster backends: start and stop workers, and tell a master where they listen.

``LocalCluster`` (module ``process``) runs workers as local processes, the default.

``LocalCluster`` is imported on first use (PEP 562) rather than here: the zygote runs as a
module of this package, and should not pay for httpx and the cluster code it never uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .states import ClusterState, WorkerState

if TYPE_CHECKING:
    from .process import LocalCluster, shutdown_launcher, start_launcher, sweep_stale_workers

__all__ = [
    "ClusterState",
    "LocalCluster",
    "WorkerState",
    "shutdown_launcher",
    "start_launcher",
    "sweep_stale_workers",
]

_LAZY = {"LocalCluster", "shutdown_launcher", "start_launcher", "sweep_stale_workers"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from . import process

        return getattr(process, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
