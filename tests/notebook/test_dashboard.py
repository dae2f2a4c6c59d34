"""The live dashboard, driven as a lecturer would: a real lab, real worker processes,
buttons clicked, and what the widgets show read back."""

from __future__ import annotations

import re
import threading
import time

import pytest
from sklearn.datasets import load_diabetes
from sklearn.tree import DecisionTreeRegressor

from chimera_nb import (
    AggregationMaster,
    Lab,
    ParameterServerMaster,
    RegressionWorker,
    SGDWorker,
    WorkerState,
)
from chimera_nb.masters import PARAMETER_SERVER_FIT
from chimera_nb.notebook.dashboard import Dashboard

X, Y = load_diabetes(return_X_y=True, as_frame=True)
MAX_ITER = 400
FIT = "parameter-server fit"


def wait_until(condition, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the dashboard"
        time.sleep(0.02)


def current_round(lab) -> int:
    event = lab.master.events.current.get(FIT)
    return event.round_number or 0 if event else 0


def row_state(dashboard, worker: str) -> str:
    found = re.search(rf'data-worker="{worker}" data-state="(\w+)"', dashboard.workers.value)
    return found.group(1) if found else ""


def messages(dashboard, stream: str = "stdout") -> str:
    return "".join(o["text"] for o in dashboard.messages.outputs if o["name"] == stream)


@pytest.fixture(scope="module")
def lab():
    master = ParameterServerMaster("regressor", max_iter=MAX_ITER, tol=0.0)
    with Lab.from_shards(
        SGDWorker("regressor"), X, Y, master=master, n_workers=3, name="dashboard-test"
    ) as lab:
        yield lab


@pytest.fixture
def dashboard(lab):
    dashboard = Dashboard(lab)
    yield dashboard
    dashboard.close()
    lab.master.max_iter = MAX_ITER  # leave the lab as the next test expects it
    for name, state in lab.cluster.status().items():
        if state is WorkerState.FAILED:
            lab.cluster.restart(name)
        elif state is WorkerState.SLOW:
            lab.cluster.slow(name, 0)


def test_charts_follow_a_blocking_fit_and_redraws_are_throttled(lab, dashboard):
    # Prepare: write down every flowchart picture and when each chart changed
    pictures, changed_at = [], {"flowchart": [], "loss": []}

    def on_flowchart(change):
        active = re.search(r'data-active-step="(\w*)"', change["new"]).group(1)
        visited = set(re.findall(r'chimera-step-visited" data-step="(\w)"', change["new"]))
        pictures.append((active, visited))
        changed_at["flowchart"].append(time.monotonic())

    dashboard.flowchart.observe(on_flowchart, "value")
    dashboard.loss.observe(lambda _: changed_at["loss"].append(time.monotonic()), "value")
    before = dict(dashboard.redraw_count)

    # Execute
    started = time.monotonic()
    lab.fit()  # blocks, as a notebook cell would
    returned = time.monotonic()
    wait_until(lambda: 'data-active-step="M"' in dashboard.flowchart.value)
    wait_until(lambda: f"round {MAX_ITER + 1} / {MAX_ITER + 1}" in dashboard.status.value)
    elapsed = time.monotonic() - started

    # Assert: the flowchart moved while the cell blocked, and lit up the round's loop
    actives = [active for active, _ in pictures]
    assert {"E", "M"} <= set(actives) and actives[-1] == "M"
    assert {"D", "E", "F", "H", "I", "J", "K"} <= set().union(*(v for _, v in pictures))
    assert any(t < returned for t in changed_at["flowchart"])
    assert any(t < returned for t in changed_at["loss"])
    # the loss was redrawn while the cell blocked (above), but far less often than there were
    # rounds: a PNG costs 0.1-0.3 s here, so a fast fit may get only one redraw before the end
    redraws = {part: n - before[part] for part, n in dashboard.redraw_count.items()}
    n_rounds = len(lab.master.history_)
    assert n_rounds == MAX_ITER + 1
    assert 1 <= redraws["loss"] < n_rounds / 20
    assert redraws["flowchart"] <= 10 * elapsed + 2
    assert sum(redraws.values()) / elapsed < 50  # widget messages per second
    for image in (dashboard.loss, dashboard.latency, dashboard.latency_rounds):
        assert bytes(image.value).startswith(b"\x89PNG") and len(image.value) < 60_000
    assert [row_state(dashboard, w) for w in lab.cluster.names] == ["up", "up", "up"]
    assert messages(dashboard, "stderr") == ""


def test_kill_shows_the_worker_failed_while_the_fit_goes_on_and_stop_ends_it(lab, dashboard):
    # Prepare: a fit that would run for minutes, started from the dashboard
    lab.master.max_iter = 100_000
    dashboard.fit_button.click()
    wait_until(lambda: current_round(lab) >= 5)

    # Execute
    dashboard.worker_choice.value = "worker2"
    dashboard.kill_button.click()
    killed_at = current_round(lab)
    wait_until(lambda: row_state(dashboard, "worker2") == "failed")
    wait_until(lambda: current_round(lab) >= killed_at + 5)
    still_running = not dashboard.fit_handle.done()
    dashboard.stop_button.click()
    master = dashboard.fit_handle.result(timeout=30)

    # Assert
    assert still_running
    assert len(master.history_) < 10_000
    assert master.history_[-1].answered == ["worker1", "worker3"]
    assert "FAILED (" in dashboard.workers.value
    assert lab.cluster.status()["worker2"] is WorkerState.FAILED
    assert "worker2 killed" in messages(dashboard)
    assert "stop requested" in messages(dashboard)
    assert messages(dashboard, "stderr") == ""


def test_restart_brings_a_killed_worker_back_without_blocking(lab, dashboard):
    # Prepare
    dashboard.worker_choice.value = "worker1"
    dashboard.kill_button.click()
    dashboard.refresh()
    killed = row_state(dashboard, "worker1")

    # Execute
    started = time.monotonic()
    dashboard.restart_button.click()
    returned = time.monotonic() - started
    wait_until(lambda: row_state(dashboard, "worker1") == "up")

    # Assert
    assert killed == "failed"
    assert returned < 0.5  # the restart itself runs in a thread
    assert lab.cluster.status()["worker1"] is WorkerState.UP
    assert "worker1 restarted" in messages(dashboard)


def test_slow_button_makes_the_worker_slow_and_a_second_click_undoes_it(lab, dashboard):
    # Prepare
    dashboard.worker_choice.value = "worker3"

    # Execute
    dashboard.slow_button.click()
    slowed = lab.cluster.status()["worker3"]
    wait_until(lambda: row_state(dashboard, "worker3") == "slow")
    label_when_slow = dashboard.slow_button.description
    table_when_slow = dashboard.workers.value
    dashboard.slow_button.click()
    dashboard.refresh()

    # Assert
    assert slowed is WorkerState.SLOW
    assert "slow (+200 ms injected)" in table_when_slow
    assert label_when_slow == "Normal speed"
    assert lab.cluster.status()["worker3"] is WorkerState.UP
    assert dashboard.slow_button.description == "Slow +200 ms"
    assert row_state(dashboard, "worker3") == "up"


def test_buttons_report_problems_as_messages_instead_of_raising(lab, dashboard):
    # Prepare: a dead worker cannot be slowed, and there is no fit to stop
    dashboard.worker_choice.value = "worker1"
    dashboard.kill_button.click()

    # Execute
    dashboard.slow_button.click()
    dashboard.stop_button.click()
    lab.master.max_iter = 20
    lab.fit()  # a stop clicked while idle must not end the next fit early

    # Assert
    assert "Slow worker1 failed" in messages(dashboard, "stderr")
    assert "no fit is running" in messages(dashboard)
    assert len(lab.master.history_) == 21


def test_the_flowchart_follows_the_machine_of_the_latest_event(lab, dashboard):
    # Prepare
    lab.master.max_iter = 10
    lab.fit()

    # Execute
    lab.predict(X.head())
    dashboard.refresh()

    # Assert
    html = dashboard.flowchart.value
    assert 'data-machine="parameter-server predict"' in html
    assert 'data-active-step="F"' in html
    assert sorted(re.findall(r'data-step="(\w)"', html)) == list("ABCDEF")
    assert '<div class="chimera-step chimera-step-active" data-step="F"' in html
    assert dashboard.active_step == "F"


def test_the_dashboard_displays_as_a_widget_tagged_for_the_browser(dashboard):
    # Execute
    bundle = dashboard._repr_mimebundle_()

    # Assert
    assert "application/vnd.jupyter.widget-view+json" in bundle
    tagged = {
        "chimera-dashboard": dashboard.widget,
        "chimera-flowchart": dashboard.flowchart,
        "chimera-loss": dashboard.loss,
        "chimera-latency": dashboard.latency,
        "chimera-latency-rounds": dashboard.latency_rounds,
        "chimera-workers": dashboard.workers,
        "chimera-fit": dashboard.fit_button,
        "chimera-kill": dashboard.kill_button,
        "chimera-restart": dashboard.restart_button,
        "chimera-slow": dashboard.slow_button,
        "chimera-stop": dashboard.stop_button,
        "chimera-status": dashboard.status,
    }
    for name, widget in tagged.items():
        assert name in widget._dom_classes
    assert dashboard.flowchart.value.startswith('<div class="chimera-flowchart-body" data-machine=')
    assert "\n" not in repr(dashboard)
    assert repr(dashboard).startswith("Dashboard(lab 'dashboard-test', parameter-server ")


def test_close_stops_the_redraw_thread_and_unsubscribes(lab, dashboard):
    # Prepare
    thread_name = "chimera-dashboard-dashboard-test"
    running = [t.name for t in threading.enumerate()].count(thread_name)

    # Execute
    dashboard.close()
    lab.master.events.publish(PARAMETER_SERVER_FIT, "D", 1)

    # Assert
    assert running == 1
    assert thread_name not in [t.name for t in threading.enumerate()]
    assert dashboard.active_step != "D"
    assert repr(dashboard) == "Dashboard(lab 'dashboard-test', closed)"


def test_a_new_dashboard_for_the_same_lab_closes_the_previous_one(lab, dashboard):
    # Execute: the cell is run again
    second = lab.dashboard()

    # Assert
    try:
        names = [t.name for t in threading.enumerate()]
        assert names.count("chimera-dashboard-dashboard-test") == 1
        assert repr(dashboard).endswith("closed)")
    finally:
        second.close()


def test_a_lab_not_started_shows_stopped_workers_and_the_fit_button_says_why_not():
    # Prepare
    master = ParameterServerMaster("regressor")
    lab = Lab.from_shards(SGDWorker("regressor"), X, Y, master=master, name="dashboard-new")
    dashboard = lab.dashboard()

    # Execute
    dashboard.fit_button.click()

    # Assert
    try:
        assert [row_state(dashboard, w) for w in lab.cluster.names] == ["stopped"] * 3
        assert "is not running: call start()" in messages(dashboard, "stderr")
        assert 'data-active-step="A"' in dashboard.flowchart.value
    finally:
        dashboard.close()


def test_a_bagging_lab_shows_its_flowchart_and_its_workers():
    # Prepare
    worker = RegressionWorker(DecisionTreeRegressor(max_depth=3), bootstrap=True)
    master = AggregationMaster(random_state=0)
    with Lab.from_shards(worker, X, Y, master=master, n_workers=2, name="dashboard-bag") as lab:
        dashboard = lab.dashboard()
        try:
            # Execute
            lab.fit()
            dashboard.refresh()

            # Assert
            assert (
                'data-machine="aggregation fit" data-active-step="I"' in dashboard.flowchart.value
            )
            assert [row_state(dashboard, w) for w in lab.cluster.names] == ["up", "up"]
            assert dashboard.workers.value.count(">1/1<") == 2
            assert "AggregationMaster" in dashboard.status.value
            assert bytes(dashboard.latency.value).startswith(b"\x89PNG")
            assert messages(dashboard, "stderr") == ""
        finally:
            dashboard.close()
