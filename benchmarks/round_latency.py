"""Milliseconds per parameter-server round, for N workers x d features x payload encoding,
beside a raw loopback floor measured in the same run.

A *round* is the master broadcasting the weights to N real worker processes and gathering
their gradients (flowchart steps D to K). The floor sends the same number of bytes each way
to N plain TCP echo processes over loopback, with no HTTP, no JSON and no arithmetic: what
the machine costs before any framework does anything. Ratios are computed within this run.

    python benchmarks/round_latency.py            # the full grid (about a minute)
    python benchmarks/round_latency.py --quick    # fewer rounds
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time

import numpy as np

from chimera_nb import LocalCluster, ParameterServerMaster, SGDWorker

#: Rounds per cell, by number of features (fewer where one round is long).
ROUNDS = {10: 200, 1_000: 100, 100_000: 10}

ECHO_SERVER = """
import socket, sys, threading
listener = socket.socket(); listener.bind(("127.0.0.1", 0)); listener.listen()
print(listener.getsockname()[1], flush=True)
def serve(connection):
    with connection:
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while header := connection.recv(8, socket.MSG_WAITALL):
            size = int.from_bytes(header, "little")
            body = bytearray()
            while len(body) < size:
                body += connection.recv(size - len(body))
            connection.sendall(header + body)
while True:
    threading.Thread(target=serve, args=(listener.accept()[0],), daemon=True).start()
"""


async def _floor_rounds(ports: list[int], n_bytes: int, n_rounds: int) -> float:
    """Seconds per round of N concurrent echo exchanges of ``n_bytes`` each way."""
    streams = [await asyncio.open_connection("127.0.0.1", port) for port in ports]
    payload = len(payload_bytes := bytes(n_bytes)).to_bytes(8, "little") + payload_bytes

    async def exchange(reader, writer):
        writer.write(payload)
        await writer.drain()
        await reader.readexactly(len(payload))

    await asyncio.gather(*(exchange(*s) for s in streams))  # warm up
    started = time.perf_counter()
    for _ in range(n_rounds):
        await asyncio.gather(*(exchange(*s) for s in streams))
    elapsed = time.perf_counter() - started
    for _, writer in streams:
        writer.close()
    return elapsed / n_rounds


def loopback_floor(n_workers: int, n_bytes: int, n_rounds: int) -> float:
    servers = [
        subprocess.Popen([sys.executable, "-c", ECHO_SERVER], stdout=subprocess.PIPE, text=True)
        for _ in range(n_workers)
    ]
    try:
        ports = [int(server.stdout.readline()) for server in servers]
        return asyncio.run(_floor_rounds(ports, n_bytes, n_rounds))
    finally:
        for server in servers:
            server.kill()
            server.wait()


def seconds_per_round(cluster: LocalCluster, encoding: str, n_rounds: int) -> float:
    """Time from the first broadcast (D) to the last convergence check (J), per round."""
    master = ParameterServerMaster("regressor", max_iter=n_rounds - 1, tol=0.0, encoding=encoding)
    marks: list[float] = []
    master.events.subscribe(
        lambda e: (
            marks.append(e.time)
            if (e.step, e.round_number) in (("D", 1), ("J", n_rounds))
            else None
        )
    )
    master.fit(cluster)
    return (marks[1] - marks[0]) / n_rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds per cell")
    args = parser.parse_args()
    scale = 0.25 if args.quick else 1.0
    rng = np.random.default_rng(0)
    print(
        f"{'workers':>7} {'d':>8} {'floor ms':>9} {'json ms':>9} {'binary ms':>10} "
        f"{'json/floor':>10} {'binary/floor':>12} {'json/binary':>11}"
    )
    for n_features, base_rounds in ROUNDS.items():
        n_rounds = max(3, int(base_rounds * scale))
        X = rng.normal(size=(50, n_features))
        y = X[:, 0] + rng.normal(size=50)
        for n_workers in (1, 2, 4):
            workers = [SGDWorker("regressor").with_data(X, y) for _ in range(n_workers)]
            with LocalCluster(workers, name="bench") as cluster:
                milliseconds = {
                    encoding: 1e3 * seconds_per_round(cluster, encoding, n_rounds)
                    for encoding in ("json", "binary")
                }
            floor = 1e3 * loopback_floor(n_workers, 8 * (n_features + 1), n_rounds)
            json, binary = milliseconds["json"], milliseconds["binary"]
            print(
                f"{n_workers:>7} {n_features:>8,} {floor:>9.3f} {json:>9.2f} {binary:>10.2f} "
                f"{json / floor:>10.1f} {binary / floor:>12.1f} {json / binary:>11.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
