"""What every worker shares: its training shard, its FastAPI app and how it serves.

A worker object is a *description* (its constructor arguments, and optionally the data it
should hold); nothing runs until :meth:`Worker.serve` is called in the worker's own process,
which loads the shard, builds the app and serves it. That is why a worker can be pickled
to a new process (the process backend), or built by a seed-style script in a container.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any, ClassVar

import numpy as np
from fastapi import FastAPI
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from ..algorithms.robust import byzantine_answer
from ..auth import require_token_for, token_matches, worker_token_from_environment
from ..wire import DelayRequest, HealthResponse, paths
from ..wire.fastpath import FastRoutes, RawHandler
from ..wire.fault_models import ByzantineRequest
from ..wire.models import NetworkRequest
from ..wire.server import error_responses, finish_app, new_app, run_server
from .launch import current_context
from .network import EmulatedNetwork, Network
from .training_data import TrainingData, load_training_data

__all__ = ["Worker"]


class Worker:
    """Base class of the kit's workers.

    Subclasses add their endpoints in :meth:`_add_routes`. After :meth:`serve` has loaded
    the shard, ``name_``, ``columns_``, ``X_`` (float64 array) and ``y_`` hold it.
    """

    role: ClassVar[str] = "Worker"
    _data: TrainingData | None = None

    def with_data(self, X: Any, y: Any) -> Worker:
        """A copy of this worker that will serve ``X`` and ``y`` as its shard, instead of
        reading ``chimera_train_data/<name>/``.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
        y : array-like or Series of shape (n_samples,)
        """
        worker = copy.copy(self)
        worker._data = self._checked(TrainingData.of(X, y))
        return worker

    def _checked(self, data: TrainingData) -> TrainingData:
        """``data``, refused at once if this worker is a regressor and ``y`` is not numbers."""
        if self._regression():
            data.require_numeric_target(f"{type(self).__name__}({self._repr_arguments()})")
        return data

    def _regression(self) -> bool:
        """Whether this worker computes with ``y`` as numbers (a regressor)."""
        return False

    # -- in the worker's own process ------------------------------------------------------

    def load(self, name: str, data: TrainingData) -> Worker:
        """Hold the shard ``data`` under ``name`` (called by :meth:`serve`; tests may call it)."""
        data = self._checked(data)
        self.name_ = name
        self.columns_ = data.columns
        self.X_ = data.X
        self.y_ = data.y
        self.target_name_ = data.target_name
        self.delay_ = 0.0  # seconds added before each training answer (a teaching fault)
        self.network_ = Network()  # the emulated network in front of it (normal at first)
        self.byzantine(ByzantineRequest())  # honest at first
        return self

    def byzantine(self, settings: ByzantineRequest) -> None:
        """Corrupt every training answer from now on as ``settings`` say (or stop); a seed
        restarts the noise, so the same seed and calls replay the same answers."""
        self.byzantine_ = None if settings.honest() else settings
        self._byzantine_rng = np.random.default_rng(settings.seed)

    def _corrupt(self, vector: np.ndarray) -> np.ndarray:
        """What this worker sends instead of ``vector``, its honest answer to a training call
        (a gradient, a client's update): ``vector`` itself unless ``cluster.byzantine()`` made
        it Byzantine. Every role calls it on what it computed, one place for every attack."""
        if self.byzantine_ is None:
            return vector
        settings = self.byzantine_
        return byzantine_answer(vector, settings.kind, settings.scale, self._byzantine_rng)

    def require_token(self, token: str | None) -> Worker:
        """Answer every endpoint but ``GET /health`` with 401 unless the request carries
        ``Authorization: Bearer <token>`` (None: no token needed). :meth:`serve` calls it
        with the token its launcher gave (see :mod:`chimera_nb.auth`)."""
        self.token_ = token
        return self

    def build_app(
        self,
        *,
        allowed_origins: Iterable[str] | None = None,
        allowed_hosts: Iterable[str] | None = None,
    ) -> FastAPI:
        """The worker's FastAPI app: ``GET /health``, ``GET /metrics``, the fault controls and
        the subclass's endpoints (also at the seed's older paths), behind the guard of
        :mod:`chimera_nb.wire.guard`, which ``allowed_origins`` and ``allowed_hosts`` widen,
        and behind the emulated network of :mod:`chimera_nb.workers.network`."""
        token = getattr(self, "token_", None)
        app = new_app(f"chimera-nb {self.role} {self.name_}", token=bool(token))
        fast = self._fast_routes()
        if fast:  # first added, so innermost: behind the token check and the guard
            older = {
                paths.OLDER[path]: handler for path, handler in fast.items() if path in paths.OLDER
            }
            app.add_middleware(FastRoutes, routes={**fast, **older})
        if token:
            app.add_middleware(_RequireToken, token=token)

        @app.get(paths.HEALTH, response_model=HealthResponse)
        async def health() -> HealthResponse:
            return HealthResponse(role=self.role, name=self.name_, n_samples=len(self.X_))

        @app.post(paths.FAULTS_DELAY, responses=error_responses(422))
        async def delay(body: DelayRequest) -> dict[str, float]:
            self.delay_ = body.seconds
            return {"seconds": self.delay_}

        @app.post(paths.FAULTS_NETWORK, responses=error_responses(422))
        async def network(body: NetworkRequest) -> NetworkRequest:
            self.network_.configure(body)
            return body

        @app.post(paths.FAULTS_BYZANTINE, responses=error_responses(422))
        async def byzantine(body: ByzantineRequest) -> ByzantineRequest:
            self.byzantine(body)
            return body

        self._add_routes(app)
        finish_app(app, allowed_origins=allowed_origins, allowed_hosts=allowed_hosts)
        # added last, so outermost: the network comes before the guard, the token check
        # and the fast routes, as a real one does
        app.add_middleware(EmulatedNetwork, network=self.network_)
        return app

    def _fast_routes(self) -> dict[str, RawHandler]:
        """Paths a fit calls every round, answered without FastAPI's per-request work (see
        :mod:`chimera_nb.wire.fastpath`); their FastAPI routes stay, for ``/docs``."""
        return {}

    def _add_routes(self, app: FastAPI) -> None:
        raise NotImplementedError

    def serve(self) -> None:
        """Load the shard and serve until stopped, as the seed's ``worker.serve()``.

        Who this worker is and where it listens come from
        :func:`chimera_nb.workers.launch.current_context`; the token it requires, if any,
        from ``CHIMERA_WORKER_TOKEN`` (see :mod:`chimera_nb.auth`). A worker that binds an
        address beyond loopback by itself refuses to serve without one.
        """
        context = current_context()
        token = getattr(context, "token", None) or worker_token_from_environment()
        if context.sock is None:  # binding itself: refuse to be exposed without a token
            require_token_for(context.host, token, f"Worker {context.name!r}")
        if self._data is not None:
            data = self._data
        else:  # a seed-style worker reads chimera_train_data/<name>/
            data = TrainingData.of(*load_training_data(context.data_dir))
        self.load(context.name, data).require_token(token)
        run_server(self.build_app(), sock=context.sock, host=context.host, port=context.port)

    def __repr__(self) -> str:
        rows = f", {len(self._data.X)} rows" if self._data is not None else ""
        return f"{type(self).__name__}({self._repr_arguments()}{rows})"

    def _repr_arguments(self) -> str:
        return ""


class _RequireToken:
    """ASGI middleware: 401 for a request without the worker's token (``/health`` is open,
    so that a cluster, a load balancer or a person can check liveness with curl).

    Plain ASGI rather than ``BaseHTTPMiddleware``: it adds microseconds, not a task per
    request, to every round of a fit.
    """

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] != paths.HEALTH:
            headers = dict(scope["headers"])
            authorization = headers.get(b"authorization", b"").decode("latin-1")
            if not token_matches(authorization, self.token):
                reason = "a wrong token" if authorization else "no token"
                response = JSONResponse(
                    {
                        "detail": f"This worker requires a shared token, and the request "
                        f"carried {reason}. Send 'Authorization: Bearer <token>': give the "
                        "master the token the worker was started with (cluster.token, or "
                        "the CHIMERA_WORKERS_TOKEN variable)."
                    },
                    status_code=401,
                    headers={"www-authenticate": "Bearer"},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
