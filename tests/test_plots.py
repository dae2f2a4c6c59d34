"""The chart functions: each returns a matplotlib Figure that renders to PNG; and the rules
the dashboard shares with them (timeline rounds, box numbers, short failure reasons)."""

from __future__ import annotations

from io import BytesIO

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.text import Annotation

from chimera_nb.logs import read_time_log
from chimera_nb.masters import (
    AggregationMaster,
    FeatureSplitMaster,
    FederatedAveragingMaster,
    ParameterServerMaster,
    PipelineMaster,
    RingAllReduceMaster,
    RoundRecord,
    ShardedParameterServerMaster,
)
from chimera_nb.masters.flowchart import ACTIVE_COLOR
from chimera_nb.masters.parameter_server_charts import (
    PARAMETER_SERVER_FIT,
    PARAMETER_SERVER_FIT_ASP,
    PARAMETER_SERVER_FIT_SSP,
)
from chimera_nb.plots import (
    latency_boxes,
    plot_flowchart,
    plot_latency,
    plot_latency_over_rounds,
    plot_loss,
    plot_timeline,
    short_reason,
    timeline_rounds,
    worker_table,
)
from chimera_nb.spans import Span

FIT_STEP = "/v1/chimera/sgd/fit-step"

FLOWCHARTS = {
    chart.machine: chart
    for master in (
        ParameterServerMaster(),
        ParameterServerMaster(consistency="ssp", staleness=1),
        ParameterServerMaster(consistency="asp"),
        AggregationMaster(),
    )
    for chart in master.flowcharts
}


def png(figure: Figure) -> bytes:
    buffer = BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()


@pytest.fixture
def time_log(tmp_path):
    """A real ``chimera_time.log``: 3 workers, 10 rounds of fit-step, worker3 200 ms late
    from round 6, and the calls before the rounds (no round number)."""
    lines = []
    for worker in ("worker1", "worker2", "worker3"):
        lines.append(
            f"2026-11-21T22:41:03.000 INFO worker={worker} endpoint=/v1/chimera/sgd/statistics "
            "latency_ms=1.500 status=200 round=- attempt=1"
        )
    for round_number in range(1, 11):
        for worker, latency in (("worker1", 1.2), ("worker2", 2.5), ("worker3", 3.0)):
            if worker == "worker3" and round_number > 5:
                latency = 203.0
            lines.append(
                f"2026-11-21T22:41:04.{round_number:03d} INFO worker={worker} endpoint={FIT_STEP} "
                f"latency_ms={latency:.3f} status=200 round={round_number} attempt=1"
            )
    (tmp_path / "chimera_time.log").write_text("\n".join(lines) + "\n")
    return read_time_log(tmp_path)


def test_plot_loss_draws_the_curve_the_reference_and_the_marks():
    # Prepare
    losses = [1.0 / round_number for round_number in range(1, 41)]

    # Execute
    figure = plot_loss(
        losses,
        reference=0.02,
        marks={22: "worker3 killed", 30: ("worker2 +200 ms", "tab:orange")},
        n_rounds=200,
    )

    # Assert
    axes = figure.axes[0]
    assert axes.get_title() == "Loss per round"
    assert (axes.get_xlabel(), axes.get_ylabel()) == ("round", "loss")
    assert list(axes.lines[0].get_ydata()) == losses
    assert axes.get_xlim() == (0, 200)
    texts = {text.get_text(): to_hex(text.get_color()) for text in axes.texts}
    assert texts == {"worker3 killed": to_hex("tab:red"), "worker2 +200 ms": to_hex("tab:orange")}
    assert png(figure).startswith(b"\x89PNG")


def test_plot_latency_draws_one_box_per_worker_with_their_notes(time_log):
    # Execute
    figure = plot_latency(time_log, notes={"worker3": "+200 ms"})

    # Assert
    axes = figure.axes[0]
    labels = [label.get_text() for label in axes.get_xticklabels()]
    assert labels == ["worker1", "worker2", "worker3\n(+200 ms)"]
    assert axes.get_yscale() == "log"
    assert axes.get_ylabel() == "fit-step latency, ms"
    assert axes.get_title() == "Per-worker latency"
    assert png(figure).startswith(b"\x89PNG")


def test_plot_latency_over_rounds_shows_the_straggler_on_top(time_log):
    # Execute
    figure = plot_latency_over_rounds(time_log)

    # Assert
    axes = figure.axes[0]
    lines = {line.get_label(): line for line in axes.lines}
    assert sorted(lines) == ["worker1", "worker2", "worker3"]
    assert list(lines["worker3"].get_xdata()) == list(range(1, 11))
    assert max(lines["worker3"].get_ydata()) == 203.0
    assert (axes.get_xlabel(), axes.get_title()) == ("round", "Latency over rounds")
    assert png(figure).startswith(b"\x89PNG")


def test_plot_latency_over_rounds_numbers_the_calls_when_there_are_no_rounds(time_log):
    # Execute: the statistics calls are made before the rounds, as a bagging fit's are
    figure = plot_latency_over_rounds(time_log, endpoint=("statistics", "model/fit"))

    # Assert
    axes = figure.axes[0]
    assert (axes.get_xlabel(), axes.get_title()) == ("call", "Latency per call")
    assert len(axes.lines) == 3
    assert png(figure).startswith(b"\x89PNG")


@pytest.mark.parametrize("plot", [plot_latency, plot_latency_over_rounds])
def test_latency_charts_say_so_when_no_call_was_logged_yet(time_log, plot):
    # Execute
    figure = plot(time_log.iloc[:0])

    # Assert
    assert [text.get_text() for text in figure.axes[0].texts] == ["no calls yet"]
    assert png(figure).startswith(b"\x89PNG")


def test_plot_flowchart_highlights_the_given_step():
    # Prepare
    chart = FLOWCHARTS["parameter-server fit"]

    # Execute
    figure = plot_flowchart(chart, active="E")

    # Assert
    boxes = {patch.get_gid(): patch for patch in figure.axes[0].patches}
    assert sorted(boxes) == [f"step-{letter}" for letter in chart.steps]
    colors = {gid: to_hex(patch.get_facecolor()) for gid, patch in boxes.items()}
    assert colors.pop("step-E") == ACTIVE_COLOR
    assert ACTIVE_COLOR not in colors.values()
    texts = {text.get_text() for text in figure.axes[0].texts}
    assert set(chart.steps) | set(chart.steps.values()) <= texts
    assert {"yes", "no", "next round"} <= texts
    assert figure.texts[0].get_text() == "parameter-server fit"


@pytest.mark.parametrize("machine", sorted(FLOWCHARTS))
def test_plot_flowchart_draws_every_seed_flowchart(machine):
    # Execute
    figure = plot_flowchart(FLOWCHARTS[machine])

    # Assert: one box per step, one arrow per edge (a line and a head), nothing active
    axes = figure.axes[0]
    assert len(axes.patches) == len(FLOWCHARTS[machine].steps)
    assert len(axes.texts) >= 2 * len(FLOWCHARTS[machine].steps)
    assert png(figure).startswith(b"\x89PNG")


def _covers(extent, box, pixels: float = 3.0) -> bool:
    """Whether a text's extent covers more than a sliver of a box: an arrow's "yes" may
    touch the box below with its descent, not sit on its label."""
    width = min(extent.x1, box.x1) - max(extent.x0, box.x0)
    height = min(extent.y1, box.y1) - max(extent.y0, box.y0)
    return width > pixels and height > pixels


@pytest.mark.parametrize(
    "chart",
    list(
        {
            chart.machine: chart
            for chart in (
                PARAMETER_SERVER_FIT,
                PARAMETER_SERVER_FIT_SSP,
                PARAMETER_SERVER_FIT_ASP,
                *AggregationMaster.flowcharts,
                *RingAllReduceMaster.flowcharts,
                *ShardedParameterServerMaster.flowcharts,
                *FederatedAveragingMaster.flowcharts,
                *FeatureSplitMaster.flowcharts,
                *PipelineMaster.flowcharts,
            )
        }.values()
    ),
    ids=lambda chart: chart.machine,
)
def test_every_label_stays_in_its_box_and_no_arrow_or_label_covers_another_box(chart):
    # Execute: draw, so that each text has its extent on the canvas
    figure = plot_flowchart(chart)
    FigureCanvasAgg(figure).draw()
    axes = figure.axes[0]
    boxes = {patch.get_gid()[len("step-") :]: patch.get_window_extent() for patch in axes.patches}
    owner = {f"{letter}:{text}": letter for letter, text in chart.steps.items()}
    owner.update({f"{letter}:{letter}": letter for letter in chart.steps})
    arrows = [text for text in axes.texts if isinstance(text, Annotation)]  # the last legs
    # Assert: a step's letter and label inside its box, an arrow's label outside every box
    for text in axes.texts:
        if text in arrows:
            continue
        extent = text.get_window_extent()
        inside = [letter for letter, box in boxes.items() if box.contains(*extent.p0)]
        mine = [letter for letter in inside if f"{letter}:{text.get_text()}" in owner]
        if mine:
            assert extent.x1 <= boxes[mine[0]].x1, f"{text.get_text()!r} overflows its box"
        else:
            hit = [letter for letter, box in boxes.items() if _covers(extent, box)]
            assert not hit, f"the arrow label {text.get_text()!r} covers box {hit}"
    # Assert: no arrow runs through a box it neither leaves nor enters
    legs = [line.get_path().transformed(line.get_transform()).vertices for line in axes.lines]
    legs += [axes.transData.transform([arrow.xyann, arrow.xy]) for arrow in arrows]
    for points in legs:
        for source, target in zip(points[:-1], points[1:]):
            for letter, box in boxes.items():
                ends = [box.contains(*source), box.contains(*target)]
                middle = (source + target) / 2
                assert any(ends) or not box.contains(*middle), f"an arrow crosses box {letter}"


def test_worker_table_counts_rounds_and_names_the_failure():
    # Prepare: worker2 fails from round 2 on
    history = [
        RoundRecord(1, ["w1", "w2"], {}, {"w1": 1.0, "w2": 2.0}, {"w1": 100, "w2": 50}),
        RoundRecord(2, ["w1"], {"w2": "refused the connection"}, {"w1": 1.5}, {"w1": 100}),
        RoundRecord(3, ["w1"], {"w2": "refused the connection"}, {"w1": 1.25}, {"w1": 100}),
    ]

    # Execute
    table = worker_table(history, {"w1": "slow", "w2": "failed"}, delays={"w1": 0.2})

    # Assert
    assert table.loc["w1"].to_dict() == {
        "state": "slow",
        "detail": "+200 ms injected",
        "last latency, ms": 1.25,
        "samples": 100,
        "rounds answered": "3/3",
    }
    assert table.loc["w2", "detail"] == "refused the connection, round 3"
    assert table.loc["w2", "rounds answered"] == "1/3"
    assert table.loc["w2", "samples"] == 50


def test_worker_table_guesses_states_from_the_last_round_without_states():
    # Prepare
    history = [RoundRecord(1, ["w1"], {"w2": "timeout after 2.0 s"}, {"w1": 1.0}, {"w1": 10})]

    # Execute
    table = worker_table(history)

    # Assert
    assert table["state"].to_dict() == {"w1": "up", "w2": "failed"}
    assert table.loc["w2", "detail"] == "timeout after 2.0 s, round 1"


def spans_of(rounds: int, slow: str = "worker3", late_s: float = 0.2) -> list[Span]:
    """Real-looking spans: 3 workers a round, sent 0.1 ms apart, ``slow`` answering late."""
    spans, clock = [], 1_000.0
    for round_number in range(1, rounds + 1):
        for i, worker in enumerate(("worker1", "worker2", "worker3")):
            start = clock + 1e-4 * i
            end = start + (late_s if worker == slow else 0.002)
            spans.append(Span(worker, FIT_STEP, start, end, "200", round_number))
        clock += late_s + 0.001
    return spans


def test_timeline_rounds_keeps_the_last_rounds_from_their_first_send():
    # Execute
    rounds = timeline_rounds(spans_of(10), last_rounds=4)

    # Assert
    assert [r.round_number for r in rounds] == [7, 8, 9, 10]
    calls = {call.worker: call for call in rounds[0].calls}
    assert calls["worker1"].start_ms == 0.0
    assert calls["worker2"].start_ms == pytest.approx(0.1)
    assert calls["worker3"].end_ms - calls["worker3"].start_ms == pytest.approx(200.0)
    assert rounds[0].barrier_ms == pytest.approx(200.2)


def test_plot_timeline_draws_a_lane_per_worker_with_the_straggler_longest():
    # Execute
    figure = plot_timeline(spans_of(10), last_rounds=3)

    # Assert
    axes = figure.axes[0]
    assert [label.get_text() for label in axes.get_yticklabels()] == [
        "worker1",
        "worker2",
        "worker3",
    ]
    calls = [bar for bar in axes.patches if to_hex(bar.get_facecolor()) == to_hex("tab:blue")]
    width = {
        lane: sum(b.get_width() for b in calls if round(b.get_y() + 0.4) == lane)
        for lane in range(3)
    }
    assert width[2] > 50 * width[0]
    assert sum("round 10" in text.get_text() for text in axes.texts) == 1
    assert png(figure).startswith(b"\x89PNG")


def test_latency_boxes_keep_the_outliers_by_matplotlibs_rule():
    # Execute
    boxes = latency_boxes({"worker1": [1.0] * 51 + [1.2] * 49 + [200.0], "worker2": [3.0, 3.1]})

    # Assert
    first = boxes[0]
    assert (first["worker"], first["n"], first["median"]) == ("worker1", 101, 1.0)
    assert first["outliers"] == [200.0] and first["high"] == 1.2
    assert boxes[1]["outliers"] == []


def test_log_axes_have_at_least_three_labels_even_within_one_decade(time_log):
    # Prepare: every worker between 1 and 3 ms
    fast = time_log[time_log["latency_ms"] < 5]

    # Execute
    figure = plot_latency(fast)
    figure.canvas.draw()

    # Assert
    axes = figure.axes[0]
    low, high = axes.get_ylim()
    shown = [t for t in axes.get_yticks() if low <= t <= high]
    assert len(shown) >= 3, shown


def test_latency_over_rounds_puts_its_legend_beside_the_axes(time_log):
    # Execute
    figure = plot_latency_over_rounds(time_log)
    figure.canvas.draw()

    # Assert: the legend starts right of the axes, so it covers no line
    axes = figure.axes[0]
    legend = axes.get_legend().get_window_extent()
    assert legend.x0 >= axes.get_window_extent().x1


@pytest.mark.parametrize(
    ("reason", "round_number", "short"),
    [
        ("killed", 197, "killed at round 197"),
        ("connection lost ([Errno 104] Connection reset by peer)", 8, "connection lost at round 8"),
        ("timed out after 2 s", 3, "timed out at round 3"),
        ("connection refused", None, "refused"),
        (
            "HTTPStatusError: Server error '500 Internal Server Error'",
            5,
            "HTTPStatusError at round 5",
        ),
    ],
)
def test_short_reason_says_a_failure_in_a_few_words(reason, round_number, short):
    assert short_reason(reason, round_number) == short
