"""Tests for chimera_nb.algorithms.sharding: how a dataset's rows are dealt to workers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from chimera_nb.algorithms.sharding import (
    contiguous_shards,
    hash_shards,
    random_shards,
    range_shards,
    split,
)

N_SAMPLES = 23
KEYS = [f"customer-{index}" for index in range(N_SAMPLES)]
VALUES = np.linspace(-10.0, 10.0, N_SAMPLES)

SHARDINGS = {
    "contiguous": lambda: contiguous_shards(N_SAMPLES, 4),
    "contiguous with proportions": lambda: contiguous_shards(N_SAMPLES, 3, [0.5, 0.3, 0.2]),
    "random": lambda: random_shards(N_SAMPLES, 4, random_state=0),
    "hash": lambda: hash_shards(KEYS, 4),
    "range": lambda: range_shards(VALUES, [-3.0, 0.0, 4.0]),
}


@pytest.mark.parametrize("name", SHARDINGS)
def test_every_row_lands_in_exactly_one_shard(name: str) -> None:
    # Prepare
    expected = np.arange(N_SAMPLES)

    # Execute
    shards = SHARDINGS[name]()
    actual = np.sort(np.concatenate(shards))

    # Assert
    np.testing.assert_array_equal(actual, expected)


# --- contiguous -----------------------------------------------------------------------------------


def test_contiguous_shards_are_consecutive_blocks_of_nearly_equal_size() -> None:
    # Prepare
    expected = [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]

    # Execute
    actual = contiguous_shards(10, 3)

    # Assert
    assert [shard.tolist() for shard in actual] == expected


@pytest.mark.parametrize(
    ("n_samples", "proportions", "expected_sizes"),
    [(10, [0.5, 0.3, 0.2], [5, 3, 2]), (100, [2, 1, 1], [50, 25, 25]), (7, [1, 1], [4, 3])],
)
def test_contiguous_shards_follow_the_proportions(n_samples, proportions, expected_sizes) -> None:
    # Execute
    shards = contiguous_shards(n_samples, len(proportions), proportions)
    actual = [len(shard) for shard in shards]

    # Assert
    assert actual == expected_sizes
    np.testing.assert_array_equal(np.concatenate(shards), np.arange(n_samples))


@pytest.mark.parametrize(
    ("n_shards", "proportions", "message"),
    [
        (2, [0.5, 0.3, 0.2], "proportions must be 2 positive numbers"),
        (3, [0.5, 0.0, 0.5], "proportions must be 3 positive numbers"),
        (3, [0.5, -0.1, 0.6], "proportions must be 3 positive numbers"),
        (3, [0.95, 0.04, 0.01], "leave a shard empty"),
    ],
    ids=["wrong length", "zero", "negative", "empty shard"],
)
def test_contiguous_shards_refuse_bad_proportions(n_shards, proportions, message) -> None:
    # Execute / Assert
    with pytest.raises(ValueError, match=message):
        contiguous_shards(5, n_shards, proportions)


@pytest.mark.parametrize("sharding", [contiguous_shards, random_shards])
@pytest.mark.parametrize("n_shards", [0, -1, 6])
def test_n_shards_must_be_between_one_and_the_number_of_samples(sharding, n_shards) -> None:
    # Prepare
    expected_message = rf"between 1 and the number of samples \(5\), got {n_shards}"

    # Execute / Assert
    with pytest.raises(ValueError, match=expected_message):
        sharding(5, n_shards)


# --- random ---------------------------------------------------------------------------------------


def test_random_shards_replay_with_the_same_random_state() -> None:
    # Execute
    first = random_shards(N_SAMPLES, 3, random_state=42)
    second = random_shards(N_SAMPLES, 3, random_state=42)
    other = random_shards(N_SAMPLES, 3, random_state=43)

    # Assert
    assert [shard.tolist() for shard in first] == [shard.tolist() for shard in second]
    assert [shard.tolist() for shard in first] != [shard.tolist() for shard in other]


def test_random_shards_are_sorted_equal_blocks_and_not_contiguous() -> None:
    # Execute
    actual = random_shards(N_SAMPLES, 3, random_state=0)

    # Assert
    assert [len(shard) for shard in actual] == [8, 8, 7]
    assert all(np.all(np.diff(shard) > 0) for shard in actual)
    assert actual[0].tolist() != list(range(8))  # not simply the first block


# --- hash -----------------------------------------------------------------------------------------


def test_hash_shards_give_the_recorded_buckets_in_every_process() -> None:
    # Prepare: buckets computed once and written down. Python's own hash() of a string changes
    # with every process (PYTHONHASHSEED), so matching these numbers proves a stable hash.
    keys = ["alice", "bob", "carol", "dave", "erin", "frank", 0, 1, 2]
    expected = [[3], [0, 1, 2, 5, 6], [4, 7, 8]]

    # Execute
    actual = hash_shards(keys, 3)

    # Assert
    assert [shard.tolist() for shard in actual] == expected


def test_hash_shards_send_the_same_key_to_the_same_shard() -> None:
    # Prepare: the same keys again, in another order and mixed with new ones.
    first_keys = ["alice", "bob", "carol", "dave"]
    second_keys = ["zoe", "dave", "alice", "yann", "carol", "bob"]

    # Execute
    first = hash_shards(first_keys, 2)
    second = hash_shards(second_keys, 2)
    first_bucket = {first_keys[row]: shard for shard, rows in enumerate(first) for row in rows}
    second_bucket = {second_keys[row]: shard for shard, rows in enumerate(second) for row in rows}

    # Assert
    assert all(first_bucket[key] == second_bucket[key] for key in first_keys)


# --- range ----------------------------------------------------------------------------------------


def test_range_shards_put_a_boundary_value_in_the_shard_above_it() -> None:
    # Prepare: shard 0 is below 0, shard 1 is [0, 1), shard 2 is [1, 5), shard 3 is 5 and above.
    values = [-5.0, 0.0, 0.5, 1.0, 2.0, 5.0, 10.0]
    expected = [[0], [1, 2], [3, 4], [5, 6]]

    # Execute
    actual = range_shards(values, [0.0, 1.0, 5.0])

    # Assert
    assert [shard.tolist() for shard in actual] == expected


def test_range_shards_keep_an_interval_without_rows_as_an_empty_shard() -> None:
    # Execute
    actual = range_shards([1.0, 2.0, 30.0], [5.0, 10.0])

    # Assert
    assert [shard.tolist() for shard in actual] == [[0, 1], [], [2]]


@pytest.mark.parametrize("boundaries", [[1.0, 1.0], [2.0, 1.0], [0.0, 5.0, 3.0]])
def test_range_shards_refuse_boundaries_that_do_not_increase_strictly(boundaries) -> None:
    # Execute / Assert
    with pytest.raises(ValueError, match="boundaries must increase strictly"):
        range_shards([0.0, 1.0, 2.0], boundaries)


# --- split ----------------------------------------------------------------------------------------


def test_split_cuts_numpy_arrays_into_matching_pairs() -> None:
    # Prepare
    X = np.arange(20).reshape(10, 2)
    y = np.arange(10) * 10

    # Execute
    actual = split(X, y, 3, proportions=[0.5, 0.3, 0.2])

    # Assert
    assert [len(y_k) for _, y_k in actual] == [5, 3, 2]
    np.testing.assert_array_equal(np.concatenate([X_k for X_k, _ in actual]), X)
    for X_k, y_k in actual:
        np.testing.assert_array_equal(X_k[:, 0] * 5, y_k)  # rows stay with their targets


def test_split_keeps_pandas_objects_and_their_index() -> None:
    # Prepare
    X = pd.DataFrame({"a": range(10), "b": range(10, 20)}, index=list("abcdefghij"))
    y = pd.Series(range(100, 110), index=X.index, name="target")

    # Execute
    actual = split(X, y, 2, method="random", random_state=0)

    # Assert
    for X_k, y_k in actual:
        assert isinstance(X_k, pd.DataFrame)
        assert isinstance(y_k, pd.Series)
        assert list(X_k.index) == list(y_k.index)
        pd.testing.assert_frame_equal(X_k, X.loc[X_k.index])
    assert sorted(index for X_k, _ in actual for index in X_k.index) == list("abcdefghij")


def test_split_random_replays_with_the_same_random_state() -> None:
    # Prepare
    X, y = np.arange(30).reshape(15, 2), np.arange(15)

    # Execute
    first = split(X, y, 3, method="random", random_state=7)
    second = split(X, y, 3, method="random", random_state=7)

    # Assert
    for (_, y_first), (_, y_second) in zip(first, second, strict=True):
        np.testing.assert_array_equal(y_first, y_second)


def test_split_refuses_an_unknown_method() -> None:
    # Execute / Assert
    with pytest.raises(ValueError, match="method must be 'contiguous' or 'random', got 'hash'"):
        split(np.zeros((4, 1)), np.zeros(4), 2, method="hash")
