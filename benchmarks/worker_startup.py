"""Seconds from ``LocalCluster.start()`` to every worker answering ``/health``, and the memory
each worker process takes.

The first cluster of a process also starts the zygote (the fork server that imports numpy,
FastAPI and uvicorn once); later clusters only fork. Each line is measured in this run, in a
fresh Python process per "first" measurement so that nothing is warm.

Memory per worker is measured after one fit of 20 rounds: RSS counts every page the process
touches, USS only the pages no other process shares. Forked workers share the zygote's
imported libraries, so USS is what each extra worker costs (what matters on Binder's 2 GB).

    python benchmarks/worker_startup.py
"""

from __future__ import annotations

import json
import subprocess
import sys

MEASURE = """
import json, time
import numpy as np
import psutil
from chimera_nb import LocalCluster, ParameterServerMaster, SGDWorker
X = np.random.default_rng(0).normal(size=(10_000, 10)); y = X[:, 0]
times, memory = [], []
for _ in range(4):
    cluster = LocalCluster.from_shards(SGDWorker("regressor"), X, y, n_workers={n})
    started = time.perf_counter()
    cluster.start()
    times.append(time.perf_counter() - started)
    if not memory:
        ParameterServerMaster("regressor", max_iter=20).fit(cluster)
        for pid in cluster.pids.values():
            info = psutil.Process(pid).memory_full_info()
            memory.append((info.rss, info.uss))
    cluster.close()
rss, uss = np.mean(memory, axis=0) / 2**20
print(json.dumps([times[0], min(times[1:]), rss, uss]))
"""


def main() -> None:
    print(
        f"{'workers':>7} {'first cluster s':>16} {'later cluster s':>16} {'first/later':>12} "
        f"{'RSS MiB/worker':>15} {'USS MiB/worker':>15}"
    )
    for n_workers in (1, 2, 4):
        output = subprocess.run(
            [sys.executable, "-c", MEASURE.format(n=n_workers)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        first, later, rss, uss = json.loads(output)
        print(
            f"{n_workers:>7} {first:>16.3f} {later:>16.3f} {first / later:>12.1f} "
            f"{rss:>15.1f} {uss:>15.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
