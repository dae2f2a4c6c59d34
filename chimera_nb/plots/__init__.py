"""Charts of a fit, each a plain function returning a matplotlib ``Figure``.

They build ``matplotlib.figure.Figure`` objects directly (no pyplot state), so they are safe
from any thread, work in scripts and the CLI (``fig.savefig("loss.png")``), and display in a
notebook as they are. The live dashboard draws the same charts in the browser, from the same
numbers: where a chart needs a rule (a box plot's whiskers and outliers, a timeline's lanes),
the rule is a function here that both call.

* :mod:`.loss`: the loss per round;
* :mod:`.latency`: each worker's latency, as boxes with outliers and over rounds;
* :mod:`.timeline`: swimlanes of the calls of the last rounds, from spans;
* :mod:`.flowchart`: a master's flowchart;
* :mod:`.table`: one row per worker (a DataFrame);
* :mod:`.labels`: the count of each class on each client (a non-IID split).
"""

from .chart import Chart
from .flowchart import plot_flowchart
from .labels import label_counts, plot_label_distribution
from .latency import latency_boxes, plot_latency, plot_latency_over_rounds
from .loss import plot_loss
from .table import short_reason, worker_table
from .timeline import TimelineCall, TimelineRound, plot_timeline, side_by_side, timeline_rounds

__all__ = [
    "Chart",
    "TimelineCall",
    "TimelineRound",
    "label_counts",
    "latency_boxes",
    "plot_flowchart",
    "plot_label_distribution",
    "plot_latency",
    "plot_latency_over_rounds",
    "plot_loss",
    "plot_timeline",
    "short_reason",
    "side_by_side",
    "timeline_rounds",
    "worker_table",
]
