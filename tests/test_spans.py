"""Spans: one record per call, kept by a master and written to the time log."""

from __future__ import annotations

import pytest

from chimera_nb.logs import TIME_LOG, attach_log_files, read_time_log
from chimera_nb.spans import Span, SpanLog

FIT_STEP = "/v1/chimera/sgd/fit-step"


def span(worker: str = "worker1", round_number: int | None = 1, **fields) -> Span:
    values = {"start": 1_700_000_000.0, "end": 1_700_000_000.004, "status": "200"}
    return Span(worker, FIT_STEP, round_number=round_number, **{**values, **fields})


def test_a_span_knows_its_latency_and_whether_the_worker_answered():
    # Execute
    answered, timed_out = span(), span(status="timeout")

    # Assert
    assert answered.latency_ms == pytest.approx(4.0, abs=1e-3)
    assert answered.ok and not timed_out.ok


def test_recorded_spans_are_the_time_log_lines(tmp_path):
    # Prepare
    spans = SpanLog()
    detach = attach_log_files(tmp_path)

    # Execute
    spans.record(span("worker1", 1, bytes_sent=96, bytes_received=120, worker_url="http://a"))
    spans.record(span("worker2", None, status="refused", attempt=2))
    detach()
    logged = read_time_log(tmp_path)
    frame = spans.to_frame()

    # Assert
    assert frame.columns[:7].tolist() == logged.columns.tolist()
    for column in ("worker", "endpoint", "status", "attempt"):
        assert frame[column].tolist() == logged[column].tolist()
    assert frame["round"].tolist()[0] == 1 and frame["round"].isna().tolist()[1]
    assert logged["latency_ms"].tolist() == [round(v, 3) for v in frame["latency_ms"]]
    assert frame[["bytes_sent", "bytes_received"]].values.tolist() == [[96, 120], [0, 0]]
    assert "bytes_sent=96 bytes_received=120" in (tmp_path / TIME_LOG).read_text()


def test_a_span_log_keeps_the_newest_spans_and_counts_them_all():
    # Prepare
    spans = SpanLog(maxlen=3)

    # Execute
    for round_number in range(1, 6):
        spans.record(span(round_number=round_number))

    # Assert
    assert [s.round_number for s in spans] == [3, 4, 5]
    assert (len(spans), spans.count) == (3, 5)
    assert repr(spans) == "SpanLog(3 spans)"
