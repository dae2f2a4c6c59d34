"""The alpha-beta cost model against measured rounds of every topology, under an emulated network.

For N = 2, 4 workers and d = 2,001, 20,001 parameters (features and the bias), three
topologies run a few rounds each on the same data:

* ``star``: :class:`~chimera_nb.ParameterServerMaster` (binary frames);
* ``sharded``: :class:`~chimera_nb.ShardedParameterServerMaster` on S = 2 parameter shards
  (the weights cut into 32 blocks, placed by the hash ring);
* ``ring``: :class:`~chimera_nb.RingAllReduceMaster`.

Each runs first with no emulation (``loopback``: the round's software time, HTTP, encoding and
the gradient), then with ``cluster.network(name, latency_ms=5, bandwidth_mbps=100)`` on every
worker and every shard: that setting applies to every caller of the node, the master and the
other workers alike, so every call of a round, the workers' calls to the shards and to their
ring neighbour included, crosses one emulated link. Spans give each round's wall time (first
call sent to last answer in; the median of the rounds between the first, which opens the
connections, and the last, which takes no step) and the bytes per node (the ledger).

Beside them, the cost model: ``predicted`` is the alpha-beta time of the calls the kit makes,
each delayed on its own (``queued=False``, as the emulation delays them), plus the loopback
round: the model predicts the network's share, the loopback run measures the software's.
``ratio`` = measured / predicted, the target within 30%. The bytes are those received per
round by the busiest node (the master of a star, the shard holding most blocks, any ring
worker), measured from spans beside the model's; the queued column is the textbook network,
where a node's messages wait for each other on its one link, shown for contrast (the kit's
emulation does not queue).

The loopback rounds are the noisy part: on a machine that other work keeps busy, a round's
software time swings by 2x from one fit to the next, and on a busy machine it overlaps the
emulated waits (the other processes run while one sleeps), so the sum over-predicts. The
fits alternate, loopback then emulated, so both medians see the same load; the machine's
load average is printed before and after.

    python benchmarks/cost_model.py          # 30-50 s
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from chimera_nb import (
    LocalCluster,
    ParameterServerMaster,
    ParameterShard,
    RingAllReduceMaster,
    RingWorker,
    ShardedParameterServerMaster,
    ShardedSGDWorker,
)
from chimera_nb.algorithms import (
    AlphaBeta,
    ParameterBlocks,
    RoundCost,
    ledger,
    ring_round,
    round_seconds,
    sharded_round,
    star_round,
)

LATENCY_MS, BANDWIDTH_MBPS = 5.0, 100.0
N_ROUNDS = 8
REPEATS = 2  # loopback and emulated fits, taken in turns
N_ROWS_PER_WORKER = 50
N_SHARDS, N_BLOCKS = 2, 32
GRID = [(2, 2_000), (2, 20_000), (4, 2_000), (4, 20_000)]  # (N workers, d features)
NETWORK = AlphaBeta.emulated(LATENCY_MS, BANDWIDTH_MBPS)


@dataclass
class Row:
    """One topology at one (N, d): what ran, and what the model says."""

    topology: str
    n_workers: int
    d: int
    loopback: float
    measured: float
    kit: RoundCost
    queued: RoundCost
    busiest: str
    received: float
    predicted_received: float

    def print(self) -> None:
        predicted = self.kit.seconds + self.loopback
        print(
            f"{self.topology:<9}{self.n_workers:>3}{self.d:>8}{self.loopback * 1e3:>10.1f}"
            f"{self.kit.seconds * 1e3:>9.1f}{predicted * 1e3:>11.1f}{self.measured * 1e3:>10.1f}"
            f"{self.measured / predicted:>7.2f}  {self.busiest:<9}{self.received:>11,.0f}"
            f"{self.predicted_received:>11,.0f}{self.received / self.predicted_received:>7.3f}"
            f"{self.queued.seconds * 1e3:>11.1f}"
        )


def round_times(master) -> list[float]:
    """A fit's round times, leaving out the first (new connections) and the last (no step)."""
    return round_seconds(master.spans_.snapshot()).iloc[1:-1].tolist()


def emulate(clusters: list, latency_ms: float, bandwidth_mbps: float | None) -> None:
    """The same emulated link in front of every node of ``clusters`` (0 and None: none)."""
    for cluster in clusters:
        for name in cluster.names:
            cluster.network(name, latency_ms=latency_ms, bandwidth_mbps=bandwidth_mbps)


def paired(run: Callable[[], object], clusters: list) -> tuple[float, float, object]:
    """The median round of ``run`` on loopback and under the emulation, fits taken in turns
    (the machine's load drifts; both medians see the same drift), and the last emulated
    fit's master."""
    loopback: list[float] = []
    emulated: list[float] = []
    for _ in range(REPEATS):
        loopback += round_times(run())
        emulate(clusters, LATENCY_MS, BANDWIDTH_MBPS)
        try:
            master = run()
        finally:
            emulate(clusters, 0.0, None)
        emulated += round_times(master)
    return float(np.median(loopback)), float(np.median(emulated)), master


def largest_shard(master: ShardedParameterServerMaster, n_features: int) -> int:
    """The parameters on the shard that holds the most, as the hash ring placed the blocks."""
    layout = ParameterBlocks(1, n_features, N_BLOCKS)
    held: dict[str, int] = {}
    for block, shard in master.placement_.items():
        size = 1 if block == "bias" else len(layout.columns(block))
        held[shard] = held.get(shard, 0) + size
    return max(held.values())


def measure(n_workers: int, n_features: int, shards: LocalCluster) -> list[Row]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n_workers * N_ROWS_PER_WORKER, n_features))
    y = X[:, :5].sum(axis=1) + rng.normal(size=len(X))
    d = n_features + 1
    options = {"max_iter": N_ROUNDS, "tol": 0.0, "learning_rate": 0.01}
    rows = []
    with (
        LocalCluster.from_shards(
            ShardedSGDWorker("regressor"), X, y, n_workers=n_workers, name=f"ps{n_workers}"
        ) as workers,
        LocalCluster.from_shards(
            RingWorker("regressor"), X, y, n_workers=n_workers, name=f"ring{n_workers}"
        ) as ring,
    ):
        loopback, measured, star = paired(
            lambda: ParameterServerMaster("regressor", encoding="binary", **options).fit(workers),
            [workers],
        )
        table = ledger(star.spans_.snapshot()).set_index("node")
        rows.append(
            Row(
                "star",
                n_workers,
                d,
                loopback,
                measured,
                star_round(n_workers, d, NETWORK, queued=False),
                star_round(n_workers, d, NETWORK),
                "master",
                table.loc["master", "received_per_round"],
                star_round(n_workers, d, NETWORK).server_bytes_received,
            )
        )
        loopback, measured, sharded = paired(
            lambda: ShardedParameterServerMaster(
                "regressor", servers=shards, n_blocks=N_BLOCKS, **options
            ).fit(workers),
            [workers, shards],
        )
        largest = largest_shard(sharded, n_features)
        kit = sharded_round(n_workers, d, N_SHARDS, NETWORK, queued=False, largest_shard=largest)
        table = ledger(sharded.spans_.snapshot())
        busiest = table[table["node"].isin(shards.names)].sort_values("received_per_round")
        rows.append(
            Row(
                "sharded",
                n_workers,
                d,
                loopback,
                measured,
                kit,
                sharded_round(n_workers, d, N_SHARDS, NETWORK, largest_shard=largest),
                busiest["node"].iloc[-1],
                busiest["received_per_round"].iloc[-1],
                kit.server_bytes_received,
            )
        )
        loopback, measured, allreduce = paired(
            lambda: RingAllReduceMaster("regressor", **options).fit(ring), [ring]
        )
        kit = ring_round(n_workers, d, NETWORK, queued=False)
        table = ledger(allreduce.spans_.snapshot()).set_index("node").drop(index="master")
        rows.append(
            Row(
                "ring",
                n_workers,
                d,
                loopback,
                measured,
                kit,
                ring_round(n_workers, d, NETWORK),
                str(table["received_per_round"].idxmax()),
                table["received_per_round"].max(),
                kit.worker_bytes_received,
            )
        )
    return rows


def main() -> None:
    print(
        f"emulated link in front of every worker and shard: {LATENCY_MS:g} ms round trip, "
        f"{BANDWIDTH_MBPS:g} Mbit/s; times in ms per round, bytes received per round"
    )
    print(
        f"{'topology':<9}{'N':>3}{'d':>8}{'loopback':>10}{'network':>9}{'predicted':>11}"
        f"{'measured':>10}{'ratio':>7}  {'busiest':<9}{'bytes in':>11}{'predicted':>11}"
        f"{'ratio':>7}{'queued ms':>11}"
    )
    started, load = time.perf_counter(), os.getloadavg()[0]
    shards = {f"shard{i}": ParameterShard() for i in range(1, N_SHARDS + 1)}
    with LocalCluster(shards, name="cost-shards") as shard_cluster:
        for n_workers, n_features in GRID:
            for row in measure(n_workers, n_features, shard_cluster):
                row.print()
    print(
        f"({time.perf_counter() - started:.0f} s; load average {load:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after)"
    )


if __name__ == "__main__":
    main()
