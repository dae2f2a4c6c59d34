"""The alpha-beta cost model against measured rounds, under an emulated network.

Every worker gets ``cluster.network(name, latency_ms=LATENCY_MS, bandwidth_mbps=100)``; a
parameter-server fit (binary frames) runs a few rounds; spans give each round's wall time
(first call sent to last answer in) and the bytes per node (the ledger). Beside them, the
cost model's predictions:

* ``predicted``: the kit's emulation delays each call on its own (``queued=False``), plus the
  round's software time (HTTP, encoding, the gradient), measured on the same cluster with
  the emulation off (``loopback``): the alpha-beta model predicts the network's share of a
  round, not the software's. Compared with the measurement (target: within 30%);
* ``queued``: the textbook star, whose N messages queue on the server's one link: what a
  real server with one 100 Mbit/s link would see, shown for contrast (not measurable here:
  the master's own link is loopback).

Ring all-reduce and sharded servers have formulas (``ring_round``, ``sharded_round``) but no
master on this branch yet, so their rows are predictions only.

    python benchmarks/cost_model.py          # about 30 s
"""

from __future__ import annotations

import time

import numpy as np

from chimera_nb import LocalCluster, ParameterServerMaster, SGDWorker
from chimera_nb.algorithms import (
    AlphaBeta,
    ledger,
    ring_round,
    round_seconds,
    sharded_round,
    star_round,
)

LATENCY_MS, BANDWIDTH_MBPS = 5.0, 100.0
N_ROUNDS = 15
N_ROWS_PER_WORKER = 50
GRID = [(2, 2_000), (2, 20_000), (4, 2_000), (4, 20_000)]  # (N workers, d features)


def measure(n_workers: int, n_features: int) -> tuple[float, float, float]:
    """Median round seconds on loopback, then under the emulated network, and the bytes the
    master received per round there."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n_workers * N_ROWS_PER_WORKER, n_features))
    y = X[:, :5].sum(axis=1) + rng.normal(size=len(X))
    with LocalCluster.from_shards(
        SGDWorker("regressor"), X, y, n_workers=n_workers, name=f"cost{n_workers}"
    ) as cluster:
        master = ParameterServerMaster(
            "regressor", max_iter=N_ROUNDS, tol=0.0, learning_rate=0.01, encoding="binary"
        )
        loopback = median_round(master.fit(cluster).spans_.snapshot())
        for name in cluster.names:
            cluster.network(name, latency_ms=LATENCY_MS, bandwidth_mbps=BANDWIDTH_MBPS)
        spans = master.fit(cluster).spans_.snapshot()
    received = ledger(spans).set_index("node").loc["master", "received_per_round"]
    return loopback, median_round(spans), received


def median_round(spans) -> float:
    return float(round_seconds(spans).iloc[1:].median())  # round 1 warms the connections


def main() -> None:
    network = AlphaBeta.emulated(LATENCY_MS, BANDWIDTH_MBPS)
    print(f"emulated network on every worker: {LATENCY_MS} ms round trip, {BANDWIDTH_MBPS} Mbit/s")
    print(
        f"{'topology':<10}{'N':>3}{'d':>8}{'loopback':>10}{'predicted ms':>14}{'measured ms':>13}"
        f"{'ratio':>7}  {'bytes in at master':>19}{'predicted':>10}  {'queued ms':>10}"
    )
    started = time.perf_counter()
    for n_workers, n_features in GRID:
        d = n_features + 1  # the bias
        per_call = star_round(n_workers, d, network, queued=False)
        queued = star_round(n_workers, d, network)
        loopback, seconds, received = measure(n_workers, n_features)
        predicted = per_call.seconds + loopback
        print(
            f"{'star':<10}{n_workers:>3}{d:>8}{loopback * 1e3:>10.1f}{predicted * 1e3:>14.1f}"
            f"{seconds * 1e3:>13.1f}{seconds / predicted:>7.2f}  {received:>19,.0f}"
            f"{per_call.server_bytes_received:>10,.0f}  {queued.seconds * 1e3:>10.1f}"
        )
    for n_workers, n_features in GRID:
        d = n_features + 1
        for cost in (sharded_round(n_workers, d, 2, network), ring_round(n_workers, d, network)):
            busiest = max(cost.server_bytes_received, cost.worker_bytes_received)
            print(
                f"{cost.topology:<10}{n_workers:>3}{d:>8}{'-':>10}{cost.seconds * 1e3:>14.1f}"
                f"{'-':>13}{'-':>7}  {'-':>19}{busiest:>10,.0f}  (queued links; no master yet)"
            )
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
