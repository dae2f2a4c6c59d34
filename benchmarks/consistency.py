"""Wall time for BSP, SSP(3), ASP and staleness-aware ASP to reach BSP's final loss, with one
worker slowed 10x: for good (a persistent straggler), then a different worker every 0.1 s
(a transient one).

Wine quality on 3 local workers (random shards, so every shard looks like the whole data).
A normal fit-step is measured first (the median latency of a BSP fit); the straggler then
answers 9 normal steps late, so its step takes about 10 of them.

The target is the loss of the weights BSP returns after ``--rounds`` rounds. A mode's time
to reach it: fits with growing budgets (``max_iter`` from rounds/8, x 2**(1/4) each time, up
to 4 x rounds, then bisected to within 5%); the smallest budget whose *returned* weights
reach the target gives the time, the wall time of that whole ``fit()`` call (as BSP's). The
loss of the returned weights is the fit's last round in ``history_``, which evaluates them
on every shard. (The other records of an SSP or ASP fit are one per closed clock, and a
clock closes only when the slowest worker sent its gradient; their losses are measured on
the weights each worker read, so they lag behind what the fast workers achieved. Hence the
returned weights, not those records.)

Each time printed is the median of ``--repeat`` fits of that budget (the machine may be
shared); ratios are computed within this run; nothing is asserted.

    python benchmarks/consistency.py                # about a minute
    python benchmarks/consistency.py --shards contiguous   # notebook 4's non-IID shards
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

import numpy as np

from chimera_nb import LocalCluster, ParameterServerMaster, SGDWorker
from chimera_nb.datasets import load_wine_quality

MODES = {
    "BSP": {},
    "SSP(3)": {"consistency": "ssp", "staleness": 3},
    "ASP": {"consistency": "asp"},
    "ASP, staleness-aware": {"consistency": "asp", "staleness_aware": True},
}
SLOWDOWN = 10  # the straggler's step, in normal steps
ROTATE_EVERY = 0.1  # seconds a transient straggler stays slow
BUDGET_GROWTH = 2**0.25


def fit(cluster: LocalCluster, max_iter: int, options: dict) -> tuple[ParameterServerMaster, float]:
    """One fit to the end of its budget (``tol=0``), and its wall time in seconds."""
    master = ParameterServerMaster(
        "regressor", max_iter=max_iter, tol=0.0, random_state=0, **options
    )
    started = time.perf_counter()
    master.fit(cluster)
    return master, time.perf_counter() - started


def normal_step(cluster: LocalCluster, rounds: int) -> float:
    """Seconds of a normal fit-step: the median latency of a BSP fit's calls."""
    master, _ = fit(cluster, rounds, {})
    return float(np.median([ms for r in master.history_ for ms in r.latency_ms.values()])) / 1e3


@contextmanager
def rotating_straggler(cluster: LocalCluster, seconds: float, every: float) -> Iterator[None]:
    """Slow one worker at a time by ``seconds``, a new one every ``every`` seconds."""
    names, finished = list(cluster.endpoints), threading.Event()

    def rotate() -> None:
        for turn in range(100_000):  # bounded; the block's end stops it long before
            name = names[turn % len(names)]
            cluster.slow(name, seconds)
            stop = finished.wait(every)
            cluster.slow(name, 0)
            if stop:
                return

    thread = threading.Thread(target=rotate, name="rotating-straggler", daemon=True)
    thread.start()
    try:
        yield
    finally:
        finished.set()
        thread.join(timeout=10)


def time_to_reach(cluster, options, target, rounds, straggler) -> tuple:
    """(budget, seconds, loss, master) of the smallest budget found whose returned weights
    reach ``target`` (grown by BUDGET_GROWTH, then bisected to within 5%); the last fit tried,
    with budget None, if none up to 4 x rounds does."""

    def attempt(budget: int) -> tuple:
        with straggler():
            master, seconds = fit(cluster, budget, options)
        return budget, seconds, master.history_[-1].loss, master

    failed, budget = 0, max(1, rounds // 8)
    while (found := attempt(budget))[2] > target:
        if budget >= 4 * rounds:
            return (None, *found[1:])
        failed, budget = budget, min(4 * rounds, max(budget + 1, round(budget * BUDGET_GROWTH)))
    while found[0] - failed > max(1, found[0] // 20):  # bisect between the last two budgets
        middle = attempt((failed + found[0]) // 2)
        if middle[2] <= target:
            found = middle
        else:
            failed = middle[0]
    return found


def median_seconds(cluster, budget, options, straggler, repeat, first: float) -> float:
    """The median wall time of ``repeat`` fits of ``budget`` (``first``: one already run)."""
    seconds = [first]
    for _ in range(repeat - 1):
        with straggler():
            seconds.append(fit(cluster, budget, options)[1])
    return float(np.median(seconds))


def report(title: str, cluster: LocalCluster, rounds: int, straggler, repeat: int) -> None:
    with straggler():
        bsp, bsp_seconds = fit(cluster, rounds, {})
    bsp_seconds = median_seconds(cluster, rounds, {}, straggler, repeat, bsp_seconds)
    target = bsp.history_[-1].loss
    print(f"\n{title}: BSP's final loss after {rounds} rounds {target:.5f}, in {bsp_seconds:.2f} s")
    print(
        f"{'mode':<22} {'budget':>7} {'seconds':>8} {'x BSP':>6} {'loss':>8} "
        f"{'max staleness':>13} {'max delay':>9}"
    )
    print(f"{'BSP':<22} {rounds:>7} {bsp_seconds:>8.2f} {1:>6.2f} {target:>8.5f} {0:>13} {0:>9}")
    for mode, options in list(MODES.items())[1:]:
        budget, seconds, loss, master = time_to_reach(cluster, options, target, rounds, straggler)
        staleness = max(u.staleness for u in master.updates_)
        delay = max(u.delay for u in master.updates_)
        if budget is None:
            shown = f"{'>' + str(4 * rounds):>7} {'not reached':>15}"
        else:
            seconds = median_seconds(cluster, budget, options, straggler, repeat, seconds)
            shown = f"{budget:>7} {seconds:>8.2f} {seconds / bsp_seconds:>6.2f}"
        print(f"{mode:<22} {shown} {loss:>8.5f} {staleness:>13} {delay:>9}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=100, help="BSP's max_iter")
    parser.add_argument("--shards", choices=["random", "contiguous"], default="random")
    parser.add_argument("--repeat", type=int, default=3, help="fits per time printed")
    args = parser.parse_args()
    X, y = load_wine_quality(return_X_y=True)
    worker = SGDWorker("regressor")
    started = time.perf_counter()
    with LocalCluster.from_shards(
        worker, X, y, n_workers=3, method=args.shards, random_state=0, name="bench"
    ) as cluster:
        step = normal_step(cluster, args.rounds)
        delay = (SLOWDOWN - 1) * step
        print(
            f"wine quality, 3 workers, {args.shards} shards; a normal fit-step takes "
            f"{1e3 * step:.2f} ms, the straggler answers {1e3 * delay:.1f} ms late"
        )
        print(
            "seconds: wall time of a fit with the smallest budget (max_iter) found whose "
            "returned weights reach BSP's final loss (loss: theirs, from the fit's last "
            f"round); median of {args.repeat} fits"
        )
        cluster.slow("worker2", delay)
        report("persistent straggler (worker2)", cluster, args.rounds, nullcontext, args.repeat)
        cluster.slow("worker2", 0)
        report(
            f"transient straggler (a different worker every {ROTATE_EVERY} s)",
            cluster,
            args.rounds,
            lambda: rotating_straggler(cluster, delay, ROTATE_EVERY),
            args.repeat,
        )
    print(f"\n(total {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
