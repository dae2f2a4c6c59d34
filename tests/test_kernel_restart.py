"""Workers die with their kernel, and re-running a notebook's cells in one kernel is safe.

A lecturer restarts kernels all the time (Kernel -> Restart, Shut Down, or a kernel that
crashes): the worker processes and the zygote that forked them must not outlive it. These
tests start a real IPython kernel with jupyter_client, start a lab in it, and watch the pids
from outside.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import httpx
import nbformat
import psutil
import pytest
from jupyter_client import KernelManager
from nbclient import NotebookClient

from chimera_nb.wire import paths
from tests.conftest import REPO_ROOT, SHARED

START_LAB = """\
import json, psutil
from chimera_nb import Lab, ParameterServerMaster, SGDWorker
from chimera_nb.datasets import load_sklearn_dataset

X, y = load_sklearn_dataset("diabetes", return_X_y=True)
lab = Lab.from_shards(
    SGDWorker("regressor"), X, y,
    master=ParameterServerMaster("regressor", max_iter=5), n_workers=3, name="restart",
).start()
lab.fit()
print(json.dumps({
    "workers": sorted(lab.cluster.pids.values()),
    "children": sorted(p.pid for p in psutil.Process().children(recursive=True)),
}))
"""


@pytest.fixture
def kernel_env(monkeypatch, tmp_path):
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT), prepend=":")
    monkeypatch.setenv(
        "CHIMERA_WINE_QUALITY_URL", (SHARED / "datasets" / "wine-quality").as_uri() + "/"
    )
    monkeypatch.setenv("CHIMERA_DATA_HOME", str(tmp_path / "data-home"))
    return tmp_path


@pytest.fixture
def kernel(kernel_env):
    """A running python3 kernel and its blocking client; shut down at the end."""
    manager = KernelManager(kernel_name="python3")
    manager.start_kernel(cwd=str(kernel_env))
    client = manager.client()
    client.start_channels()
    client.wait_for_ready(timeout=60)
    yield manager, client
    client.stop_channels()
    if manager.has_kernel:
        manager.shutdown_kernel(now=True)


def run_code(client, code: str, timeout: float = 90) -> str:
    """Execute ``code`` in the kernel; return its stdout, or fail with its traceback."""
    stdout, errors = [], []

    def on_output(message):
        content = message["content"]
        if message["msg_type"] == "stream" and content["name"] == "stdout":
            stdout.append(content["text"])
        elif message["msg_type"] == "error":
            errors.append("\n".join(content["traceback"]))

    reply = client.execute_interactive(code, output_hook=on_output, timeout=timeout)
    assert reply["content"]["status"] == "ok", "\n".join(errors)
    return "".join(stdout)


def start_lab(client) -> dict[str, list[int]]:
    pids = json.loads(run_code(client, START_LAB).strip().splitlines()[-1])
    assert len(pids["workers"]) == 3
    assert set(pids["workers"]) < set(pids["children"])  # the zygote is a child as well
    return pids


def still_running(pids: list[int], timeout: float = 10.0) -> list[int]:
    """The pids still running (zombies count as gone) after up to ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        alive = []
        for pid in pids:
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    alive.append(pid)
            except psutil.NoSuchProcess:
                pass
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


def test_restarting_the_kernel_stops_its_workers_and_zygote(kernel):
    # Prepare
    manager, client = kernel
    pids = start_lab(client)
    # Execute
    manager.restart_kernel(now=True)
    # Assert
    assert not still_running(pids["children"], timeout=5.0)
    client.wait_for_ready(timeout=60)
    assert len(start_lab(client)["workers"]) == 3  # the new kernel starts labs as before


@pytest.mark.parametrize("now", [False, True], ids=["graceful", "now"])
def test_shutting_down_the_kernel_stops_its_workers_and_zygote(kernel, now):
    # Prepare
    manager, client = kernel
    pids = start_lab(client)
    # Execute
    manager.shutdown_kernel(now=now)
    # Assert
    assert not still_running(pids["children"], timeout=5.0)


def test_a_kernel_killed_alone_takes_its_workers_with_it(kernel):
    """SIGKILL to the kernel process only (not its process group), as the OOM killer does:
    no atexit runs, so the zygote and the workers must notice by themselves."""
    # Prepare
    manager, client = kernel
    pids = start_lab(client)
    # Execute
    os.kill(manager.provisioner.process.pid, signal.SIGKILL)
    # Assert
    assert not still_running(pids["children"], timeout=5.0)


LONG_LAB = """\
import json, psutil
from chimera_nb import Lab, ParameterServerMaster, SGDWorker
from chimera_nb.datasets import load_sklearn_dataset

X, y = load_sklearn_dataset("diabetes", return_X_y=True)
lab = Lab.from_shards(
    SGDWorker("regressor"), X, y, n_workers=3, name="long",
    master=ParameterServerMaster("regressor", max_iter=1_000_000, tol=0.0),
).start()
print(json.dumps({
    "url": lab.master_url,
    "children": sorted(p.pid for p in psutil.Process().children(recursive=True)),
}))
"""


def test_shutting_down_a_kernel_mid_fit_cancels_the_fit_and_exits_within_seconds(kernel):
    """The lab's close (at exit) cancels the fit first: a fit asked for over REST would
    otherwise hold the master's server, and the kernel's exit, until it ends."""
    # Prepare
    manager, client = kernel
    lab = json.loads(run_code(client, LONG_LAB).strip().splitlines()[-1])
    answers = []
    fit = threading.Thread(
        target=lambda: answers.append(
            httpx.post(lab["url"] + paths.PARAMETER_SERVER_FIT, timeout=60)
        )
    )
    fit.start()
    deadline = time.monotonic() + 30
    while int(run_code(client, "print(len(getattr(lab.master, 'history_', [])))")) < 3:
        assert time.monotonic() < deadline, "the fit did not start"
        time.sleep(0.05)
    # Execute
    started = time.monotonic()
    manager.shutdown_kernel(now=False)
    elapsed = time.monotonic() - started
    fit.join(timeout=10)
    # Assert
    assert elapsed < 4.0  # jupyter_client sends SIGTERM after 2.5 s: then no 503 below
    assert answers[0].status_code == 503
    assert answers[0].json()["detail"] == "the fit was stopped: lab 'long' closed"
    assert not still_running(lab["children"], timeout=1.0)


WORKER_PIDS = """\
import json
print(json.dumps(sorted(lab.cluster.pids.values())))
"""

DASHBOARD_THREADS = """\
import json, threading, time
deadline = time.monotonic() + 5
while time.monotonic() < deadline:
    names = [t.name for t in threading.enumerate() if t.name.startswith("chimera-dashboard")]
    if not names:
        break
    time.sleep(0.1)
print(json.dumps(names))
"""


@pytest.mark.timeout(240)
def test_running_every_cell_of_the_quickstart_twice_in_one_kernel_works(kernel_env):
    # Prepare: as a student who runs every cell, then all again before closing the lab
    notebook = nbformat.read(REPO_ROOT / "notebooks" / "01_quickstart.ipynb", as_version=4)
    client = NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(kernel_env)}},
    )
    *cells, close_cell = notebook.cells

    def run(cell):
        client.execute_cell(cell, notebook.cells.index(cell) if cell in notebook.cells else 0)
        return "".join(
            o.get("text", "") for o in cell.get("outputs", []) if o.output_type == "stream"
        )

    def ask(code):
        return json.loads(run(nbformat.v4.new_code_cell(code)).strip().splitlines()[-1])

    with client.setup_kernel():
        # Execute
        for cell in cells:
            run(cell)
        first_workers = ask(WORKER_PIDS)
        for cell in cells:
            run(cell)
        second_workers = ask(WORKER_PIDS)
        second_pass = "".join(o.get("text", "") for cell in cells for o in cell.get("outputs", []))
        run(close_cell)
        run(close_cell)  # closing twice is harmless
        dashboard_threads = ask(DASHBOARD_THREADS)
        # Assert
        assert not still_running(first_workers), "the first lab outlived the re-run of its cell"
        assert not still_running(second_workers), "lab.close() left workers running"
    assert "R² distributed (4 workers):" in second_pass
    assert set(first_workers).isdisjoint(second_workers)
    assert dashboard_threads == [], "a dashboard kept redrawing after its lab was closed"
