"""The REST face of any master: the seed's fit and predict endpoints, served by uvicorn.

Every master gets the same app from :func:`build_app`: ``POST <fit_path>`` runs a fit on the
master's workers (one at a time; a second gets 409), ``POST <predict_path>`` predicts rows in
the seed's JSON shape (also at the seed's older paths), ``GET /health`` says who answers and
``GET /metrics`` how its fits go (:mod:`.metrics`). Each fit or predict request also writes
the seed's *master endpoint latency* line to ``chimera_time.log``. A new master names its two
paths and how to turn its fitted state into the seed's answers (``_fit_response``,
``_predict_response``), and nothing here changes.

:class:`BackgroundServer` serves an app on the kit's background event loop, so that a notebook
cell stays free while the master answers REST calls (a lab's in-kernel master).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
import time
from collections.abc import Iterable
from typing import Any, ClassVar, Protocol

import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.types import Scope

from .. import _runtime
from .._exceptions import (
    ChimeraError,
    ClusterError,
    ConfigurationError,
    FitInProgressError,
    NotFittedError,
    QuorumError,
)
from .._sockets import url_of
from ..logs import log_master_request
from ..wire import FitResponse, HealthResponse, PredictRequest, PredictResponse, paths
from ..wire.encoding import BodyError
from ..wire.metrics import RequestHook
from ..wire.server import error_responses, finish_app, new_app
from .endpoints import resolve_endpoints
from .metrics import MasterCollector

__all__ = ["BackgroundServer", "ServedMaster", "build_app"]


class ServedMaster(Protocol):
    """What the app needs of a master (every :class:`~chimera_nb.masters.Master` has it)."""

    role: ClassVar[str]
    fit_path: ClassVar[str]
    predict_path: ClassVar[str]

    async def fit_async(self, workers: Any) -> Any: ...

    def _fit_response(self) -> FitResponse: ...

    async def _predict_response(self, body: PredictRequest) -> PredictResponse: ...


def _status_of(error: ChimeraError) -> int:
    """409 for "fit first" or "a fit is running", 422 for a bad request or argument, 503
    for workers that failed or a fit that was stopped."""
    if isinstance(error, (NotFittedError, FitInProgressError)):
        return 409
    if isinstance(error, (ConfigurationError, BodyError)):
        return 422
    return 503


def _time_log(master: ServedMaster) -> RequestHook:
    """Writes the ``chimera_time.log`` line of each fit or predict request, from the
    measurement the metrics take (nothing is timed twice)."""
    logged = {master.fit_path, master.predict_path}
    logged |= {paths.OLDER[path] for path in logged if path in paths.OLDER}

    def log(scope: Scope, status: int, seconds: float) -> None:
        if scope["path"] in logged:
            server = scope.get("server")  # (host, port) the request arrived on
            url = url_of(*server) if server else None
            log_master_request(scope["path"], seconds * 1e3, status, url)

    return log


def build_app(
    master: ServedMaster,
    workers: Any,
    *,
    allowed_origins: Iterable[str] | None = None,
    allowed_hosts: Iterable[str] | None = None,
) -> FastAPI:
    """A FastAPI app serving ``master``'s fit and predict endpoints for ``workers`` (a
    cluster or a mapping of name to URL), plus ``GET /health`` and ``GET /metrics``, behind
    the guard of :mod:`chimera_nb.wire.guard` (``allowed_origins`` and ``allowed_hosts``
    widen it)."""
    endpoints = resolve_endpoints(workers)
    app = new_app(f"chimera-nb {master.role}")
    busy = asyncio.Lock()
    metrics = MasterCollector(master)

    @app.exception_handler(ChimeraError)
    async def _chimera_error(request, error: ChimeraError) -> JSONResponse:
        body: dict[str, Any] = {"detail": str(error)}
        if isinstance(error, QuorumError):
            body.update(answered=error.answered, failed=error.failed)
        return JSONResponse(body, status_code=_status_of(error))

    @app.get(paths.HEALTH, response_model=HealthResponse)
    async def health() -> HealthResponse:
        return HealthResponse(role=master.role, name="master")

    @app.post(master.fit_path, response_model=FitResponse, responses=error_responses(409, 422, 503))
    async def fit() -> JSONResponse:
        if busy.locked():
            return JSONResponse(
                {"detail": "a fit is already running; wait for it"}, status_code=409
            )
        async with busy:
            try:
                await master.fit_async(endpoints)
            finally:
                metrics.read()  # count this fit now: the next one replaces its history
        return JSONResponse(master._fit_response().model_dump(exclude_none=True))

    @app.post(
        master.predict_path,
        response_model=PredictResponse,
        responses=error_responses(409, 422, 503),
    )
    async def predict(body: PredictRequest) -> JSONResponse:
        answer = (await master._predict_response(body)).require_finite()
        return JSONResponse(answer.model_dump(exclude_none=True))

    return finish_app(
        app,
        collectors=[metrics],
        on_request=_time_log(master),
        allowed_origins=allowed_origins,
        allowed_hosts=allowed_hosts,
    )


class BackgroundServer:
    """An app served by uvicorn on the kit's background event loop, on an open socket.

    ``start()`` returns once the server accepts connections; ``close()`` stops it (at most
    10 s for requests in flight).
    """

    def __init__(self, app: FastAPI, sock: socket.socket) -> None:
        host, port = sock.getsockname()[:2]
        self.url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        self._sock = sock
        config = uvicorn.Config(app, log_level="warning", lifespan="off", timeout_keep_alive=300)
        self._server = uvicorn.Server(config)
        self._serving: concurrent.futures.Future | None = None

    def start(self, timeout: float = 10.0) -> BackgroundServer:
        self._serving = _runtime.submit(self._server.serve(sockets=[self._sock]))
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if self._serving.done() or time.monotonic() > deadline:
                self.close()
                raise ClusterError(f"the master server at {self.url} did not start")
            time.sleep(0.005)
        return self

    def close(self) -> None:
        """Stop serving and close the socket. Safe to call twice."""
        if self._serving is not None:
            self._server.should_exit = True
            try:
                self._serving.result(timeout=10)
            except Exception:  # closing must not raise: a server that hangs is abandoned
                self._serving.cancel()
            self._serving = None
        self._sock.close()
