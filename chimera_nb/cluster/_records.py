"""What a cluster knows about one of its workers: one record for every backend, which each
backend extends with what it needs (a process handle, a container, a port...)."""

from __future__ import annotations

from dataclasses import dataclass

from .._types import WorkerURL
from ..states import WorkerFault, WorkerState
from ..wire.models import NetworkRequest

__all__ = ["WorkerRecord"]


@dataclass
class WorkerRecord:
    """What a cluster knows about one of its workers (each backend adds its own fields)."""

    name: str
    url: WorkerURL | None = None
    state: WorkerState = WorkerState.STOPPED
    delay: float = 0.0  # seconds injected with slow(); a restart clears it
    fault: WorkerFault | None = None  # what a fault method did to it; a restart clears it
    network: NetworkRequest | None = None  # emulate_network(), partition(); restart clears
