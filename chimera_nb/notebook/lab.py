"""A cluster of local workers and an in-kernel master, started from one notebook cell.

The master's REST server and every call it makes to workers run on the kit's background
event loop (:mod:`chimera_nb._runtime`), not on the kernel's: a cell can block in
``lab.fit()`` while widgets keep updating, or start a fit with ``wait=False`` and keep the
notebook (and its buttons) responsive. Re-running the cell that builds a lab closes the
previous lab of the same name first, and its workers die with the kernel.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import time
from typing import Any

import numpy as np
import uvicorn

from .. import _runtime
from .._exceptions import ClusterError
from .._sockets import listen
from ..cluster import cluster_class, shard_workers
from ..masters.base import Master

__all__ = ["FitHandle", "Lab"]

_labs: dict[str, Lab] = {}  # by name: re-running a cell replaces its lab


class FitHandle:
    """A fit running in the background: ``done()``, ``result()``, ``stop()``, ``cancel()``."""

    def __init__(self, future: concurrent.futures.Future, master: Master) -> None:
        self._future = future
        self.master = master

    def done(self) -> bool:
        """True once the fit ended: finished, failed or cancelled."""
        return self._future.done()

    def result(self, timeout: float | None = None) -> Master:
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


class Lab:
    """Local workers plus an in-kernel master serving the seed's REST API.

    Parameters
    ----------
    workers : list or mapping of workers
        As for :class:`~chimera_nb.LocalCluster`.
    master : ParameterServerMaster or AggregationMaster
    name : str, default="lab"
        Building a lab with the name of a running one closes that one first.
    backend : {"process", "docker", "swarm"}, default="process"
        Where the workers run: local processes (:class:`~chimera_nb.LocalCluster`, the
        default, also on Colab and Binder), containers (``DockerCluster``) or swarm
        services (``SwarmCluster``). The dashboard works with all three.
    **cluster_options
        Passed to the cluster (``run_dir``, ``ports``...).

    Examples
    --------
    >>> lab = Lab.from_shards(SGDWorker("regressor"), X, y, n_workers=4,  # doctest: +SKIP
    ...                       master=ParameterServerMaster("regressor"))
    >>> run = lab.fit(wait=False)  # doctest: +SKIP
    >>> run.done(), lab.master.loss_curve_[-1]  # doctest: +SKIP
    """

    def __init__(
        self,
        workers: Any,
        master: Master,
        *,
        name: str = "lab",
        backend: str = "process",
        **cluster_options: Any,
    ):
        self.name = name
        self.master = master
        self.cluster = cluster_class(backend)(workers, name=name, **cluster_options)
        self._server: uvicorn.Server | None = None
        self._serving: concurrent.futures.Future | None = None
        self.master_url: str | None = None

    @classmethod
    def from_shards(
        cls,
        worker: Any,
        X: Any,
        y: Any,
        *,
        master: Master,
        n_workers: int = 3,
        name: str = "lab",
        method: str = "contiguous",
        proportions: Any = None,
        random_state: int | None = None,
        **cluster_options: Any,
    ) -> Lab:
        """Split ``X, y`` into ``n_workers`` shards, one copy of ``worker`` each."""
        workers = shard_workers(worker, X, y, n_workers, method, proportions, random_state)
        return cls(workers, master, name=name, **cluster_options)

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> Lab:
        """Start the workers and the master's REST server; returns ``self``."""
        previous = _labs.get(self.name)
        if previous is not None and previous is not self:
            previous.close()
        self.cluster.start()
        try:
            self._start_master_server()
        except BaseException:
            self.cluster.close()
            raise
        _labs[self.name] = self
        atexit.register(self.close)
        return self

    def _start_master_server(self) -> None:
        sock = listen("127.0.0.1", 0, backlog=128)
        self.master_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        config = uvicorn.Config(
            self.master.build_app(self.cluster),
            log_level="warning",
            lifespan="off",
            timeout_keep_alive=300,
        )
        self._server = uvicorn.Server(config)
        self._serving = _runtime.submit(self._server.serve(sockets=[sock]))
        deadline = time.monotonic() + 10
        while not self._server.started:
            if self._serving.done() or time.monotonic() > deadline:
                raise ClusterError(f"the master server of lab {self.name!r} did not start")
            time.sleep(0.005)

    def close(self) -> None:
        """Stop the master's server and every worker. Safe to call twice."""
        if self._server is not None:
            self._server.should_exit = True
            try:
                self._serving.result(timeout=10)
            except (concurrent.futures.TimeoutError, Exception):  # closing must not raise
                self._serving.cancel()
            self._server = None
        self.cluster.close()
        atexit.unregister(self.close)
        if _labs.get(self.name) is self:
            del _labs[self.name]

    def __enter__(self) -> Lab:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- training ---------------------------------------------------------------------------

    def fit(self, *, wait: bool = True) -> Master | FitHandle:
        """Fit the master on the lab's workers.

        ``wait=True`` blocks until done and returns the master; ``wait=False`` returns a
        :class:`FitHandle` at once, so that buttons (kill a worker, stop) stay live.
        """
        self._require_running()
        future = _runtime.submit(self.master.fit_async(self.cluster))
        if not wait:
            return FitHandle(future, self.master)
        try:
            return future.result()
        except KeyboardInterrupt:
            future.cancel()
            raise

    async def fit_async(self) -> Master:
        """``await lab.fit_async()`` from a cell with top-level ``await``."""
        self._require_running()
        future = _runtime.submit(self.master.fit_async(self.cluster))
        return await asyncio.wrap_future(future)

    def predict(self, X: Any) -> np.ndarray:
        return self.master.predict(X)

    def dashboard(self):
        """A live dashboard of this lab (flowchart, loss, latency, workers, controls)."""
        from .dashboard import Dashboard

        return Dashboard(self)

    def _require_running(self) -> None:
        if self._server is None:
            raise ClusterError(f"lab {self.name!r} is not running: call start() (or use 'with')")

    def __repr__(self) -> str:
        where = f" at {self.master_url}" if self._server is not None else ""
        return f"Lab({self.name!r}, {self.master.role}{where}, {self.cluster!r})"
