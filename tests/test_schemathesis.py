"""Schemathesis against every kind of server of the kit, each a real uvicorn server on
127.0.0.1 with real workers behind the masters: all of its checks (no 5xx, every status and
body as the OpenAPI schema says, schema-invalid requests refused...), a bounded number of
examples per endpoint and a fixed seed, so that a failure replays (``--seed``).

The masters are fitted first, so that their predict endpoints answer more than 409. Each
worker's fault switches (``faults/delay``, ``faults/network``) are fuzzed last and on their
own: the values they accept slow the worker on purpose, by up to a minute per answer, or cut
it off.
"""

from __future__ import annotations

import subprocess
import sys

import httpx
import numpy as np
import pytest
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from chimera_nb import (
    AggregationMaster,
    ClassificationWorker,
    FeatureSplitMaster,
    FeatureSplitWorker,
    FederatedAveragingMaster,
    FederatedClient,
    LocalCluster,
    ParameterServerMaster,
    ParameterShard,
    PipelineMaster,
    PipelineStageWorker,
    RegressionWorker,
    RingAllReduceMaster,
    RingWorker,
    SGDWorker,
    ShardedParameterServerMaster,
    ShardedSGDWorker,
)
from chimera_nb.wire import paths
from tests.conftest import MasterServer

MAX_EXAMPLES = 200
SEED = 20261121

#: A JSON schema states types, ranges and lengths. What it cannot state (the columns a model
#: was trained on, weights sized to a worker's features, a binary frame's header) a server
#: refuses with a 422 that names it, so a schema-valid request may get 422 as well as 2xx.
CONFIG = """
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "409", "422"]
"""

RNG = np.random.default_rng(0)
X = RNG.normal(size=(60, 3))
Y = X @ [1.0, -2.0, 0.5] + 3.0
LABELS = np.array(["a", "b", "c"] * 20)

WORKERS = {
    "sgd-regressor": SGDWorker("regressor").with_data(X, Y),
    "sgd-classifier": SGDWorker("classifier").with_data(X, LABELS),
    "regression": RegressionWorker(DecisionTreeRegressor(max_depth=3), bootstrap=True),
    "classification": ClassificationWorker(DecisionTreeClassifier(max_depth=3)),
    "ring": RingWorker("regressor").with_data(X, Y),
    "sharded-sgd": ShardedSGDWorker("regressor").with_data(X, Y),
    "parameter-shard": ParameterShard(),
    "federated": FederatedClient("regressor").with_data(X, Y),
    "feature-split": FeatureSplitWorker("regressor").with_block(X),
    "pipeline-stage": PipelineStageWorker(),
}
MASTERS = {
    "parameter-server-regressor": (
        ParameterServerMaster("regressor", max_iter=20),
        "sgd-regressor",
    ),
    "parameter-server-classifier": (
        ParameterServerMaster("classifier", max_iter=20),
        "sgd-classifier",
    ),
    "aggregation-regression": (AggregationMaster(), "regression"),
    "aggregation-classification": (AggregationMaster(), "classification"),
    "ring-allreduce": (RingAllReduceMaster("regressor", max_iter=20), "ring"),
    # its parameter shard's URL is known once the cluster runs (see the fixture)
    "sharded-parameter-server": (ShardedParameterServerMaster, "sharded-sgd"),
    "federated-averaging": (FederatedAveragingMaster("regressor", n_rounds=5), "federated"),
    # the label holder: its worker holds every column, the master the labels
    "feature-split-master": (
        FeatureSplitMaster("regressor", max_iter=5).hold_labels(Y),
        "feature-split",
    ),
    "pipeline": (PipelineMaster((4,), max_iter=2, batch_size=20), "pipeline-stage"),
}


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """Name -> base URL of every server, masters fitted."""
    workers = {
        name: worker
        if isinstance(worker, (SGDWorker, ParameterShard, FeatureSplitWorker))
        else worker.with_data(X, Y if name == "regression" else LABELS)
        for name, worker in WORKERS.items()
    }
    with LocalCluster(workers, name="schemathesis") as cluster:
        urls = dict(cluster.endpoints)
        served = []
        try:
            for name, (master, worker) in MASTERS.items():
                if master is ShardedParameterServerMaster:
                    shard = {"parameter-shard": urls["parameter-shard"]}
                    master = ShardedParameterServerMaster("regressor", servers=shard, max_iter=20)
                server = MasterServer(master, {worker: urls[worker]}).__enter__()
                served.append(server)
                httpx.post(server.url + master.fit_path, timeout=60).raise_for_status()
                urls[name] = server.url
            yield urls
        finally:
            for server in served:
                server.__exit__(None, None, None)


def schemathesis(url: str, config, *options: str) -> subprocess.CompletedProcess:
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(config),
        "run",
        url + "/openapi.json",
        "--checks=all",
        f"--max-examples={MAX_EXAMPLES}",
        f"--seed={SEED}",
        "--workers=1",
        "--generation-database=none",
        "--no-color",
        *options,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=config.parent)


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    path = tmp_path_factory.mktemp("schemathesis") / "schemathesis.toml"
    path.write_text(CONFIG)
    return path


@pytest.mark.parametrize("server", [*MASTERS, *WORKERS])
def test_schemathesis_finds_nothing_wrong(servers, config, server):
    # Prepare
    url = servers[server]

    # Execute
    faults = (paths.FAULTS_DELAY, paths.FAULTS_NETWORK)
    run = schemathesis(url, config, *(f"--exclude-path={path}" for path in faults))
    if server in WORKERS:
        straggler = schemathesis(url, config, *(f"--include-path={path}" for path in faults))
        httpx.post(url + paths.FAULTS_DELAY, json={"seconds": 0}).raise_for_status()
        httpx.post(url + paths.FAULTS_NETWORK, json={}).raise_for_status()

    # Assert
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    if server in WORKERS:
        assert straggler.returncode == 0, straggler.stdout[-6000:] + straggler.stderr[-2000:]
