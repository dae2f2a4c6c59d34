"""The pipeline's bubble, measured beside its theory, and the activations each schedule holds.

Three PipelineStageWorker processes (p = 3) train a (64, 32) MLP on digits, one epoch of
batches of 450 rows (4 steps), with m = 1, 4 and 8 micro-batches, under GPipe and under 1F1B.
For each step the master measures the bubble from the stages' compute spans:
``1 - (time computing, all stages) / (p * makespan)``, the makespan running from the step's
first compute to its last; the median over the steps is printed beside ``(p - 1) / (m + p - 1)``.

The theory assumes the compute dominates: every forward and backward takes the same time and
passing an activation costs nothing. This network's real ops take tens of microseconds, a
loopback POST about a millisecond, so the benchmark makes each op last
``--op-seconds`` (30 ms by default) on its stage (``emulated_op_seconds``: the stage sleeps
the rest of the op, as if the model were larger); the last lines show the same run without
emulation, where the calls dominate and the bubble is not the schedule's.

The peak of stashed activations is what each stage reported (the most micro-batches it held
between their forward and their backward), beside the count from the schedule itself.
Timings are printed, never asserted.

    python benchmarks/pipeline_bubble.py
    python benchmarks/pipeline_bubble.py --op-seconds 0.05
"""

from __future__ import annotations

import argparse
import statistics
import time

from sklearn.datasets import load_digits
from sklearn.preprocessing import StandardScaler

from chimera_nb import LocalCluster, PipelineMaster, PipelineStageWorker
from chimera_nb.algorithms.pipeline_schedules import SCHEDULES, bubble_fraction, peak_stashed

N_STAGES, MICROBATCHES, HIDDEN, BATCH = 3, (1, 4, 8), (64, 32), 450


def run(cluster: LocalCluster, schedule: str, m: int, op_seconds: float) -> PipelineMaster:
    """One epoch of ``schedule`` with ``m`` micro-batches."""
    master = PipelineMaster(
        HIDDEN,
        n_microbatches=m,
        schedule=schedule,
        max_iter=1,
        batch_size=BATCH,
        random_state=0,
        emulated_op_seconds=op_seconds,
    )
    return master.fit(cluster)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--op-seconds", type=float, default=0.03, help="emulated time per op")
    args = parser.parse_args()
    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    started = time.perf_counter()
    with LocalCluster([PipelineStageWorker().with_data(X, y)] * N_STAGES) as cluster:
        print(
            f"digits ({len(X)} rows), MLP {HIDDEN}, p = {N_STAGES} stages, batches of {BATCH} "
            f"rows, each forward and backward lasting {1e3 * args.op_seconds:g} ms (emulated)"
        )
        print(f"{'m':>3} {'schedule':>8} {'bubble':>7} {'theory':>7} {'|diff|':>7}  peak held")
        for m in MICROBATCHES:
            theory = bubble_fraction(N_STAGES, m)
            for schedule in ("gpipe", "1f1b"):
                master = run(cluster, schedule, m, args.op_seconds)
                fits = [r for r in master.history_ if r.extra.get("n_microbatches") == m]
                bubble = statistics.median(r.extra["bubble"] for r in fits)
                held = list(fits[0].extra["peak_stashed"].values())
                counted = [peak_stashed(ops) for ops in SCHEDULES[schedule](N_STAGES, m)]
                print(
                    f"{m:>3} {schedule:>8} {bubble:>7.3f} {theory:>7.3f} "
                    f"{abs(bubble - theory):>7.3f}  {held} (schedule: {counted})"
                )
        print("without emulation (real ops of microseconds; the HTTP calls dominate):")
        for m in MICROBATCHES:
            master = run(cluster, "1f1b", m, 0.0)
            bubble = statistics.median(r.extra["bubble"] for r in master.history_)
            print(f"{m:>3} {'1f1b':>8} {bubble:>7.3f} {bubble_fraction(N_STAGES, m):>7.3f}")
    print(f"benchmark took {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
