"""What every server of the kit (workers and masters) shares: how its app is made
(:func:`new_app`, then the routes, then :func:`finish_app`), error bodies that name the
field at fault and their OpenAPI description, and one way to run an app under uvicorn."""

from __future__ import annotations

import contextlib
import inspect
import signal
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from types import FrameType
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from prometheus_client.registry import Collector
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from . import paths
from .encoding import BodyError
from .guard import HOSTS_VARIABLE, ORIGINS_VARIABLE, BodyLimits, Guard, allowed_names
from .metrics import RequestHook, install_metrics
from .models import ErrorResponse

__all__ = [
    "STOP_SIGNALS",
    "bad_body",
    "describe_validation_errors",
    "error_responses",
    "finish_app",
    "install_error_handlers",
    "new_app",
    "run_server",
]

#: What each error status means on the kit's servers (the OpenAPI schema shows it).
_ERRORS = {
    401: "The worker requires its shared token: send 'Authorization: Bearer <token>'.",
    403: "Refused: a web page of another origin, or a Host this server does not answer "
    "(see chimera_nb.wire.guard).",
    409: "Not now: fit first, or wait for the fit that is running.",
    413: "The body is larger than this endpoint's limit.",
    422: "The request cannot be used: 'detail' names the field and the problem.",
    502: "A server this one called in turn (a ring neighbour, a parameter shard) failed or "
    "could not be reached: 'detail' names the link and why.",
    503: "Too few workers answered, or the fit was stopped: 'answered' and 'failed' say who.",
    504: "What this server waited for from another (a ring neighbour's chunk) never came in "
    "time: 'detail' names the link.",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error statuses, all with the :class:`ErrorResponse`
    body (FastAPI's default 422 describes a body the kit does not send)."""
    return {status: {"model": ErrorResponse, "description": _ERRORS[status]} for status in statuses}


#: FastAPI 0.16x asks OpenTelemetry on every request whether it is configured (about 20
#: microseconds, a fifth of a fit-step's time in the worker); the kit's servers report through
#: ``GET /metrics`` instead, so that check is turned off where FastAPI has it.
_NO_NATIVE_TELEMETRY: dict[str, Any] = (
    {"telemetry": {"tracing": False, "metrics": False, "logs": False}}
    if "telemetry" in inspect.signature(FastAPI).parameters
    else {}
)


def new_app(title: str, *, token: bool = False) -> FastAPI:
    """A FastAPI app with the kit's error handlers; every route documents the guard's 403 and
    413 (and 401 when the server requires a ``token``)."""
    app = FastAPI(
        title=title,
        responses=error_responses(*([401] if token else []), 403, 413),
        **_NO_NATIVE_TELEMETRY,
    )
    install_error_handlers(app)
    return app


def finish_app(
    app: FastAPI,
    *,
    collectors: Iterable[Collector] = (),
    on_request: RequestHook | None = None,
    allowed_origins: Iterable[str] | None = None,
    allowed_hosts: Iterable[str] | None = None,
) -> FastAPI:
    """Once an app's routes are in place: serve the seed's older paths as aliases, put the
    :class:`~chimera_nb.wire.guard.Guard` in front (``allowed_origins`` and ``allowed_hosts``
    add to ``CHIMERA_ALLOWED_ORIGINS`` and ``CHIMERA_ALLOWED_HOSTS``), and serve
    ``GET /metrics`` (``collectors`` beside the request counts; ``on_request`` is called
    after each request, see :class:`~chimera_nb.wire.metrics.RequestMetrics`)."""
    for route in list(app.routes):
        older = paths.OLDER.get(getattr(route, "path", ""))
        if older is not None and isinstance(route, APIRoute):
            app.add_api_route(
                older,
                route.endpoint,
                methods=list(route.methods),
                response_model=route.response_model,
                include_in_schema=False,
            )
    app.add_middleware(
        Guard,
        origins=allowed_names(allowed_origins, ORIGINS_VARIABLE),
        hosts=allowed_names(allowed_hosts, HOSTS_VARIABLE),
        limits=BodyLimits.from_environment(),
    )
    install_metrics(app, *collectors, on_request=on_request)
    return app


def _location(loc: tuple) -> str:
    """``("body", "X_pred_rows", 0, 2)`` -> ``"X_pred_rows[0][2]"``."""
    parts = [part for part in loc if part not in ("body", "query", "path")]
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "body"


def describe_validation_errors(errors: list[dict]) -> str:
    """One readable sentence per pydantic error, e.g. ``X_pred_rows[0][2]: Input should be a
    finite number``; at most five, then a count."""
    lines = [
        f"{_location(tuple(error.get('loc', ())))}: {error.get('msg', 'invalid')}"
        for error in errors
    ]
    more = f" (and {len(lines) - 5} more)" if len(lines) > 5 else ""
    return "; ".join(lines[:5]) + more


def _jsonable(errors: list[dict]) -> list[dict]:
    return [{"loc": list(error.get("loc", ())), "msg": error.get("msg", "")} for error in errors]


def bad_body(error: RequestValidationError | ValidationError | BodyError) -> dict[str, Any]:
    """The 422 body for a request that cannot be used: ``{"detail": "<field>: <problem>"}``,
    plus each pydantic error in ``errors``."""
    if isinstance(error, BodyError):
        return {"detail": str(error)}
    errors = list(error.errors())
    return {"detail": describe_validation_errors(errors), "errors": _jsonable(errors)}


def install_error_handlers(app: FastAPI) -> None:
    """Answer a bad body with 422 and ``{"detail": "<field>: <problem>", "errors": [...]}``."""

    async def _bad_body(
        request: Request, error: RequestValidationError | ValidationError | BodyError
    ) -> JSONResponse:
        return JSONResponse(bad_body(error), status_code=422)

    # FastAPI raises the first for request bodies; the others come from our own models.
    app.add_exception_handler(RequestValidationError, _bad_body)
    app.add_exception_handler(ValidationError, _bad_body)
    app.add_exception_handler(BodyError, _bad_body)

    @app.exception_handler(HTTPException)
    async def _unreadable(request: Request, error: HTTPException) -> JSONResponse:
        # FastAPI answers a body it cannot even decode (bytes that are not UTF-8) with a bare
        # "400: There was an error parsing the body"; say what is wrong, as for any bad body.
        if error.status_code == 400 and error.__cause__ is not None:
            detail = f"body: cannot be read as JSON text ({error.__cause__}); send UTF-8 JSON"
            return JSONResponse({"detail": detail}, status_code=422)
        return await http_exception_handler(request, error)


#: What stops a server: Ctrl-C, a polite kill (as service managers send), a closed terminal.
STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


class _StoppableServer(uvicorn.Server):
    """uvicorn's server, stopped by any of :data:`STOP_SIGNALS`, which first calls ``on_stop``.

    uvicorn itself waits for every request in flight before it stops (a fit may run for
    minutes), then raises the signal again, and a SIGTERM raised again kills the process
    before any ``finally`` or ``atexit`` could stop its workers. Here, ``on_stop(signal
    name)`` runs on the server's loop as soon as the shutdown starts (a master cancels its
    fit there, so that the fit's client gets its answer at once), requests in flight get one
    second, and the caller learns which signal came instead of being killed by it.
    """

    def __init__(self, config: uvicorn.Config, on_stop: Callable[[str], object] | None) -> None:
        super().__init__(config)
        self.on_stop = on_stop
        self.stopped_by: str | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield  # only the main thread receives signals
            return
        previous = {number: signal.signal(number, self.handle_exit) for number in STOP_SIGNALS}
        try:
            yield
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.stopped_by = self.stopped_by or signal.Signals(sig).name
        super().handle_exit(sig, frame)  # a second Ctrl-C stops waiting for requests

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self.on_stop is not None and self.stopped_by is not None:
            self.on_stop(self.stopped_by)
        await super().shutdown(sockets)


def run_server(
    app: FastAPI,
    *,
    sock: socket.socket | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    log_level: str = "warning",
    on_stop: Callable[[str], object] | None = None,
) -> str | None:
    """Serve ``app`` on ``sock`` if given, else on ``host:port``, until SIGINT, SIGTERM or
    SIGHUP; return that signal's name (None if the server was not run in the main thread).

    ``on_stop(signal name)`` is called first thing when a signal stops the server, on its
    loop; requests still in flight then get one second. Keep-alive is long because a master
    reuses one connection per worker for every round.
    """
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        timeout_keep_alive=300,
        timeout_graceful_shutdown=1.0,
        lifespan="off",  # no startup or shutdown hooks; spares Ctrl-C a CancelledError report
    )
    server = _StoppableServer(config, on_stop)
    server.run(sockets=[sock] if sock is not None else None)
    return server.stopped_by
