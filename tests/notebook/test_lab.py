"""Lab: local workers plus an in-kernel master on the background loop, as a notebook uses it."""

from __future__ import annotations

import asyncio

import httpx
import psutil
import pytest
from sklearn.datasets import load_diabetes

from chimera_nb import ClusterError, Lab, ParameterServerMaster, SGDWorker
from chimera_nb.wire import paths

X, Y = load_diabetes(return_X_y=True, as_frame=True)


def make_lab(name: str = "lab", max_iter: int = 100, n_workers: int = 3) -> Lab:
    master = ParameterServerMaster("regressor", max_iter=max_iter, tol=0.0)
    return Lab.from_shards(
        SGDWorker("regressor"), X, Y, master=master, n_workers=n_workers, name=name
    )


def test_fit_in_the_background_keeps_going_when_a_worker_is_killed():
    # Prepare
    with make_lab(max_iter=400) as lab:
        # Execute
        run = lab.fit(wait=False)
        while len(getattr(lab.master, "history_", [])) < 5 and not run.done():
            pass
        lab.cluster.kill("worker2")
        master = run.result(timeout=60)
    # Assert
    assert run.done() and repr(run) == "FitHandle(done)"
    assert master.history_[-1].answered == ["worker1", "worker3"]
    assert len(master.history_) == 401


def test_stop_ends_the_fit_after_the_current_round_and_keeps_the_model():
    with make_lab(max_iter=100_000) as lab:
        run = lab.fit(wait=False)
        run.stop()
        master = run.result(timeout=60)
    assert len(master.history_) < 100
    assert master.predict(X.head()).shape == (5,)


def test_the_in_kernel_master_serves_the_seed_rest_api():
    with make_lab() as lab:
        fitted = httpx.post(lab.master_url + paths.PARAMETER_SERVER_FIT, timeout=60)
        health = httpx.get(lab.master_url + paths.HEALTH).json()
    assert fitted.json()["fit"] == "ok"
    assert health["role"] == "ParameterServerMaster"


def test_building_a_lab_with_the_same_name_replaces_the_running_one():
    # Prepare
    first = make_lab(name="rerun").start()
    first_pids = list(first.cluster.pids.values())
    # Execute
    second = make_lab(name="rerun").start()
    # Assert
    try:
        assert "closed" in repr(first.cluster)
        assert not [
            pid
            for pid in first_pids
            if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        ]
        assert second.fit().n_iter_ == 100
    finally:
        second.close()


def test_fit_works_from_a_running_event_loop_and_with_top_level_await():
    async def cell(lab: Lab):
        blocking = lab.fit()  # what a plain cell does inside Jupyter's running loop
        awaited = await lab.fit_async()  # a cell with top-level await
        return blocking, awaited

    with make_lab(max_iter=10) as lab:
        blocking, awaited = asyncio.run(cell(lab))
    assert blocking is awaited
    assert len(awaited.history_) == 11


def test_a_closed_lab_says_how_to_start_again():
    lab = make_lab()
    with pytest.raises(ClusterError, match="start"):
        lab.fit()
