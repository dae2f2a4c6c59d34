"""Workers already running anywhere, given by URL: ``CHIMERA_BACKEND=attach``.

Start a worker on each machine with the kit installed, its script and its data::

    chimera-nb serve-worker chimera_workers/sgd1.py --host 0.0.0.0 --port 5001 --token "$T"

then point a master at them: ``AttachedCluster({"sgd1": "http://lab-pc-1:5001", ...},
token=T)``, or, for a seed project, ``CHIMERA_BACKEND=attach``,
``CHIMERA_WORKERS_URLS='["http://lab-pc-1:5001", ...]'`` (one per name of
``CHIMERA_WORKERS_NODES_NAMES``) and ``CHIMERA_WORKERS_TOKEN=T``.

The cluster checks that every worker answers ``GET /health`` and accepts the token, and
hands the master their URLs and the token; ``add_worker(url)`` and ``remove_worker(name)``
change that list while it runs. It starts and stops nothing: the workers belong
to whoever started them, so :meth:`AttachedCluster.kill` and ``restart`` explain that
instead, and :meth:`~AttachedCluster.slow` (an HTTP call) is the one fault it can cause.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from .._exceptions import ClusterError, ConfigurationError
from ..auth import MASTER_TOKEN_VARIABLE, bearer_header, validate_token
from ..validation import validate_worker_url
from ._health import health_client
from ._options import named_targets
from .base import BaseCluster, WorkerRecord

__all__ = ["URLS_VARIABLE", "AttachedCluster"]

#: The seed-project variable that lists the workers' URLs for ``CHIMERA_BACKEND=attach``.
URLS_VARIABLE = "CHIMERA_WORKERS_URLS"
#: A path no worker serves: behind the token check it answers 401 (wrong or missing
#: token) or 404 (token accepted, or none needed), and changes nothing either way.
_TOKEN_CHECK_PATH = "/v1/chimera/token-check"


class AttachedCluster(BaseCluster):
    """Workers that run elsewhere, reached by URL; nothing is started or stopped.

    Parameters
    ----------
    workers : mapping of str to str, or sequence of str
        Worker name -> base URL (``"http://lab-pc-1:5001"``), or a list of URLs named
        ``"worker1"``, ``"worker2"``, ...
    token : str, optional
        The token the workers were started with (``serve-worker --token``); by default
        ``CHIMERA_WORKERS_TOKEN``. Required by any worker that listens beyond loopback.
    name : str, default="attached"
    run_dir : path, optional
        Where the masters' ``chimera_status.log`` and ``chimera_time.log`` go while the
        cluster is open; by default a fresh folder in ``<tempdir>/chimera-nb-<uid>/``.
    startup_timeout : float, default=30.0
        Seconds to wait for every worker to answer ``GET /health``.

    Examples
    --------
    >>> urls = {"sgd1": "http://10.0.0.11:5001", "sgd2": "http://10.0.0.12:5001"}
    >>> with AttachedCluster(urls, token=token) as cluster:  # doctest: +SKIP
    ...     master = ParameterServerMaster("regressor").fit(cluster)
    """

    backend = "attach"
    _after_failed_start = "Fix it and call start() again."

    def __init__(
        self,
        workers: Mapping[str, str] | Sequence[str],
        *,
        token: str | None = None,
        name: str = "attached",
        run_dir: str | os.PathLike | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        super().__init__(name, run_dir=run_dir, startup_timeout=startup_timeout)
        urls = named_targets(workers)  # a mapping name -> URL, or a list of URLs
        self._workers = {
            worker: WorkerRecord(worker, validate_worker_url(worker, url))
            for worker, url in urls.items()
        }
        token = token if token is not None else os.environ.get(MASTER_TOKEN_VARIABLE) or None
        self._token = validate_token(token) if token is not None else None

    @classmethod
    def from_environment(
        cls, names: Sequence[str], environ: Mapping[str, str] | None = None, **options: Any
    ) -> AttachedCluster:
        """The cluster a seed project describes: ``CHIMERA_WORKERS_URLS`` (a JSON list, one
        URL per name of ``names``, or a JSON object name -> URL) and ``CHIMERA_WORKERS_TOKEN``."""
        environ = os.environ if environ is None else environ
        example = '\'["http://10.0.0.11:5001", "http://10.0.0.12:5001"]\''
        raw = environ.get(URLS_VARIABLE)
        if not raw:
            raise ConfigurationError(
                f"CHIMERA_BACKEND=attach needs {URLS_VARIABLE}: the workers' URLs as a JSON "
                f"list, one per name of CHIMERA_WORKERS_NODES_NAMES, e.g. {URLS_VARIABLE}="
                f"{example}."
            )
        try:
            urls = json.loads(raw)
        except json.JSONDecodeError as error:
            raise ConfigurationError(
                f"{URLS_VARIABLE} is not valid JSON ({error.msg}); write e.g. {example}."
            ) from None
        if isinstance(urls, list):
            if len(urls) != len(names):
                raise ConfigurationError(
                    f"{URLS_VARIABLE} has {len(urls)} URLs but CHIMERA_WORKERS_NODES_NAMES has "
                    f"{len(names)} names; give one URL per worker, in the same order."
                )
            urls = dict(zip(names, urls))
        elif not isinstance(urls, dict) or set(urls) != set(names):
            raise ConfigurationError(
                f"{URLS_VARIABLE} must be a JSON list of URLs (one per worker name) or an "
                f"object with exactly the names {list(names)}, got {raw[:80]!r}."
            )
        return cls({name: urls[name] for name in names}, **options)

    # --- what differs: nothing to start, stop or break; the token to check ---------------

    def _launch_all(self, workers: list[WorkerRecord]) -> None:
        """Nothing to launch: the workers run already, wherever they were started."""

    def _launch(self, worker: WorkerRecord) -> None:
        raise self._unable("restart", worker)

    def _new_worker(self, name: str, worker: Any, X: Any, y: Any) -> WorkerRecord:
        """An added worker is the URL of one that runs (``add_worker(url, name="w4")``)."""
        if X is not None or y is not None:
            raise ConfigurationError(
                f"Cannot add worker {name!r} with X and y: an attached worker holds the data "
                "it was started with. Call add_worker(url, name=...)."
            )
        return WorkerRecord(name, validate_worker_url(name, worker))

    def _stop_workers(self, workers: list[WorkerRecord]) -> None:
        """Nothing to stop: the workers keep running on their machines."""

    def _live_log(self, worker: WorkerRecord, n_lines: int) -> str:
        return f"(an attached worker writes its log on its own machine: {worker.url})"

    def _explain(self, worker: WorkerRecord) -> str:
        return (
            "Is it running (chimera-nb serve-worker ... --host 0.0.0.0 on its machine), and "
            "does a firewall let this machine reach its port?"
        )

    def _why_unable(self, action: str, worker: WorkerRecord) -> str:
        return (
            "an attached cluster does not control its workers, which run wherever they were "
            f"started ({worker.url}). Do it on that machine (Ctrl-C stops a serve-worker; run "
            "it again to restart), or use slow(name, seconds), which works over HTTP."
        )

    def _confirm(self, workers: list[WorkerRecord]) -> None:
        """Every worker must accept the token (or need none): a 401 now is clearer than one
        in the middle of a fit."""
        with health_client() as client:
            for worker in workers:
                answer = client.get(
                    worker.url + _TOKEN_CHECK_PATH, headers=bearer_header(self._token), timeout=5
                )
                if answer.status_code == 401:
                    given = "a token that it refused" if self._token else "no token"
                    raise ClusterError(
                        f"Worker {worker.name!r} ({worker.url}) requires a shared token and "
                        f"this cluster sent {given}. Pass token= (or set "
                        f"{MASTER_TOKEN_VARIABLE}) to the token the worker was started with."
                    )
