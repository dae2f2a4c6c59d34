"""What a cluster knows about one of its workers: one record for every backend, which each
backend extends with what it needs (a process handle, a container, a port...)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from .._types import WorkerURL
from ..states import WorkerFault, WorkerState
from ..wire.fault_models import ByzantineRequest
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
    member: bool = True  # False while add_worker() waits for it or remove_worker() stops it
    since: float = field(default_factory=time.time)  # when ``state`` began (a time.time())
    last_heartbeat: float | None = None  # when it last answered a heartbeat (time.time())
    missed: int = 0  # heartbeats missed in a row
    network: NetworkRequest | None = None  # network(), partition(); restart clears
    byzantine: ByzantineRequest | None = None  # byzantine(); restart clears

    @property
    def announced_fault(self) -> WorkerFault | None:
        """The fault to show: a liveness fault (kill, pause...) first, else BYZANTINE if it
        corrupts its answers. Only ``fault`` decides whether it is up (a Byzantine worker is)."""
        if self.fault is None and self.byzantine is not None:
            return WorkerFault.BYZANTINE
        return self.fault

    def __setattr__(self, name: str, value: Any) -> None:
        """Every change of ``state``, whoever makes it (a fault call, a ``status()`` probe, a
        heartbeat), stamps ``since``: the membership view says since when a worker is down."""
        if name == "state" and value is not self.__dict__.get("state"):
            super().__setattr__("since", time.time())
        super().__setattr__(name, value)
