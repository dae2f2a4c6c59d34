"""The lifecycles of a worker and of a cluster, as enums.

A dashboard colours a worker by its :class:`WorkerState`; a cluster refuses calls that make
no sense in its :class:`ClusterState` with a sentence saying what to do instead.
"""

from __future__ import annotations

from enum import Enum

__all__ = ["ClusterState", "WorkerState"]


class WorkerState(str, Enum):
    """What a cluster last knew about one worker."""

    #: Launched, but not yet answering ``GET /health``.
    STARTING = "starting"
    #: Answered ``GET /health`` with 200.
    UP = "up"
    #: Alive, but told to answer late (``LocalCluster.slow``): a straggler.
    SLOW = "slow"
    #: The process is gone, or it did not answer ``GET /health`` in time.
    FAILED = "failed"
    #: Stopped on purpose (the cluster was closed, or never started).
    STOPPED = "stopped"


class ClusterState(str, Enum):
    """Where a cluster is in its life: created, running, or closed for good."""

    #: Created; nothing started yet (also after a failed ``start()``, which may be retried).
    NEW = "new"
    #: ``start()`` succeeded; workers may be killed and restarted.
    RUNNING = "running"
    #: ``close()`` ran; the cluster cannot be used again.
    CLOSED = "closed"
