"""Federated averaging's cost on the issue's workload: wine quality, 3 clients, 50 rounds of
1 local epoch (full batch unless ``--batch-size``), every client sampled.

Prints the time per round (from the first round's step D to the last round's step K, read off
the master's flowchart events), the time to the first round's end after ``start()`` (the
cluster's start included) and after the fit began (excluded), and the peak memory: the master
process's peak RSS and its tracemalloc peak during the fit, and each client's USS (memory of
its own, psutil). Targets (issue 13): under 10 ms per round and the first round under 1 s on
2 cores. Timings are printed, never asserted.

    python benchmarks/federated.py
    python benchmarks/federated.py --batch-size 32 --profile   # where a round's time goes
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import resource
import time
import tracemalloc

import psutil
from sklearn.base import clone

from chimera_nb import (
    FederatedAveragingMaster,
    FederatedClient,
    LocalCluster,
    ParameterServerMaster,
)
from chimera_nb.datasets import load_wine_quality

N_CLIENTS, N_ROUNDS = 3, 50


def parameter_server_round(cluster: LocalCluster) -> float:
    """Seconds per round of the parameter server's full-batch GD on the same clients (binary
    fit-steps), step D of round 1 to step J of the last: the reference a FedAvg round adds
    local training and a weights frame to."""
    master = ParameterServerMaster("regressor", max_iter=N_ROUNDS - 1, tol=0.0, encoding="binary")
    marks: dict[tuple[str, int | None], float] = {}
    master.events.subscribe(
        lambda event: marks.setdefault((event.step, event.round_number), time.perf_counter())
    )
    master.fit(cluster)
    return (marks[("J", N_ROUNDS)] - marks[("D", 1)]) / N_ROUNDS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=None, help="rows per local step")
    parser.add_argument("--profile", action="store_true", help="cProfile the master's fit")
    args = parser.parse_args()
    X, y = load_wine_quality(return_X_y=True)
    started = time.perf_counter()
    cluster = LocalCluster.from_shards(FederatedClient("regressor"), X, y, n_workers=N_CLIENTS)
    with cluster:
        cluster_up = time.perf_counter()
        master = FederatedAveragingMaster(
            "regressor",
            n_rounds=N_ROUNDS,
            local_epochs=1,
            batch_size=args.batch_size,
            random_state=0,
        )
        marks: dict[tuple[str, int | None], float] = {}
        master.events.subscribe(
            lambda event: marks.setdefault((event.step, event.round_number), time.perf_counter())
        )
        fit_started = time.perf_counter()
        master.fit(cluster)  # timed: no tracemalloc (it slows every allocation)
        if args.profile:  # the fit's coroutine in this thread, where cProfile sees it
            profile = cProfile.Profile()
            profile.runcall(asyncio.run, clone(master).fit_async(cluster))
        tracemalloc.start()
        master.fit(cluster)  # the same fit again, for the peak of the master's allocations
        _, traced_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        reference = parameter_server_round(cluster)
        clients_uss = {
            name: psutil.Process(pid).memory_full_info().uss for name, pid in cluster.pids.items()
        }
    per_round = (marks[("K", N_ROUNDS)] - marks[("D", 1)]) / N_ROUNDS
    first_round = marks[("K", 1)]
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    batch = "full batch" if args.batch_size is None else f"batches of {args.batch_size}"
    print(
        f"wine quality ({len(X)} rows), {N_CLIENTS} clients, {N_ROUNDS} rounds, "
        f"1 local epoch ({batch}), loss {master.loss_curve_[-1]:.4f}"
    )
    print(
        f"time per round: {1e3 * per_round:.2f} ms (target < 10 ms); the parameter server's "
        f"full-batch round on the same clients: {1e3 * reference:.2f} ms"
    )
    print(
        f"first round done {first_round - started:.3f} s after start(), cluster start "
        f"included (target < 1 s); {first_round - fit_started:.3f} s after fit() "
        f"(cluster up in {cluster_up - started:.3f} s)"
    )
    print(
        f"master: peak RSS {peak_rss:.0f} MiB, tracemalloc peak during the fit "
        f"{traced_peak / 2**20:.2f} MiB"
    )
    print("clients' USS: " + ", ".join(f"{n} {b / 2**20:.1f} MiB" for n, b in clients_uss.items()))
    if args.profile:
        pstats.Stats(profile).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
