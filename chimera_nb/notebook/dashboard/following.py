"""Which master the dashboard shows: the lab's own, or whichever master starts fitting the
lab's workers, or the one picked in the master menu.

A notebook often fits several masters on one lab (notebook 2 compares aggregation rules,
notebook 4 a strict quorum): the dashboard should show the fit that is running, whoever runs
it. Every fit is announced on :data:`chimera_nb.masters.running.fit_starts` before its first
step, on the fit's event loop; a fit whose workers include one of the lab's is followed from
that first step on.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from ..._exceptions import ClusterError
from ...masters.running import fit_starts

__all__ = ["Following"]

_MASTERS_KEPT = 8


class Following:
    """The master followed now, the masters seen fitting the lab's workers, and the pick.

    Parameters
    ----------
    lab : Lab
    switch : callable
        ``switch(master)`` makes the dashboard follow ``master``; called at once, possibly on
        the event loop (be quick), before each fit's first step (also of the master followed
        already: ``set_params(consistency="ssp")`` gives it another fit flowchart).
    """

    def __init__(self, lab: Any, switch: Callable[[Any], None]) -> None:
        self.lab = lab
        self.master = lab.master
        self.seen: list[Any] = [lab.master]
        self.pinned: Any = None  # None: follow any master
        self._switch = switch
        self._lock = threading.Lock()
        self._unsubscribe = fit_starts.subscribe(self._on_fit_start)

    def _on_fit_start(self, master: Any, endpoints: Mapping[str, str]) -> None:
        if not self._on_lab_workers(endpoints):
            return
        with self._lock:
            if not any(m is master for m in self.seen):
                self.seen = [*self.seen, master][-_MASTERS_KEPT:]
            if self.pinned not in (None, master):
                return
            self.master = master
        self._switch(master)  # the same master too: its flowchart may have changed (SSP)

    def _on_lab_workers(self, endpoints: Mapping[str, str]) -> bool:
        try:
            urls = set(self.lab.cluster.endpoints.values())
        except ClusterError:  # the lab is not running
            return False
        return bool(urls & set(endpoints.values()))

    def pin(self, master: Any) -> None:
        """Follow only ``master`` from now on (None: any master again)."""
        with self._lock:
            self.pinned = master
            if master is None or master is self.master:
                return
            self.master = master
        self._switch(master)

    def close(self) -> None:
        self._unsubscribe()
