"""The live dashboard, driven as a lecturer would: a real lab, real worker processes,
buttons clicked and cells run, and what the live view would send to the browser read back."""

from __future__ import annotations

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


def wait_until(condition, timeout: float = 15.0) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, "timed out waiting for the dashboard"
        time.sleep(0.01)
    return time.monotonic() - started


def current_round(lab) -> int:
    event = lab.master.events.current.get(FIT)
    return event.round_number or 0 if event else 0


def worker(dashboard, name: str) -> dict:
    return next(w for w in dashboard.live.workers if w["name"] == name)


def said(dashboard, kind: str = "info") -> str:
    return "\n".join(text for k, text in dashboard.controls.said if k == kind)


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
    lab.master.pacer.full_speed()
    for name, state in lab.cluster.status().items():
        if state is WorkerState.FAILED:
            lab.cluster.restart(name)
        elif state is WorkerState.SLOW:
            lab.cluster.slow(name, 0)


def test_the_live_view_follows_a_blocking_fit_in_few_messages(lab, dashboard):
    # Prepare: write down every step and loss the view would send, and when
    steps, losses = [], []
    dashboard.live.observe(lambda c: steps.append(c["new"]["active"]), "step")
    dashboard.live.observe(
        lambda c: losses.append((time.monotonic(), c["new"]["last_round"])), "loss"
    )
    before = dashboard.live.sent

    # Execute
    started = time.monotonic()
    lab.fit()  # blocks, as a notebook cell would
    returned = time.monotonic()
    wait_until(lambda: dashboard.live.loss["last_round"] == MAX_ITER + 1)
    wait_until(lambda: dashboard.live.step["active"] == "M")
    timeline_final = wait_until(
        lambda: dashboard.live.timeline["rounds"][-1]["round"] == MAX_ITER + 1, timeout=1.5
    )  # the timeline and the boxes come twice a second
    elapsed = time.monotonic() - started

    # Assert: the view moved while the cell blocked, and ended on the last round
    assert {"E", "M"} <= set(steps) and steps[-1] == "M"
    assert any(t < returned and 0 < r < MAX_ITER + 1 for t, r in losses)
    assert dashboard.live.status["round"] == MAX_ITER + 1
    assert dashboard.live.status["rounds_per_s"] > 0
    assert (dashboard.live.sent - before) / elapsed < 50  # coalesced: one per tick at most
    assert [w["state"] for w in dashboard.live.workers] == ["up", "up", "up"]
    assert [w["answered"] for w in dashboard.live.workers] == [f"{MAX_ITER + 1}/{MAX_ITER + 1}"] * 3
    assert len(dashboard.live.round_time["rounds"]) == MAX_ITER
    assert [box["worker"] for box in dashboard.live.latency] == lab.cluster.names
    assert dashboard.live.timeline["lanes"] == lab.cluster.names
    assert timeline_final < 1.0
    assert said(dashboard, "error") == ""


def test_a_kill_shows_the_worker_crossed_out_with_a_short_reason_while_the_fit_goes_on(
    lab, dashboard
):
    # Prepare: a fit that would run for minutes, started from the dashboard
    lab.master.max_iter = 100_000
    dashboard.fit_button.click()
    wait_until(lambda: current_round(lab) >= 5)

    # Execute
    dashboard.worker_choice.value = "worker2"
    dashboard.kill_button.click()
    killed_at = current_round(lab)
    shown = wait_until(lambda: worker(dashboard, "worker2")["state"] == "failed", timeout=1.0)
    wait_until(lambda: current_round(lab) >= killed_at + 5)
    still_running = not dashboard.fit_handle.done()
    dashboard.stop_button.click()
    master = dashboard.fit_handle.result(timeout=30)

    # Assert
    assert shown < 1.0
    assert still_running
    assert master.history_[-1].answered == ["worker1", "worker3"]
    entry = worker(dashboard, "worker2")
    assert entry["short"].startswith("killed at round ") and len(entry["short"]) < 25
    assert entry["why"] == "killed"
    assert lab.cluster.status()["worker2"] is WorkerState.FAILED
    assert said(dashboard).splitlines()[:2] == [
        "stop requested: the fit ends after this round",
        "worker2 killed",
    ]  # newest first
    assert said(dashboard, "error") == ""


def test_changes_made_from_a_cell_show_within_a_second(lab, dashboard):
    # Prepare
    dashboard.worker_choice.value = "worker2"

    # Execute: a cell slows a worker, then kills another (no button involved)
    lab.cluster.slow("worker1", 0.05)
    slowed = wait_until(lambda: worker(dashboard, "worker1")["state"] == "slow", timeout=1.0)
    lab.cluster.kill("worker3")
    crossed = wait_until(lambda: worker(dashboard, "worker3")["state"] == "failed", timeout=1.0)

    # Assert
    assert slowed < 1.0 and crossed < 1.0
    assert worker(dashboard, "worker1")["delay_ms"] == 50
    assert dashboard.slow_button.description == "Slow +200 ms"  # worker1 is not chosen
    dashboard.worker_choice.value = "worker1"
    assert dashboard.slow_button.description == "Normal speed"


def test_restart_brings_a_killed_worker_back_without_blocking(lab, dashboard):
    # Prepare
    dashboard.worker_choice.value = "worker1"
    dashboard.kill_button.click()
    wait_until(lambda: worker(dashboard, "worker1")["state"] == "failed")

    # Execute
    started = time.monotonic()
    dashboard.restart_button.click()
    returned = time.monotonic() - started
    wait_until(lambda: worker(dashboard, "worker1")["state"] == "up")

    # Assert
    assert returned < 0.5  # the restart itself runs in a thread
    assert worker(dashboard, "worker1")["short"] == ""
    assert lab.cluster.status()["worker1"] is WorkerState.UP
    wait_until(lambda: "worker1 restarted" in said(dashboard))


def test_slow_button_makes_the_worker_slow_and_a_second_click_undoes_it(lab, dashboard):
    # Prepare
    dashboard.worker_choice.value = "worker3"

    # Execute
    dashboard.slow_button.click()
    slowed = lab.cluster.status()["worker3"]
    wait_until(lambda: worker(dashboard, "worker3")["state"] == "slow")
    entry_when_slow = worker(dashboard, "worker3")
    label_when_slow = dashboard.slow_button.description
    dashboard.slow_button.click()
    wait_until(lambda: worker(dashboard, "worker3")["state"] == "up")

    # Assert
    assert slowed is WorkerState.SLOW
    assert entry_when_slow["delay_ms"] == 200
    assert label_when_slow == "Normal speed"
    assert lab.cluster.status()["worker3"] is WorkerState.UP
    assert dashboard.slow_button.description == "Slow +200 ms"


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
    assert "Slow worker1 failed" in said(dashboard, "error")
    assert "no fit is running" in said(dashboard)
    assert len(lab.master.history_) == 21


def test_slow_motion_replays_every_step_of_each_round_in_order(lab, dashboard):
    # Prepare: the page's Slow motion button, on a fit of three rounds
    replays = []
    dashboard.live.observe(lambda c: replays.append(c["new"]), "replay")
    dashboard.slow_motion_button.click()
    lab.master.max_iter = 2

    # Execute
    started = time.monotonic()
    lab.fit()
    elapsed = time.monotonic() - started
    wait_until(lambda: replays and replays[-1]["round"] == 3)

    # Assert: the fit was held to about a round a second, and each round replayed D..K
    assert elapsed > 1.5
    assert dashboard.live.status["mode"] == "slow motion"
    first = next(r for r in replays if r["round"] == 1)
    steps = [what for _, kind, what in first["frames"] if kind == "step"]
    assert steps == list("DEFHIJK")
    times = [at for at, kind, _ in first["frames"] if kind == "step"]
    assert min(b - a for a, b in zip(times, times[1:])) >= 100  # human speed
    replies = [what for _, kind, what in first["frames"] if kind == "reply"]
    assert sorted(replies) == lab.cluster.names


def test_step_one_round_lets_exactly_one_round_through(lab, dashboard):
    # Prepare: a paused fit
    lab.master.max_iter = 100
    lab.master.pacer.pause()
    run = lab.fit(wait=False)
    time.sleep(0.5)
    held = len(getattr(lab.master, "history_", []))

    # Execute
    dashboard.step_button.click()
    wait_until(lambda: len(lab.master.history_) == held + 1)
    time.sleep(0.5)
    after_one = len(lab.master.history_)
    dashboard.full_speed_button.click()
    run.result(timeout=30)

    # Assert
    assert held == 0 and after_one == 1
    assert dashboard.live.status["mode"] == "full speed"
    assert len(lab.master.history_) == 101


def test_the_dashboard_follows_another_master_fitting_the_labs_workers(lab, dashboard):
    # Prepare: a second master, as notebook 2 fits one on lab.cluster
    other = ParameterServerMaster("regressor", max_iter=30, learning_rate=0.05)

    # Execute
    other.fit(lab.cluster)
    wait_until(lambda: dashboard.live.loss["last_round"] == 31)
    followed_other = dashboard.master is other
    dashboard.master_choice.value = lab.master  # pick the lab's own master
    lab.master.max_iter = 10
    other.fit(lab.cluster)  # not followed: the lab's master is picked
    time.sleep(0.3)

    # Assert
    assert followed_other
    assert dashboard.master is lab.master
    assert [label for label, _ in dashboard.master_choice.options][1:] == [
        "ParameterServerMaster #1 (the lab's master)",
        "ParameterServerMaster #2",
    ]


def test_the_flowchart_follows_the_machine_of_the_latest_event(lab, dashboard):
    # Prepare
    lab.master.max_iter = 10
    lab.fit()

    # Execute
    lab.predict(X.head())
    dashboard.refresh()

    # Assert
    assert dashboard.live.chart["machine"] == "parameter-server predict"
    assert sorted(b["letter"] for b in dashboard.live.chart["boxes"]) == list("ABCDEF")
    assert dashboard.live.step["active"] == "F"
    assert dashboard.active_step == "F"


def test_the_dashboard_displays_as_a_widget_tagged_for_the_browser(dashboard):
    # Execute
    bundle = dashboard._repr_mimebundle_()

    # Assert
    assert "application/vnd.jupyter.widget-view+json" in bundle
    tagged = {
        "chimera-dashboard": dashboard.widget,
        "chimera-live-view": dashboard.live,
        "chimera-fit": dashboard.fit_button,
        "chimera-kill": dashboard.kill_button,
        "chimera-restart": dashboard.restart_button,
        "chimera-slow": dashboard.slow_button,
        "chimera-stop": dashboard.stop_button,
        "chimera-slow-motion": dashboard.slow_motion_button,
        "chimera-step-round": dashboard.step_button,
        "chimera-full-speed": dashboard.full_speed_button,
        "chimera-worker-choice": dashboard.worker_choice,
        "chimera-master-choice": dashboard.master_choice,
        "chimera-messages": dashboard.messages,
    }
    for name, widget in tagged.items():
        assert name in widget._dom_classes
    assert "export default" in dashboard.live._esm
    assert "\n" not in repr(dashboard)
    assert repr(dashboard).startswith("Dashboard(lab 'dashboard-test', parameter-server ")


def test_close_stops_the_thread_unsubscribes_and_disables_the_controls(lab, dashboard):
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
    assert all(control.disabled for control in dashboard.controls.inputs)
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


def test_closing_the_lab_disables_the_controls_and_says_so():
    # Prepare
    master = ParameterServerMaster("regressor", max_iter=5)
    lab = Lab.from_shards(SGDWorker("regressor"), X, Y, master=master, name="dashboard-closing")
    lab.start()
    dashboard = lab.dashboard()

    # Execute
    lab.close()
    waited = wait_until(lambda: dashboard.live.status["closed"], timeout=2.0)

    # Assert
    try:
        assert waited < 1.0
        assert all(control.disabled for control in dashboard.controls.inputs)
        assert [w["state"] for w in dashboard.live.workers] == ["stopped"] * 3
    finally:
        dashboard.close()


def test_a_lab_not_started_shows_stopped_workers_and_the_fit_button_says_why_not():
    # Prepare
    master = ParameterServerMaster("regressor")
    lab = Lab.from_shards(SGDWorker("regressor"), X, Y, master=master, name="dashboard-new")
    dashboard = lab.dashboard()

    # Execute
    dashboard.fit_button.click()

    # Assert
    try:
        assert [w["state"] for w in dashboard.live.workers] == ["stopped"] * 3
        assert "is not running: call start()" in said(dashboard, "error")
        assert dashboard.live.step["active"] == "A"
    finally:
        dashboard.close()


def test_a_bagging_lab_shows_its_flowchart_and_its_workers():
    # Prepare
    member = RegressionWorker(DecisionTreeRegressor(max_depth=3), bootstrap=True)
    master = AggregationMaster(random_state=0)
    with Lab.from_shards(member, X, Y, master=master, n_workers=2, name="dashboard-bag") as lab:
        dashboard = lab.dashboard()
        try:
            # Execute
            lab.fit()
            dashboard.refresh()

            # Assert
            assert dashboard.live.chart["machine"] == "aggregation fit"
            assert dashboard.live.step["active"] == "I"
            assert [w["state"] for w in dashboard.live.workers] == ["up", "up"]
            assert [w["answered"] for w in dashboard.live.workers] == ["1/1", "1/1"]
            assert dashboard.live.status["role"] == "AggregationMaster"
            assert dashboard.live.loss["no_rounds"] is True
            assert [r["round"] for r in dashboard.live.timeline["rounds"]] == [None]
            assert len(dashboard.live.latency) == 2
            assert said(dashboard, "error") == ""
        finally:
            dashboard.close()
