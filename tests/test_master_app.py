"""A master's REST app on real servers, at its edges: the seed's older paths and its master
endpoint latency lines, 422 (never 500) for rows whose predictions cannot be finite, and a
fit that a page of another origin cannot start (chimera_nb.masters.rest)."""

from __future__ import annotations

import http.client
import json

import httpx
import numpy as np
import pytest
from sklearn.dummy import DummyRegressor

from chimera_nb import (
    AggregationMaster,
    LocalCluster,
    ParameterServerMaster,
    RegressionWorker,
    SGDWorker,
)
from chimera_nb.logs import TIME_LOG, attach_log_files
from chimera_nb.wire import paths

RNG = np.random.default_rng(0)
X = RNG.normal(size=(40, 3))
Y = X @ [1.0, -2.0, 0.5] + 3.0
COLUMNS = ["x0", "x1", "x2"]


@pytest.fixture(scope="module")
def sgd_workers():
    with LocalCluster([SGDWorker("regressor").with_data(X, Y)], name="sgd") as cluster:
        yield cluster


def test_the_older_paths_fit_and_predict_and_each_leaves_a_master_latency_line(
    sgd_workers, serve_master, tmp_path
):
    # Prepare
    master = ParameterServerMaster("regressor", max_iter=5)
    detach = attach_log_files(tmp_path)

    # Execute
    try:
        with serve_master(master, sgd_workers) as server:
            fitted = httpx.post(server.url + "/v1/chimera-parameter-server/fit", timeout=60)
            predicted = httpx.post(
                server.url + "/v1/chimera-parameter-server/predict",
                json={"X_pred_columns": COLUMNS, "X_pred_rows": [[0.0, 0.0, 0.0]]},
            )
    finally:
        detach()
    lines = [line for line in (tmp_path / TIME_LOG).read_text().splitlines() if "=master " in line]

    # Assert
    assert fitted.json()["fit"] == "ok" and predicted.status_code == 200
    assert [line.split(" endpoint=")[1].split()[0] for line in lines] == [
        "/v1/chimera-parameter-server/fit",
        "/v1/chimera-parameter-server/predict",
    ]
    assert all(" status=200 round=- attempt=1 " in line for line in lines)
    assert all(line.endswith(f" url={server.url}") for line in lines)


def test_values_near_1e308_get_422_naming_the_cell_and_the_connection_stays_open(
    sgd_workers, serve_master
):
    # Prepare
    master = ParameterServerMaster("regressor", max_iter=5)
    body = json.dumps({"X_pred_columns": COLUMNS, "X_pred_rows": [[1e308, 1e308, -1e308]]})

    # Execute
    with serve_master(master, sgd_workers) as server:
        httpx.post(server.url + paths.PARAMETER_SERVER_FIT, timeout=60).raise_for_status()
        connection = http.client.HTTPConnection("127.0.0.1", server.url.rsplit(":", 1)[1])
        connection.request(
            "POST", paths.PARAMETER_SERVER_PREDICT, body, {"content-type": "application/json"}
        )
        refused = connection.getresponse()
        detail = json.loads(refused.read())["detail"]
        connection.request("GET", paths.HEALTH)  # the same keep-alive connection
        health = connection.getresponse().status
        connection.close()

    # Assert
    assert refused.status == 422
    assert detail.startswith("X_pred_rows[0][0]: Input should be less than or equal to")
    assert health == 200


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_predictions_that_overflow_at_the_master_get_422_naming_the_rows(serve_master):
    # Prepare: two members whose finite predictions average to more than float64 holds
    member = RegressionWorker(DummyRegressor(strategy="constant", constant=1.7e308))
    workers = [member.with_data(X, Y), member.with_data(X, Y)]
    master = AggregationMaster()

    # Execute
    with LocalCluster(workers, name="overflow") as cluster, serve_master(master, cluster) as server:
        httpx.post(server.url + paths.AGGREGATION_FIT, timeout=60).raise_for_status()
        answer = httpx.post(
            server.url + paths.AGGREGATION_PREDICT,
            json={"X_pred_columns": COLUMNS, "X_pred_rows": [[0.0, 0.0, 0.0]] * 2},
        )

    # Assert
    assert answer.status_code == 422
    assert answer.json()["detail"].startswith(
        "X_pred_rows: rows [0, 1] give predictions that are infinite or NaN"
    )


def test_a_page_of_another_origin_cannot_start_a_fit(sgd_workers, serve_master):
    # Prepare
    master = ParameterServerMaster("regressor", max_iter=5)

    # Execute: a form on another site, posting to the master
    with serve_master(master, sgd_workers) as server:
        answer = httpx.post(
            server.url + paths.PARAMETER_SERVER_FIT,
            content="x=1",
            headers={"origin": "http://evil.example", "content-type": "text/plain"},
        )

    # Assert
    assert answer.status_code == 403
    assert not hasattr(master, "history_")
