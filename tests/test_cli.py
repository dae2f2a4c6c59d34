"""The ``chimera-nb`` command, run as a user runs it: a separate process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from chimera_nb.wire import paths
from tests.conftest import SHARED, require_shared
from tests.test_run import free_port

REPO_ROOT = Path(__file__).resolve().parents[1]


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


def test_demo_fits_both_families_on_wine_quality_and_writes_the_charts(tmp_path):
    # Prepare
    wine = require_shared(SHARED / "datasets" / "wine-quality")
    # Execute
    demo = chimera_nb(
        "demo",
        "--max-iter",
        "60",
        "--output",
        "out",
        cwd=tmp_path,
        CHIMERA_WINE_QUALITY_URL=wine.as_uri() + "/",
        CHIMERA_DATA_HOME=str(tmp_path / "cache"),
    )
    output, _ = demo.communicate(timeout=180)
    # Assert
    assert demo.returncode == 0, output
    assert "UCI wine quality" in output
    assert "test R^2: distributed" in output and "LinearRegression" in output
    assert "soft vote over 7 classes" in output and "BaggingClassifier" in output
    assert "/v1/chimera/sgd/fit-step" in output  # the latency summary
    for chart in ("loss.png", "latency.png", "latency_over_rounds.png"):
        assert (tmp_path / "out" / chart).stat().st_size > 10_000


def test_serve_worker_serves_a_seed_worker_script_until_interrupted(tmp_path):
    # Prepare
    (tmp_path / "chimera_workers").mkdir()
    (tmp_path / "chimera_workers" / "sgd1.py").write_text(
        "from chimera_nb import SGDWorker\n\nworker = SGDWorker('regressor')\n\n"
        "if __name__ == '__main__':\n    worker.serve()\n"
    )
    data = tmp_path / "chimera_train_data" / "sgd1"
    data.mkdir(parents=True)
    (data / "X_train.csv").write_text("a,b\n1,2\n3,4\n5,7\n")
    (data / "y_train.csv").write_text("y\n1\n2\n3\n")
    port = free_port()
    server = chimera_nb(
        "serve-worker", "chimera_workers/sgd1.py", "--port", str(port), cwd=tmp_path
    )
    try:
        # Execute
        health = None
        deadline = time.monotonic() + 30
        while health is None and time.monotonic() < deadline and server.poll() is None:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}{paths.HEALTH}").json()
            except httpx.HTTPError:
                time.sleep(0.1)
    finally:
        server.send_signal(signal.SIGINT)
        output, _ = server.communicate(timeout=30)
    # Assert
    assert health == {"status": "ok", "role": "SGDWorker", "name": "sgd1", "n_samples": 3}, output


def test_a_project_error_is_one_clear_line_and_exit_code_2(tmp_path):
    run = chimera_nb("run", str(tmp_path), cwd=tmp_path, CHIMERA_WORKERS_NODES_NAMES='["w1"]')
    output, _ = run.communicate(timeout=60)
    assert run.returncode == 2
    assert output.startswith("chimera-nb: error:") and "chimera_workers" in output
    assert "Traceback" not in output


def test_the_demos_latency_summary_counts_calls_as_whole_numbers(tmp_path):
    # Prepare: a time log of 3 calls to one worker
    from chimera_nb.demo import _latency_summary

    (tmp_path / "chimera_time.log").write_text(
        "".join(
            f"2026-12-04T10:00:0{k}.000 INFO worker=w1 endpoint=/v1/chimera/sgd/fit-step "
            f"latency_ms={k + 1}.0 status=200 round={k + 1} attempt=1\n"
            for k in range(3)
        )
    )

    # Execute
    summary = _latency_summary(tmp_path)

    # Assert
    assert summary["count"].tolist() == [3]
    assert str(summary["count"].dtype).startswith("int")
