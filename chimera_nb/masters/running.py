"""A fit seen from outside its master: a handle on one running in the background, and the
announcement of every fit that starts.

A notebook keeps its cells (and a dashboard its buttons) free while a fit runs by holding a
:class:`FitHandle`; a lab's dashboard learns from :data:`fit_starts` that some master (any
master, of any class) started fitting the lab's workers.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["FitHandle", "FitListener", "FitStarts", "fit_starts"]

log = logging.getLogger("chimera_status")

#: Called as ``listener(master, endpoints)`` when ``master`` starts fitting on ``endpoints``.
FitListener = Callable[[Any, Mapping[str, str]], None]


class FitHandle:
    """A fit running in the background: ``done()``, ``result()``, ``stop()``, ``cancel()``."""

    def __init__(self, future: concurrent.futures.Future, master: Any) -> None:
        self._future = future
        self.master = master

    def done(self) -> bool:
        """True once the fit ended: finished, failed or cancelled."""
        return self._future.done()

    def result(self, timeout: float | None = None) -> Any:
        """Wait for the fit (at most ``timeout`` seconds) and return the fitted master;
        re-raises what the fit raised."""
        return self._future.result(timeout)

    def stop(self) -> None:
        """Finish after the current round and keep the model so far."""
        self.master.stop()

    def cancel(self) -> bool:
        """Abandon the fit at once (the model is left as it was before)."""
        return self._future.cancel()

    def __repr__(self) -> str:
        if not self._future.done():
            rounds = len(getattr(self.master, "history_", []))
            return f"FitHandle(running, {rounds} rounds so far)"
        if self._future.cancelled():
            return "FitHandle(cancelled)"
        error = self._future.exception()
        return f"FitHandle(failed: {error})" if error else "FitHandle(done)"


class FitStarts:
    """Announces every fit that starts, in any master of this process, to its listeners.

    A lab's dashboard follows whichever master fits the lab's workers (a notebook may fit
    several masters on one cluster). Listeners run on the fit's event loop: be quick.
    """

    def __init__(self) -> None:
        self._listeners: list[FitListener] = []
        self._lock = threading.Lock()

    def subscribe(self, listener: FitListener) -> Callable[[], None]:
        """Call ``listener(master, endpoints)`` at each fit start; returns the unsubscribe."""
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def publish(self, master: Any, endpoints: Mapping[str, str]) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(master, endpoints)
            except Exception:  # a broken view must not stop a fit
                log.exception("fit-start listener %r failed", listener)


#: Every fit of this process is announced here (see :class:`FitStarts`).
fit_starts = FitStarts()
