"""Lab 5's helpers: a student's ring steps composed in one process (``ring_allreduce_with``)
and run on real ring workers (``LabRingWorker``), and a student's top-k encoder on real SGD
workers (``LabSGDWorker(top_k=...)``): the right answers give the kit's, and a wrong one
ends the run in words, in seconds."""

from __future__ import annotations

import time

import numpy as np
import pytest

from chimera_nb import ParameterServerMaster, RingAllReduceMaster, SGDWorker, labs
from chimera_nb.algorithms import TopK
from chimera_nb.algorithms.ring import ring_allreduce, ring_bytes_sent
from chimera_nb.labs.contracts import ContractError
from chimera_nb.wire import paths

rng = np.random.default_rng(0)
X = rng.normal(size=(240, 5)) * [1.0, 3.0, 0.5, 2.0, 1.0]
y = X @ np.array([1.0, -2.0, 0.5, 0.0, 0.3]) + 3.0 + rng.normal(scale=0.5, size=240)


# -- what a student writes (in a notebook; here, in this module) -------------------------


def reduce_scatter_step(chunks, received, position, step):
    index = (position - 1 - step) % len(chunks)
    chunks = list(chunks)
    chunks[index] = chunks[index] + received
    return chunks, index


def all_gather_step(chunks, received, position, step):
    index = (position - step) % len(chunks)
    chunks = list(chunks)
    chunks[index] = received
    return chunks, index


def sends_what_it_sent(chunks, received, position, step):  # the chunk of this step, again
    chunks, _ = reduce_scatter_step(chunks, received, position, step)
    return chunks, (position - step) % len(chunks)


def unfinished(chunks, received, position, step): ...


def never_returns(chunks, received, position, step):
    while True:
        pass


def top_k_encode(gradient, residual, k):
    corrected = gradient + residual
    indices = np.argsort(-np.abs(corrected))[:k]
    new_residual = corrected.copy()
    new_residual[indices] = 0.0
    return (indices, corrected[indices]), new_residual


def top_k_twice(gradient, residual, k):  # the same index twice
    (indices, values), new_residual = top_k_encode(gradient, residual, k)
    return (np.append(indices, indices[0]), np.append(values, values[0])), new_residual


# -- in one process ------------------------------------------------------------------------


@pytest.mark.parametrize("n_workers", [2, 3, 5])
def test_the_students_steps_composed_give_the_kits_ring_bit_for_bit(n_workers):
    # Prepare: chunks of uneven sizes
    vectors = [rng.normal(size=11) for _ in range(n_workers)]
    # Execute
    results = labs.ring_allreduce_with(reduce_scatter_step, all_gather_step, vectors)
    # Assert
    expected = ring_allreduce(vectors)
    assert len(results) == n_workers
    for result, twin in zip(results, expected):
        np.testing.assert_array_equal(result, twin)
    np.testing.assert_allclose(results[0], np.sum(vectors, axis=0), rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    ("step", "message"),
    [
        (
            sends_what_it_sent,
            "in a ring of 3, worker 2 sent chunk 2 at reduce-scatter step 1 (the chunk your "
            "sends_what_it_sent said to send next), but its right neighbour, worker 0, "
            "expected chunk 1: the ring is out of step",
        ),
        (
            unfinished,
            "your unfinished returned None; it must return (chunks, send): the list of 3 "
            "chunks and the index of the chunk to send next. Did you forget `return`",
        ),
    ],
    ids=["wrong-index", "none"],
)
def test_a_step_the_ring_cannot_use_is_refused_in_words(step, message):
    # Execute
    with pytest.raises(ContractError) as raised:
        labs.ring_allreduce_with(step, all_gather_step, [np.ones(6)] * 3)
    # Assert
    assert message in str(raised.value)


# -- on real workers ---------------------------------------------------------------------


def test_the_students_steps_on_real_ring_workers_give_the_stars_step_and_the_rings_bytes():
    # Prepare
    worker = labs.LabRingWorker(
        "regressor", reduce_scatter_step=reduce_scatter_step, all_gather_step=all_gather_step
    )
    options = dict(learning_rate=0.1, max_iter=2, tol=0.0)
    # Execute: a LabRingWorker is an SGDWorker too, so the star runs on the same processes
    with labs.start_cluster(worker, X, y, 4, proportions=[0.4, 0.3, 0.2, 0.1]) as cluster:
        ring = labs.fit(RingAllReduceMaster("regressor", **options), cluster)
        star = labs.fit(ParameterServerMaster("regressor", **options), cluster)
    # Assert
    assert ring.ok and star.ok, (ring.problem, star.problem)
    scale = np.abs(star.master.coef_).max()
    assert np.abs(ring.master.coef_ - star.master.coef_).max() < 1e-12 * scale
    assert ring.master.loss_curve_ == pytest.approx(star.master.loss_curve_, rel=1e-12)
    d = X.shape[1] + 2  # the weights, the bias and the sample count
    for record in ring.history:
        expected = {name: ring_bytes_sent(i, d, 4) for i, name in enumerate(ring.master.ring_)}
        assert record.extra["bytes_sent"] == expected


def test_a_ring_step_that_sends_the_wrong_chunk_fails_the_real_run_in_words():
    # Prepare
    worker = labs.LabRingWorker("regressor", reduce_scatter_step=sends_what_it_sent)
    started = time.monotonic()
    # Execute
    run = labs.run(RingAllReduceMaster("regressor", max_iter=2, ring_timeout=2.0), worker, X, y, 3)
    # Assert
    assert time.monotonic() - started < 20
    assert not run.ok and "the ring is out of step" in run.problem


def test_a_ring_step_that_never_returns_is_stopped_on_the_worker_and_the_run_ends_in_words():
    # Prepare
    worker = labs.LabRingWorker("regressor", all_gather_step=never_returns)
    started = time.monotonic()
    # Execute
    run = labs.run(RingAllReduceMaster("regressor", max_iter=2, ring_timeout=2.0), worker, X, y, 3)
    # Assert
    assert time.monotonic() - started < 20
    assert not run.ok
    assert "your never_returns ran longer than 2 s and was stopped" in run.problem


def test_the_students_top_k_on_real_workers_fits_as_the_kits_with_and_without_memory():
    # Prepare
    options = dict(learning_rate=0.1, max_iter=60, tol=0.0, encoding="binary", random_state=0)
    fits = {}
    # Execute: the student's encoder, then the kit's TopK, on the same shards
    for label, worker in [
        ("student", labs.LabSGDWorker("regressor", top_k=top_k_encode)),
        ("kit", SGDWorker("regressor")),
    ]:
        with labs.start_cluster(worker, X, y, 3, proportions=[0.5, 0.3, 0.2]) as cluster:
            for memory in (True, False):
                master = ParameterServerMaster(
                    "regressor", compression=TopK(0.2, memory), **options
                )
                fits[label, memory] = labs.fit(master, cluster)
    # Assert
    assert all(run.ok for run in fits.values()), [run.problem for run in fits.values()]
    for memory in (True, False):
        student, kit = fits["student", memory].master, fits["kit", memory].master
        assert student.loss_curve_ == pytest.approx(kit.loss_curve_, rel=1e-12)
    frame = fits["student", True].calls()
    received = frame[frame["endpoint"] == paths.SGD_FIT_STEP].groupby("round")["bytes_received"]
    assert set(received.sum()) == {3 * 2 * 12}  # k = ceil(0.2 * 6) = 2 of 6, from 3 workers
    with_memory, without = fits["student", True], fits["student", False]
    assert with_memory.master.loss_curve_[-1] < without.master.loss_curve_[-1]


def test_a_top_k_that_sends_an_index_twice_fails_the_run_in_words():
    # Execute
    run = labs.run(
        ParameterServerMaster("regressor", max_iter=3, compression=TopK(0.5)),
        labs.LabSGDWorker("regressor", top_k=top_k_twice),
        X,
        y,
        2,
    )
    # Assert
    assert not run.ok
    assert "the indices your top_k_twice sends must be distinct, from 0 to 5" in run.problem
