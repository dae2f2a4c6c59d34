"""Stopping a seed project's master whose workers run in containers: SIGTERM in the middle
of a fit stops ``python master.py`` within 2 s and removes everything of its run (the same
with processes, and for SIGINT and SIGHUP: ``tests/test_stops.py``)."""

from __future__ import annotations

import signal

import psutil

from tests.test_kernel_restart import still_running
from tests.test_run import start_master, wait_for_health
from tests.test_stops import RunningFit, project, refused, stop, wait_for_rounds

from .conftest import leftovers


def test_sigterm_mid_fit_stops_a_docker_backed_master_within_2_s_and_removes_its_run(
    docker_client, wine_quality, tmp_path
):
    # Prepare
    root, ports, port = project(tmp_path, wine_quality)
    master = start_master(root, CHIMERA_BACKEND="docker")
    url = f"http://127.0.0.1:{port}"
    wait_for_health(url, master, timeout=120)
    children = psutil.Process(master.pid).children(recursive=True)  # the run's reaper
    fit = RunningFit(url)
    wait_for_rounds(root, master)
    # Execute
    elapsed, output = stop(master, signal.SIGTERM)
    # Assert
    assert elapsed < 2.0, f"took {elapsed:.2f} s:\n{output}"
    assert master.returncode == 0, output
    assert fit.answer().json()["detail"] == "the fit was stopped: master shutting down (SIGTERM)"
    assert "chimera-nb: stopped by SIGTERM; workers shut down" in output
    assert leftovers(docker_client, f"chimera-nb.cluster={root.name}") == {}
    assert not still_running([child.pid for child in children], timeout=2.0)
    assert all(refused(p) for p in [port, *ports])
