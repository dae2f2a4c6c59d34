"""A master's Prometheus metrics, read from its ``history_`` and ``spans_`` when scraped.

The fit loop measures nothing for the metrics: every call to a worker already leaves a span
and every round a record. :class:`MasterCollector` reads those that are new since it last
read (at each scrape of ``GET /metrics``, and at the end of each fit the REST app runs, before
the next fit replaces the history), so the counters add up over all of a master's fits:

* ``chimera_master_fitting``: 1 while a fit runs, else 0;
* ``chimera_master_rounds_total``: rounds recorded;
* ``chimera_master_round_duration_seconds``: a histogram, from a round's first call to its
  last answer (for a master whose calls carry no round: its slowest answer);
* ``chimera_master_loss``: the training loss of the last round that measured one;
* ``chimera_master_worker_calls_total{worker, endpoint, status}``: calls, by how they ended
  (``"200"``, ``"422"``, ``"timeout"``, ``"refused"``...);
* ``chimera_master_worker_call_duration_seconds{worker, endpoint}``: a histogram;
* ``chimera_master_worker_sent_bytes_total{worker}``, ``..._received_bytes_total{worker}``;
* ``chimera_master_worker_failures_total{worker}``: rounds (or predictions) the worker failed;
* ``chimera_master_worker_up{worker}``: 1 if the worker answered its last round, else 0.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric

from ..spans import Span, SpanLog
from ..wire.metrics import Counts, Histograms
from .history import RoundRecord

__all__ = ["MasterCollector"]


def _index_after(spans: Sequence[Span], last: Span | None) -> int:
    """Where the spans after ``last`` begin (0 if it is gone: all of them are new)."""
    if last is not None:
        for index in range(len(spans) - 1, -1, -1):
            if spans[index] is last:
                return index + 1
    return 0


class MasterCollector:
    """A Prometheus collector of one master's rounds and calls (see the module's list).

    Parameters
    ----------
    master : Master
        Read at each scrape: ``fitting``, ``history_`` and ``spans_``.
    """

    def __init__(self, master: Any) -> None:
        self.master = master
        self.rounds = Counts("chimera_master_rounds_total", "Rounds recorded", [])
        self.round_durations = Histograms(
            "chimera_master_round_duration_seconds", "From a round's first call to its end", []
        )
        worker, endpoint = "worker", "endpoint"
        self.calls = Counts(
            "chimera_master_worker_calls_total",
            "Calls to workers, by how they ended",
            [worker, endpoint, "status"],
        )
        self.call_durations = Histograms(
            "chimera_master_worker_call_duration_seconds",
            "Latency of calls to workers",
            [worker, endpoint],
        )
        self.sent = Counts("chimera_master_worker_sent_bytes_total", "Body bytes sent", [worker])
        self.received = Counts(
            "chimera_master_worker_received_bytes_total", "Body bytes received", [worker]
        )
        self.failures = Counts(
            "chimera_master_worker_failures_total", "Rounds or predictions failed", [worker]
        )
        self._up: dict[str, int] = {}
        self._loss: float | None = None
        # Where reading stopped: the span log and history of the fit being read, the last
        # span and the number of records read, and the rounds whose record is still to come.
        self._log: SpanLog | None = None
        self._history: list[RoundRecord] | None = None
        self._last_span: Span | None = None
        self._n_records = 0
        self._open_rounds: dict[int, tuple[float, float]] = {}

    def collect(self) -> Iterator[Metric]:
        self.read()
        yield GaugeMetricFamily(
            "chimera_master_fitting",
            "1 while a fit runs",
            value=float(getattr(self.master, "fitting", False)),
        )
        if self._loss is not None:
            yield GaugeMetricFamily(
                "chimera_master_loss", "Training loss of the last round", value=self._loss
            )
        up = GaugeMetricFamily(
            "chimera_master_worker_up", "1 if the worker answered its last round", labels=["worker"]
        )
        for name, value in self._up.items():
            up.add_metric([name], value)
        yield up
        for metric in (self.rounds, self.round_durations, self.calls, self.call_durations):
            yield from metric.collect()
        for metric in (self.sent, self.received, self.failures):
            yield from metric.collect()

    def read(self) -> None:
        """Count the spans and records that are new since the last read; if a new fit
        replaced the log and history, first finish the previous fit's."""
        log = getattr(self.master, "spans_", None)
        history = getattr(self.master, "history_", None)
        if log is not self._log or history is not self._history:
            self._read_fit()
            self._log, self._history = log, history
            self._last_span, self._n_records, self._open_rounds = None, 0, {}
        self._read_fit()

    def _read_fit(self) -> None:
        if self._log is not None:
            spans = self._log.snapshot()
            for span in spans[_index_after(spans, self._last_span) :]:
                self._count_call(span)
            self._last_span = spans[-1] if spans else None
        if self._history is not None:
            records = self._history[self._n_records :]
            self._n_records += len(records)
            for record in records:
                self._count_record(record)

    def _count_call(self, span: Span) -> None:
        self.calls.add((span.worker, span.endpoint, span.status))
        self.call_durations.observe((span.worker, span.endpoint), span.end - span.start)
        self.sent.add((span.worker,), span.bytes_sent)
        self.received.add((span.worker,), span.bytes_received)
        if span.round_number is not None:
            first, last = self._open_rounds.get(span.round_number, (span.start, span.end))
            self._open_rounds[span.round_number] = (min(first, span.start), max(last, span.end))

    def _count_record(self, record: RoundRecord) -> None:
        for name in record.answered:
            self._up[name] = 1
        for name in record.failed:
            self._up[name] = 0
            self.failures.add((name,))
        if record.action != "fit":
            return
        self.rounds.add(())
        window = self._open_rounds.pop(record.round_number, None)
        if window is not None:
            seconds = window[1] - window[0]
        else:
            seconds = max(record.latency_ms.values(), default=0.0) / 1e3
        self.round_durations.observe((), seconds)
        if record.loss is not None:
            self._loss = record.loss
