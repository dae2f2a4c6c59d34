"""What the live dashboard costs the kernel during a fit, against matplotlib PNG redraws.

A real kernel (ipykernel, started with jupyter_client, as a notebook's is) runs the same fit
three times: without a dashboard, with ``lab.dashboard()`` (the browser draws; the kernel
sends numbers), and with the previous design's charts (loss, latency boxes and latency over
rounds as matplotlib PNGs in ``ipywidgets.Image``, redrawn five times a second). For each it
prints the kernel process's CPU during the fit beyond the run without a dashboard, as a share
of one core, and the widget messages the client received per second. The workers are other
processes and are not counted; nothing is drawn on the client side (no browser), so this is
the kernel's side of the cost only.

    python benchmarks/dashboard_cost.py [--rounds 600] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import psutil
from jupyter_client.manager import start_new_kernel

REPO = Path(__file__).resolve().parents[1]

SETUP = """
import io, threading, time
import ipywidgets as widgets
from IPython.display import display
from sklearn.datasets import load_diabetes
from chimera_nb import Lab, ParameterServerMaster, SGDWorker
from chimera_nb.plots import plot_latency, plot_latency_over_rounds, plot_loss

X, y = load_diabetes(return_X_y=True, as_frame=True)
lab = Lab.from_shards(SGDWorker("regressor"), X, y, n_workers=4, name="cost",
                      master=ParameterServerMaster("regressor", max_iter={rounds}, tol=0.0)).start()
lab.cluster.slow("worker4", 0.005)  # a fit of a few seconds, with a straggler
lab.fit()  # warm up: imports, connections


def png(figure):
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()


def png_charts(stop):
    '''The previous design: three matplotlib charts as PNGs, five times a second.'''
    images = [widgets.Image(format="png") for _ in range(3)]
    display(widgets.VBox(images))
    while not stop.wait(0.2):
        master = lab.master
        calls = master.spans_.to_frame()
        images[0].value = png(plot_loss(getattr(master, "loss_curve_", []), n_rounds=master.max_rounds))
        images[1].value = png(plot_latency(calls, endpoint=None))
        images[2].value = png(plot_latency_over_rounds(calls, endpoint=None))
"""

MODES = {
    "no dashboard": "view = None",
    "live dashboard": "view = lab.dashboard(); display(view)",
    "PNG redraws (5/s)": (
        "stop = threading.Event(); view = threading.Thread(target=png_charts, args=(stop,),"
        " daemon=True); view.start()"
    ),
}
UNDO = {
    "no dashboard": "",
    "live dashboard": "view.close()",
    "PNG redraws (5/s)": "stop.set(); view.join()",
}


def run(client, code: str, on_message=None) -> None:
    reply = client.execute_interactive(
        code, timeout=300, output_hook=on_message or (lambda m: None)
    )
    if reply["content"]["status"] != "ok":
        raise RuntimeError(f"{code[:60]!r} failed: {reply['content'].get('evalue')}")


def measure(client, kernel: psutil.Process, mode: str) -> tuple[float, float, float]:
    """(CPU seconds of the kernel, wall seconds, widget messages) of one fit in ``mode``."""
    run(client, MODES[mode])
    time.sleep(1.0)  # let a dashboard draw its first picture
    messages = []
    before, started = kernel.cpu_times(), time.perf_counter()
    run(client, "lab.fit()", lambda m: messages.append(m["msg_type"]))
    wall = time.perf_counter() - started
    after = kernel.cpu_times()
    run(client, UNDO[mode])
    cpu = (after.user - before.user) + (after.system - before.system)
    return cpu, wall, messages.count("comm_msg")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=600)
    parser.add_argument("--repeats", type=int, default=3)
    options = parser.parse_args()
    os.environ["PYTHONPATH"] = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    manager, client = start_new_kernel(kernel_name="python3")
    try:
        kernel = psutil.Process(manager.provisioner.process.pid)
        run(client, SETUP.format(rounds=options.rounds))
        results = {mode: [] for mode in MODES}
        for _ in range(options.repeats):  # interleaved, so that machine load hits all alike
            for mode in MODES:
                results[mode].append(measure(client, kernel, mode))
        run(client, "lab.close()")
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=False)
    base = statistics.median(cpu / wall for cpu, wall, _ in results["no dashboard"])
    print(f"{options.rounds + 1}-round fit, 4 workers, median of {options.repeats} runs each:")
    print(f"{'':20} {'fit s':>6} {'kernel CPU':>11} {'beyond none':>12} {'messages/s':>11}")
    for mode, runs in results.items():
        share = statistics.median(cpu / wall for cpu, wall, _ in runs)
        wall = statistics.median(wall for _, wall, _ in runs)
        rate = statistics.median(n / wall for _, wall, n in runs)
        print(f"{mode:20} {wall:6.2f} {share:10.0%} {share - base:+11.0%} {rate:11.1f}")


if __name__ == "__main__":
    main()
