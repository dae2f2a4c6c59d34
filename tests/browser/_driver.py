"""Drive one notebook in JupyterLab (or Notebook 7) through Playwright and watch the
dashboard while it runs.

The page records what the dashboard shows by itself: a recorder samples the active flowchart
step, the round counter and the loss chart's last round every 50 ms and after every DOM
mutation, so a step that lasts less than a poll is still seen. Python only reads that record
(and the kernel status) in a bounded loop.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

# DOM contract with chimera_nb/notebook/dashboard/browser (the live view's ES module).
DASHBOARD = ".chimera-dashboard"
STEP_BODY = ".chimera-flowchart .chimera-flowchart-body"
ACTIVE_STEP = ".chimera-step-active"
LOSS = ".chimera-loss"  # carries data-last-round: the last round the loss chart shows
STATUS = ".chimera-live .chimera-status"  # carries data-round: the round counter
INDICATOR = ".jp-Notebook-ExecutionIndicator"
STDERR = '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'

RECORDER_JS = """
([stepBody, activeStep, lossSel, statusSel]) => {
  if (window.__chimera) return;
  const rec = {steps: [], losses: [], progress: [], visited: {}, samples: 0, t0: performance.now()};
  const now = () => Math.round(performance.now() - rec.t0);
  const push = (list, value) => {
    if (value == null || value === '') return;
    if (list.length && list[list.length - 1].v === value) return;
    list.push({v: value, t: now()});
  };
  const sample = () => {
    rec.samples += 1;
    const body = document.querySelector(stepBody);
    let machine = (body && body.getAttribute('data-machine')) || '?';
    let step = body ? body.getAttribute('data-active-step') : null;
    if (!step) {
      const active = document.querySelector(activeStep);
      step = active ? (active.getAttribute('data-step') || active.textContent.trim()) : null;
      const owner = active && active.closest('[data-machine]');
      if (owner) machine = owner.getAttribute('data-machine');
    }
    if (step) push(rec.steps, machine + ':' + step);
    if (body) for (const v of body.querySelectorAll('.chimera-step-visited'))
      rec.visited[machine + ':' + v.getAttribute('data-step')] = true;
    const loss = document.querySelector(lossSel + '[data-last-round]');
    const lossRound = loss ? loss.getAttribute('data-last-round') : null;
    push(rec.losses, lossRound);
    const status = document.querySelector(statusSel);
    const counter = status ? status.getAttribute('data-round') : null;
    const last = rec.progress[rec.progress.length - 1];
    if (counter !== null && (!last || last.counter !== +counter || last.loss !== +lossRound))
      rec.progress.push({t: now(), counter: +counter, loss: +lossRound,
                         fitting: status.getAttribute('data-fitting') === 'true'});
  };
  let queued = false;
  new MutationObserver(() => {
    if (queued) return;
    queued = true;
    queueMicrotask(() => { queued = false; sample(); });
  }).observe(document.body, {subtree: true, childList: true, attributes: true,
             attributeFilter: ['data-last-round', 'data-round', 'data-active-step', 'class']});
  setInterval(sample, 50);
  window.__chimera = rec;
}
"""

STATE_JS = """
([indicator, stderr]) => {
  const prompts = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputArea-prompt')]
    .map((p) => p.textContent.trim());
  const ind = document.querySelector(indicator);
  const errors = [...document.querySelectorAll(stderr)]
    .map((e) => e.textContent).filter((t) => t.includes('Traceback'));
  const rec = window.__chimera || {steps: [], losses: []};
  return {
    status: ind ? ind.getAttribute('data-status') : null,
    prompts,
    errors,
    steps: rec.steps.map((s) => s.v),
    stepTimes: rec.steps.map((s) => s.t),
    lossChanges: Math.max(0, rec.losses.length - 1),
    progress: rec.progress || [],
    visited: Object.keys(rec.visited || {}),
    samples: rec.samples || 0,
  };
}
"""


@dataclass
class RunRecord:
    """What the page showed while the notebook ran."""

    status: str | None = None
    prompts: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)  # "machine:step", consecutive repeats dropped
    visited: list[str] = field(default_factory=list)  # "machine:step" ever tinted as visited
    step_times: list[int] = field(default_factory=list)
    loss_changes: int = 0  # how often the loss chart's last round changed
    progress: list[dict] = field(default_factory=list)  # {t, counter, loss, fitting} changes
    samples: int = 0
    seconds: float = 0.0

    @property
    def steps_by_machine(self) -> dict[str, list[str]]:
        """The distinct active steps seen, per flowchart (``data-machine``)."""
        by_machine: dict[str, set[str]] = {}
        for entry in self.steps:
            machine, _, step = entry.rpartition(":")
            by_machine.setdefault(machine, set()).add(step)
        return {machine: sorted(steps) for machine, steps in by_machine.items()}

    @property
    def most_steps(self) -> tuple[str | None, list[str]]:
        """The flowchart whose highlight moved the most, and its distinct steps."""
        if not self.steps:
            return None, []
        return max(self.steps_by_machine.items(), key=lambda item: len(item[1]))

    @property
    def running(self) -> bool:
        return any("*" in p for p in self.prompts)

    @property
    def unexecuted(self) -> list[int]:
        return [i for i, p in enumerate(self.prompts) if not any(c.isdigit() for c in p)]

    def summary(self) -> str:
        return (
            f"kernel={self.status} prompts={self.prompts} active steps seen (in order, "
            f"first 60)={self.steps[:60]} distinct per flowchart={self.steps_by_machine} "
            f"visited={sorted(self.visited)} "
            f"loss chart changes={self.loss_changes} samples={self.samples} "
            f"errors={len(self.errors)} after {self.seconds:.1f} s"
        )


def read_state(page) -> RunRecord:
    raw = page.evaluate(STATE_JS, [INDICATOR, STDERR])
    return RunRecord(
        status=raw["status"],
        prompts=raw["prompts"],
        errors=raw["errors"],
        steps=raw["steps"],
        visited=raw["visited"],
        step_times=raw["stepTimes"],
        loss_changes=raw["lossChanges"],
        progress=raw["progress"],
        samples=raw["samples"],
    )


def open_notebook(page, url: str, kernel_ready, timeout: float = 60.0) -> None:
    """Load the notebook and wait until its kernel is connected and idle.

    The toolbar indicator says "idle" before any kernel exists, and a Run All Cells clicked
    then is silently lost; so the server must also report a kernel with a connection
    (``kernel_ready()``) before the indicator's "idle" counts.
    """
    page.goto(url, wait_until="domcontentloaded", timeout=timeout * 1000)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=timeout * 1000)
    deadline = time.monotonic() + timeout
    idle_since = None
    while time.monotonic() < deadline:
        # A kernel-choice dialog appears only when the notebook names no kernel: accept it.
        accept = page.locator(".jp-Dialog .jp-Dialog-button.jp-mod-accept")
        if accept.count() and accept.first.is_visible():
            accept.first.click()
        status = page.evaluate(
            "(sel) => { const e = document.querySelector(sel);"
            " return e ? e.getAttribute('data-status') : null; }",
            INDICATOR,
        )
        if status in ("idle", None) and kernel_ready():  # Notebook 7 may show no indicator
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since >= 0.5:
                return
        else:
            idle_since = None
        time.sleep(0.2)
    raise AssertionError(f"the notebook's kernel was not connected and idle within {timeout} s")


def run_all_cells(page, attempts: int = 3) -> None:
    """Run menu -> Run All Cells, as a lecturer would (retried if the menu did not open)."""
    item = page.locator(".lm-Menu .lm-Menu-item", has_text="Run All Cells").first
    for attempt in range(attempts):
        page.locator(".lm-MenuBar-item", has_text="Run").first.click()
        try:
            item.wait_for(state="visible", timeout=3000)
        except Exception:
            page.keyboard.press("Escape")
            if attempt == attempts - 1:
                raise
            continue
        item.click()
        return


def watch_run(
    page, before: list[str], timeout: float, poll: float = 0.1, on_poll=None
) -> RunRecord:
    """Poll until the cells started by Run All Cells ended and the kernel is idle (stable for
    1 s), or timeout. ``before`` holds the cell prompts read before the click, so that a
    notebook saved with execution counts is not taken for one that already ran.

    ``on_poll(record)`` is called on every poll (to snapshot processes, take a live
    screenshot...). Returns the last record; its ``running`` is True on timeout.
    """
    start = time.monotonic()
    deadline = start + timeout
    started = False
    idle_since = None
    record = read_state(page)
    while time.monotonic() < deadline:
        record = read_state(page)
        record.seconds = time.monotonic() - start
        if on_poll is not None:
            on_poll(record)
        if record.running or (
            record.prompts != before and any(any(c.isdigit() for c in p) for p in record.prompts)
        ):
            started = True
        if started and not record.running and record.status == "idle":
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since >= 1.0:
                return record
        else:
            idle_since = None
        if not started and time.monotonic() - start > 15:
            raise AssertionError("Run All Cells did not start any cell within 15 s")
        time.sleep(poll)
    return record
