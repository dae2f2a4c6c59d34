"""What every server of the kit (workers and masters) shares: error bodies that name the
field at fault, and one way to run an app under uvicorn."""

from __future__ import annotations

import socket

import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from .encoding import BodyError

__all__ = ["describe_validation_errors", "install_error_handlers", "run_server"]


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


def install_error_handlers(app: FastAPI) -> None:
    """Answer a bad body with 422 and ``{"detail": "<field>: <problem>", "errors": [...]}``."""

    async def _validation(
        request: Request, error: RequestValidationError | ValidationError
    ) -> JSONResponse:
        errors = list(error.errors())
        body = {"detail": describe_validation_errors(errors), "errors": _jsonable(errors)}
        return JSONResponse(body, status_code=422)

    # FastAPI raises the first for request bodies; the second comes from our own models.
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(ValidationError, _validation)

    @app.exception_handler(BodyError)
    async def _body(request: Request, error: BodyError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=422)


def run_server(
    app: FastAPI,
    *,
    sock: socket.socket | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    log_level: str = "warning",
) -> None:
    """Serve ``app`` until SIGINT/SIGTERM, on ``sock`` if given, else on ``host:port``.

    Keep-alive is long because a master reuses one connection per worker for every round.
    """
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        timeout_keep_alive=300,
        lifespan="off",  # no startup or shutdown hooks; spares Ctrl-C a CancelledError report
    )
    server = uvicorn.Server(config)
    server.run(sockets=[sock] if sock is not None else None)
