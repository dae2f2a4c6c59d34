"""``chimera_nb.run`` on a seed-style project, run as the seed runs it: ``python master.py``."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import psutil
import pytest

from chimera_nb.algorithms import split
from chimera_nb.wire import paths

WORKER_SCRIPT = """\
from chimera_nb import SGDWorker

worker = SGDWorker("regressor")

if __name__ == "__main__":
    worker.serve()
"""

MASTER_SCRIPT = """\
import os

import chimera_nb
from chimera_nb import ParameterServerMaster

os.environ["CHIMERA_WORKERS_NODES_NAMES"] = {names!r}
os.environ["CHIMERA_WORKERS_MAPPED_PORTS"] = {ports!r}

chimera_nb.run({master}, {port})
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_project(
    root: Path,
    X,
    y,
    names: list[str],
    ports: list[int],
    port: int,
    master: str = 'ParameterServerMaster("regressor", max_iter=100)',
) -> None:
    """The seed's layout: master.py, chimera_workers/<name>.py, chimera_train_data/<name>/."""
    (root / "chimera_workers").mkdir(parents=True)
    for name, (X_shard, y_shard) in zip(names, split(X, y, len(names))):
        (root / "chimera_workers" / f"{name}.py").write_text(WORKER_SCRIPT)
        data = root / "chimera_train_data" / name
        data.mkdir(parents=True)
        X_shard.to_csv(data / "X_train.csv", index=False)
        y_shard.to_frame("quality").to_csv(data / "y_train.csv", index=False)
    (root / "master.py").write_text(
        MASTER_SCRIPT.format(
            names=json.dumps(names), ports=json.dumps(ports), port=port, master=master
        )
    )


def start_master(root: Path, **env: str) -> subprocess.Popen:
    """``python master.py`` in ``root``, with ``env`` added to this environment."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), **env}
    return subprocess.Popen(
        [sys.executable, "master.py"],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
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


def test_seed_project_runs_with_python_master_py_and_answers_the_seed_endpoints(
    wine_quality, tmp_path
):
    # Prepare
    X, y = wine_quality
    names, ports, port = ["sgd1", "sgd2", "sgd3"], [free_port() for _ in range(3)], free_port()
    write_project(tmp_path, X, y, names, ports, port)
    master = start_master(tmp_path)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(url, master)
        workers = psutil.Process(master.pid).children(recursive=True)
        # Execute
        fitted = httpx.post(url + paths.PARAMETER_SERVER_FIT, timeout=120)
        predicted = httpx.post(
            url + paths.PARAMETER_SERVER_PREDICT,
            json={"X_pred_columns": list(X.columns), "X_pred_rows": X.iloc[:3].to_numpy().tolist()},
        )
        on_mapped_port = httpx.get(f"http://127.0.0.1:{ports[1]}{paths.HEALTH}").json()
    finally:
        master.send_signal(signal.SIGINT)
        output, _ = master.communicate(timeout=30)
    # Assert
    assert fitted.status_code == 200, fitted.text
    assert fitted.json()["fit"] == "ok" and fitted.json()["answered"] == names
    assert len(predicted.json()["y_pred_rows"]) == 3
    assert np.all(np.abs(np.array(predicted.json()["y_pred_rows"]) - 5.8) < 3)
    assert on_mapped_port["name"] == "sgd2"
    assert "fit done" in (tmp_path / "chimera_status.log").read_text()
    assert "endpoint=/v1/chimera/sgd/fit-step" in (tmp_path / "chimera_time.log").read_text()
    psutil.wait_procs(workers, timeout=10)
    assert not [w for w in workers if w.is_running() and w.status() != psutil.STATUS_ZOMBIE], output


def test_mismatched_lists_stop_run_before_any_worker_starts(wine_quality, tmp_path):
    # Prepare
    X, y = wine_quality
    write_project(tmp_path, X, y, ["sgd1", "sgd2", "sgd3"], [free_port(), free_port()], free_port())
    # Execute
    master = start_master(tmp_path)
    output, _ = master.communicate(timeout=60)
    # Assert
    assert master.returncode != 0
    assert (
        "CHIMERA_WORKERS_MAPPED_PORTS: has 2 values but CHIMERA_WORKERS_NODES_NAMES has 3" in output
    )
    assert not (tmp_path / ".chimera").exists()


def test_a_malformed_csv_stops_run_with_a_message_naming_the_file(wine_quality, tmp_path):
    # Prepare
    X, y = wine_quality
    write_project(
        tmp_path,
        X.iloc[:30],
        y.iloc[:30],
        ["sgd1", "sgd2"],
        [free_port(), free_port()],
        free_port(),
    )
    bad = tmp_path / "chimera_train_data" / "sgd2" / "X_train.csv"
    bad.write_text(bad.read_text().replace("\n", "\n1,2,oops\n", 1))
    # Execute
    master = start_master(tmp_path)
    output, _ = master.communicate(timeout=60)
    # Assert
    assert master.returncode != 0
    assert "sgd2" in output and "X_train.csv" in output
    assert not (tmp_path / ".chimera").exists()
