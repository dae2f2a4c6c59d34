"""Stand-in worker targets for the cluster tests: the smallest servers that keep the
worker contract (a picklable object whose blocking ``serve()`` serves ``GET /health`` on
the socket the cluster handed over, and a ``with_data`` method)."""

from __future__ import annotations

import os

import uvicorn
from fastapi import FastAPI

from chimera_nb.workers.launch import current_context

__all__ = ["BrokenWorker", "HealthWorker", "NoHealthWorker", "serve_app"]


def serve_app(app: FastAPI) -> None:
    """Serve ``app`` on the listening socket of this worker's launch context."""
    context = current_context()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    server.run(sockets=[context.sock])


class HealthWorker:
    """Answers ``GET /health``, and ``GET /info`` with what the worker process knows."""

    def __init__(self, X=None, y=None) -> None:
        self.X = X
        self.y = y

    def with_data(self, X, y) -> HealthWorker:
        return HealthWorker(X, y)

    def serve(self) -> None:
        context = current_context()
        app = FastAPI()

        @app.get("/health")
        def health() -> dict:
            return {"status": "ok"}

        @app.get("/info")
        def info() -> dict:
            return {
                "name": context.name,
                "data_dir": str(context.data_dir),
                "cwd": os.getcwd(),
                "pid": os.getpid(),
                "n_rows": None if self.X is None else len(self.X),
                "first_y": None if self.y is None else float(self.y[0]),
                "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
            }

        serve_app(app)


class BrokenWorker(HealthWorker):
    """Fails as it starts, as a worker with a bug would."""

    def serve(self) -> None:
        raise RuntimeError("this worker is broken on purpose")


class NoHealthWorker(HealthWorker):
    """Serves HTTP, but not the ``GET /health`` route every worker needs."""

    def serve(self) -> None:
        serve_app(FastAPI())
