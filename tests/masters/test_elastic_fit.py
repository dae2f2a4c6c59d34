"""Workers that join or leave a cluster during a fit: the parameter server follows the
cluster's membership between rounds (BSP) or at clock closes (SSP, ASP), with real workers."""

from __future__ import annotations

import time

import numpy as np
import pytest

from chimera_nb import LocalCluster, ParameterServerMaster, SGDWorker


def rows(n_rows: int, seed: int):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_rows, 3))
    return X, X @ np.array([1.0, 2.0, -1.0]) + 0.5 + 0.1 * rng.normal(size=n_rows)


def wait_until(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def first_round_with(history, name: str) -> int | None:
    return next((r.round_number for r in history if name in r.answered), None)


@pytest.mark.parametrize(
    "options", [dict(), dict(consistency="ssp", staleness=1)], ids=["bsp", "ssp1"]
)
def test_a_worker_added_mid_fit_answers_within_two_rounds_and_a_removed_one_stops_counting(
    options,
):
    # Prepare: rounds of about 20 ms (worker1 is slowed), so a fit lasts a few seconds
    X, y = rows(600, seed=1)
    extra_X, extra_y = rows(200, seed=2)
    master = ParameterServerMaster("regressor", max_iter=150, tol=0.0, **options)
    with LocalCluster.from_shards(SGDWorker("regressor"), X, y, 3, name="elastic") as cluster:
        cluster.slow("worker1", 0.02)
        running = master.fit(cluster, wait=False)
        wait_until(lambda: len(getattr(master, "history_", [])) >= 10)

        # Execute: one worker joins, then another leaves, mid-fit
        name = cluster.add_worker(SGDWorker("regressor"), extra_X, extra_y)
        joined_at = len(master.history_)
        wait_until(lambda: first_round_with(master.history_, name) is not None)
        cluster.remove_worker("worker2")
        left_at = len(master.history_)
        running.result(timeout=60)

    # Assert: the newcomer counts within two rounds with its own shard's weight; worker2's
    # last round is at most the one running when it left, and it is never reported failed
    first = first_round_with(master.history_, name)
    assert first <= joined_at + 2
    counted = [r for r in master.history_ if name in r.answered]
    assert all(r.n_samples[name] == 200 for r in counted)
    last_with_worker2 = max(r.round_number for r in master.history_ if "worker2" in r.answered)
    assert last_with_worker2 <= left_at + 1
    assert not any("worker2" in r.failed for r in master.history_)
    assert not any("worker2" in r.answered for r in master.history_[left_at + 1 :])
    assert master.history_[-1].answered == ["worker1", "worker3", name]
