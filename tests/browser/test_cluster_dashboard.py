"""The dashboard shows what issue 11 added to the cluster, in a real browser (JupyterLab and
headless Chromium): a worker the heartbeats suspect gets a chip and box of its own colour,
then is crossed out once they give up on it; a worker added from a cell gets its box and its
entry in the worker menu.

The notebook: a lab of three workers watched by heartbeats (``cluster.watch``) and its
dashboard; a cell that freezes ``worker2`` (``pause``); a cell that thaws it and adds a
worker; ``lab.close()``. Everything is read from the page (computed colours, data
attributes). Run: ``python -m pytest tests/browser/test_cluster_dashboard.py -q -s``.
"""

from __future__ import annotations

import time

import nbformat

from ._driver import open_notebook
from ._page import run_cell, wait_for

CELLS = [
    """
from sklearn.datasets import load_diabetes
from chimera_nb import Lab, ParameterServerMaster, SGDWorker

X, y = load_diabetes(return_X_y=True, as_frame=True)
lab = Lab.from_shards(SGDWorker("regressor"), X, y, n_workers=3, name="members",
                      master=ParameterServerMaster("regressor", max_iter=20)).start()
lab.cluster.watch(0.2, timeout=0.3, fail_after=8)  # suspect at once, failed after ~3 s
dashboard = lab.dashboard()
dashboard
""",
    'lab.cluster.pause("worker2")',
    'lab.cluster.unpause("worker2")\nlab.cluster.add_worker(SGDWorker("regressor"), X[:100], y[:100])',
    "lab.close()",
]

BOX = ".chimera-live .cl-worker[data-worker='{}']"
CHIP_COLOUR_JS = """
(name) => {
  const chip = document.querySelector(`.chimera-live .cl-worker[data-worker='${name}'] .cl-chip`);
  return chip ? {state: chip.dataset.state, colour: getComputedStyle(chip).backgroundColor} : null;
}
"""


def test_a_suspect_worker_has_its_own_colour_and_an_added_worker_its_box(
    jupyter_lab, chromium, tmp_path
):
    # Prepare: the notebook in a fresh server
    root = tmp_path / "root"
    root.mkdir()
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    notebook.cells = [nbformat.v4.new_code_cell(cell.strip()) for cell in CELLS]
    nbformat.write(notebook, root / "members.ipynb")
    server = jupyter_lab(root)
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    started = time.monotonic()
    try:
        open_notebook(page, server.notebook_url("members.ipynb"), server.kernel_ready)
        run_cell(page, 0, timeout=60)
        wait_for(page, "() => document.querySelectorAll('.chimera-live .cl-worker').length === 3")
        server.remember_descendants()
        up = page.evaluate(CHIP_COLOUR_JS, "worker2")

        # Execute 1: freeze worker2: suspect, then failed
        run_cell(page, 1)
        suspect_after = wait_for(
            page,
            "(n) => document.querySelector(n)?.dataset.state === 'suspect'",
            BOX.format("worker2"),
        )
        suspect = page.evaluate(CHIP_COLOUR_JS, "worker2")
        status = page.locator(".chimera-live .chimera-status").first.inner_text()
        wait_for(
            page,
            "(n) => document.querySelector(n)?.dataset.crossed === 'true'",
            BOX.format("worker2"),
            timeout=15,
        )
        why = page.get_attribute(BOX.format("worker2"), "title")

        # Execute 2: thaw it, add a worker from a cell
        run_cell(page, 2, timeout=60)
        added_after = wait_for(page, "(n) => !!document.querySelector(n)", BOX.format("worker4"))
        wait_for(
            page,
            "() => [...document.querySelectorAll('.chimera-worker-choice option')]"
            ".some((o) => o.textContent === 'worker4')",
        )
        added = page.evaluate(CHIP_COLOUR_JS, "worker4")
        server.remember_descendants()
        run_cell(page, 3, timeout=60)
    except BaseException:
        page.screenshot(path=tmp_path / "failure.png")
        print(f"failure screenshot: {tmp_path / 'failure.png'}\nserver log:\n{server.log_tail()}")
        raise
    finally:
        context.close()
    print(
        f"{time.monotonic() - started:.1f} s; suspect shown after {suspect_after:.2f} s, "
        f"worker4's box after {added_after:.2f} s"
    )

    # Assert
    assert up == {"state": "up", "colour": "rgb(227, 242, 227)"}
    assert suspect == {"state": "suspect", "colour": "rgb(217, 194, 236)"}
    assert "heartbeats every 0.2 s" in status and "suspect" in status
    assert why.startswith("worker2: missed 8 heartbeats (failed at ")
    assert added == {"state": "up", "colour": "rgb(227, 242, 227)"}
