"""A tiny stand-in for the dashboard: plain ipywidgets with the dashboard's DOM classes,
changed from a background thread for about 3 seconds while the cell blocks (like a blocking
``fit()``). It checks the test machinery alone: widgets render, values update live from
another thread, the recorder sees them, screenshots work.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

SETUP = r"""
import io, threading, time
import ipywidgets as W
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

STEPS = "ABCDEFGHIJKLM"

def flowchart_html(active):
    cells = "".join(
        f'<div class="chimera-step{" chimera-step-active" if s == active else ""}" data-step="{s}"'
        f' style="padding:2px 8px;margin:2px;border:1px solid #88a;'
        f'background:{"orange" if s == active else "#eef"}">{s}</div>'
        for s in STEPS
    )
    return (f'<div class="chimera-flowchart-body" data-machine="standin" '
            f'data-active-step="{active}">{cells}</div>')

def png(values, title):
    fig, ax = plt.subplots(figsize=(4, 2.4), dpi=80)
    ax.plot(values, marker="o"); ax.set_title(title)
    buf = io.BytesIO(); fig.savefig(buf, format="png"); plt.close(fig)
    return buf.getvalue()

flow = W.HTML(flowchart_html("A")); flow.add_class("chimera-flowchart")
def loss_html(n_rounds):
    return f'<div class="chimera-loss" data-last-round="{n_rounds}">loss, {n_rounds} rounds</div>'

loss = W.HTML(loss_html(0))
latency = W.Image(value=png([1, 2, 1], "latency"), format="png"); latency.add_class("chimera-latency")
rounds = W.Image(value=png([1, 1], "latency over rounds"), format="png")
rounds.add_class("chimera-latency-rounds")
workers = W.HTML("<table><tr><td>worker1</td><td>up</td></tr></table>")
workers.add_class("chimera-workers")
buttons = []
for name in ["fit", "kill", "restart", "slow", "stop"]:
    button = W.Button(description=name.title()); button.add_class(f"chimera-{name}")
    buttons.append(button)
dashboard = W.VBox([W.HBox([flow, W.VBox([loss, W.HBox([latency, rounds])])]),
                    workers, W.HBox(buttons)])
dashboard.add_class("chimera-dashboard")
display(dashboard)
""".strip()

FIT = r"""
def fake_fit(n_rounds=12):
    for r in range(n_rounds):
        for step in "DEHIJK":
            flow.value = flowchart_html(step)
            time.sleep(0.04)
        loss.value = loss_html(r + 1)
    flow.value = flowchart_html("L")

thread = threading.Thread(target=fake_fit)
thread.start()
thread.join()  # the cell blocks, as a blocking fit() would; widgets update meanwhile
""".strip()

CHECK = 'assert "data-active-step=\\"L\\"" in flow.value\nprint("stand-in fit done")'


def write_standin_notebook(folder: Path, name: str = "standin_dashboard.ipynb") -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Stand-in dashboard (tests/browser/standin.py)"),
        nbformat.v4.new_code_cell(SETUP),
        nbformat.v4.new_code_cell(FIT),
        nbformat.v4.new_code_cell(CHECK),
    ]
    path = Path(folder) / name
    nbformat.write(nb, path)
    return path
