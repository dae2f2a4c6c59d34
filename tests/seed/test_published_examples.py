"""Projects written the way the original Chimera's published examples are, with only
``chimera`` renamed to ``chimera_nb``: module paths ``chimera_nb.nodes`` and
``chimera_nb.nodes.workers``, worker ports 81-83 (when this user may bind them), clients on
the older endpoint paths, a holdout check, and ``chimera_nb.utils.parse_times_file`` on the
time log. They run unchanged as ``python master.py``."""

from __future__ import annotations

import ast
import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split

from chimera_nb.algorithms import split
from chimera_nb.wire import paths
from tests.conftest import REPO_ROOT

PS_MASTER = """\
import os

import chimera_nb
from chimera_nb.nodes import ParameterServerMaster

os.environ["CHIMERA_WORKERS_NODES_NAMES"] = '{names}'
os.environ["CHIMERA_WORKERS_CPU_SHARES"] = "[2, 2, 2]"
os.environ["CHIMERA_WORKERS_MAPPED_PORTS"] = "{ports}"

chimera_nb.run(ParameterServerMaster("regressor", max_iter=100), {port})
"""

SGD_WORKER = """\
from chimera_nb.nodes.workers import SGDWorker

worker = SGDWorker("regressor", eta0=1e-7)

if __name__ == "__main__":
    worker.serve()
"""

BAGGING_MASTER = """\
import os

import chimera_nb
from chimera_nb.nodes import AggregationMaster

os.environ["CHIMERA_WORKERS_NODES_NAMES"] = '{names}'
os.environ["CHIMERA_WORKERS_CPU_SHARES"] = "[2, 2, 2, 2]"
os.environ["CHIMERA_WORKERS_MAPPED_PORTS"] = "{ports}"

chimera_nb.run(AggregationMaster(), {port})
"""

TREE_WORKER = """\
from sklearn.tree import DecisionTreeRegressor

from chimera_nb.nodes.workers import RegressionWorker

worker = RegressionWorker(
    DecisionTreeRegressor(max_depth=2, max_leaf_nodes=5), bootstrap=True
)

if __name__ == "__main__":
    worker.serve()
"""

PARSE = """\
from chimera_nb.utils import parse_times_file

times = parse_times_file()
print(times)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ports_like_the_examples(first: int, n_workers: int) -> list[int]:
    """The examples' ports (81, 82...) when this user may bind them and they are free,
    else free ports: ports below 1024 need root or ``net.ipv4.ip_unprivileged_port_start``."""
    wanted = list(range(first, first + n_workers))
    for port in wanted:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError as error:
                if error.errno in (errno.EACCES, errno.EADDRINUSE):
                    return [free_port() for _ in wanted]
                raise
    return wanted


def write_example(root: Path, master: str, worker: str, names: list[str], X, y, port: int):
    ports = ports_like_the_examples(81, len(names))
    (root / "chimera_workers").mkdir(parents=True)
    for name, (X_shard, y_shard) in zip(names, split(X, y, len(names))):
        (root / "chimera_workers" / f"{name}.py").write_text(worker)
        data = root / "chimera_train_data" / name
        data.mkdir(parents=True)
        X_shard.to_csv(data / "X_train.csv", index=False)
        y_shard.to_frame("quality").to_csv(data / "y_train.csv", index=False)
    script = master.format(names=json.dumps(names), ports=json.dumps(ports), port=port)
    (root / "master.py").write_text(script)
    (root / "parse.py").write_text(PARSE)
    return ports


def run_python(script: str, root: Path, **options) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen(
        [sys.executable, script],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **options,
    )


def wait_for_health(url: str, process: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"master.py exited early:\n{process.stdout.read()}")
        try:
            if httpx.get(url + paths.HEALTH, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    pytest.fail("the master did not answer /health in time")


def holdout(wine_quality):
    X, y = wine_quality
    return train_test_split(X, y, test_size=0.2, random_state=0)


def rows(X) -> dict:
    return {"X_pred_columns": list(X.columns), "X_pred_rows": X.to_numpy().tolist()}


@pytest.mark.parametrize(
    ("kind", "master", "worker", "names", "old_paths"),
    [
        (
            "parameter server",
            PS_MASTER,
            SGD_WORKER,
            ["sgd1", "sgd2", "sgd3"],
            ("/v1/chimera-parameter-server/fit", "/v1/chimera-parameter-server/predict"),
        ),
        (
            "bagging",
            BAGGING_MASTER,
            TREE_WORKER,
            ["tree1", "tree2", "tree3", "tree4"],
            ("/v1/chimera-aggregation/fit", "/v1/chimera-aggregation/predict"),
        ),
    ],
)
def test_an_example_style_project_runs_unchanged_but_for_the_package_name(
    wine_quality, tmp_path, kind, master, worker, names, old_paths
):
    # Prepare
    X_train, X_test, y_train, y_test = holdout(wine_quality)
    port = free_port()
    write_example(tmp_path, master, worker, names, X_train, y_train, port)
    url = f"http://127.0.0.1:{port}"
    process = run_python("master.py", tmp_path)
    try:
        wait_for_health(url, process)
        # Execute: the published clients' calls, on the older paths
        fitted = httpx.post(url + old_paths[0], timeout=120)
        predicted = httpx.post(url + old_paths[1], json=rows(X_test), timeout=60)
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    parsed = subprocess.run(
        [sys.executable, "parse.py"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )

    # Assert: fitted, and the holdout score of a model that learned something
    assert fitted.status_code == 200, f"{fitted.text}\n{output}"
    assert fitted.json()["fit"] == "ok"
    assert predicted.status_code == 200, predicted.text
    score = r2_score(y_test, predicted.json()["y_pred_rows"])
    assert score > (0.2 if kind == "parameter server" else 0.1), score
    # parse_times_file gives the original's shape, with worker and master endpoint latencies
    times = ast.literal_eval(parsed.stdout)  # the example prints the dict
    assert set(times) == {"worker", "master"}
    assert any(u.endswith(old_paths[0]) for u in times["master"]), times["master"].keys()
    assert all(isinstance(s, float) for v in times["worker"].values() for s in v)
    assert len(times["worker"]) >= len(names)


def test_parse_times_file_reads_the_originals_format_too(tmp_path):
    # Prepare: lines as the original Chimera wrote them
    log = tmp_path / "chimera_time.log"
    log.write_text(
        "http://localhost:81/v1/chimera/sgd/fit-step worker endpoint latency = 0.0123 s\n"
        "http://localhost:82/v1/chimera/sgd/fit-step worker endpoint latency = 0.02 s\n"
        "http://localhost:81/v1/chimera/sgd/fit-step worker endpoint latency = 0.011 s\n"
        "http://localhost:8080/v1/chimera/parameter-server/fit master endpoint latency = 1.5 s\n"
    )
    from chimera_nb.utils import parse_times_file

    # Execute
    times = parse_times_file(log)

    # Assert
    assert times == {
        "worker": {
            "http://localhost:81/v1/chimera/sgd/fit-step": [0.0123, 0.011],
            "http://localhost:82/v1/chimera/sgd/fit-step": [0.02],
        },
        "master": {"http://localhost:8080/v1/chimera/parameter-server/fit": [1.5]},
    }
