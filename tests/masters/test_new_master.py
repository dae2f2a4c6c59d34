"""A third master, written only in the tests (``median_master.py``), gets everything the kit
gives a master without a change outside its file: REST endpoints, both log files, spans,
``history_``, ``clone`` and a working dashboard."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from sklearn.base import clone

from chimera_nb import Lab, LocalCluster, SGDWorker
from chimera_nb.logs import STATUS_LOG, read_time_log
from chimera_nb.wire import paths
from tests.masters.median_master import MedianMaster

RNG = np.random.default_rng(7)
X = RNG.normal(size=(600, 3))
TRUE_COEF = np.array([1.5, -2.0, 0.5])
Y = X @ TRUE_COEF + 0.3 + RNG.normal(scale=0.1, size=600)
N_ROUNDS = 60


@pytest.fixture(scope="module")
def median_cluster(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("median-run")
    with LocalCluster.from_shards(
        SGDWorker("regressor"), X, Y, n_workers=3, name="median", run_dir=run_dir
    ) as cluster:
        yield cluster


def test_a_new_master_answers_its_rest_endpoints_and_fits(median_cluster, serve_master):
    # Prepare
    master = MedianMaster(learning_rate=0.3, max_iter=N_ROUNDS)
    body = {"X_pred_columns": ["x0", "x1", "x2"], "X_pred_rows": X[:4].tolist()}
    with serve_master(master, median_cluster) as server:
        # Execute
        fitted = httpx.post(server.url + master.fit_path, timeout=60)
        predicted = httpx.post(server.url + master.predict_path, json=body)
        health = httpx.get(server.url + paths.HEALTH)

    # Assert
    assert fitted.status_code == 200, fitted.text
    assert fitted.json()["n_rounds"] == N_ROUNDS
    assert fitted.json()["answered"] == ["worker1", "worker2", "worker3"]
    assert predicted.status_code == 200
    assert predicted.json()["y_pred_rows"] == pytest.approx(master.predict(X[:4]).tolist())
    assert health.json()["role"] == "MedianMaster"
    np.testing.assert_allclose(master.coef_[0], TRUE_COEF, atol=0.05)


def test_a_new_master_leaves_history_spans_and_both_logs(median_cluster):
    # Prepare
    master = MedianMaster(learning_rate=0.3, max_iter=N_ROUNDS)

    # Execute
    master.fit(median_cluster)
    spans = master.spans_.to_frame()
    time_log = read_time_log(median_cluster.run_dir)

    # Assert: a record per round, the loss falling
    assert [r.round_number for r in master.history_] == list(range(1, N_ROUNDS + 1))
    assert master.history_[-1].loss < master.history_[0].loss / 10
    assert set(master.history_[-1].latency_ms) == {"worker1", "worker2", "worker3"}
    # a span per call: one data sample, then 3 fit-steps a round, each with its bytes
    fit_steps = spans[spans["endpoint"] == paths.SGD_FIT_STEP]
    assert len(spans) == 1 + 3 * N_ROUNDS
    assert sorted(fit_steps["round"].unique()) == list(range(1, N_ROUNDS + 1))
    assert (fit_steps["bytes_sent"] > 0).all() and (fit_steps["bytes_received"] > 0).all()
    # the time log holds the same calls, the latencies of history_ come from the spans
    last_round = fit_steps[fit_steps["round"] == N_ROUNDS].set_index("worker")["latency_ms"]
    assert master.history_[-1].latency_ms == pytest.approx(last_round.to_dict())
    logged = time_log[time_log["endpoint"] == paths.SGD_FIT_STEP]
    assert len(logged) >= 3 * N_ROUNDS
    assert "MedianMaster fit done: 60 rounds" in (median_cluster.run_dir / STATUS_LOG).read_text()


def test_a_new_master_is_an_estimator_that_clones():
    # Prepare
    master = MedianMaster(learning_rate=0.05, max_iter=7, quorum="all")

    # Execute
    copy = clone(master)
    master.set_params(max_iter=9)

    # Assert
    assert copy.get_params() == {
        "learning_rate": 0.05,
        "max_iter": 7,
        "quorum": "all",
        "timeout": None,
    }
    assert master.max_iter == 9 and copy.max_iter == 7
    assert repr(copy) == "MedianMaster(learning_rate=0.05, max_iter=7, quorum='all') [not fitted]"


def test_a_new_master_gets_a_working_dashboard():
    # Prepare
    master = MedianMaster(learning_rate=0.3, max_iter=20)
    with Lab.from_shards(
        SGDWorker("regressor"), X, Y, master=master, n_workers=2, name="median-dashboard"
    ) as lab:
        dashboard = lab.dashboard()
        try:
            # Execute
            lab.fit()
            dashboard.refresh()

            # Assert
            live = dashboard.live
            assert live.chart["machine"] == "median fit" and live.step["active"] == "I"
            assert sorted(box["letter"] for box in live.chart["boxes"]) == list("ABCDEFGHI")
            assert live.status["role"] == "MedianMaster"
            assert (live.status["round"], live.status["max_rounds"]) == (20, 20)
            assert [w["state"] for w in live.workers] == ["up", "up"]
            assert [w["answered"] for w in live.workers] == ["20/20", "20/20"]
            assert live.loss["last_round"] == 20
            assert [r["round"] for r in live.timeline["rounds"]][-1] == 20
            assert [box["worker"] for box in live.latency] == ["worker1", "worker2"]
            assert [kind for kind, _ in dashboard.controls.said if kind == "error"] == []
        finally:
            dashboard.close()
