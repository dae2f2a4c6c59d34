"""Spans: one record per call to a worker, the kit's single measurement of communication.

Whoever calls a worker (a master, or later a worker calling its ring neighbour) writes one
:class:`Span` per attempt: who was called (and by whom), which endpoint, for which round, when
it started and ended, how many bytes went each way, and how it ended. Everything that shows
communication reads spans: ``chimera_time.log`` is written from them, ``history_`` takes its
latencies from them, the dashboard draws them, and the graders check them. Nothing measures
the same thing twice, so the numbers always agree.

A master keeps the spans of its current fit (and the predictions since) in ``spans_``, a
:class:`SpanLog`; ``master.spans_.to_frame()`` gives them as a DataFrame.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from .logs import log_worker_call

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Span", "SpanLog"]


@dataclass(frozen=True)
class Span:
    """One call to a worker, as its caller saw it.

    Attributes
    ----------
    worker : str
        The worker that was called.
    endpoint : str
        The path called, such as ``/v1/chimera/sgd/fit-step``.
    start, end : float
        When the call was sent and when its answer (or failure) came back, in seconds since
        the epoch (``time.time()``), so that spans of several processes share one clock.
    status : str
        The HTTP status (``"200"``, ``"422"``...), or what happened instead: ``"timeout"``,
        ``"refused"``, ``"disconnected"``, ``"error"``, or ``"cancelled"`` (the master stopped
        waiting: a backup worker's call, or an abandoned fit).
    round_number : int or None
        The round the call belongs to; None for calls outside rounds.
    attempt : int
        1 for the first try, 2 for the first retry...
    bytes_sent, bytes_received : int
        Sizes of the request and response bodies (headers not counted).
    peer : str or None
        Who made the call when it was not the master (a worker calling a worker).
    worker_url : str
        The worker's base URL: it tells two clusters' ``worker1`` apart in the time log.
    staleness : int or None
        For a gradient under a stale-synchronous or asynchronous parameter server: how many
        clocks of updates the weights it was computed on missed (see
        :mod:`chimera_nb.algorithms.consistency`); None elsewhere.
    """

    worker: str
    endpoint: str
    start: float
    end: float
    status: str
    round_number: int | None = None
    attempt: int = 1
    bytes_sent: int = 0
    bytes_received: int = 0
    peer: str | None = None
    worker_url: str = ""
    staleness: int | None = None

    @property
    def latency_ms(self) -> float:
        """How long the call took, in milliseconds."""
        return (self.end - self.start) * 1e3

    @property
    def ok(self) -> bool:
        """Whether the worker answered with a 2xx status."""
        return self.status.startswith("2")


#: Columns of :meth:`SpanLog.to_frame`: those of :func:`chimera_nb.read_time_log` first.
COLUMNS = [
    "time",
    "worker",
    "endpoint",
    "latency_ms",
    "status",
    "round",
    "attempt",
    "start",
    "end",
    "bytes_sent",
    "bytes_received",
    "peer",
    "staleness",
]


class SpanLog:
    """The spans one master recorded, oldest first; safe to read from any thread.

    ``record`` also writes the span's line to ``chimera_time.log`` (when a directory is
    attached to the logs), so the file and the spans are one measurement.

    Parameters
    ----------
    maxlen : int, default=200_000
        The most spans kept (the oldest are dropped first): 10,000 rounds of 20 workers. The
        time log keeps every line.
    """

    def __init__(self, maxlen: int = 200_000) -> None:
        self._spans: deque[Span] = deque(maxlen=maxlen)
        self._lock = threading.Lock()
        self._count = 0

    def record(self, span: Span) -> None:
        """Keep ``span`` and write it to the time log."""
        with self._lock:
            self._spans.append(span)
            self._count += 1
        log_worker_call(
            span.worker,
            span.endpoint,
            span.latency_ms,
            span.status,
            span.round_number,
            span.attempt,
            span.worker_url,
            bytes_sent=span.bytes_sent,
            bytes_received=span.bytes_received,
        )

    @property
    def count(self) -> int:
        """How many spans were ever recorded (more than ``len`` once the oldest are dropped):
        a reader can tell whether anything new came."""
        return self._count

    def snapshot(self) -> list[Span]:
        """The spans kept now, as a list that later calls do not change."""
        with self._lock:
            return list(self._spans)

    def __len__(self) -> int:
        return len(self._spans)

    def __iter__(self) -> Iterator[Span]:
        return iter(self.snapshot())

    def __getitem__(self, index: int) -> Span:
        return self.snapshot()[index]

    def to_frame(self) -> pd.DataFrame:
        """The spans as a DataFrame, one row per call, with the columns of
        :func:`chimera_nb.read_time_log` (``time`` is when the call ended) followed by
        ``start``, ``end`` (datetime64 in local time, as the log), ``bytes_sent``,
        ``bytes_received``, ``peer`` and ``staleness``."""
        import pandas as pd

        rows = []
        for span in self.snapshot():
            row = asdict(span)
            row["round"] = row.pop("round_number")
            row["latency_ms"] = span.latency_ms
            rows.append(row)
        frame = pd.DataFrame(rows, columns=[*COLUMNS, "worker_url"]).drop(columns="worker_url")
        utc_offset = time.localtime().tm_gmtoff  # local times, as in the time log's lines
        for column in ("start", "end"):
            frame[column] = pd.to_datetime(frame[column].astype(float) + utc_offset, unit="s")
        frame["time"] = frame["end"]
        frame["latency_ms"] = frame["latency_ms"].astype(float)
        frame["round"] = frame["round"].astype("Int64")
        frame["staleness"] = frame["staleness"].astype("Int64")
        frame["status"] = frame["status"].astype(str)
        return frame

    def __repr__(self) -> str:
        return f"SpanLog({len(self)} spans)"
