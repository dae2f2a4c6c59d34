"""The dashboard as a lecturer projects it: a real browser at 1280x800 and 150% zoom (a CSS
viewport of 853x533 pixels at 1.5 device pixels each), in JupyterLab and in Notebook 7,
driven cell by cell while the page records what it shows.

Each test starts its own server, opens a notebook of four cells (a lab of four workers, one of
them a 25 ms straggler, and its dashboard; a 151-round fit; a slow-motion fit of four rounds;
``lab.close()``) and checks, by reading the page:

* the cluster view and the timeline render; no text is under 14 px (computed style); the
  dashboard fits the viewport's width;
* during the fit, the loss chart's last round is within 1 s (or 5 rounds) of the round
  counter, and it shows the final round after the fit;
* the straggler's timeline lane is the longest, in the data it carries and in drawn pixels;
* slow motion shows every lettered step of a round, in order, each long enough to see;
* Kill crosses out the worker within 1 s; after ``lab.close()`` every control is disabled
  and the status line says so; widget messages stay under 50 a second.

Screenshots (the viewport as projected, and the whole dashboard) go to ``$CHIMERA_ARTIFACTS``
when it is set. Run: ``python -m pytest tests/browser/test_lecture_dashboard.py -q -s``.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import nbformat
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
)
from ._page import LANES_JS, TEXT_SIZES_JS, WIDTH_JS, run_cell, wait_for

ZOOMED = {"viewport": {"width": 853, "height": 533}, "device_scale_factor": 1.5}
ROUNDS = 151  # max_iter=150 updates: 151 rounds, the last one only evaluates
FIT = "parameter-server fit"
ROUND_STEPS = list("DEFHIJK")

CELLS = [
    """
from sklearn.datasets import load_diabetes
from chimera_nb import Lab, ParameterServerMaster, SGDWorker

X, y = load_diabetes(return_X_y=True, as_frame=True)
lab = Lab.from_shards(SGDWorker("regressor"), X, y, n_workers=4, name="lecture",
                      master=ParameterServerMaster("regressor", max_iter=150, tol=0.0)).start()
lab.cluster.slow("worker3", 0.025)  # a straggler: every round waits for it
dashboard = lab.dashboard()
dashboard
""",
    "lab.fit()\nprint(len(lab.master.history_), 'rounds')",
    "lab.master.max_iter = 3\nlab.fit()\nprint('slow motion done')",
    "lab.close()",
]


def _artifact(path: Path, name: str) -> None:
    print(f"screenshot: {path}")
    artifacts = os.environ.get("CHIMERA_ARTIFACTS")
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, Path(artifacts) / name)


def _shot(page, tmp_path: Path, selector: str, name: str) -> None:
    """The viewport, as projected, with ``selector`` scrolled into it."""
    page.locator(selector).first.evaluate("(el) => el.scrollIntoView({block: 'start'})")
    time.sleep(0.3)  # let the notebook's scrolling settle
    path = tmp_path / name
    page.screenshot(path=path)
    _artifact(path, name)


def _lags(progress: list[dict]) -> list[tuple[int, int, int]]:
    """(counter, rounds behind, ms until the loss chart showed that round) per sample."""
    lags = []
    for i, sample in enumerate(progress):
        if not sample["fitting"] or sample["counter"] <= 0:
            continue
        caught_up = next((p["t"] for p in progress[i:] if p["loss"] >= sample["counter"]), None)
        waited = (caught_up if caught_up is not None else 10**9) - sample["t"]
        lags.append((sample["counter"], sample["counter"] - sample["loss"], waited))
    return lags


def _steps_in_order(steps: list[str], times: list[int]) -> list[tuple[str, int]] | None:
    """The first run D, E, F, H, I, J, K of the fit flowchart, with how long each stayed."""
    shown = [(s.partition(":")[2], t) for s, t in zip(steps, times) if s.startswith(FIT + ":")]
    for start in range(len(shown) - len(ROUND_STEPS) + 1):
        run = shown[start : start + len(ROUND_STEPS) + 1]
        if [s for s, _ in run[: len(ROUND_STEPS)]] == ROUND_STEPS:
            return [(s, run[k + 1][1] - t) for k, (s, t) in enumerate(run[: len(ROUND_STEPS) - 1])]
    return None


@pytest.mark.parametrize("frontend", ["jupyterlab", "notebook7"])
def test_the_dashboard_for_the_lecture_hall(frontend, jupyter_lab, chromium, tmp_path):
    # Prepare: a notebook in a fresh server, a page zoomed to 150% on 1280x800
    root = tmp_path / "root"
    root.mkdir()
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    notebook.cells = [nbformat.v4.new_code_cell(cell.strip()) for cell in CELLS]
    nbformat.write(notebook, root / "lecture.ipynb")
    server = jupyter_lab(root)
    context = chromium.new_context(**ZOOMED)
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"[:300]))
    page.on("pageerror", lambda e: console.append(f"pageerror: {e} {e.stack[:300]}"))
    url = (
        server.notebook_url("lecture.ipynb")
        if frontend == "jupyterlab"
        else server.notebook7_url("lecture.ipynb")
    )
    started = time.monotonic()
    try:
        open_notebook(page, url, server.kernel_ready)
        left_sidebar = page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current")
        if left_sidebar.count():  # JupyterLab: a lecturer hides the file browser (Ctrl+B)
            left_sidebar.first.click()
        page.evaluate(RECORDER_JS, [STEP_BODY, ACTIVE_STEP, LOSS, STATUS])

        # Execute 1: the lab and its dashboard, then a fit with a straggler
        run_cell(page, 0, timeout=60)
        wait_for(page, "() => document.querySelectorAll('.chimera-live .cl-worker').length === 4")
        server.remember_descendants()
        fit_seconds = run_cell(page, 1, timeout=60)
        wait_for(
            page,
            "(n) => +document.querySelector('.chimera-live svg.chimera-loss').dataset.lastRound === n",
            ROUNDS,
        )
        time.sleep(0.6)  # the timeline and the boxes come twice a second
        record = read_state(page)
        syncs = int(page.evaluate("() => document.querySelector('.chimera-live').dataset.syncs"))
        counter = int(page.get_attribute(STATUS, "data-round"))
        lanes = page.evaluate(LANES_JS)
        width = page.evaluate(WIDTH_JS, DASHBOARD)
        sizes = page.evaluate(TEXT_SIZES_JS, DASHBOARD)
        _shot(page, tmp_path, DASHBOARD, f"{frontend}-dashboard-after-fit.png")
        _shot(page, tmp_path, ".chimera-live .chimera-timeline", f"{frontend}-timeline.png")
        page.set_viewport_size({"width": 853, "height": 2600})  # the whole dashboard at once
        _shot(page, tmp_path, DASHBOARD, f"{frontend}-dashboard-whole.png")
        page.set_viewport_size(ZOOMED["viewport"])

        # Execute 2: slow motion from the page's button, for a fit of four rounds
        page.locator(".chimera-slow-motion").first.click()
        wait_for(page, f"() => document.querySelector('{STATUS}').dataset.mode === 'slow motion'")
        run_cell(page, 2, wait=False)
        wait_for(page, "() => document.querySelector('.chimera-live').dataset.replayRound >= 2")
        time.sleep(0.25)  # into the replay: the broadcast and the replies light up
        _shot(page, tmp_path, ".chimera-live .cl-top", f"{frontend}-slow-motion.png")
        wait_for(page, "() => document.querySelector('.chimera-live').dataset.replayRound == 4")
        time.sleep(1.2)  # the last round's replay
        slow = read_state(page)
        page.locator(".chimera-full-speed").first.click()

        # Execute 3: kill a worker from the page, then close the lab from a cell
        page.select_option(".chimera-worker-choice select", "worker2")
        page.locator(".chimera-kill").first.click()
        crossed = wait_for(
            page,
            "() => document.querySelector('.cl-worker[data-worker=\"worker2\"]')?.dataset.crossed === 'true'",
            timeout=5,
        )
        _shot(page, tmp_path, ".chimera-live .cl-cluster", f"{frontend}-dashboard-killed.png")
        server.remember_descendants()
        run_cell(page, 3, timeout=60)
        disabled = wait_for(
            page,
            "(sel) => document.querySelector(sel).dataset.closed === 'true' && "
            "[...document.querySelectorAll('.chimera-dashboard button, .chimera-dashboard select')]"
            ".every((b) => b.disabled)",
            STATUS,
            timeout=5,
        )
        _shot(page, tmp_path, DASHBOARD, f"{frontend}-dashboard-closed.png")
    except BaseException:
        page.screenshot(path=tmp_path / "failure.png")
        print(f"failure screenshot: {tmp_path / 'failure.png'}")
        print("browser console:\n" + "\n".join(console[-30:]))
        print("server log:\n" + server.log_tail())
        raise
    finally:
        context.close()
    print(
        f"{frontend}: {time.monotonic() - started:.1f} s in all, fit {fit_seconds:.1f} s, "
        f"{syncs} live-view messages, kill shown after {crossed:.2f} s, "
        f"controls off {disabled:.2f} s after close; lanes {lanes}"
    )

    # Assert: the parts render, text is readable and the dashboard fits the projector
    assert page_errors(console) == []
    assert len(lanes) == 4 and all(lane["px"] > 0 for lane in lanes.values()), lanes
    small = [s for s in sizes if s["size"] < 14]
    assert sizes and small == [], small[:10]
    assert width["left"] >= 0 and width["right"] <= width["viewport"], width
    assert width["overflowing"] == [], width
    # the loss chart keeps up with the round counter, and ends on the last round
    lags = _lags(record.progress)
    assert len(lags) >= 3, record.progress
    late = [(c, rounds, ms) for c, rounds, ms in lags if rounds > 5 and ms > 1000]
    assert late == [], late
    assert counter == ROUNDS and record.progress[-1]["loss"] == ROUNDS
    assert syncs / fit_seconds < 50
    # the straggler's lane is the longest, in data and in pixels
    others = [lane for name, lane in lanes.items() if name != "worker3"]
    assert all(lanes["worker3"]["busy"] > 2.5 * lane["busy"] for lane in others), lanes
    assert all(lanes["worker3"]["px"] > 2.5 * lane["px"] for lane in others), lanes
    # slow motion: every step of a round, in order, each shown long enough to see
    run = _steps_in_order(slow.steps, slow.step_times)
    assert run is not None, slow.summary()
    assert all(shown >= 60 for _, shown in run), run
    # a kill shows within a second; a closed lab leaves no control enabled
    assert crossed < 1.0
    assert disabled < 2.0


def page_errors(console: list[str]) -> list[str]:
    """Errors of the dashboard's code: its own reports, and uncaught errors not raised in
    the frontend's bundles (Notebook 7.6 raises one of its own, reading a settings schema)."""
    return [
        line
        for line in console
        if line.startswith("error: chimera")
        or (line.startswith("pageerror") and "/static/notebook/" not in line)
    ]
