"""Pipeline schedules as data: GPipe and 1F1B orders, their memory, the bubble's theory and
its measurement, and the checks a stage applies to the ops it is sent."""

from __future__ import annotations

import pytest

from chimera_nb.algorithms.pipeline_schedules import (
    bubble_fraction,
    check_stage_ops,
    compute_label,
    forward_only,
    gpipe,
    make_pipeline_schedule,
    measured_bubble,
    micro_batch_slices,
    one_f_one_b,
    parse_compute_label,
    peak_stashed,
    schedule_ops,
    split_layers,
)


def test_one_f_one_b_for_three_stages_and_four_micro_batches():
    # Execute
    ops = one_f_one_b(3, 4)
    # Assert: warm-up p - s - 1 forwards, alternate, cool down
    assert [f"{k}{i}" for k, i in ops[0]] == ["F0", "F1", "F2", "B0", "F3", "B1", "B2", "B3"]
    assert [f"{k}{i}" for k, i in ops[1]] == ["F0", "F1", "B0", "F2", "B1", "F3", "B2", "B3"]
    assert [f"{k}{i}" for k, i in ops[2]] == ["F0", "B0", "F1", "B1", "F2", "B2", "F3", "B3"]


@pytest.mark.parametrize("n_stages", [1, 2, 3, 4])
@pytest.mark.parametrize("n_microbatches", [1, 2, 4, 8])
def test_both_schedules_run_every_op_once_and_1f1b_stashes_at_most_p_minus_s(
    n_stages, n_microbatches
):
    # Execute
    ones, pipes = one_f_one_b(n_stages, n_microbatches), gpipe(n_stages, n_microbatches)
    # Assert
    for s in range(n_stages):
        check_stage_ops(ones[s], n_microbatches)
        check_stage_ops(pipes[s], n_microbatches)
        assert peak_stashed(ones[s]) == min(n_stages - s, n_microbatches)
        assert peak_stashed(pipes[s]) == n_microbatches


@pytest.mark.parametrize(
    ("ops", "message"),
    [
        ([("F", 0), ("B", 0), ("F", 1)], r"never run \[\('B', 1\)\]"),
        ([("F", 0), ("F", 1), ("B", 1), ("B", 2), ("B", 0)], "micro-batch 2 does not exist"),
        ([("B", 0), ("F", 0), ("F", 1), ("B", 1)], "before"),
        ([("F", 0), ("F", 0), ("B", 0), ("B", 1)], "a second time"),
        ([("X", 0)], "must be 'F' or 'B'"),
    ],
)
def test_a_wrong_op_list_is_refused_saying_what_is_wrong(ops, message):
    with pytest.raises(ValueError, match=message):
        check_stage_ops(ops, 2)


def test_forward_only_lists_have_no_backward_and_pass_the_predicting_check():
    # Execute
    ops = forward_only(2, 3)
    # Assert
    check_stage_ops(ops[1], 3, training=False)
    with pytest.raises(ValueError, match="forwards only"):
        check_stage_ops([("F", 0), ("B", 0)], 1, training=False)


def test_bubble_theory_and_a_measured_step():
    # Prepare: p = 2, m = 2 with unit ops; GPipe's makespan is (m + p - 1) * 2 = 6
    busy = {
        "stage0": [(0, 1), (1, 2), (4, 5), (5, 6)],
        "stage1": [(1, 2), (2, 3), (3, 4), (4, 5)],
    }
    # Execute / Assert
    assert bubble_fraction(2, 2) == pytest.approx(1 / 3)
    assert measured_bubble(busy) == pytest.approx(1 - 8 / 12)
    assert measured_bubble({}) == 0.0


def test_layers_and_rows_are_cut_in_balanced_contiguous_parts():
    assert split_layers(5, 3) == [range(0, 2), range(2, 4), range(4, 5)]
    assert micro_batch_slices(10, 4) == [slice(0, 3), slice(3, 6), slice(6, 8), slice(8, 10)]
    with pytest.raises(ValueError, match="cannot be cut into 4 stages"):
        split_layers(3, 4)


def test_compute_labels_round_trip_and_other_spans_are_not_ops():
    assert parse_compute_label(compute_label(("B", 12))) == ("B", 12)
    assert parse_compute_label("/v1/chimera/pipeline/activation") is None


def test_schedules_by_name_or_callable():
    assert make_pipeline_schedule("gpipe") is gpipe
    assert make_pipeline_schedule(one_f_one_b) is one_f_one_b
    with pytest.raises(ValueError, match="'1f1b'"):
        make_pipeline_schedule("pipedream")


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        (lambda p, m: gpipe(p - 1, m), "one op list per stage"),
        (lambda p, m: [*gpipe(p, m)[:-1], [("F", 0)]], r"the list of stage 2 \(p=3, m=2\)"),
        (lambda p, m: [[("F", 0, 1)]] * p, "stage 0"),
    ],
)
def test_a_schedule_function_is_checked_stage_by_stage(schedule, message):
    with pytest.raises(ValueError, match=message):
        schedule_ops(schedule, 3, 2)


def test_a_checked_schedule_comes_back_as_plain_tuples():
    assert schedule_ops(lambda p, m: [[["F", 0], ["B", 0]]] * p, 2, 1) == [[("F", 0), ("B", 0)]] * 2
