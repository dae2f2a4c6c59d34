"""What every master shares, so that a new algorithm writes only its flowchart's steps.

A master is an estimator (scikit-learn's contract, :mod:`.estimator`): its constructor
stores its arguments, ``fit(workers)`` checks them, runs the algorithm's rounds and returns
``self``. Around the algorithm, this base class gives every master:

* the blocking API for scripts and notebooks (``fit``, ``predict``), the background one
  (``fit(workers, wait=False)`` returns a :class:`FitHandle`) and the async one
  (``await fit_async(workers)``), all running on the kit's background event loop;
* the quorum (how many workers must answer for a round to count) and its error message;
* the event bus (``events``) on which the fit publishes each flowchart step;
* the records every round leaves (``history_``) and the spans every call leaves (``spans_``);
* the REST app serving the seed's endpoints (:mod:`.rest`).

A subclass sets ``role``, ``fit_path``, ``predict_path`` and ``flowcharts``, lists its
parameters' constraints, and implements ``_fit(client)`` (its loop, one named method per
lettered step) and ``_predict(request)``.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from collections.abc import Callable
from typing import Any, ClassVar, Literal, Union

import numpy as np
import pandas as pd

from .. import _runtime
from .._exceptions import (
    ConfigurationError,
    FitCancelledError,
    FitInProgressError,
    NotFittedError,
    QuorumError,
    WorkerError,
)
from .._types import Endpoints
from ..logs import status_logger
from ..spans import SpanLog
from ..wire import FitResponse, PredictRequest
from ..wire.server import run_server
from .broadcast import Broadcast
from .client import WorkerClient
from .endpoints import resolve_endpoints
from .estimator import Constraint, Estimator, Interval, Options
from .events import EventBus
from .flowchart import Flowchart
from .history import RoundRecord, all_failures
from .pacing import Pacer
from .running import FitHandle, fit_starts

__all__ = ["Master", "Quorum"]

#: Guards each master's "is a fit running?" check and claim (fits run on any event loop).
_FIT_LOCK = threading.Lock()

#: ``None`` (at least one worker), a number of workers, or ``"all"``.
Quorum = Union[int, Literal["all"], None]


def _setting(value: float | None, variable: str, default: float, kind: Callable = float):
    """A constructor value, else the seed's environment variable, else the seed's default."""
    if value is not None:
        return value
    raw = os.environ.get(variable)
    try:
        return kind(raw) if raw is not None else default
    except ValueError:
        raise ConfigurationError(f"{variable} must be a number, got {raw!r}") from None


class Master(Estimator):
    """Base class of the masters (see the module's docstring for what it gives).

    Attributes
    ----------
    history_ : list of RoundRecord
        One record per round (or per broadcast) of the last fit, and per predict since.
    spans_ : SpanLog
        One span per call to a worker in the last fit and the predictions since.
    """

    role: ClassVar[str] = "Master"
    fit_path: ClassVar[str]
    predict_path: ClassVar[str]
    #: The flowcharts this master follows, fit first: the dashboard draws them.
    flowcharts: ClassVar[tuple[Flowchart, ...]] = ()

    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {
        "quorum": [None, Options("all"), Interval(int, 1, None, closed="left")],
        "timeout": [None, Interval(float, 0, None, closed="neither")],
        "max_retries": [None, Interval(int, 0, None, closed="left")],
        "random_state": [None, Interval(int, 0, None, closed="left")],
    }

    # Defaults for masters whose constructor does not take these common parameters.
    quorum: Quorum = None
    timeout: float | None = None
    max_retries: int | None = None
    _events: EventBus | None = None
    _pacer: Pacer | None = None
    _stop_requested: bool = False  # set by stop(), from any thread; read between rounds
    _running_fit: tuple[asyncio.AbstractEventLoop, asyncio.Task] | None = None
    _workers: Any = None  # what the running fit was given: a cluster, or name -> URL
    _cancel_reason: str | None = None

    # -- what every fit has --------------------------------------------------------------

    @property
    def events(self) -> EventBus:
        """The bus this master publishes its flowchart steps on."""
        if self._events is None:
            self._events = EventBus()
        return self._events

    @property
    def pacer(self) -> Pacer:
        """Slow motion for a lecture (see :class:`~chimera_nb.masters.pacing.Pacer`):
        ``master.pacer.slow_motion(1.0)``, ``pause()``, ``step()``, ``full_speed()``."""
        if self._pacer is None:
            self._pacer = Pacer()
        return self._pacer

    @property
    def max_rounds(self) -> int | None:
        """The most rounds a fit may run, for a progress display; None: no rounds."""
        return None

    def _begin_fit(self) -> None:
        """A new fit starts a new history and a new span log, at once (a dashboard reading
        them sees the new fit from its first round)."""
        self.history_: list[RoundRecord] = []
        self.spans_ = SpanLog()

    # -- the blocking, background and async APIs ------------------------------------------

    def fit(self, workers: Any, *, wait: bool = True) -> Master | FitHandle:
        """Fit on ``workers`` (a cluster, or a mapping of name to URL).

        ``wait=True`` blocks until done and returns ``self``; ``wait=False`` returns a
        :class:`FitHandle` at once, so that a notebook's buttons stay live. From async code,
        ``await master.fit_async(workers)`` instead.
        """
        if wait:
            return _runtime.run_sync(self.fit_async(workers))
        return FitHandle(_runtime.submit(self.fit_async(workers)), self)

    async def fit_async(self, workers: Any) -> Master:
        """Fit on ``workers``; see :meth:`fit`.

        Raises
        ------
        FitInProgressError
            This master is fitting already (one fit at a time: two would corrupt the model).
        FitCancelledError
            :meth:`cancel_fit` abandoned the fit; the master keeps its previous model.
        """
        self._validate_params()
        endpoints = resolve_endpoints(workers)
        self._claim_fit()
        try:
            self._endpoints = endpoints  # where the fitted model lives (bagging predicts there)
            self._workers = workers  # a cluster's membership may change during the fit
            self._begin_fit()
            fit_starts.publish(self, endpoints)
            status_logger.info("%s fit started on %d workers", self.role, len(endpoints))
            async with self._client(endpoints, **self._client_options()) as client:
                await self._fit(client)
        except asyncio.CancelledError:
            if self._cancel_reason is None:
                raise
            status_logger.warning("%s fit cancelled: %s", self.role, self._cancel_reason)
            raise FitCancelledError(f"the fit was stopped: {self._cancel_reason}") from None
        except Exception as error:
            status_logger.error("%s fit failed: %s", self.role, error)
            raise
        finally:
            with _FIT_LOCK:
                self._running_fit, self._cancel_reason = None, None
            self._stop_requested = False  # a stop() ends one fit, not the next
        status_logger.info("%s fit done%s", self.role, self._fit_summary())
        return self

    def _claim_fit(self) -> None:
        """Mark this master as fitting, or refuse: one fit at a time."""
        with _FIT_LOCK:
            if self._running_fit is not None:
                raise FitInProgressError(
                    f"this {type(self).__name__} is fitting already; wait for that fit to end "
                    "(or end it: master.stop() after the current round, master.cancel_fit() at "
                    "once), or fit a clone: sklearn.base.clone(master)."
                )
            self._running_fit = (asyncio.get_running_loop(), asyncio.current_task())

    @property
    def fitting(self) -> bool:
        """Whether a fit is running now."""
        return self._running_fit is not None

    def cancel_fit(self, reason: str = "cancelled") -> bool:
        """Abandon the running fit at once; its ``fit`` raises :class:`FitCancelledError`
        saying ``reason``, and the master keeps the model it had before. Safe to call from
        any thread; returns whether a fit was running."""
        with _FIT_LOCK:
            if self._running_fit is None:
                return False
            self._cancel_reason = reason
            loop, task = self._running_fit
        loop.call_soon_threadsafe(task.cancel)
        return True

    def _fit_summary(self) -> str:
        """``": 31 rounds, loss 0.25"`` for the status log (empty without rounds)."""
        if self.max_rounds is None or not self.history_:
            return ""
        loss = self.history_[-1].loss
        return f": {len(self.history_)} rounds" + ("" if loss is None else f", loss {loss:.6g}")

    async def _fit(self, client: WorkerClient) -> None:
        """The algorithm's loop, one named method per flowchart step."""
        raise NotImplementedError

    def stop(self) -> None:
        """Ask a running fit to finish after the current round, keeping the model so far
        (a notebook's stop button). Safe to call from any thread; a paused fit resumes to
        end."""
        self._stop_requested = True
        if self._pacer is not None:
            self._pacer.full_speed()

    def predict(self, X: Any) -> np.ndarray:
        """Predict the rows of ``X`` (a DataFrame with the training columns, or an array)."""
        return _runtime.run_sync(self.predict_async(X))

    async def predict_async(self, X: Any) -> np.ndarray:
        """Predictions for the rows of ``X``; see :meth:`predict`."""
        raise NotImplementedError

    # -- talking to workers ---------------------------------------------------------------

    def _client(self, endpoints: Endpoints, **options: Any) -> WorkerClient:
        """One client for one action, with the timeout and retries in force; its spans go
        to ``spans_``."""
        if not hasattr(self, "spans_"):
            self.spans_ = SpanLog()
        return WorkerClient(
            endpoints,
            timeout=_setting(self.timeout, "CHIMERA_WORKERS_ENDPOINTS_TIMEOUT", 100.0),
            max_retries=_setting(self.max_retries, "CHIMERA_WORKERS_ENDPOINTS_MAX_RETRIES", 0, int),
            spans=self.spans_,
            pacer=self._pacer,
            **options,
        )

    def _client_options(self) -> dict[str, Any]:
        """Options of this master's client (a subclass may pick its wire ``encoding``)."""
        return {}

    def _follow_membership(self, client: WorkerClient, round_number: int) -> list[str]:
        """Between rounds: the workers a cluster added since the last round join the fit and
        those it removed leave it (a mapping of URLs never changes); returns who joined."""
        current = getattr(self._workers, "endpoints", None)
        if current is None or not isinstance(current, dict):
            return []
        joined, left = client.follow(current)
        for name in joined:
            status_logger.info("round %d: worker %s joined the fit", round_number, name)
        for name in left:
            status_logger.info("round %d: worker %s left the fit", round_number, name)
        return joined

    async def _ask_in_turn(self, endpoint: Callable, names: list[str]) -> Any:
        """The answer of the first worker that answers ``endpoint``, asking them one after
        the other; a WorkerError listing every failure if none does."""
        failures = {}
        for name in names:
            try:
                answer, _ = await endpoint(name)
                return answer
            except WorkerError as error:
                failures[name] = str(error)
        raise WorkerError(f"no worker answered {endpoint.__name__}: {failures}")

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

    def _record(self, outcome: Broadcast, round_number: int, **fields: Any) -> RoundRecord:
        """Append the record of a broadcast to ``history_``: who answered, who failed, each
        answer's latency (from its span), plus the algorithm's ``fields``."""
        record = RoundRecord(
            round_number,
            outcome.answered,
            dict(outcome.failed),
            dict(outcome.latency_ms),
            cancelled=dict(outcome.cancelled),
            **fields,
        )
        self.history_.append(record)
        return record

    # -- fitted state ----------------------------------------------------------------------

    def _check_is_fitted(self, attribute: str) -> None:
        if not hasattr(self, attribute):
            raise self._not_fitted()

    def _not_fitted(self) -> NotFittedError:
        return NotFittedError(
            f"this {type(self).__name__} is not fitted yet: call fit(workers) "
            f"(or POST {self.fit_path}) before predicting"
        )

    def _is_fitted(self) -> bool:
        return False

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

    def build_app(self, workers: Any, **options: Any):
        """A FastAPI app serving the seed's fit and predict endpoints for ``workers``, plus
        ``GET /health`` and ``GET /metrics``. One fit runs at a time; a second gets HTTP
        409. ``options`` go to :func:`chimera_nb.masters.rest.build_app`
        (``allowed_origins``, ``allowed_hosts``)."""
        from .rest import build_app

        return build_app(self, workers, **options)

    def serve(
        self,
        workers: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 8080,
        sock: socket.socket | None = None,
    ) -> str | None:
        """Serve the seed's endpoints on ``host:port`` (or an already listening ``sock``)
        until Ctrl-C (SIGINT), SIGTERM or SIGHUP, as the seed's master; return its name.

        The signal first cancels a running fit, whose client gets 503 "the fit was stopped:
        master shutting down (SIGTERM)" at once, rather than the server waiting for it."""
        status_logger.info(
            "serving %s on %s", self.role, sock.getsockname() if sock else (host, port)
        )
        return run_server(
            self.build_app(workers),
            sock=sock,
            host=host,
            port=port,
            on_stop=lambda signal: self.cancel_fit(f"master shutting down ({signal})"),
        )

    def _fit_response(self) -> FitResponse:
        """The REST answer to a fit of rounds: its last round, every failure, whether it
        converged (a master with no convergence test says False), its last loss."""
        last = self.history_[-1]
        return FitResponse(
            answered=last.answered,
            failed=all_failures(self.history_),
            n_rounds=len(self.history_),
            converged=bool(getattr(self, "converged_", False)),
            loss=last.loss,
        )

    async def _predict_response(self, body: PredictRequest):
        raise NotImplementedError

    def __repr__(self) -> str:
        fitted = "fitted" if self._is_fitted() else "not fitted"
        return f"{type(self).__name__}({self._repr_arguments()}) [{fitted}]"
