"""The flowcharts of feature-split model parallelism (:mod:`.feature_split`): a round is two
calls per worker, scores (D) and gradients (F), with the label holder's work between them."""

from __future__ import annotations

from .flowchart import Flowchart, chain

__all__ = ["FEATURE_SPLIT_FIT", "FEATURE_SPLIT_PREDICT"]

#: A round is D (scores) to J (the bias's update; the blocks step at the next D), then back
#: to D; the letters of the parameter server's where the step is the same (G error,
#: I converged?, L ok, M end).
FEATURE_SPLIT_FIT = Flowchart(
    "feature-split fit",
    {
        "A": "idle",
        "B": "fit request received",
        "C": "initial fit: blocks, statistics, setup",
        "D": "send last step; gather partial scores",
        "E": "sum scores; loss; residuals",
        "F": "send residuals; gather gradients",
        "G": "error to client",
        "H": "average each block over its replicas",
        "I": "converged or rounds done?",
        "J": "update bias",
        "K": "gather weights (finish)",
        "L": "ok to client",
        "M": "end",
    },
    chain("ABCDEF")
    + (
        ("F", "G", "missing"),  # first: G sits beside F, off the J -> D arrow
        ("D", "G", "missing"),
        ("F", "H", "every block"),
        ("H", "I", ""),
        ("I", "J", "no"),
        ("J", "D", "next round"),
        ("I", "K", "yes"),
        ("K", "L", ""),
        ("L", "M", ""),
        ("G", "M", ""),
    ),
)

#: Predictions are model parallel too: each block's worker scores its columns of the rows.
FEATURE_SPLIT_PREDICT = Flowchart(
    "feature-split predict",
    {
        "A": "idle",
        "B": "predict request received",
        "C": "model fitted?",
        "D": "send each block its columns",
        "E": "sum partial scores + bias",
        "F": "error to client",
        "G": "end",
    },
    chain("ABCDE")
    + (("C", "F", "no"), ("D", "F", "a block missing"), ("E", "G", ""), ("F", "G", "")),
)
