"""A background event loop for blocking calls from scripts and notebooks.

A Jupyter kernel already runs an asyncio loop in its main thread, so ``asyncio.run`` fails
there ("cannot be called from a running event loop"). Instead, one daemon thread per process
runs its own loop, and blocking APIs (``master.fit(cluster)``) hand their coroutine to it
with :func:`asyncio.run_coroutine_threadsafe` and wait for the result. The same works from a
plain script and from code that uses top-level ``await``, and no signal handler is ever
installed from the thread.

The loop is uvloop's where it is installed (``uvicorn[standard]`` brings it on Linux and
macOS), as the workers' servers' are: a master's round costs it about a tenth less CPU.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["get_loop", "run_sync", "submit"]

T = TypeVar("T")

_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None
_lock = threading.Lock()


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # Windows, or a kit installed without uvicorn's extras
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def get_loop() -> asyncio.AbstractEventLoop:
    """The runtime's loop, started on first use."""
    global _loop, _thread
    with _lock:
        if _loop is None or not _thread or not _thread.is_alive():
            _loop = _new_loop()
            _thread = threading.Thread(
                target=_loop.run_forever, name="chimera-nb-runtime", daemon=True
            )
            _thread.start()
        return _loop


def submit(coroutine: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
    """Schedule ``coroutine`` on the runtime's loop and return a future at once."""
    return asyncio.run_coroutine_threadsafe(coroutine, get_loop())


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` on the runtime's loop and block until it is done.

    Ctrl-C (or a notebook's interrupt) cancels the coroutine, then re-raises.
    """
    if threading.current_thread() is _thread:
        coroutine.close()
        raise RuntimeError(
            "a blocking chimera-nb call was made from its own event loop; await the *_async "
            "method instead"
        )
    future = submit(coroutine)
    try:
        return future.result()
    except KeyboardInterrupt:
        future.cancel()
        raise
