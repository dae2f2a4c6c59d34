"""Measure the dashboard in the page, and run a notebook's cells one by one, in JupyterLab and
in Notebook 7 alike (both render cells with JupyterLab's classes).

Everything here reads the page (computed styles, bounding boxes, data attributes), never the
Python that drew it.
"""

from __future__ import annotations

import time

#: Every element of the dashboard that shows text of its own, with its computed font size.
TEXT_SIZES_JS = """
(root) => {
  const found = [];
  for (const el of document.querySelectorAll(root + ' *')) {
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    const control = el.matches('button, select, option, input');
    if (!own && !control) continue;
    const style = getComputedStyle(el);
    if (style.display === 'none' || style.visibility === 'hidden') continue;
    const box = el.getBoundingClientRect();
    if (el.tagName !== 'OPTION' && (box.width === 0 || box.height === 0)) continue;
    found.push({tag: el.tagName.toLowerCase(), cls: String(el.className.baseVal ?? el.className),
                text: (el.textContent || el.value || '').trim().slice(0, 40),
                size: parseFloat(style.fontSize)});
  }
  return found;
}
"""

#: The dashboard's box, the viewport's width, and whether anything in it overflows sideways.
WIDTH_JS = """
(root) => {
  const dash = document.querySelector(root);
  const box = dash.getBoundingClientRect();
  const wider = [...dash.querySelectorAll('*')].filter((el) => {
    if (el.closest('.cl-timeline-scroll')) return false;  // scrolls on purpose
    const b = el.getBoundingClientRect();
    return b.width > 0 && b.right > box.right + 1;
  }).map((el) => String(el.className.baseVal ?? el.className).slice(0, 60));
  return {left: box.left, right: box.right, width: box.width,
          viewport: document.documentElement.clientWidth, overflowing: wider.slice(0, 10)};
}
"""

#: Per timeline lane: the data it carries, and the drawn width of its calls in the last rounds.
LANES_JS = """
() => {
  const lanes = {};
  for (const label of document.querySelectorAll('.chimera-live .cl-lane')) {
    lanes[label.dataset.worker] = {busy: +label.dataset.busyMs, mean: +label.dataset.meanMs, px: 0};
  }
  const rects = [...document.querySelectorAll('.chimera-live rect.cl-call')];
  const rounds = [...new Set(rects.map((r) => +r.dataset.round))].sort((a, b) => a - b).slice(-8);
  for (const r of rects)
    if (rounds.includes(+r.dataset.round) && lanes[r.dataset.worker])
      lanes[r.dataset.worker].px += r.getBoundingClientRect().width;
  return lanes;
}
"""

CELLS = ".jp-Notebook .jp-Cell"
PROMPT = ".jp-InputArea-prompt"


def prompts(page) -> list[str]:
    return page.eval_on_selector_all(
        f"{CELLS}.jp-CodeCell {PROMPT}", "(ps) => ps.map((p) => p.textContent.trim())"
    )


def run_cell(page, index: int, timeout: float = 60.0, wait: bool = True) -> float:
    """Run the ``index``-th code cell (select it, Shift+Enter) and, with ``wait``, wait until
    its prompt shows an execution count; returns the seconds it took."""
    cell = page.locator(f"{CELLS}.jp-CodeCell").nth(index)
    cell.locator(PROMPT).first.click()
    started = time.monotonic()
    page.keyboard.press("Shift+Enter")
    if not wait:
        return 0.0
    deadline = started + timeout
    seen_running = False
    while time.monotonic() < deadline:
        text = prompts(page)[index]
        seen_running = seen_running or "*" in text
        if (
            "*" not in text
            and any(c.isdigit() for c in text)
            and (seen_running or 0.3 < time.monotonic() - started)
        ):
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"cell {index} did not finish within {timeout} s: prompts {prompts(page)}")


def wait_for(page, js: str, arg=None, timeout: float = 10.0, poll: float = 0.02) -> float:
    """Poll ``js`` (a function of ``arg``) in the page until it returns true; the seconds
    it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if page.evaluate(js, arg):
            return time.monotonic() - started
        time.sleep(poll)
    raise AssertionError(f"the page never satisfied {js!r} within {timeout} s")
