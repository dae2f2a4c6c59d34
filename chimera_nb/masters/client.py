"""The one seam between a master and its workers.

:class:`WorkerClient` has a method per worker endpoint (``fit_step``, ``statistics``,
``model_fit``...), applies the timeout and retries of ``CHIMERA_WORKERS_ENDPOINTS_TIMEOUT``
and ``..._MAX_RETRIES`` to every call, writes one ``chimera_time.log`` line per attempt, and
turns every way a call can go wrong into a :class:`~chimera_nb.WorkerError` whose message
says what happened ("timed out after 2 s", "connection refused").

:meth:`WorkerClient.broadcast` sends one call to many workers at once and returns *who
answered and who failed* as data (a :class:`Broadcast`), never an exception: whether a
partial round is good enough is the master's decision (its quorum).

Every attempt leaves a :class:`~chimera_nb.spans.Span` (worker, endpoint, round, start, end,
bytes each way, status) in the master's span log, which also writes ``chimera_time.log``; the
latency a :class:`Broadcast` reports is its successful span's, so nothing is measured twice.

One pool of keep-alive connections is opened per master action and reused for every call
of it, so a 1,000-round fit keeps one connection per worker. Plain-http workers are called
through :mod:`._connections` (an HTTP/1.1 exchange on a socket, parsed by httptools): an HTTP
client's layers (cookies, redirects, URL merging, request and response objects) cost more
master CPU per call than the exchange itself, and a worker needs none of them. Workers
reached by https go through aiohttp.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, NamedTuple, TypeVar

import aiohttp
from pydantic import BaseModel, ValidationError

from .._exceptions import WorkerError
from .._types import Endpoints
from ..auth import bearer_header
from ..logs import flush_time_log
from ..spans import Span, SpanLog
from ..wire import (
    DataSampleResponse,
    Encoding,
    FitStep,
    FitStepResult,
    HealthResponse,
    ModelFitRequest,
    ModelFitResponse,
    PredictRequest,
    PredictResponse,
    StatisticsResponse,
    paths,
)
from ..wire.encoding import BodyError
from ._connections import ConnectionLost, ConnectionPool
from .broadcast import PendingBroadcast, after
from .pacing import Pacer

__all__ = ["SharedClient", "WorkerClient"]

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
C = TypeVar("C", bound="WorkerClient")


#: At most this many connections per client (concurrent calls beyond it wait for one); each
#: is kept alive between rounds for up to 5 minutes.
_POOL_SIZE, _KEEPALIVE = 64, 300.0


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context for every client (workers reached by https): building one loads the
    CA bundle, tens of milliseconds that a prediction should not pay each time."""
    return ssl.create_default_context()


class SharedClient:
    """One open :class:`WorkerClient` for the actions that run at the same time on one event
    loop (200 concurrent predictions share one pool of at most 64 connections instead of
    opening one connection per worker each); closed when the last of them ends.

    Parameters
    ----------
    make : callable
        Builds the client when the first action starts.
    """

    def __init__(self, make: Callable[[], WorkerClient]) -> None:
        self._make = make
        self._client: WorkerClient | None = None
        self._users = 0
        self._lock = asyncio.Lock()  # opening and closing never overlap: one pool at a time

    @contextlib.asynccontextmanager
    async def use(self):
        async with self._lock:
            if self._client is None:
                self._client = await self._make().__aenter__()
            self._users += 1
            client = self._client
        try:
            yield client
        finally:
            async with self._lock:
                self._users -= 1
                if self._users == 0:
                    self._client = None
                    await client.__aexit__(None, None, None)


def _describe(error: Exception, timeout: float) -> tuple[str, str]:
    """(reason for a person, status word for the time log) of a failed call."""
    if isinstance(error, asyncio.TimeoutError):  # aiohttp's timeouts are TimeoutErrors too
        return f"timed out after {timeout:g} s", "timeout"
    cause = getattr(error, "os_error", None) or error
    if isinstance(cause, ConnectionRefusedError) or "Connect call failed" in str(error):
        return "connection refused", "refused"
    if isinstance(error, ConnectionLost):
        return str(error), "disconnected"
    if isinstance(error, aiohttp.ServerDisconnectedError):
        return "disconnected before answering", "disconnected"
    if isinstance(cause, (ConnectionResetError, BrokenPipeError)) or isinstance(
        error, aiohttp.ClientPayloadError
    ):
        return f"connection lost ({cause})", "disconnected"
    return f"{type(error).__name__}: {error}", "error"


class Reply(NamedTuple):
    """A worker's answer: its status, headers and whole body."""

    status: int
    headers: Mapping[str, str]
    content: bytes

    def detail(self) -> str:
        """The ``detail`` of an error body, else its first 200 characters."""
        try:
            return str(json.loads(self.content)["detail"])
        except (ValueError, KeyError, TypeError):
            return self.content[:200].decode("utf-8", "replace") or f"status {self.status}"


class WorkerClient:
    """Calls the workers of ``endpoints`` (name -> base URL).

    Parameters
    ----------
    endpoints : mapping of str to str
    timeout : float
        Seconds one attempt may take, connection included.
    max_retries : int
        Further attempts after a timeout, a lost connection or a 5xx answer (a 4xx answer
        is the request's fault and is not retried).
    encoding : {"json", "binary"}
        How fit-step vectors travel (see :mod:`chimera_nb.wire.encoding`).
    token : str, optional
        The workers' shared token, sent as ``Authorization: Bearer <token>`` with every
        call (see :mod:`chimera_nb.auth`). By default ``endpoints.token`` when the endpoints
        came from a cluster that has one, else none.
    spans : SpanLog, optional
        Where each attempt's span goes (a master passes its ``spans_``); by default a log
        of this client's own, :attr:`spans`.
    pacer : Pacer, optional
        Asked before every broadcast, for slow motion (see :mod:`.pacing`).
    """

    def __init__(
        self,
        endpoints: Endpoints,
        *,
        timeout: float = 100.0,
        max_retries: int = 0,
        encoding: Encoding = "json",
        token: str | None = None,
        spans: SpanLog | None = None,
        pacer: Pacer | None = None,
    ) -> None:
        self.spans = spans if spans is not None else SpanLog()
        self.pacer = pacer
        self.token = token if token is not None else getattr(endpoints, "token", None)
        self._auth = bearer_header(self.token)
        self.endpoints = dict(endpoints)
        self.timeout = timeout
        self.max_retries = max_retries
        self.encoding = encoding
        self._base_urls = {name: url.rstrip("/") for name, url in self.endpoints.items()}
        self._request_timeout = aiohttp.ClientTimeout(total=timeout)
        self._pool: ConnectionPool | None = None
        self._session: aiohttp.ClientSession | None = None  # for https workers only

    @classmethod
    def like(cls: type[C], client: WorkerClient) -> C:
        """A client of this class with ``client``'s workers and settings (timeout, retries,
        encoding, token, span log, pacer): how a master whose workers have endpoints of their
        own (ring, federated, feature split, pipeline) gets a client that calls them."""
        return cls(
            client.endpoints,
            timeout=client.timeout,
            max_retries=client.max_retries,
            encoding=client.encoding,
            token=client.token,
            spans=client.spans,
            pacer=client.pacer,
        )

    def follow(self, endpoints: Endpoints) -> tuple[list[str], list[str]]:
        """Call the workers of ``endpoints`` from now on (a cluster's membership changed
        between rounds); returns the names that joined and those that left."""
        joined = [name for name in endpoints if name not in self.endpoints]
        left = [name for name in self.endpoints if name not in endpoints]
        if joined or left or endpoints != self.endpoints:
            self.endpoints = dict(endpoints)
            self._base_urls = {name: url.rstrip("/") for name, url in self.endpoints.items()}
        return joined, left

    async def __aenter__(self) -> WorkerClient:
        self._pool = ConnectionPool(_POOL_SIZE)  # proxy variables never catch the workers
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        flush_time_log()  # an action ended: its calls are in chimera_time.log now

    async def _send(
        self, method: str, name: str, path: str, body: bytes, headers: dict[str, str]
    ) -> Reply:
        """One HTTP exchange with a worker, its body read."""
        assert self._pool is not None, "use WorkerClient inside 'async with'"
        url = self._base_urls[name] + path
        headers = {**headers, **self._auth} if self._auth else headers
        if url.startswith("http://"):
            return Reply(*await self._pool.request(method, url, body, headers, self.timeout))
        async with self._https().request(
            method, url, data=body or None, headers=headers, timeout=self._request_timeout
        ) as response:
            return Reply(response.status, response.headers, await response.read())

    def _https(self) -> aiohttp.ClientSession:
        """The aiohttp session for workers reached by https, opened on first use."""
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=_POOL_SIZE, keepalive_timeout=_KEEPALIVE, ssl=_tls_context()
            )
            self._session = aiohttp.ClientSession(
                connector=connector, skip_auto_headers=("User-Agent",)
            )
        return self._session

    # -- one call, with timeout, retries and the time log -----------------------------------

    async def _call(
        self,
        name: str,
        method: str,
        path: str,
        parse: Callable[[Reply], T],
        *,
        round_number: int | None = None,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        staleness: int | None = None,
    ) -> tuple[T, float]:
        """Returns the parsed answer and the latency of the successful attempt in ms."""
        reason = ""
        for attempt in range(1, self.max_retries + 2):
            started, clock = time.time(), time.perf_counter()
            reply: Reply | None = None
            cancelled: asyncio.CancelledError | None = None
            try:
                reply = await self._send(method, name, path, body, headers or {})
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as error:
                reason, status = _describe(error, self.timeout)
            except asyncio.CancelledError as error:  # not waited for: on the timeline too
                status, cancelled = "cancelled", error
            else:
                status = str(reply.status)
            span = Span(
                worker=name,
                endpoint=path,
                start=started,
                end=started + (time.perf_counter() - clock),
                status=status,
                round_number=round_number,
                attempt=attempt,
                bytes_sent=len(body),
                bytes_received=0 if reply is None else len(reply.content),
                worker_url=self._base_urls[name],
                staleness=staleness,
            )
            self.spans.record(span)
            if cancelled is not None:
                raise cancelled
            if reply is not None:
                if 200 <= reply.status < 300:
                    try:
                        return parse(reply), span.latency_ms
                    except (ValidationError, BodyError, ValueError) as error:
                        raise WorkerError(
                            f"answered {path} with an unreadable body: {error}"
                        ) from None
                reason = f"answered HTTP {reply.status}: {reply.detail()}"
                if reply.status < 500:
                    break
            if attempt <= self.max_retries:
                await asyncio.sleep(min(0.05 * 2 ** (attempt - 1), 1.0))
        attempts = f" (after {attempt} attempts)" if attempt > 1 else ""
        raise WorkerError(reason + attempts)

    def broadcast(
        self,
        endpoint: Callable[..., Awaitable[tuple[T, float]]],
        workers: Iterable[str] | Mapping[str, Any],
        **options: Any,
    ) -> PendingBroadcast[T]:
        """Call ``endpoint`` (a method of this client) on several workers at once.

        ``workers`` is a list of names (``endpoint(name, **options)`` for each), or a
        mapping name -> request (``endpoint(name, request, **options)``: each worker gets
        its own). Returns at once; ``await (...).wait()`` for the outcome. A broadcast of a
        round (``round_number=...``) first waits for the :attr:`pacer`, if one is active.
        """
        if isinstance(workers, Mapping):
            calls = {name: endpoint(name, request, **options) for name, request in workers.items()}
        else:
            calls = {name: endpoint(name, **options) for name in workers}
        paced = self.pacer is not None and self.pacer.active
        if paced and options.get("round_number") is not None:  # slow motion: hold a round
            gate = asyncio.ensure_future(self.pacer.before_round())
            calls = {name: after(gate, call) for name, call in calls.items()}
        return PendingBroadcast({name: asyncio.ensure_future(call) for name, call in calls.items()})

    # -- the endpoints ----------------------------------------------------------------------

    async def health(self, name: str) -> tuple[HealthResponse, float]:
        return await self._call(name, "GET", paths.HEALTH, _model(HealthResponse))

    async def request_data_sample(self, name: str) -> tuple[DataSampleResponse, float]:
        return await self._call(
            name, "GET", paths.SGD_REQUEST_DATA_SAMPLE, _model(DataSampleResponse)
        )

    async def statistics(self, name: str) -> tuple[StatisticsResponse, float]:
        return await self._call(name, "GET", paths.SGD_STATISTICS, _model(StatisticsResponse))

    async def fit_step(
        self,
        name: str,
        step: FitStep,
        round_number: int | None = None,
        staleness: int | None = None,
    ) -> tuple[FitStepResult, float]:
        """The gradient of ``name``'s shard at ``step``'s weights; ``staleness`` (clocks the
        weights missed, under SSP or ASP) goes to the call's span."""
        body, headers = step.encode(self.encoding)
        return await self._call(
            name,
            "POST",
            paths.SGD_FIT_STEP,
            lambda reply: FitStepResult.decode(reply.content, reply.headers),
            round_number=round_number,
            body=body,
            headers=headers,
            staleness=staleness,
        )

    async def model_fit(
        self, name: str, request: ModelFitRequest, round_number: int | None = None
    ) -> tuple[ModelFitResponse, float]:
        return await self._call(
            name,
            "POST",
            paths.MODEL_FIT,
            _model(ModelFitResponse),
            round_number=round_number,
            **_json(request),
        )

    async def model_predict(
        self, name: str, request: PredictRequest, round_number: int | None = None
    ) -> tuple[PredictResponse, float]:
        return await self._call(
            name,
            "POST",
            paths.MODEL_PREDICT,
            _model(PredictResponse),
            round_number=round_number,
            **_json(request),
        )


def _json(body: BaseModel) -> dict[str, Any]:
    """Keyword arguments of :meth:`WorkerClient._call` for a JSON body."""
    return {
        "body": body.model_dump_json().encode(),
        "headers": {"content-type": "application/json"},
    }


def _model(model: type[M]) -> Callable[[Reply], M]:
    return lambda reply: model.model_validate_json(reply.content)
