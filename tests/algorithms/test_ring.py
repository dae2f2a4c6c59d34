"""The ring all-reduce schedule and its one-process twin, against the plain sum."""

from __future__ import annotations

import numpy as np
import pytest

from chimera_nb.algorithms.ring import (
    RingPhase,
    chunk_slices,
    ring_allreduce,
    ring_bytes_sent,
    ring_steps,
)


@pytest.mark.parametrize("n_workers", [1, 2, 3, 4, 8])
@pytest.mark.parametrize("d", [8, 17, 1000])
def test_twin_gives_every_worker_the_sum_bit_for_bit_alike(n_workers, d):
    # Prepare
    rng = np.random.default_rng(n_workers * d)
    vectors = [rng.normal(size=d) for _ in range(n_workers)]
    # Execute
    results = ring_allreduce(vectors)
    # Assert
    np.testing.assert_allclose(results[0], np.sum(vectors, axis=0), rtol=0, atol=1e-12)
    assert all(np.array_equal(result, results[0]) for result in results)


def test_twin_leaves_its_inputs_alone():
    # Prepare
    vectors = [np.ones(4), 2 * np.ones(4)]
    # Execute
    ring_allreduce(vectors)
    # Assert
    np.testing.assert_array_equal(vectors[0], np.ones(4))


def test_chunks_follow_array_split_boundaries():
    # Execute
    slices = chunk_slices(10, 4)
    # Assert
    expected = [len(part) for part in np.array_split(np.arange(10), 4)]
    assert [s.stop - s.start for s in slices] == expected == [3, 3, 2, 2]
    assert slices[0].start == 0 and slices[-1].stop == 10


@pytest.mark.parametrize("n_workers", [2, 3, 5])
def test_each_worker_receives_what_its_left_neighbour_sends(n_workers):
    # Execute
    schedules = [ring_steps(position, n_workers) for position in range(n_workers)]
    # Assert
    for position, steps in enumerate(schedules):
        left = schedules[(position - 1) % n_workers]
        assert [s.receive for s in steps] == [s.send for s in left]
        assert len(steps) == 2 * (n_workers - 1)
        assert [s.phase for s in steps] == [RingPhase.REDUCE_SCATTER] * (n_workers - 1) + [
            RingPhase.ALL_GATHER
        ] * (n_workers - 1)
        # after reduce-scatter a worker first forwards the chunk it completed
        assert steps[n_workers - 1].send == (position + 1) % n_workers


@pytest.mark.parametrize("n_workers", [2, 4, 8])
def test_each_worker_sends_two_n_minus_one_over_n_of_the_vector(n_workers):
    # Execute
    sent = [ring_bytes_sent(position, 1000, n_workers) for position in range(n_workers)]
    # Assert
    assert sent == [2 * (n_workers - 1) * 1000 * 8 // n_workers] * n_workers
