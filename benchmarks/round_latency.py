"""Milliseconds per parameter-server round, for N workers x d features x payload encoding,
beside two floors measured in the same run.

A *round* is the master broadcasting the weights to N real worker processes and gathering
their gradients (flowchart steps D to K). The floors send the same number of bytes each way
to N echo processes over loopback, with no JSON and no arithmetic:

* the **TCP floor**: plain sockets, no HTTP: what the machine costs before any framework;
* the **HTTP floor**: uvicorn with httptools serving a minimal ASGI echo, called by an
  aiohttp client (the kit's own server and client libraries, doing nothing else): what an
  HTTP round of these libraries cannot go below.

Ratios are computed within this run; ``kit/http`` is the one to watch (the goal is 1.5 at
N = 4, d = 1,000, binary).

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
ROUNDS = {10: 300, 1_000: 300, 100_000: 10}

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


HTTP_ECHO_SERVER = """
import socket, sys, uvicorn
async def echo(scope, receive, send):
    body, more = b"", True
    while more:
        message = await receive()
        body, more = body + message.get("body", b""), message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})
sock = socket.socket(); sock.bind(("127.0.0.1", 0)); sock.listen(128)
print(sock.getsockname()[1], flush=True)
config = uvicorn.Config(echo, http="httptools", log_level="warning", lifespan="off")
uvicorn.Server(config).run(sockets=[sock])
"""


async def _http_rounds(ports: list[int], n_bytes: int, n_rounds: int) -> float:
    """Seconds per round of N concurrent HTTP POSTs of ``n_bytes`` echoed back."""
    import aiohttp

    payload = bytes(n_bytes)
    async with aiohttp.ClientSession() as session:

        async def exchange(port: int) -> None:
            async with session.post(f"http://127.0.0.1:{port}/", data=payload) as answer:
                await answer.read()

        for _ in range(5):  # warm up: connections open, code paths hot
            await asyncio.gather(*(exchange(port) for port in ports))
        started = time.perf_counter()
        for _ in range(n_rounds):
            await asyncio.gather(*(exchange(port) for port in ports))
        return (time.perf_counter() - started) / n_rounds


def echo_floor(script: str, rounds, n_workers: int, n_bytes: int, n_rounds: int) -> float:
    """Seconds per round against ``n_workers`` processes running ``script`` (an echo server
    that prints its port)."""
    servers = [
        subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        for _ in range(n_workers)
    ]
    try:
        ports = [int(server.stdout.readline()) for server in servers]
        return asyncio.run(rounds(ports, n_bytes, n_rounds))
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
        f"{'workers':>7} {'d':>8} {'tcp ms':>8} {'http ms':>8} {'json ms':>8} "
        f"{'binary ms':>9} {'binary/http':>11} {'binary/tcp':>10} {'json/binary':>11}"
    )
    for n_features, base_rounds in ROUNDS.items():
        n_rounds = max(3, int(base_rounds * scale))
        X = rng.normal(size=(50, n_features))
        y = X[:, 0] + rng.normal(size=50)
        n_bytes = 8 * (n_features + 1)
        for n_workers in (1, 2, 4):
            workers = [SGDWorker("regressor").with_data(X, y) for _ in range(n_workers)]
            with LocalCluster(workers, name="bench") as cluster:
                json, binary = (
                    1e3 * seconds_per_round(cluster, encoding, n_rounds)
                    for encoding in ("json", "binary")
                )
            tcp = 1e3 * echo_floor(ECHO_SERVER, _floor_rounds, n_workers, n_bytes, n_rounds)
            http = 1e3 * echo_floor(HTTP_ECHO_SERVER, _http_rounds, n_workers, n_bytes, n_rounds)
            print(
                f"{n_workers:>7} {n_features:>8,} {tcp:>8.3f} {http:>8.3f} {json:>8.2f} "
                f"{binary:>9.2f} {binary / http:>11.2f} {binary / tcp:>10.1f} "
                f"{json / binary:>11.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
