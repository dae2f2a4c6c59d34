"""The alpha-beta cost model of a round, and a ledger that sets it beside what spans measured.

A message of ``n`` bytes takes ``alpha + n beta`` seconds: ``alpha`` is the latency paid per
message whatever its size, ``beta`` the seconds per byte (the inverse of the bandwidth). With
it, three topologies can be compared on paper at ``N`` workers and ``d`` parameters (each
a float64, 8 bytes), before any is run:

=============  ===========================  ================================================
topology       bytes at the busiest node    time of a round (links that queue)
=============  ===========================  ================================================
star (PS)      ``N d 8`` in and out          ``2 alpha + 2 N d 8 beta``
S shards       ``N (d / S) 8`` per shard     ``2 alpha + 2 max(N / S, 1) d 8 beta``
ring           ``2 (N-1)/N d 8`` per worker  ``2 (N-1) (alpha + (d / N) 8 beta)``
=============  ===========================  ================================================

"Links that queue" is the textbook's network: every node has one link, the messages of a
node wait for each other on it, and a message is one way.

The kit's emulated network (:mod:`chimera_nb.workers.network`) differs in two ways that
matter: it delays **each call on its own** (its round-trip latency, ``2 alpha``, plus its
request's and answer's bodies over the bandwidth), so calls to one node do not queue; and
every message is an HTTP call, a round trip, some of them the master's control calls.
``queued=False`` predicts the calls the kit makes, one after another, with ``d_s`` the
parameters of the busiest shard and ``c = (d + 1) / N`` the kit's ring chunk:

=============  =====================================================
topology       time of a round (the kit: each call delayed on its own)
=============  =====================================================
star (PS)      ``2 alpha + 2 d 8 beta``
S shards       ``10 alpha + 2 d_s 8 beta``
ring           ``2 alpha + 2 (N-1) (2 alpha + c 8 beta)``
=============  =====================================================

Each function's docstring derives its rows from the messages (and, for the kit, the calls)
a round makes. The model predicts the network's share of a round: the software's share
(HTTP, encoding, the gradient) is measured, by running the same rounds with no emulation
(``benchmarks/cost_model.py`` adds the two).

:func:`ledger` reads spans (the kit's one measurement of communication) into bytes per node
and per round, and sets a prediction beside them; :func:`round_seconds` gives each round's
wall time from the same spans.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from ..spans import Span

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "AlphaBeta",
    "RoundCost",
    "ledger",
    "ring_round",
    "round_seconds",
    "sharded_round",
    "star_round",
]

VALUE_BYTES = 8  # a float64 parameter on the wire


@dataclass(frozen=True)
class AlphaBeta:
    """A network: ``alpha`` seconds per message (one way), ``beta`` seconds per byte."""

    alpha: float
    beta: float

    @classmethod
    def emulated(cls, latency_ms: float, bandwidth_mbps: float) -> AlphaBeta:
        """The kit's ``cluster.network(latency_ms=, bandwidth_mbps=)``: its latency is a round
        trip (two messages), its bandwidth in megabits per second."""
        return cls(alpha=latency_ms / 2e3, beta=8 / (bandwidth_mbps * 1e6))


@dataclass(frozen=True)
class RoundCost:
    """What one round costs: its time, and the bytes one server (the master, or one shard;
    0 for a ring) and one worker send and receive."""

    topology: str
    n_workers: int
    n_parameters: int
    seconds: float
    server_bytes_sent: float
    server_bytes_received: float
    worker_bytes_sent: float
    worker_bytes_received: float


def star_round(
    n_workers: int, n_parameters: int, network: AlphaBeta, *, queued: bool = True
) -> RoundCost:
    """A parameter server's round: it sends ``d`` weights to each of ``N`` workers, each
    sends ``d`` gradients back.

    Bytes: the server sends ``N`` messages of ``8 d`` and receives as many: ``8 N d`` each
    way; a worker sends and receives ``8 d``.

    Time, links that queue: the ``N`` weight messages leave one after another on the
    server's link (``N 8 d beta``, plus one ``alpha`` for the last to arrive), and the ``N``
    gradients arrive one after another on it: ``2 alpha + 2 N 8 d beta``. Grows with ``N``.

    Time, calls delayed on their own (``queued=False``): each worker's call carries ``8 d``
    each way, all at once: ``2 alpha + 2 8 d beta``, whatever ``N``.
    """
    values = n_parameters * VALUE_BYTES
    on_busiest_link = n_workers * values if queued else values
    return RoundCost(
        "star",
        n_workers,
        n_parameters,
        2 * network.alpha + 2 * on_busiest_link * network.beta,
        n_workers * values,
        n_workers * values,
        values,
        values,
    )


def sharded_round(
    n_workers: int,
    n_parameters: int,
    n_shards: int,
    network: AlphaBeta,
    *,
    queued: bool = True,
    largest_shard: float | None = None,
) -> RoundCost:
    """``S`` parameter shards, each holding some of the parameters: every worker pulls its
    weights from, and pushes its gradient slice to, every shard.

    ``largest_shard``: the parameters the busiest shard holds, ``d / S`` by default. A hash
    ring rarely splits evenly (``master.placement_`` says how it did), and the busiest shard
    sets both the time and the bytes at the busiest node.

    Bytes: the busiest shard sends ``d_s = largest_shard`` values to each of ``N`` workers and
    receives as many: ``8 N d_s`` each way; a worker still moves ``8 d`` each way, in ``S``
    messages. (Weights and gradients only: the JSON of the control calls, and a pull's list
    of block names, come on top; the ledger shows them.)

    Time, links that queue: a shard's link carries ``8 N d_s`` each way and a worker's
    ``8 d``; the slower of the two sets the pace: ``2 alpha + 2 max(N d_s, d) 8 beta``. With
    ``S = N`` shards the server's bottleneck is gone (and ``S = 1`` is the star).

    Time, the kit's calls, each delayed on its own (``queued=False``), one after another:

    1. the master's ``sharded-step`` call to every worker (at once), whose answer comes
       back ``2 alpha`` late; inside it, each worker
    2. pulls from every shard at once: ``2 alpha + 8 d_s beta`` for the busiest;
    3. computes, then pushes to every shard at once: ``2 alpha + 8 d_s beta`` again;
    4. then the master asks every shard to propose its step (``2 alpha``),
    5. and to commit it (``2 alpha``).

    Five round trips and two slices: ``10 alpha + 2 8 d_s beta`` (the control calls' small
    JSON bodies left out).
    """
    values = n_parameters * VALUE_BYTES
    per_call = (n_parameters / n_shards if largest_shard is None else largest_shard) * VALUE_BYTES
    per_shard = n_workers * per_call
    if queued:
        seconds = 2 * network.alpha + 2 * max(per_shard, values) * network.beta
    else:
        seconds = 10 * network.alpha + 2 * per_call * network.beta
    return RoundCost(
        "sharded", n_workers, n_parameters, seconds, per_shard, per_shard, values, values
    )


def ring_round(
    n_workers: int, n_parameters: int, network: AlphaBeta, *, queued: bool = True
) -> RoundCost:
    """Ring all-reduce: the gradient is cut into ``N`` chunks of ``d / N`` values;
    reduce-scatter takes ``N - 1`` steps (each worker sends one chunk to its next neighbour
    and adds the one it receives), then all-gather ``N - 1`` more (passing on the finished
    chunks).

    Bytes: ``2 (N - 1)`` chunks each way per worker, ``2 (N - 1) / N 8 d`` (within one value a
    step when ``N`` does not divide ``d``): less than ``2 8 d``, whatever ``N``, and no node
    carries more than another.

    Time, links that queue (the textbook's one-way messages): the steps follow each other and
    every link carries one chunk per step, so nothing queues:
    ``2 (N - 1) (alpha + 8 (d / N) beta)``. The bandwidth term stays below ``2 8 d beta``; the
    latency term grows with ``N``.

    Time, the kit's calls (``queued=False``): the kit reduces ``d + 1`` values, the gradient
    times the worker's sample count and the count itself (so every replica can divide by
    the total), in chunks of ``c = (d + 1) / N``. A step is an HTTP POST of one chunk to the
    right neighbour, answered (empty) ``2 alpha + 8 c beta`` later; a worker starts its next
    step once that answer and its left neighbour's chunk are in. The chunk is not what it
    waits for: it left at the same moment and takes ``alpha + 8 c beta`` on a real link (the
    kit's emulation even hands it over at once and delays only the answer). Around the
    ``2 (N - 1)`` steps, the master's ``ring/round`` call, answered ``2 alpha`` late:
    ``2 alpha + 2 (N - 1) (2 alpha + 8 c beta)``. The bytes are those of ``d + 1`` values.
    """
    values = n_parameters if queued else n_parameters + 1
    chunk = values * VALUE_BYTES / n_workers
    steps = 2 * (n_workers - 1)
    if queued:
        seconds = steps * (network.alpha + chunk * network.beta)
    else:
        seconds = 2 * network.alpha + steps * (2 * network.alpha + chunk * network.beta)
    return RoundCost(
        "ring", n_workers, n_parameters, seconds, 0.0, 0.0, steps * chunk, steps * chunk
    )


def _rows(spans: Iterable[Span] | pd.DataFrame) -> list[dict[str, Any]]:
    """Spans as dicts with ``round``, ``peer``, ``worker``, bytes, ``start`` and ``end``."""
    if hasattr(spans, "to_dict"):  # a DataFrame from SpanLog.to_frame()
        return spans.to_dict("records")
    return [{**asdict(span), "round": span.round_number} for span in spans]


def _in_round(row: dict[str, Any]) -> bool:
    value = row.get("round")
    return value is not None and value == value  # pandas gives NaN for None


def ledger(
    spans: Iterable[Span] | pd.DataFrame, prediction: RoundCost | None = None
) -> pd.DataFrame:
    """Bytes each node sent and received per round, from the spans of the rounds' calls.

    A span is one call: its caller (``peer``, or the master when None) sent ``bytes_sent``
    and received ``bytes_received``; the worker called did the opposite. Summed per node and
    divided by the number of rounds, beside ``prediction`` (a server's bytes for the master,
    a worker's for each worker; NaN where it says nothing) and their ratio. Bodies only:
    headers, the frames' framing, are not in spans.
    """
    import pandas as pd

    rows = [row for row in _rows(spans) if _in_round(row)]
    totals: dict[str, list[float]] = {}
    for row in rows:
        caller = row.get("peer") or "master"
        if caller != caller:  # NaN from a DataFrame: the master
            caller = "master"
        totals.setdefault(caller, [0.0, 0.0])
        totals.setdefault(row["worker"], [0.0, 0.0])
        totals[caller][0] += row["bytes_sent"]
        totals[caller][1] += row["bytes_received"]
        totals[row["worker"]][0] += row["bytes_received"]
        totals[row["worker"]][1] += row["bytes_sent"]
    n_rounds = max(1, len({row["round"] for row in rows}))
    frame = pd.DataFrame(
        [(node, sent / n_rounds, received / n_rounds) for node, (sent, received) in totals.items()],
        columns=["node", "sent_per_round", "received_per_round"],
    )
    master = frame["node"] == "master"
    for column in ("sent", "received"):
        predicted = float("nan")
        if prediction is not None:
            server = getattr(prediction, f"server_bytes_{column}")
            worker = getattr(prediction, f"worker_bytes_{column}")
            predicted = master.map({True: server or float("nan"), False: worker})
        frame[f"predicted_{column}"] = predicted
        frame[f"{column}_ratio"] = frame[f"{column}_per_round"] / frame[f"predicted_{column}"]
    frame.attrs["n_rounds"] = n_rounds
    return frame


def round_seconds(spans: Iterable[Span] | pd.DataFrame) -> pd.Series:
    """Each round's wall time: from its first call's start to its last call's end."""
    import pandas as pd

    rows = [row for row in _rows(spans) if _in_round(row)]
    frame = pd.DataFrame(rows, columns=["round", "start", "end"])
    grouped = frame.groupby("round")
    return (grouped["end"].max() - grouped["start"].min()).rename("seconds")
