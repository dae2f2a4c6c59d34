"""PipelineMaster against real PipelineStageWorker processes: its fit equals the one-process
MLP's on the same batches (GPipe and 1F1B, 2 to 4 stages), the spans hold each stage's
schedule, 1F1B holds fewer activations than GPipe, and digits are learned."""

from __future__ import annotations

import time

import httpx
import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from chimera_nb import (
    ConfigurationError,
    LocalCluster,
    PipelineMaster,
    PipelineStageWorker,
    QuorumError,
)
from chimera_nb.algorithms.mlp import fit_mlp
from chimera_nb.algorithms.pipeline_schedules import (
    gpipe,
    measured_bubble,
    one_f_one_b,
    ops_from_spans,
    parse_compute_label,
)
from chimera_nb.plots import timeline_rounds
from chimera_nb.wire import paths


@pytest.fixture(scope="module")
def digits():
    """Digits, standardized on the training rows; 75 % to train."""
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, random_state=0, stratify=y
    )
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test), y_train, y_test


@pytest.fixture(scope="module")
def four_stages(digits):
    """Four stage workers holding the training rows."""
    X, _, y, _ = digits
    with LocalCluster([PipelineStageWorker().with_data(X, y)] * 4, name="pipe") as cluster:
        yield cluster


def first(cluster, n: int) -> dict[str, str]:
    """The first ``n`` stage workers of ``cluster``, by URL (a shorter pipeline)."""
    return dict(list(cluster.endpoints.items())[:n])


def compute_ops(master: PipelineMaster, step: int) -> dict[str, list[tuple[str, int]]]:
    """Each stage's ops of ``step``, in the order the spans say they ran."""
    spans = sorted(
        (s for s in master.spans_ if s.round_number == step and parse_compute_label(s.endpoint)),
        key=lambda s: s.start,
    )
    ops: dict[str, list[tuple[str, int]]] = {}
    for span in spans:
        ops.setdefault(span.worker, []).append(parse_compute_label(span.endpoint))
    return ops


@pytest.mark.parametrize("n_stages", [2, 3, 4])
@pytest.mark.parametrize("schedule", ["gpipe", "1f1b"])
def test_the_pipelined_fit_equals_the_one_process_mlp_on_the_same_batches(
    four_stages, digits, n_stages, schedule
):
    # Prepare
    X, _, y, _ = digits
    hidden = (32, 24, 16)
    master = PipelineMaster(
        hidden, n_microbatches=4, schedule=schedule, max_iter=1, batch_size=256, random_state=3
    )
    # Execute
    master.fit(first(four_stages, n_stages))
    layers, losses = fit_mlp(
        X, y, [64, *hidden, 10], learning_rate=0.1, max_iter=1, batch_size=256, random_state=3
    )
    # Assert
    for index, layer in enumerate(layers):
        np.testing.assert_allclose(master.coefs_[index], layer.weights, rtol=0, atol=1e-10)
        np.testing.assert_allclose(master.intercepts_[index], layer.bias, rtol=0, atol=1e-10)
    fit_losses = [record.loss for record in master.history_]
    np.testing.assert_allclose(fit_losses, losses, rtol=1e-10)
    assert len(master.stages_) == n_stages


@pytest.mark.parametrize(("schedule", "expected"), [("gpipe", gpipe), ("1f1b", one_f_one_b)])
def test_the_spans_hold_each_stages_schedule_and_its_peak_of_activations(
    four_stages, schedule, expected
):
    # Prepare
    master = PipelineMaster(
        (32, 16), n_microbatches=6, schedule=schedule, max_iter=1, batch_size=300
    )
    # Execute
    master.fit(first(four_stages, 3))
    # Assert
    wanted = expected(3, 6)
    for step in (1, 2):
        ops = compute_ops(master, step)
        assert [ops[name] for name in master.stages_] == wanted
    peaks = master.history_[0].extra["peak_stashed"]
    assert list(peaks.values()) == ([6, 6, 6] if schedule == "gpipe" else [3, 2, 1])
    sends = [s for s in master.spans_ if s.round_number == 1 and s.peer and s.peer != s.worker]
    assert len(sends) == 2 * 2 * 6  # two links, both ways, six micro-batches
    assert {s.endpoint for s in sends} == {paths.PIPELINE_ACTIVATION, paths.PIPELINE_GRADIENT}


def test_the_bubble_is_measured_from_the_compute_spans_beside_its_theory(four_stages):
    # Prepare: each op lasts 20 ms, far above a call's few milliseconds (how close the
    # measurement comes to the theory is a timing: benchmarks/pipeline_bubble.py prints it)
    master = PipelineMaster(
        (16, 16), n_microbatches=4, max_iter=1, batch_size=800, emulated_op_seconds=0.02
    )
    # Execute
    master.fit(first(four_stages, 3))
    # Assert: the record's bubble is the one the step's compute spans give
    record = master.history_[0].extra
    assert record["bubble_theory"] == pytest.approx(2 / 6)
    ran = ops_from_spans(s for s in master.spans_ if s.round_number == 1)
    busy = {stage: [(start, end) for _, start, end in ops] for stage, ops in ran.items()}
    assert len(busy) == 3 and all(len(intervals) == 8 for intervals in busy.values())
    assert record["bubble"] == pytest.approx(measured_bubble(busy))
    assert 0.0 < record["bubble"] < 1.0


def test_digits_are_learned_past_90_percent_and_predicted_through_the_stages(four_stages, digits):
    # Prepare
    _, X_test, _, y_test = digits
    master = PipelineMaster((64, 32), n_microbatches=4, max_iter=10, random_state=0)
    # Execute
    started = time.perf_counter()
    master.fit(first(four_stages, 3))
    elapsed = time.perf_counter() - started
    accuracy = master.score(X_test, y_test)
    probabilities = master.predict_proba(X_test[:5])
    # Assert
    assert accuracy >= 0.9, f"test accuracy {accuracy:.3f} after {elapsed:.1f} s"
    assert probabilities.shape == (5, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    assert master.loss_curve_[-1] < master.loss_curve_[0]
    assert master.history_[-1].action == "predict"


def test_rest_fit_and_predict_at_the_pipeline_paths(four_stages, digits, serve_master):
    # Prepare
    _, X_test, _, _ = digits
    master = PipelineMaster((16,), n_microbatches=2, max_iter=1, random_state=1)
    body = {"X_pred_columns": [f"x{c}" for c in range(64)], "X_pred_rows": X_test[:3].tolist()}
    with serve_master(master, first(four_stages, 2)) as server:
        # Execute
        fitted = httpx.post(server.url + paths.PIPELINE_PARALLEL_FIT, timeout=60)
        predicted = httpx.post(server.url + paths.PIPELINE_PARALLEL_PREDICT, json=body)
    # Assert
    assert fitted.status_code == 200, fitted.text
    assert predicted.status_code == 200, predicted.text
    assert predicted.json()["y_pred_rows"] == master.predict(X_test[:3]).tolist()


def test_a_wrong_schedule_is_refused_before_anything_is_sent(four_stages):
    # Prepare
    def skips_a_backward(p, m):
        return [[("F", i) for i in range(m)] + [("B", i) for i in range(m - 1)] for _ in range(p)]

    master = PipelineMaster((16,), schedule=skips_a_backward, max_iter=1)
    # Execute / Assert
    with pytest.raises(ConfigurationError, match=r"stage 0 \(p=2, m=4\).*never run \[\('B', 3\)\]"):
        master.fit(first(four_stages, 2))


def test_more_stages_than_layers_is_a_configuration_error(four_stages):
    with pytest.raises(ConfigurationError, match="2 layers cannot be cut into 4 stages"):
        PipelineMaster((16,), max_iter=1).fit(four_stages)


def test_a_schedule_that_deadlocks_fails_the_step_within_the_stage_timeout(four_stages):
    # Prepare: stage 0 waits for B(0) before sending F(1), which stage 1 waits for first
    def deadlocks(p, m):
        ops = gpipe(p, m)
        ops[0] = [op for i in range(m) for op in (("F", i), ("B", i))]
        return ops

    master = PipelineMaster((16,), schedule=deadlocks, max_iter=1, stage_timeout=0.5)
    started = time.monotonic()
    # Execute / Assert
    with pytest.raises(QuorumError, match="waited .* for the"):
        master.fit(first(four_stages, 2))
    assert time.monotonic() - started < 10


def test_a_bad_parameter_is_refused_naming_it(four_stages):
    with pytest.raises(ConfigurationError, match="schedule"):
        PipelineMaster(schedule="pipedream").fit(four_stages)
    with pytest.raises(ConfigurationError, match="hidden_layer_sizes"):
        PipelineMaster((0,)).fit(four_stages)


def test_a_killed_stage_fails_the_next_prediction_naming_it(digits):
    # Prepare
    X, X_test, y, _ = digits
    master = PipelineMaster((16,), n_microbatches=2, max_iter=1, random_state=0)
    with LocalCluster([PipelineStageWorker().with_data(X, y)] * 2, name="killed") as cluster:
        master.fit(cluster)
        cluster.kill("worker2")
        # Execute / Assert
        with pytest.raises(QuorumError, match="worker2"):
            master.predict(X_test[:4])


def test_the_timeline_shows_each_stages_ops_and_the_gaps_between_them(four_stages):
    # Prepare
    master = PipelineMaster((16, 16), n_microbatches=4, max_iter=1, batch_size=900)
    master.fit(first(four_stages, 3))
    # Execute
    (step,) = timeline_rounds(master.spans_, 1, ending_at=1)
    # Assert: each lane holds the stage's 8 ops, none of the master's call around them
    lanes = {name: [c for c in step.calls if c.worker == name] for name in master.stages_}
    assert {name: len(calls) for name, calls in lanes.items()} == dict.fromkeys(master.stages_, 8)
    last = lanes[master.stages_[-1]]
    assert min(c.start_ms for c in last) > 0  # the last stage waits for the first activation


def test_the_dashboards_latencies_are_the_calls_not_the_stages_own_ops(four_stages):
    # Prepare
    from chimera_nb.notebook.dashboard.reading import FitReader

    master = PipelineMaster((16, 16), n_microbatches=4, max_iter=1, batch_size=900)
    master.fit(first(four_stages, 3))
    reader = FitReader(master)
    # Execute
    reader.read()
    # Assert: per stage, the master's 5 calls (data, setup, 2 steps, weights) and the frames
    # its neighbours sent it over the 2 steps (4 per step and neighbour), no compute span
    counts = {name: len(latencies) for name, latencies in reader.latencies.items()}
    first_stage, middle, last = master.stages_
    assert counts == {first_stage: 5 + 8, middle: 5 + 16, last: 5 + 8}
