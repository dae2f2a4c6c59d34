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

    # Assert (the redraw thread shows the new mode within its period, however fast the fit)
    assert held == 0 and after_one == 1
    wait_until(lambda: dashboard.live.status["mode"] == "full speed")
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


# -- issue 11: heartbeats, elastic membership, network emulation, SSP and ASP ------------------


def marks(dashboard) -> list[str]:
    return [text for _, text, _ in dashboard.live.loss["marks"]]


def start_long_fit(lab, dashboard, rounds: int = 5) -> None:
    lab.master.max_iter = 100_000
    dashboard.fit_button.click()
    wait_until(lambda: current_round(lab) >= rounds)


def stop_fit(dashboard) -> None:
    dashboard.stop_button.click()
    dashboard.fit_handle.result(timeout=30)


def test_heartbeats_show_a_frozen_worker_suspect_then_failed_with_the_time(lab):
    # Prepare: a dashboard that watches the workers, during a fit
    dashboard = lab.dashboard(heartbeats=0.5)
    try:
        watched = lab.cluster.watching
        lab.cluster.watch(0.2, timeout=0.3)  # quicker verdicts than the dashboard's default
        start_long_fit(lab, dashboard)

        # Execute: freeze worker2, then thaw it
        paused_at = time.time()
        lab.cluster.pause("worker2")
        wait_until(lambda: worker(dashboard, "worker2")["state"] == "suspect", timeout=5)
        wait_until(lambda: worker(dashboard, "worker2")["state"] == "failed", timeout=5)
        failed = worker(dashboard, "worker2")
        failed_at = lab.cluster.membership()["worker2"].since
        lab.cluster.unpause("worker2")
        wait_until(lambda: worker(dashboard, "worker2")["state"] in ("up", "slow"), timeout=5)
        stop_fit(dashboard)
        shown = marks(dashboard)
        status = dashboard.live.status
    finally:
        dashboard.close()

    # Assert
    assert watched is not None and watched.interval == 0.5
    assert status["heartbeats"] == 0.2
    assert failed["why"].startswith("missed 3 heartbeats (failed at ")
    assert failed["short"].startswith("missed 3 heartbeats at ")
    assert paused_at <= failed_at <= time.time()
    clock = time.strftime("%H:%M:%S", time.localtime(failed_at))
    assert failed["why"].startswith(f"missed 3 heartbeats (failed at {clock}.")
    assert shown.index("worker2 suspect") < shown.index("worker2 failed (heartbeat)")
    assert "worker2 back" in shown and "worker2 normal speed" not in shown
    assert lab.cluster.watching is None  # the dashboard stopped what it started


def test_a_worker_added_mid_fit_gets_its_box_lane_and_menu_entry_and_leaves_them_when_removed(
    lab, dashboard
):
    # Prepare
    start_long_fit(lab, dashboard)

    # Execute: a cell adds a worker, then removes it
    name = lab.cluster.add_worker(SGDWorker("regressor"), X.iloc[:120], Y.iloc[:120])
    wait_until(lambda: name in [w["name"] for w in dashboard.live.workers], timeout=2)
    wait_until(lambda: worker(dashboard, name)["answered"].split("/")[0] not in ("0",))
    wait_until(lambda: name in dashboard.live.timeline["lanes"], timeout=3)
    wait_until(lambda: name in dashboard.worker_choice.options, timeout=2)
    joined = worker(dashboard, name)
    lab.cluster.remove_worker(name)
    wait_until(lambda: name not in [w["name"] for w in dashboard.live.workers], timeout=2)
    wait_until(lambda: name not in dashboard.worker_choice.options, timeout=2)
    stop_fit(dashboard)

    # Assert
    assert name == "worker4"
    assert joined["state"] == "up"
    assert [w["name"] for w in dashboard.live.workers] == ["worker1", "worker2", "worker3"]
    assert dashboard.live.status["n_workers"] == 3
    assert marks(dashboard).index("worker4 joined") < marks(dashboard).index("worker4 removed")
    assert said(dashboard, "error") == ""


def test_network_words_say_the_emulated_network_in_a_few_words():
    # Prepare
    from types import SimpleNamespace

    from chimera_nb.notebook.dashboard.views import network_words

    def settings(**values):
        return SimpleNamespace(
            **({"latency_ms": 0.0, "bandwidth_mbps": None, "drop": 0.0} | values)
        )

    # Execute / Assert
    assert network_words(None) == ""
    assert network_words(settings()) == ""
    assert network_words(settings(latency_ms=20.0)) == "+20 ms"
    assert (
        network_words(settings(latency_ms=20.0, bandwidth_mbps=100.0, drop=0.05))
        == "+20 ms, 100 Mbit/s, 5% drop"
    )


def test_latency_partition_and_heal_buttons_show_on_the_worker_and_the_loss_marks(lab, dashboard):
    # Prepare
    start_long_fit(lab, dashboard)
    dashboard.worker_choice.value = "worker3"

    # Execute
    dashboard.latency_button.click()
    wait_until(lambda: worker(dashboard, "worker3")["network"] == "+20 ms", timeout=1)
    label_with_latency = dashboard.latency_button.description
    dashboard.partition_button.click()
    wait_until(lambda: worker(dashboard, "worker3")["state"] == "failed", timeout=1)
    partitioned = worker(dashboard, "worker3")
    dashboard.heal_button.click()
    wait_until(lambda: worker(dashboard, "worker3")["state"] == "up", timeout=2)
    dashboard.latency_button.click()
    wait_until(lambda: worker(dashboard, "worker3")["network"] == "", timeout=1)
    stop_fit(dashboard)

    # Assert
    assert label_with_latency == "Normal latency"
    assert dashboard.latency_button.description == "+20 ms latency"
    assert partitioned["short"].startswith("partitioned at round ")
    assert partitioned["network"] == "+20 ms"  # the partition keeps the latency
    shown = marks(dashboard)
    assert (
        shown[:4]
        == [
            "worker3 network +20 ms",
            "worker3 partitioned",
            "worker3 back",
            "worker3 network normal",
        ][: len(shown)]
    )
    assert said(dashboard).splitlines()[1:4] == [
        "worker3's network adds no latency",
        "healed: worker3 answer again",
        "worker3 partitioned: every call to it fails until Heal",
    ]
    assert said(dashboard, "error") == ""


def test_ssp_shows_its_flowchart_each_workers_clock_and_how_far_ahead_it_ran(lab, dashboard):
    # Prepare: worker3 straggles, so the others run ahead as far as SSP(2) lets them
    lab.master.set_params(consistency="ssp", staleness=2, max_iter=40)
    lab.cluster.slow("worker3", 0.02)
    clocks, charts = [], []
    dashboard.live.observe(
        lambda c: clocks.extend((w["clock"], w["ahead"]) for w in c["new"]), "workers"
    )
    dashboard.live.observe(lambda c: charts.append(c["new"]["machine"]), "chart")

    # Execute
    try:
        lab.fit()
        dashboard.refresh()
    finally:
        lab.master.set_params(consistency="bsp", staleness=None)
        lab.cluster.slow("worker3", 0)

    # Assert: the SSP flowchart, per-worker clocks, and staleness in the timeline
    assert dashboard.state.fit_chart.machine == "parameter-server fit (SSP)"
    assert "parameter-server fit (SSP)" in charts
    assert dashboard.live.step["active"] == "M"
    ahead = [a for _, a in clocks if a is not None]
    assert ahead and max(ahead) == 2 and min(ahead) >= 0
    assert {w["clock"] for w in dashboard.live.workers} != {None}
    stale = [c[4] for r in dashboard.live.timeline["rounds"] for c in r["calls"]]
    assert {s for s in stale if s is not None} <= {0, 1, 2} and 2 in stale
    assert said(dashboard, "error") == ""


def test_heartbeat_verdicts_after_a_fit_gave_up_on_a_worker_read_as_doubt_not_recovery():
    # Prepare: a fit in which worker2's call timed out
    from chimera_nb.masters.events import StepEvent
    from chimera_nb.notebook.dashboard.state import Change, DashboardState

    state = DashboardState(PARAMETER_SERVER_FIT)
    state.on_event(StepEvent(FIT, "B", "fit request received", time.time(), None, {}))
    failed = {"failed": {"worker2": "timed out after 1 s"}, "answered": ["worker1"]}
    state.on_event(StepEvent(FIT, "F", "all workers failed?", time.time(), 3, failed))

    # Execute: the heartbeats suspect it, give up on it, then hear from it again
    state.on_fault("worker2", WorkerState.SUSPECT, None, 0.0, Change(missed=1))
    suspected = state.snapshot()
    state.on_fault("worker2", WorkerState.FAILED, None, 0.0, Change(since=time.time(), missed=3))
    failed_again = state.snapshot()
    state.on_fault("worker2", WorkerState.UP, None, 0.0)

    # Assert
    assert suspected.states["worker2"] is WorkerState.SUSPECT
    assert failed_again.failures["worker2"].reason.startswith("missed 3 heartbeats (failed at ")
    assert [text for _, text, _ in state.marks] == [
        "worker2 failed",
        "worker2 suspect",
        "worker2 failed (heartbeat)",
        "worker2 back",
    ]


def test_a_byzantine_worker_is_marked_on_the_loss_chart_and_when_honest_again(lab, dashboard):
    # Prepare
    start_long_fit(lab, dashboard)

    # Execute
    lab.cluster.byzantine("worker2", "sign-flip")
    wait_until(lambda: "worker2 Byzantine" in marks(dashboard), timeout=2)
    lab.cluster.byzantine("worker2", kind=None)
    wait_until(lambda: "worker2 honest" in marks(dashboard), timeout=2)
    stop_fit(dashboard)

    # Assert: marked once each way, and the worker stayed up throughout
    assert marks(dashboard).count("worker2 Byzantine") == 1
    assert worker(dashboard, "worker2")["state"] == "up"
