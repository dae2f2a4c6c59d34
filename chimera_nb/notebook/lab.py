"""A cluster of workers and an in-kernel master, started from one notebook cell.

The master's REST server and every call it makes to workers run on the kit's background
event loop (:mod:`chimera_nb._runtime`), not on the kernel's: a cell can block in
``lab.fit()`` while widgets keep updating, or start a fit with ``wait=False`` and keep the
notebook (and its buttons) responsive. Re-running the cell that builds a lab closes the
previous lab of the same name first, and its workers die with the kernel: a lab still
running when the kernel shuts down is closed (``atexit``), its fit cancelled first, so that
the kernel exits within a second or two.
"""

from __future__ import annotations

import asyncio
import atexit
from typing import Any

import numpy as np

from .. import _runtime
from .._exceptions import ClusterError, ConfigurationError
from .._registry import ByName
from .._sockets import listen
from ..cluster import cluster_class, feature_block_workers, shard_workers
from ..masters.base import Master
from ..masters.rest import BackgroundServer
from ..masters.running import FitHandle

__all__ = ["FitHandle", "Lab"]

_labs: ByName[Lab] = ByName()  # re-running a cell replaces its lab


class Lab:
    """Workers plus an in-kernel master serving the seed's REST API.

    Parameters
    ----------
    workers : list or mapping of workers
        As for :class:`~chimera_nb.LocalCluster`.
    master : Master
        Any master: ``ParameterServerMaster``, ``AggregationMaster``, or one of your own.
    name : str, default="lab"
        Building a lab with the name of a running one closes that one first.
    backend : {"process", "docker", "swarm", "attach"}, default="process"
        Where the workers run: local processes (:class:`~chimera_nb.LocalCluster`, the
        default, also on Colab and Binder), containers (``DockerCluster``), swarm services
        (``SwarmCluster``), or already running anywhere (``AttachedCluster``, with
        ``workers`` a mapping of name to URL). The dashboard works with all of them.
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
        self._server: BackgroundServer | None = None

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

    @classmethod
    def from_feature_blocks(
        cls,
        worker: Any,
        X: Any,
        y: Any,
        *,
        master: Master,
        n_blocks: int = 3,
        replicas: int = 1,
        name: str = "lab",
        **cluster_options: Any,
    ) -> Lab:
        """Split the columns of ``X`` into ``n_blocks`` blocks (and the rows into ``replicas``
        row groups), one copy of ``worker`` each; the labels ``y`` go to the master, the
        label holder (a :class:`~chimera_nb.FeatureSplitMaster`), never to a worker."""
        if not callable(getattr(master, "hold_labels", None)):
            raise ConfigurationError(
                f"{type(master).__name__} cannot hold labels: a feature split needs "
                "FeatureSplitMaster(...)"
            )
        workers = feature_block_workers(worker, X, n_blocks, replicas)
        return cls(workers, master.hold_labels(y), name=name, **cluster_options)

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def master_url(self) -> str | None:
        """Where the master's REST endpoints answer while the lab runs."""
        return self._server.url if self._server is not None else None

    def start(self) -> Lab:
        """Start the workers and the master's REST server; returns ``self``."""
        _labs.replace(self.name, self)
        self.cluster.start()
        try:
            app = self.master.build_app(self.cluster)
            self._server = BackgroundServer(app, listen("127.0.0.1", 0, backlog=128)).start()
        except BaseException:
            self.cluster.close()
            _labs.forget(self.name, self)
            raise
        atexit.register(self.close)
        return self

    def close(self) -> None:
        """Cancel a running fit, stop the master's server and every worker. Safe to call
        twice."""
        if self._server is not None:
            # A fit asked for over REST would hold the server's shutdown until it ends.
            self.master.cancel_fit(f"lab {self.name!r} closed")
            self._server.close()
            self._server = None
        self.cluster.close()
        atexit.unregister(self.close)
        _labs.forget(self.name, self)

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
        return self.master.fit(self.cluster, wait=wait)

    async def fit_async(self) -> Master:
        """``await lab.fit_async()`` from a cell with top-level ``await``."""
        self._require_running()
        future = _runtime.submit(self.master.fit_async(self.cluster))
        return await asyncio.wrap_future(future)

    def predict(self, X: Any) -> np.ndarray:
        return self.master.predict(X)

    def dashboard(self, *, reference: float | None = None, heartbeats: float | None = None):
        """A live dashboard of this lab: flowchart, cluster, loss (and its excess over a
        one-machine ``reference`` loss), round time, latency, timeline, controls.
        ``heartbeats=0.5`` also watches the workers with a heartbeat every 0.5 s while the
        dashboard is open (``cluster.watch``), so a frozen worker shows suspect, then failed."""
        from .dashboard import Dashboard

        return Dashboard(self, reference=reference, heartbeats=heartbeats)

    def _require_running(self) -> None:
        if self._server is None:
            raise ClusterError(f"lab {self.name!r} is not running: call start() (or use 'with')")

    def __repr__(self) -> str:
        where = f" at {self.master_url}" if self._server is not None else ""
        return f"Lab({self.name!r}, {self.master.role}{where}, {self.cluster!r})"
