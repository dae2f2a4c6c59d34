"""Stopping a seed project's master: Ctrl-C (SIGINT), SIGTERM and SIGHUP stop ``python
master.py`` and ``chimera-nb run`` within 2 s, also in the middle of a fit, and leave
nothing behind: no process, no listening port (``tests/cluster/test_stops.py``: nor a
container, network or service).

Each test runs the master as a user does (a separate process), starts a long fit over REST,
and sends the signal to the master's process only, as ``kill`` does.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest

from chimera_nb.wire import paths
from tests.test_cli import chimera_nb
from tests.test_kernel_restart import still_running
from tests.test_run import free_port, start_master, wait_for_health, write_project

LONG_FIT = 'ParameterServerMaster("regressor", max_iter=1_000_000, tol=0.0)'
NAMES = ["sgd1", "sgd2", "sgd3"]


class RunningFit:
    """``POST <fit path>`` in a thread: the fit's REST client, whose answer is kept."""

    def __init__(self, url: str) -> None:
        self.response: httpx.Response | None = None
        self._thread = threading.Thread(target=self._post, args=(url,), daemon=True)
        self._thread.start()

    def _post(self, url: str) -> None:
        self.response = httpx.post(url + paths.PARAMETER_SERVER_FIT, timeout=60)

    def answer(self) -> httpx.Response:
        self._thread.join(timeout=10)
        assert self.response is not None, "the fit's client got no answer"
        return self.response


def wait_for_rounds(root: Path, process: subprocess.Popen, timeout: float = 60.0) -> None:
    """Wait until the master has sent fit steps to its workers: the fit is under way."""
    deadline = time.monotonic() + timeout
    time_log = root / "chimera_time.log"
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read()
        if time_log.exists() and time_log.read_text().count(paths.SGD_FIT_STEP) >= 6:
            return
        time.sleep(0.05)
    pytest.fail("the fit did not start in time")


def stop(process: subprocess.Popen, sig: int) -> tuple[float, str]:
    """Send ``sig`` to the master; return the seconds until it exited, and its output."""
    started = time.monotonic()
    process.send_signal(sig)
    try:
        output, _ = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail(f"the master did not stop within 30 s:\n{process.communicate()[0]}")
    return time.monotonic() - started, output


def refused(port: int) -> bool:
    """Whether nothing listens on 127.0.0.1:``port``."""
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def project(tmp_path: Path, wine_quality) -> tuple[Path, list[int], int]:
    """A seed project of three SGD workers whose master fits for a long time."""
    X, y = wine_quality
    ports, port = [free_port() for _ in NAMES], free_port()
    write_project(tmp_path, X.iloc[:300], y.iloc[:300], NAMES, ports, port, master=LONG_FIT)
    return tmp_path, ports, port


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_mid_fit_stops_python_master_py_within_2_s_and_leaves_nothing(
    wine_quality, tmp_path, sig
):
    # Prepare
    root, ports, port = project(tmp_path, wine_quality)
    master = start_master(root)
    url = f"http://127.0.0.1:{port}"
    wait_for_health(url, master)
    children = psutil.Process(master.pid).children(recursive=True)
    fit = RunningFit(url)
    wait_for_rounds(root, master)
    # Execute
    elapsed, output = stop(master, sig)
    # Assert
    name = signal.Signals(sig).name
    assert elapsed < 2.0, f"took {elapsed:.2f} s:\n{output}"
    assert master.returncode == 0, output
    assert fit.answer().status_code == 503
    assert fit.answer().json()["detail"] == f"the fit was stopped: master shutting down ({name})"
    assert f"chimera-nb: stopped by {name}; workers shut down" in output
    status_log = (root / "chimera_status.log").read_text()
    assert f"fit cancelled: master shutting down ({name})" in status_log
    assert f"stopped by {name}; workers shut down" in status_log
    assert len(children) == len(NAMES) + 1  # the workers and the zygote that forked them
    assert not still_running([child.pid for child in children], timeout=0.5)
    assert all(refused(p) for p in [port, *ports])


def test_sighup_mid_fit_stops_the_chimera_nb_run_command_within_2_s(wine_quality, tmp_path):
    # Prepare: the command's master stops early when the fit converges; a slow worker
    # keeps the fit going, with a call in flight when the signal comes
    root, ports, port = project(tmp_path, wine_quality)
    command = chimera_nb(
        "run",
        str(root),
        "--port",
        str(port),
        cwd=root,
        CHIMERA_WORKERS_NODES_NAMES=json.dumps(NAMES),
        CHIMERA_WORKERS_MAPPED_PORTS=json.dumps(ports),
    )
    url = f"http://127.0.0.1:{port}"
    wait_for_health(url, command)
    delay = httpx.post(f"http://127.0.0.1:{ports[0]}{paths.FAULTS_DELAY}", json={"seconds": 0.3})
    fit = RunningFit(url)
    wait_for_rounds(root, command)
    # Execute
    elapsed, output = stop(command, signal.SIGHUP)
    # Assert
    assert delay.status_code == 200
    assert elapsed < 2.0, f"took {elapsed:.2f} s:\n{output}"
    assert command.returncode == 0, output
    assert fit.answer().json()["detail"] == "the fit was stopped: master shutting down (SIGHUP)"
    assert "chimera-nb: stopped by SIGHUP; workers shut down" in output
    assert all(refused(p) for p in [port, *ports])


def test_sigterm_while_the_workers_start_stops_the_start_and_leaves_nothing(tmp_path):
    # Prepare: workers that never serve keep the start waiting for them
    (tmp_path / "chimera_workers").mkdir()
    for name in NAMES:
        (tmp_path / "chimera_workers" / f"{name}.py").write_text("import time\ntime.sleep(30)\n")
        (tmp_path / "chimera_train_data" / name).mkdir(parents=True)
        (tmp_path / "chimera_train_data" / name / "X_train.csv").write_text("a\n1\n2\n")
        (tmp_path / "chimera_train_data" / name / "y_train.csv").write_text("y\n1\n2\n")
    (tmp_path / "master.py").write_text(
        "import os\nimport chimera_nb\n"
        f"os.environ['CHIMERA_WORKERS_NODES_NAMES'] = {json.dumps(NAMES)!r}\n"
        f"chimera_nb.run(chimera_nb.ParameterServerMaster(), {free_port()})\n"
    )
    master = start_master(tmp_path)
    deadline = time.monotonic() + 60
    while len(psutil.Process(master.pid).children(recursive=True)) <= len(NAMES):
        assert time.monotonic() < deadline and master.poll() is None, master.stdout.read()
        time.sleep(0.05)
    children = psutil.Process(master.pid).children(recursive=True)
    # Execute
    elapsed, output = stop(master, signal.SIGTERM)
    # Assert
    assert elapsed < 2.0, f"took {elapsed:.2f} s:\n{output}"
    assert master.returncode == 0, output
    assert "chimera-nb: stopped by SIGTERM; workers shut down" in output
    assert not still_running([child.pid for child in children], timeout=0.5)
