"""What every master shares: which workers it drives, the quorum, the event bus, a blocking
API for notebooks and scripts, and the FastAPI app that serves the seed's endpoints."""

from __future__ import annotations

import asyncio
import inspect
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Union

import numpy as np
import pandas as pd
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from .._exceptions import (
    ChimeraError,
    ConfigurationError,
    NotFittedError,
    QuorumError,
)
from .._runtime import run_sync
from .._types import Endpoints
from ..auth import MASTER_TOKEN_VARIABLE
from ..logs import status_logger
from ..wire import HealthResponse, PredictRequest, paths
from ..wire.encoding import BodyError
from ..wire.server import install_error_handlers, run_server
from .client import Broadcast, WorkerClient
from .events import EventBus

__all__ = ["Master", "Quorum", "RoundRecord", "WorkerEndpoints", "resolve_endpoints"]

#: ``None`` (at least one worker), a number of workers, or ``"all"``.
Quorum = Union[int, Literal["all"], None]


@dataclass
class RoundRecord:
    """Who took part in one round, and what it gave: the failures are data (``history_``)."""

    round_number: int
    answered: list[str]
    failed: dict[str, str]
    latency_ms: dict[str, float]
    n_samples: dict[str, int] = field(default_factory=dict)
    loss: float | None = None
    learning_rate: float | None = None
    update_norm: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class WorkerEndpoints(dict):
    """Worker name -> base URL, plus the shared ``token`` the workers require (or None).

    A plain dict to everything that reads it; the token rides along so that a master that
    keeps its endpoints (to predict later) keeps the token too.
    """

    token: str | None = None


def resolve_endpoints(workers: Any) -> WorkerEndpoints:
    """``workers`` as a ``name -> URL`` dict: a mapping, or anything with ``.endpoints``
    (a cluster). Its ``token`` is the cluster's (``cluster.token``), else the mapping's,
    else the ``CHIMERA_WORKERS_TOKEN`` variable's, else None."""
    endpoints = getattr(workers, "endpoints", workers)
    if not isinstance(endpoints, dict) and not hasattr(endpoints, "items"):
        raise ConfigurationError(
            "workers must be a cluster (e.g. LocalCluster) or a mapping of worker name to URL, "
            f"got {type(workers).__name__}"
        )
    token = (
        getattr(workers, "token", None)
        or getattr(endpoints, "token", None)
        or os.environ.get(MASTER_TOKEN_VARIABLE)
        or None
    )
    endpoints = WorkerEndpoints(endpoints)
    endpoints.token = token
    if not endpoints:
        raise ConfigurationError("workers is empty: a master needs at least one worker")
    return endpoints


def _setting(value: float | None, variable: str, default: float, kind: Callable = float):
    """A constructor value, else the seed's environment variable, else the seed's default."""
    if value is not None:
        return value
    raw = os.environ.get(variable)
    try:
        return kind(raw) if raw is not None else default
    except ValueError:
        raise ConfigurationError(f"{variable} must be a number, got {raw!r}") from None


class Master:
    """Base class of the masters.

    Subclasses implement ``fit_async`` and ``predict_async``, name their REST paths and
    flowcharts, and add their fitted attributes; everything else is here.
    """

    role: ClassVar[str] = "Master"
    fit_path: ClassVar[str]
    predict_path: ClassVar[str]
    quorum: Quorum
    timeout: float | None
    max_retries: int | None

    # -- the event bus: every step change of the flowcharts ---------------------------------

    @property
    def events(self) -> EventBus:
        """The bus this master publishes its flowchart steps on (created on first use)."""
        if "_events" not in self.__dict__:
            self.__dict__["_events"] = EventBus()
        return self.__dict__["_events"]

    # -- validation shared by the subclasses ------------------------------------------------

    def _check_common_params(self) -> None:
        quorum = self.quorum
        if not (quorum is None or quorum == "all" or (isinstance(quorum, int) and quorum >= 1)):
            raise ConfigurationError(
                f"quorum must be None (at least one worker), a number >= 1 or 'all', got {quorum!r}"
            )
        if self.timeout is not None and not self.timeout > 0:
            raise ConfigurationError(
                f"timeout must be a positive number of seconds, got {self.timeout!r}"
            )
        if self.max_retries is not None and not (
            isinstance(self.max_retries, int) and self.max_retries >= 0
        ):
            raise ConfigurationError(
                f"max_retries must be an integer >= 0, got {self.max_retries!r}"
            )

    def _client(self, endpoints: Endpoints, **options: Any) -> WorkerClient:
        """One client for one action, with the timeout and retries in force."""
        return WorkerClient(
            endpoints,
            timeout=_setting(self.timeout, "CHIMERA_WORKERS_ENDPOINTS_TIMEOUT", 100.0),
            max_retries=_setting(self.max_retries, "CHIMERA_WORKERS_ENDPOINTS_MAX_RETRIES", 0, int),
            **options,
        )

    def _required(self, n_workers: int) -> int:
        """How many workers must answer for a step to count."""
        if self.quorum is None:
            return 1
        return n_workers if self.quorum == "all" else min(int(self.quorum), n_workers)

    def _check_quorum(self, outcome: Broadcast, n_workers: int, what: str) -> None:
        """Raise :class:`QuorumError` if too few workers answered ``what``; log who failed."""
        for name, reason in outcome.failed.items():
            status_logger.warning("%s: %s failed: %s", what, name, reason)
        required = self._required(n_workers)
        if len(outcome.results) >= required:
            return
        reasons = "; ".join(f"{name} {reason}" for name, reason in outcome.failed.items())
        message = (
            f"{what} reached {len(outcome.results)} of {n_workers} workers, but quorum="
            f"{self.quorum!r} needs {required} ({reasons}). Lower the quorum, raise the timeout, "
            "or check the workers (cluster.status())."
        )
        status_logger.error(message)
        raise QuorumError(message, outcome.answered, dict(outcome.failed))

    def _check_is_fitted(self, attribute: str) -> None:
        if not hasattr(self, attribute):
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet: call fit(workers) "
                f"(or POST {self.fit_path}) before predicting"
            )

    # -- blocking API for scripts and notebooks ---------------------------------------------

    def stop(self) -> None:
        """Ask a running fit to finish after the current round, keeping the model so far
        (a notebook's stop button). Safe to call from any thread."""
        self._stop_requested = True

    def fit(self, workers: Any):
        """Fit on ``workers`` (a cluster, or a mapping of name to URL) and return ``self``.

        Blocks until done; from async code, ``await master.fit_async(workers)`` instead.
        """
        return run_sync(self.fit_async(workers))

    def predict(self, X: Any) -> np.ndarray:
        """Predict the rows of ``X`` (a DataFrame with the training columns, or an array)."""
        return run_sync(self.predict_async(X))

    async def fit_async(self, workers: Any):
        raise NotImplementedError

    async def predict_async(self, X: Any) -> np.ndarray:
        raise NotImplementedError

    def _as_request(self, X: Any, columns: list[str]) -> PredictRequest:
        """``X`` as a seed predict body (arrays take the training columns in order)."""
        if isinstance(X, pd.DataFrame):
            return PredictRequest(
                X_pred_columns=[str(c) for c in X.columns], X_pred_rows=X.to_numpy().tolist()
            )
        rows = np.asarray(X, dtype=np.float64)
        return PredictRequest(
            X_pred_columns=columns, X_pred_rows=rows.reshape(len(rows), -1).tolist()
        )

    # -- the REST server --------------------------------------------------------------------

    def build_app(self, workers: Any) -> FastAPI:
        """A FastAPI app serving the seed's fit and predict endpoints for ``workers``, plus
        ``GET /health``. One fit runs at a time; a second gets HTTP 409."""
        endpoints = resolve_endpoints(workers)
        app = FastAPI(title=f"chimera-nb {self.role}")
        install_error_handlers(app)
        busy = asyncio.Lock()

        @app.exception_handler(ChimeraError)
        async def _chimera_error(request, error: ChimeraError) -> JSONResponse:
            status = (
                409
                if isinstance(error, NotFittedError)
                else 422
                if isinstance(error, (ConfigurationError, BodyError))
                else 503
            )
            body: dict[str, Any] = {"detail": str(error)}
            if isinstance(error, QuorumError):
                body.update(answered=error.answered, failed=error.failed)
            return JSONResponse(body, status_code=status)

        @app.get(paths.HEALTH, response_model=HealthResponse)
        async def health() -> HealthResponse:
            return HealthResponse(role=self.role, name="master")

        @app.post(self.fit_path)
        async def fit() -> JSONResponse:
            if busy.locked():
                return JSONResponse(
                    {"detail": "a fit is already running; wait for it"}, status_code=409
                )
            async with busy:
                await self.fit_async(endpoints)
            return JSONResponse(self._fit_response().model_dump(exclude_none=True))

        @app.post(self.predict_path)
        async def predict(body: PredictRequest) -> JSONResponse:
            return JSONResponse((await self._predict_response(body)).model_dump(exclude_none=True))

        return app

    def serve(
        self,
        workers: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 8080,
        sock: socket.socket | None = None,
    ) -> None:
        """Serve the seed's endpoints on ``host:port`` (or an already listening ``sock``)
        until Ctrl-C, as the seed's master."""
        status_logger.info(
            "serving %s on %s", self.role, sock.getsockname() if sock else (host, port)
        )
        run_server(self.build_app(workers), sock=sock, host=host, port=port)

    def _fit_response(self):
        raise NotImplementedError

    async def _predict_response(self, body: PredictRequest):
        raise NotImplementedError

    def __repr__(self) -> str:
        fitted = "fitted" if self._is_fitted() else "not fitted"
        return f"{type(self).__name__}({self._repr_arguments()}) [{fitted}]"

    def _is_fitted(self) -> bool:
        return False

    def _repr_arguments(self) -> str:
        """Positional arguments, then the keyword arguments that differ from their default."""
        parts = []
        for name, parameter in inspect.signature(type(self).__init__).parameters.items():
            if name == "self":
                continue
            value = getattr(self, name)
            if parameter.kind is parameter.POSITIONAL_OR_KEYWORD:
                parts.append(repr(value))
            elif value != parameter.default:
                parts.append(f"{name}={value!r}")
        return ", ".join(parts)
