"""GET /metrics on real servers: a worker counts its requests per endpoint, a master reports
its rounds, calls, bytes and workers from history_ and spans_, and every app has a registry
of its own (chimera_nb.wire.metrics, chimera_nb.masters.metrics)."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from chimera_nb import LocalCluster, ParameterServerMaster, SGDWorker
from chimera_nb.wire import paths
from tests.wire.serving import ServedApp

RNG = np.random.default_rng(0)
X = RNG.normal(size=(40, 3))
Y = X @ [1.0, -2.0, 0.5] + 3.0


def scrape(url: str) -> dict[tuple[str, frozenset], float]:
    """``GET /metrics`` as ``{(sample name, labels): value}``."""
    answer = httpx.get(url + paths.METRICS)
    assert answer.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def labels(**pairs: str) -> frozenset:
    return frozenset(pairs.items())


@pytest.fixture(scope="module")
def cluster():
    workers = {
        name: SGDWorker("regressor").with_data(X[i::2], Y[i::2])
        for i, name in enumerate(["w1", "w2"])
    }
    with LocalCluster(workers, name="metrics") as cluster:
        yield cluster


def test_a_worker_counts_its_requests_and_their_durations_per_endpoint(cluster):
    # Prepare
    url = cluster.endpoints["w1"]
    before = scrape(url)
    fit_step = paths.SGD_FIT_STEP

    # Execute
    for _ in range(3):
        httpx.post(url + fit_step, json={"weights": [0, 0, 0], "bias": [0]})
    httpx.post(url + fit_step, json={"weights": [0, 0], "bias": [0]})  # 422
    httpx.get(url + "/no/such/path")
    after = scrape(url)

    # Assert
    def grew(name: str, key: frozenset) -> float:
        return after[(name, key)] - before.get((name, key), 0)

    requests = "chimera_http_requests_total"
    assert grew(requests, labels(endpoint=fit_step, method="POST", status="200")) == 3
    assert grew(requests, labels(endpoint=fit_step, method="POST", status="422")) == 1
    assert grew(requests, labels(endpoint="other", method="GET", status="404")) == 1
    assert grew("chimera_http_request_duration_seconds_count", labels(endpoint=fit_step)) == 4
    assert grew("chimera_http_request_duration_seconds_sum", labels(endpoint=fit_step)) > 0


def test_a_master_reports_rounds_calls_bytes_and_workers_of_every_fit(cluster, serve_master):
    # Prepare
    master = ParameterServerMaster("regressor", max_iter=4, tol=0.0)

    # Execute: two fits, and one scrape after both
    with serve_master(master, cluster) as server:
        first = httpx.post(server.url + paths.PARAMETER_SERVER_FIT, timeout=60).json()
        second = httpx.post(server.url + paths.PARAMETER_SERVER_FIT, timeout=60).json()
        metrics = scrape(server.url)
    spans = master.spans_.to_frame()

    # Assert
    n_rounds = first["n_rounds"] + second["n_rounds"]
    assert metrics[("chimera_master_rounds_total", labels())] == n_rounds
    assert metrics[("chimera_master_round_duration_seconds_count", labels())] == n_rounds
    assert metrics[("chimera_master_fitting", labels())] == 0
    assert metrics[("chimera_master_loss", labels())] == pytest.approx(second["loss"])
    for worker in ("w1", "w2"):
        call = labels(worker=worker, endpoint=paths.SGD_FIT_STEP, status="200")
        assert metrics[("chimera_master_worker_calls_total", call)] == n_rounds
        assert metrics[("chimera_master_worker_up", labels(worker=worker))] == 1
        sent = spans[spans["worker"] == worker]["bytes_sent"].sum()  # of the second fit
        assert metrics[("chimera_master_worker_sent_bytes_total", labels(worker=worker))] > sent


def test_two_apps_in_one_process_keep_their_own_counts(cluster):
    # Prepare
    first = ParameterServerMaster("regressor").build_app(cluster)
    second = ParameterServerMaster("regressor").build_app(cluster)

    # Execute
    with ServedApp(first) as one, ServedApp(second) as other:
        for _ in range(3):
            httpx.get(one.url + paths.HEALTH)
        counted = scrape(other.url)

    # Assert
    health = labels(endpoint=paths.HEALTH, method="GET", status="200")
    assert ("chimera_http_requests_total", health) not in counted
