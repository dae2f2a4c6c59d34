"""The dashboard in a real browser: JupyterLab + headless Debian Chromium + Playwright.

Each test starts its own JupyterLab (tmp config, token, free port), opens a notebook in a
fresh workspace, runs Run menu -> Run All Cells and watches the page while the cells run:

1. the dashboard renders (``.chimera-dashboard`` visible);
2. the highlighted flowchart step changes during the fit (>= 3 distinct steps seen);
3. the loss chart updates (the last round it shows changes at least twice);
4. at the end the kernel is idle and no cell shows a traceback;
5. a screenshot of the dashboard is saved (``dashboard.png`` in tmp_path, path printed, and
   copied to ``$CHIMERA_ARTIFACTS`` if set).

JupyterLab is shut down with its kernels afterwards, also on failure, and no process it
started may be left (checked with psutil by the ``jupyter_lab`` fixture).

Run: ``python -m pytest tests/browser -q -s``; install with ``.ci/install-browser``.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from ._driver import (
    ACTIVE_STEP,
    DASHBOARD,
    LOSS,
    RECORDER_JS,
    STATUS,
    STEP_BODY,
    open_notebook,
    read_state,
    run_all_cells,
    watch_run,
)
from ._lab import REPO_ROOT
from .standin import write_standin_notebook

QUICKSTART = REPO_ROOT / "notebooks" / "01_quickstart.ipynb"
# Bound on Run All Cells for the quickstart (seconds); CI machines may be slower than this one.
QUICKSTART_TIMEOUT = float(os.environ.get("CHIMERA_BROWSER_TIMEOUT", "100"))


def _save_artifact(path: Path, name: str) -> None:
    print(f"\nscreenshot: {path}")
    artifacts = os.environ.get("CHIMERA_ARTIFACTS")
    if artifacts and path.exists():
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        target = Path(artifacts) / name
        shutil.copyfile(path, target)
        print(f"copied to: {target}")


def run_dashboard_notebook(
    start_lab, page, root: Path, notebook: str, tmp_path: Path, timeout: float, artifact: str
):
    """Open ``root/notebook``, Run All Cells, watch, screenshot; return the run record."""
    server = start_lab(root)
    t0 = time.monotonic()
    try:
        open_notebook(page, server.notebook_url(notebook), server.kernel_ready)
        t_open = time.monotonic() - t0
        page.evaluate(RECORDER_JS, [STEP_BODY, ACTIVE_STEP, LOSS, STATUS])
        before = read_state(page).prompts
        run_all_cells(page)

        polls = {"n": 0, "live": None}

        def on_poll(record):
            polls["n"] += 1
            if polls["n"] % 5 == 0:
                server.remember_descendants()  # kernels and the kit's workers, for the end
            if (
                polls["live"] is None
                and record.running
                and record.loss_changes >= 1
                and len(set(record.steps)) >= 2
            ):
                live = tmp_path / "dashboard-live.png"
                try:
                    page.locator(DASHBOARD).first.screenshot(path=live, timeout=3000)
                    polls["live"] = live
                except Exception:  # a live shot is a bonus: never fail the run for it
                    polls["live"] = False

        record = watch_run(page, before, timeout, on_poll=on_poll)
        t_run = record.seconds
        server.remember_descendants()

        shot = tmp_path / "dashboard.png"
        dashboard = page.locator(DASHBOARD).first
        if dashboard.count():
            dashboard.scroll_into_view_if_needed()
            dashboard.screenshot(path=shot)
        else:
            page.screenshot(path=shot)
        page.screenshot(path=tmp_path / "page.png")
        _save_artifact(shot, artifact)
        if polls["live"]:
            _save_artifact(polls["live"], artifact.replace("dashboard", "dashboard-live"))
        print(f"timings: lab+page+kernel {t_open:.1f} s, run all {t_run:.1f} s")
        print(record.summary())
        return record, dashboard
    except BaseException:
        try:
            page.screenshot(path=tmp_path / "failure.png")
            print(f"\nfailure screenshot: {tmp_path / 'failure.png'}")
        except Exception:
            pass
        print("browser console (last 30):\n" + "\n".join(page.console_messages_seen[-30:]))
        print("jupyter lab log (tail):\n" + server.log_tail())
        raise


def check_dashboard(
    record, dashboard, page, timeout: float, machine: str = "parameter-server fit"
) -> None:
    context = f"\n{record.summary()}"
    # 1. rendered
    assert dashboard.count() and dashboard.is_visible(), (
        f"no visible {DASHBOARD} in the page (widget not rendered?){context}\n"
        + "\n".join(page.console_messages_seen[-20:])
    )
    # 4. finished, idle, no tracebacks
    assert not record.running, f"Run All Cells did not finish within {timeout} s{context}"
    assert record.status == "idle", f"kernel not idle at the end{context}"
    assert not record.errors, "a cell shows a traceback:\n" + "\n---\n".join(
        e[-3000:] for e in record.errors
    )
    assert not record.unexecuted, f"cells {record.unexecuted} were not executed{context}"
    # 2. the highlighted step moved during the fit. A round takes milliseconds and the
    # master waits for workers (step E) most of that time, so a redraw catches few letters
    # as *active*; the dashboard also tints the steps passed since the last redraw.
    active = set(record.steps_by_machine.get(machine, []))
    lit = active | {v.partition(":")[2] for v in record.visited if v.startswith(machine + ":")}
    assert len(active) >= 2 and len(lit) >= 3, (
        f"the {machine} flowchart showed active steps {sorted(active)} and lit {sorted(lit)} "
        f"(need >= 2 active and >= 3 lit){context}"
    )
    # 3. the loss chart was redrawn
    assert record.loss_changes >= 2, (
        f"the loss chart ({LOSS}) changed {record.loss_changes} times (need >= 2){context}"
    )


def test_standin_dashboard_updates_live(jupyter_lab, browser_page, tmp_path):
    """The machinery itself, on a stand-in with the dashboard's classes (no chimera_nb)."""
    root = tmp_path / "root"
    root.mkdir()
    write_standin_notebook(root)
    record, dashboard = run_dashboard_notebook(
        jupyter_lab,
        browser_page,
        root,
        "standin_dashboard.ipynb",
        tmp_path,
        timeout=60,
        artifact="standin-dashboard.png",
    )
    check_dashboard(record, dashboard, browser_page, 60, machine="standin")
    assert browser_page.locator(".chimera-latency").count() == 1
    assert record.steps_by_machine == {"standin": list("ADEHIJKL")}, record.steps


def test_quickstart_dashboard(jupyter_lab, browser_page, tmp_path):
    """notebooks/01_quickstart.ipynb: the real dashboard follows a real fit in the browser."""
    if not QUICKSTART.exists():
        message = f"{QUICKSTART.relative_to(REPO_ROOT)} does not exist yet"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    # Serve a copy: the page never writes into the repository (autosave is off as well).
    root = tmp_path / "root"
    shutil.copytree(
        QUICKSTART.parent,
        root / "notebooks",
        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"),
    )
    if (REPO_ROOT / "data").is_dir():
        (root / "data").symlink_to(REPO_ROOT / "data")
    record, dashboard = run_dashboard_notebook(
        jupyter_lab,
        browser_page,
        root,
        "notebooks/01_quickstart.ipynb",
        tmp_path,
        timeout=QUICKSTART_TIMEOUT,
        artifact="dashboard.png",
    )
    check_dashboard(record, dashboard, browser_page, QUICKSTART_TIMEOUT)
    assert browser_page.locator("svg.chimera-latency .cl-box").count() == 4, "no latency boxes"
    assert browser_page.locator(".chimera-live .cl-worker").count() == 4, "no cluster view"
    assert browser_page.locator(".chimera-live rect.cl-call").count() > 0, "no timeline"


NEW_MASTER_CELLS = [
    """
import numpy as np
from chimera_nb import Lab, SGDWorker
from tests.masters.median_master import MedianMaster

rng = np.random.default_rng(0)
X = rng.normal(size=(600, 3))
y = X @ np.array([1.5, -2.0, 0.5]) + rng.normal(scale=0.1, size=600)
lab = Lab.from_shards(SGDWorker("regressor"), X, y, n_workers=3, name="median-browser",
                      master=MedianMaster(learning_rate=0.1, max_iter=600)).start()
lab.cluster.slow("worker2", 0.005)  # a few seconds of fit, so the page can watch it
dashboard = lab.dashboard()
dashboard
""",
    "lab.fit()\nprint(len(lab.master.history_), 'rounds')",
    "dashboard.refresh()\nassert dashboard.live.step['active'] == 'I'\nlab.close()",
]


def test_a_master_written_in_the_tests_gets_a_live_dashboard(jupyter_lab, browser_page, tmp_path):
    """tests/masters/median_master.py, a master the kit does not know, in the real page."""
    import nbformat

    root = tmp_path / "root"
    root.mkdir()
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    notebook.cells = [nbformat.v4.new_code_cell(cell.strip()) for cell in NEW_MASTER_CELLS]
    nbformat.write(notebook, root / "median.ipynb")
    record, dashboard = run_dashboard_notebook(
        jupyter_lab,
        browser_page,
        root,
        "median.ipynb",
        tmp_path,
        timeout=QUICKSTART_TIMEOUT,
        artifact="dashboard-median.png",
    )
    check_dashboard(record, dashboard, browser_page, QUICKSTART_TIMEOUT, machine="median fit")
