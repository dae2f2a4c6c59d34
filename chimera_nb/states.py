"""The lifecycles of a worker and of a cluster, as enums.

A dashboard colours a worker by its :class:`WorkerState`; a cluster refuses calls that make
no sense in its :class:`ClusterState` with a sentence saying what to do instead.
"""

from __future__ import annotations

from enum import Enum

__all__ = ["ClusterState", "WorkerFault", "WorkerState"]


class _State(str, Enum):
    """An enum whose repr reads as code (``WorkerState.UP``) in a notebook's output, rather
    than Python's ``<WorkerState.UP: 'up'>``."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}.{self.name}"


class WorkerState(_State):
    """What a cluster last knew about one worker."""

    #: Launched, but not yet answering ``GET /health``.
    STARTING = "starting"
    #: Answered ``GET /health`` with 200.
    UP = "up"
    #: Alive, but answering late (``slow()``) or frozen (``pause()``): a straggler.
    SLOW = "slow"
    #: Missed a heartbeat or a few (``cluster.watch()``): perhaps frozen, perhaps just late;
    #: a few more missed heartbeats make it FAILED, one answer makes it UP again.
    SUSPECT = "suspect"
    #: The process is gone, or it did not answer ``GET /health`` in time (or missed the
    #: heartbeats ``cluster.watch(fail_after=...)`` allows).
    FAILED = "failed"
    #: Stopped on purpose (the cluster was closed, or never started).
    STOPPED = "stopped"


class WorkerFault(_State):
    """What a cluster did to a worker on purpose, until ``restart()`` (or the undoing call)."""

    #: ``kill()``: the worker crashed; it shows FAILED.
    KILLED = "killed"
    #: ``pause()``: the worker is frozen and holds every request; it shows SLOW.
    PAUSED = "paused"
    #: ``disconnect()``: the worker is off its network and refuses calls; it shows FAILED.
    DISCONNECTED = "disconnected"
    #: ``partition()``: the worker hangs up on every call until ``heal()``; it shows FAILED.
    PARTITIONED = "partitioned"
    #: ``byzantine()``: the worker answers, wrongly (a corrupted gradient or update); it
    #: shows UP, since it is alive and answers on time: only the answers betray it.
    BYZANTINE = "byzantine"


class ClusterState(_State):
    """Where a cluster is in its life: created, running, or closed for good."""

    #: Created; nothing started yet (also after a failed ``start()``, which may be retried).
    NEW = "new"
    #: ``start()`` succeeded; workers may be killed and restarted.
    RUNNING = "running"
    #: ``close()`` ran; the cluster cannot be used again.
    CLOSED = "closed"
