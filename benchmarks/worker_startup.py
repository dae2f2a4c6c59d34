"""Seconds from ``LocalCluster.start()`` to every worker answering ``/health``.

The first cluster of a process also starts the zygote (the fork server that imports numpy,
FastAPI and uvicorn once); later clusters only fork. Each line is measured in this run, in a
fresh Python process per "first" measurement so that nothing is warm.

    python benchmarks/worker_startup.py
"""

from __future__ import annotations

import subprocess
import sys

MEASURE = """
import time
import numpy as np
from chimera_nb import LocalCluster, SGDWorker
X = np.random.default_rng(0).normal(size=(100, 10)); y = X[:, 0]
times = []
for _ in range(4):
    cluster = LocalCluster.from_shards(SGDWorker("regressor"), X, y, n_workers={n})
    started = time.perf_counter()
    cluster.start()
    times.append(time.perf_counter() - started)
    cluster.close()
print(times[0], min(times[1:]))
"""


def main() -> None:
    print(f"{'workers':>7} {'first cluster s':>16} {'later cluster s':>16} {'first/later':>12}")
    for n_workers in (1, 2, 4):
        output = subprocess.run(
            [sys.executable, "-c", MEASURE.format(n=n_workers)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        first, later = map(float, output.split())
        print(f"{n_workers:>7} {first:>16.3f} {later:>16.3f} {first / later:>12.1f}", flush=True)


if __name__ == "__main__":
    main()
