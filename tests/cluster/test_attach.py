"""Tests of the attach backend (``AttachedCluster``) and of the shared token: workers
started by hand with ``chimera-nb serve-worker --token``, a master that fits through them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest

from chimera_nb import LocalCluster, ParameterServerMaster, SGDWorker
from chimera_nb._exceptions import ClusterError, ConfigurationError
from chimera_nb.algorithms import split
from chimera_nb.auth import is_loopback, new_token, token_matches
from chimera_nb.cluster import AttachedCluster, WorkerState
from chimera_nb.wire import paths
from tests.test_run import free_port, wait_for_health

REPO_ROOT = Path(__file__).resolve().parents[2]
NAMES = ["sgd1", "sgd2"]
WORKER_SCRIPT = """\
from chimera_nb import SGDWorker

worker = SGDWorker("regressor")

if __name__ == "__main__":
    worker.serve()
"""


def chimera_nb(*arguments: str, cwd: Path, **env: str) -> subprocess.Popen:
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT), **env}
    return subprocess.Popen(
        [sys.executable, "-m", "chimera_nb", *arguments],
        cwd=cwd,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture(scope="module")
def project(wine_quality, tmp_path_factory):
    """A seed project folder with two SGD workers' scripts and shards."""
    X, y = wine_quality
    X, y = X.iloc[:400], y.iloc[:400]
    root = tmp_path_factory.mktemp("attach-project")
    (root / "chimera_workers").mkdir()
    for name, (X_shard, y_shard) in zip(NAMES, split(X, y, len(NAMES))):
        (root / "chimera_workers" / f"{name}.py").write_text(WORKER_SCRIPT)
        data = root / "chimera_train_data" / name
        data.mkdir(parents=True)
        X_shard.to_csv(data / "X_train.csv", index=False)
        y_shard.to_frame("quality").to_csv(data / "y_train.csv", index=False)
    return root, X, y


@pytest.fixture(scope="module")
def workers(project):
    """Two ``chimera-nb serve-worker ... --token T`` processes on 127.0.0.1."""
    root, _, _ = project
    token = new_token()
    urls, processes = {}, []
    for name in NAMES:
        port = free_port()
        processes.append(
            chimera_nb(
                "serve-worker",
                f"chimera_workers/{name}.py",
                "--port",
                str(port),
                cwd=root,
                CHIMERA_WORKER_TOKEN=token,  # the variable, which ps does not show
            )
        )
        urls[name] = f"http://127.0.0.1:{port}"
    try:
        for process, url in zip(processes, urls.values()):
            wait_for_health(url, process, timeout=60)
        yield urls, token
    finally:
        for process in processes:
            process.send_signal(signal.SIGINT)
        for process in processes:
            process.communicate(timeout=30)


def test_a_master_fits_through_attached_workers_as_through_local_processes(workers, project):
    # Prepare
    urls, token = workers
    root, X, y = project
    shards = [SGDWorker("regressor").with_data(*part) for part in split(X, y, len(NAMES))]
    # Execute
    with AttachedCluster(urls, token=token) as cluster:
        attached = ParameterServerMaster("regressor", max_iter=40, tol=0.0).fit(cluster)
        states = cluster.status()
    with LocalCluster(dict(zip(NAMES, shards))) as local:
        expected = ParameterServerMaster("regressor", max_iter=40, tol=0.0).fit(local)
    # Assert
    np.testing.assert_allclose(attached.coef_, expected.coef_, rtol=1e-12)
    assert attached.history_[-1].answered == NAMES
    assert states == {"sgd1": WorkerState.UP, "sgd2": WorkerState.UP}


def test_a_request_without_the_token_gets_401_and_health_stays_open(workers):
    # Prepare
    urls, token = workers
    url = urls["sgd1"]
    # Execute
    health = httpx.get(url + paths.HEALTH)
    without = httpx.get(url + paths.SGD_STATISTICS)
    wrong = httpx.get(url + paths.SGD_STATISTICS, headers={"authorization": "Bearer " + "x" * 43})
    right = httpx.get(url + paths.SGD_STATISTICS, headers={"authorization": f"Bearer {token}"})
    # Assert
    assert health.status_code == 200
    assert without.status_code == 401 and without.headers["www-authenticate"] == "Bearer"
    assert "carried no token" in without.json()["detail"]
    assert wrong.status_code == 401 and "a wrong token" in wrong.json()["detail"]
    assert right.status_code == 200


def test_a_cluster_without_the_token_is_refused_at_start_with_what_to_do(workers, monkeypatch):
    # Prepare
    urls, _ = workers
    monkeypatch.delenv("CHIMERA_WORKERS_TOKEN", raising=False)
    # Execute
    with pytest.raises(ClusterError) as raised:
        AttachedCluster(urls).start()
    # Assert
    assert "requires a shared token and this cluster sent no token" in str(raised.value)
    assert "CHIMERA_WORKERS_TOKEN" in str(raised.value)


def test_an_attached_cluster_cannot_kill_or_restart_what_it_did_not_start(workers):
    # Prepare
    urls, token = workers
    with AttachedCluster(urls, token=token) as cluster:
        # Execute / Assert
        for action in (cluster.kill, cluster.restart):
            with pytest.raises(ClusterError, match="does not control its workers"):
                action("sgd2")
        cluster.slow("sgd2", 0.2)  # over HTTP: this one works
        assert cluster.status()["sgd2"] is WorkerState.SLOW
        cluster.slow("sgd2", 0)


def test_a_seed_master_runs_with_the_attach_backend(workers, tmp_path):
    # Prepare
    urls, token = workers
    port = free_port()
    (tmp_path / "master.py").write_text(
        "import os\nimport chimera_nb\nfrom chimera_nb import ParameterServerMaster\n\n"
        f"os.environ['CHIMERA_WORKERS_NODES_NAMES'] = {json.dumps(NAMES)!r}\n"
        f"chimera_nb.run(ParameterServerMaster('regressor', max_iter=20), {port})\n"
    )
    environment = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "CHIMERA_BACKEND": "attach",
        "CHIMERA_WORKERS_URLS": json.dumps(list(urls.values())),
        "CHIMERA_WORKERS_TOKEN": token,
    }
    master = subprocess.Popen(
        [sys.executable, "master.py"],
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(url, master)
        # Execute
        fitted = httpx.post(url + paths.PARAMETER_SERVER_FIT, timeout=60)
    finally:
        master.send_signal(signal.SIGINT)
        output, _ = master.communicate(timeout=30)
    # Assert
    assert fitted.status_code == 200, output
    assert fitted.json()["answered"] == NAMES


@pytest.mark.parametrize(
    ("urls", "message"),
    [
        (None, "CHIMERA_BACKEND=attach needs CHIMERA_WORKERS_URLS"),
        ('["http://10.0.0.1:5001"]', "has 1 URLs but CHIMERA_WORKERS_NODES_NAMES has 2"),
        ("['http://10.0.0.1:5001']", "is not valid JSON"),
        ('["http://10.0.0.1:5001", "http://10.0.0.2:5001/v1; rm"]', "must look like"),
        ('["http://10.0.0.1:5001", "file:///etc/passwd"]', "must look like"),
    ],
)
def test_bad_worker_urls_are_refused_before_any_call(urls, message):
    environ = {} if urls is None else {"CHIMERA_WORKERS_URLS": urls}
    with pytest.raises(ConfigurationError, match=message):
        AttachedCluster.from_environment(NAMES, environ)


def test_serve_worker_refuses_to_listen_beyond_loopback_without_a_token(project):
    # Prepare
    root, _, _ = project
    environment = {k: v for k, v in os.environ.items() if k != "CHIMERA_WORKER_TOKEN"}
    # Execute
    served = subprocess.run(
        [sys.executable, "-m", "chimera_nb", "serve-worker", "chimera_workers/sgd1.py"]
        + ["--host", "0.0.0.0", "--port", str(free_port())],
        cwd=root,
        env={**environment, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    short = subprocess.run(
        [sys.executable, "-m", "chimera_nb", "serve-worker", "chimera_workers/sgd1.py"]
        + ["--host", "0.0.0.0", "--token", "short"],
        cwd=root,
        env={**environment, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    # Assert
    assert served.returncode == 2 and "needs a shared token" in served.stderr
    assert short.returncode == 2 and "at least 16 characters" in short.stderr


def test_tokens_compare_only_bearer_headers_and_loopback_means_this_machine():
    token = new_token()
    assert token_matches(f"Bearer {token}", token) and token_matches(f"bearer {token}", token)
    assert not token_matches(token, token) and not token_matches(None, token)
    assert not token_matches(f"Basic {token}", token)
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("lab-pc-3")
