"""Fixtures of the container backends' tests: a Docker engine (and a swarm) that answers,
or a skip that says why (a failure in CI, where ``.ci/install-docker`` provides both), and a
check that a run left nothing behind."""

from __future__ import annotations

import os

import pytest

INSTALL_HINT = (
    "start one with .ci/install-docker (installs docker.io, starts dockerd and a one-node swarm)"
)


def _missing(message: str) -> None:
    """A missing engine is a skip on a laptop, a failure in CI."""
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI must run the Docker tests: {INSTALL_HINT}")
    pytest.skip(f"{message}; {INSTALL_HINT}")


@pytest.fixture(scope="session")
def docker_client():
    """A client of a Docker engine that answers a ping."""
    try:
        import docker
    except ImportError:
        docker = None
    if docker is None:
        _missing("the Docker SDK is not installed (pip install 'chimera-nb[docker]')")
    problem = None
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except docker.errors.DockerException as error:
        problem = f"no Docker engine answers ({error})"
    if problem is not None:  # outside the except: the report shows no chained traceback
        _missing(problem)
    yield client
    client.close()


@pytest.fixture(scope="session")
def swarm_client(docker_client):
    """The same client, checked to be a swarm manager."""
    swarm = docker_client.info().get("Swarm") or {}
    if swarm.get("LocalNodeState") != "active" or not swarm.get("ControlAvailable"):
        _missing(
            f"the Docker engine is not a swarm manager (state {swarm.get('LocalNodeState')!r}); "
            "run 'docker swarm init --advertise-addr 127.0.0.1'"
        )
    return docker_client


def leftovers(client, label: str) -> dict[str, list[str]]:
    """Everything Docker holds with ``label`` (``key=value``): should be empty after close."""
    filters = {"label": label}
    found = {
        # one listing, no inspection per container: one being removed meanwhile is no error
        "containers": [
            c["Names"][0].lstrip("/") for c in client.api.containers(all=True, filters=filters)
        ],
        "networks": [n.name for n in client.networks.list(filters=filters)],
        "images": [i.tags or i.id for i in client.images.list(filters=filters)],
    }
    swarm = client.info().get("Swarm") or {}
    if swarm.get("ControlAvailable"):
        found["services"] = [s.name for s in client.services.list(filters=filters)]
        found["configs"] = [c.name for c in client.configs.list(filters=filters)]
    return {kind: names for kind, names in found.items() if names}


# --- a seed-style project, run as the seed runs it: python master.py ----------------------

SGD_WORKER = """\
from chimera_nb import SGDWorker

worker = SGDWorker("regressor")

if __name__ == "__main__":
    worker.serve()
"""

BAGGING_WORKER = """\
from sklearn.tree import DecisionTreeRegressor

from chimera_nb import RegressionWorker

worker = RegressionWorker(DecisionTreeRegressor(max_depth=4), bootstrap=True)

if __name__ == "__main__":
    worker.serve()
"""

MASTER = """\
import os

import chimera_nb
from chimera_nb import AggregationMaster, ParameterServerMaster

os.environ["CHIMERA_WORKERS_NODES_NAMES"] = {names!r}
os.environ["CHIMERA_WORKERS_MAPPED_PORTS"] = {ports!r}

chimera_nb.run({master}, {port})
"""

PARAMETER_SERVER = 'ParameterServerMaster("regressor", max_iter=60, tol=0.0)'
BAGGING = "AggregationMaster(random_state=7)"
SEED_NAMES = ["w1", "w2", "w3"]


def run_seed_project(root, X, y, kind: str, backend: str, **env: str) -> dict:
    """Write a seed project of 3 workers under ``root``, run ``python master.py`` with
    ``CHIMERA_BACKEND=backend``, fit and predict through the master's REST endpoints, stop
    it with Ctrl-C; return the answers, the output and the project's name."""
    import json
    import signal
    import subprocess
    import sys
    from pathlib import Path

    import httpx

    from chimera_nb.algorithms import split
    from chimera_nb.wire import paths
    from tests.test_run import free_port, wait_for_health

    (root / "chimera_workers").mkdir(parents=True)
    for name, (X_shard, y_shard) in zip(SEED_NAMES, split(X, y, len(SEED_NAMES))):
        script = SGD_WORKER if kind == "parameter-server" else BAGGING_WORKER
        (root / "chimera_workers" / f"{name}.py").write_text(script)
        data = root / "chimera_train_data" / name
        data.mkdir(parents=True)
        X_shard.to_csv(data / "X_train.csv", index=False)
        y_shard.to_frame("quality").to_csv(data / "y_train.csv", index=False)
    port = free_port()
    master = PARAMETER_SERVER if kind == "parameter-server" else BAGGING
    ports = [free_port() for _ in SEED_NAMES]
    (root / "master.py").write_text(
        MASTER.format(
            names=json.dumps(SEED_NAMES), ports=json.dumps(ports), port=port, master=master
        )
    )
    environment = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        "CHIMERA_BACKEND": backend,
        **env,
    }
    process = subprocess.Popen(
        [sys.executable, "master.py"],
        cwd=root,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    base = (
        paths.PARAMETER_SERVER_FIT.rsplit("/", 1)[0]
        if kind == "parameter-server"
        else (paths.AGGREGATION_FIT.rsplit("/", 1)[0])
    )
    rows = {"X_pred_columns": list(X.columns), "X_pred_rows": X.iloc[:5].to_numpy().tolist()}
    try:
        wait_for_health(url, process, timeout=120)
        fitted = httpx.post(url + base + "/fit", timeout=120)
        predicted = httpx.post(url + base + "/predict", json=rows, timeout=60)
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    assert fitted.status_code == 200, f"{fitted.text}\n{output}"
    assert predicted.status_code == 200, f"{predicted.text}\n{output}"
    return {
        "fit": fitted.json(),
        "predict": predicted.json()["y_pred_rows"],
        "output": output,
        "project": root.name,
        "returncode": process.returncode,
    }


@pytest.fixture(scope="session")
def process_results(wine_quality, tmp_path_factory):
    """Both seed projects under the process backend: what the containers must reproduce."""
    X, y = wine_quality
    X, y = X.iloc[:600], y.iloc[:600]
    return {
        kind: run_seed_project(tmp_path_factory.mktemp(f"process-{kind}"), X, y, kind, "process")
        for kind in ("parameter-server", "bagging")
    }
