"""Prometheus metrics for every server of the kit, at ``GET /metrics``.

Each app has a registry of its own: several apps live in one process in tests and notebooks,
and must not mix their counts. What a server measures per request goes into plain dicts
(:class:`Counts`, :class:`Histograms`), so a fit-step pays a dict update and a bisect, not
prometheus_client's locks; they become metric families only when ``/metrics`` is scraped.
A master adds a collector that reads its ``history_`` and ``spans_`` the same way, at
scrape time (:mod:`chimera_nb.masters.metrics`).

Every server counts its requests:

* ``chimera_http_requests_total{endpoint, method, status}``, a counter;
* ``chimera_http_request_duration_seconds{endpoint}``, a histogram;

where ``endpoint`` is the route's path (``"other"`` for a path the server does not serve).
"""

from __future__ import annotations

import itertools
import time
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import paths

__all__ = ["BUCKETS", "Counts", "Histograms", "RequestMetrics", "install_metrics"]

#: Upper bounds of the duration buckets, in seconds: a fit-step takes about a millisecond,
#: a bagging member's fit can take seconds.
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_BOUNDS = [floatToGoString(bound) for bound in BUCKETS] + ["+Inf"]

#: Called after each request with its ASGI scope, HTTP status and duration in seconds.
RequestHook = Callable[[Scope, int, float], None]


class Counts:
    """A Prometheus counter per combination of label values, kept in a plain dict.

    One event loop fills it and the scrape (on that loop) reads it, so it needs no lock.
    """

    def __init__(self, name: str, documentation: str, labels: Sequence[str]) -> None:
        self.name, self.documentation, self.labels = name, documentation, list(labels)
        self.values: dict[tuple[str, ...], float] = {}

    def add(self, key: tuple[str, ...], amount: float = 1) -> None:
        self.values[key] = self.values.get(key, 0) + amount

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labels)
        for key, value in self.values.items():
            family.add_metric(key, value)
        yield family


class Histograms:
    """A Prometheus histogram of durations (seconds, :data:`BUCKETS`) per combination of
    label values, kept in plain dicts, like :class:`Counts`."""

    def __init__(self, name: str, documentation: str, labels: Sequence[str]) -> None:
        self.name, self.documentation, self.labels = name, documentation, list(labels)
        self.counts: dict[tuple[str, ...], list[int]] = {}
        self.sums: dict[tuple[str, ...], float] = {}

    def observe(self, key: tuple[str, ...], seconds: float) -> None:
        counts = self.counts.get(key)
        if counts is None:
            counts = self.counts[key] = [0] * len(_BOUNDS)
            self.sums[key] = 0.0
        counts[bisect_left(BUCKETS, seconds)] += 1  # the first bucket whose bound >= seconds
        self.sums[key] += seconds

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labels)
        for key, counts in self.counts.items():
            buckets = list(zip(_BOUNDS, itertools.accumulate(counts)))
            family.add_metric(key, buckets, self.sums[key])
        yield family


class RequestMetrics:
    """ASGI middleware: counts and times every request, then calls ``on_request`` (a master
    writes its ``chimera_time.log`` line there, from the same measurement).

    Parameters
    ----------
    app : ASGI app
    routes : list of routes
        The app's routes (Starlette builds middleware at the first request, when they are
        all in place): requests to other paths are counted as ``endpoint="other"``.
    requests : Counts
        Labels ``endpoint, method, status``.
    durations : Histograms
        Label ``endpoint``.
    on_request : callable, optional
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        routes: Sequence[BaseRoute],
        requests: Counts,
        durations: Histograms,
        on_request: RequestHook | None = None,
    ) -> None:
        self.app = app
        self.paths = frozenset(getattr(route, "path", "") for route in routes)
        self.requests = requests
        self.durations = durations
        self.on_request = on_request

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # if no answer starts, the server's own 500 goes out

        async def recorded(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        started = time.perf_counter()
        try:
            await self.app(scope, receive, recorded)
        finally:
            seconds = time.perf_counter() - started
            endpoint = scope["path"] if scope["path"] in self.paths else "other"
            self.requests.add((endpoint, scope["method"], str(status)))
            self.durations.observe((endpoint,), seconds)
            if self.on_request is not None:
                self.on_request(scope, status, seconds)


def install_metrics(
    app: FastAPI, *collectors: Collector, on_request: RequestHook | None = None
) -> CollectorRegistry:
    """Serve ``GET /metrics`` from a registry of the app's own: its requests (counted by
    :class:`RequestMetrics`, installed here as the outermost middleware) and ``collectors``."""
    registry = CollectorRegistry(auto_describe=False)
    requests = Counts(
        "chimera_http_requests_total", "Requests answered", ["endpoint", "method", "status"]
    )
    durations = Histograms(
        "chimera_http_request_duration_seconds", "Time to answer a request", ["endpoint"]
    )
    for collector in (requests, durations, *collectors):
        registry.register(collector)

    @app.get(paths.METRICS, response_class=PlainTextResponse, summary="Prometheus metrics")
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(
        RequestMetrics,
        routes=app.router.routes,
        requests=requests,
        durations=durations,
        on_request=on_request,
    )
    return registry
