"""Objects that own resources, registered by name, so that re-running a notebook cell
replaces the previous object of that name instead of leaving it running.

Clusters, labs and dashboards each keep one :class:`ByName` registry: building a new
``LocalCluster(name="lab1")`` closes the running one called ``"lab1"``, whatever its backend.
"""

from __future__ import annotations

import threading
from typing import Generic, Protocol, TypeVar

__all__ = ["ByName", "Closeable"]


class Closeable(Protocol):
    def close(self) -> None: ...


T = TypeVar("T", bound=Closeable)


class ByName(Generic[T]):
    """The running objects of one kind, by name."""

    def __init__(self) -> None:
        self._items: dict[str, T] = {}
        self._lock = threading.Lock()

    def replace(self, name: str, item: T) -> None:
        """Register ``item`` under ``name``, closing whatever ran under that name before."""
        with self._lock:
            previous = self._items.get(name)
            self._items[name] = item
        if previous is not None and previous is not item:
            previous.close()

    def forget(self, name: str, item: T) -> None:
        """Unregister ``item`` (only if it is still the one registered under ``name``)."""
        with self._lock:
            if self._items.get(name) is item:
                del self._items[name]

    def get(self, name: str) -> T | None:
        with self._lock:
            return self._items.get(name)

    def close_all(self) -> None:
        """Close every registered object (each unregisters itself, or is forgotten here)."""
        with self._lock:
            items = list(self._items.items())
        for name, item in items:
            item.close()
            self.forget(name, item)
