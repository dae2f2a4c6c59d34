"""A worker's calls to the parameter shards: pull weights, push gradient slices.

A worker-to-worker call, so it names its caller in ``X-Chimera-Peer`` (the shard's emulated
network then applies that link's latency, bandwidth and drops) and carries the worker's own
token, if it was started with one. Every call leaves a :class:`~chimera_nb.spans.Span` with
``peer`` set to the calling worker; the worker returns them with its reply, and the master
records them in ``spans_``, so bytes per link come from spans alone.

aiohttp directly, as the master's client (:mod:`chimera_nb.masters.client`), and one session
per plan: a fit keeps one keep-alive connection from each worker to each shard.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping

import aiohttp
import numpy as np

from ..auth import bearer_header
from ..spans import Span
from ..wire import paths
from .network import PEER_HEADER
from .parameter_shard import blocks_frame, read_blocks

__all__ = ["ShardCallError", "ShardCaller"]


class ShardCallError(Exception):
    """A call to a shard failed; the message says which shard, which call and why."""


class ShardCaller:
    """Calls the shards of ``shards`` (name -> URL) on behalf of worker ``caller``.

    Parameters
    ----------
    caller : str
        The calling worker's name, sent as ``X-Chimera-Peer`` and kept in each span's ``peer``.
    shards : mapping of str to str
    token : str, optional
        The bearer token the worker was started with.
    timeout : float, default=100.0
        Seconds one call may take.
    """

    def __init__(
        self, caller: str, shards: Mapping[str, str], token: str | None, timeout: float = 100.0
    ) -> None:
        self.caller = caller
        self.shards = {name: url.rstrip("/") for name, url in shards.items()}
        self._headers = {PEER_HEADER: caller, **bearer_header(token)}
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def pull(
        self, shard: str, blocks: list[str], round_number: int
    ) -> tuple[dict[str, np.ndarray], Span]:
        """``blocks`` as ``shard`` holds them now (the weights of this round)."""
        body = json.dumps({"blocks": blocks}).encode()
        headers = {"content-type": "application/json"}
        content, answer_headers, span = await self._call(
            shard, paths.SHARD_PULL, body, headers, round_number
        )
        return read_blocks(content, answer_headers)[0], span

    async def push(
        self,
        shard: str,
        slices: Mapping[str, np.ndarray],
        n_samples: int,
        round_number: int,
    ) -> Span:
        """Send ``shard`` this worker's gradient slices of the blocks it holds."""
        body, headers = blocks_frame(
            slices, round_number=round_number, worker=self.caller, n_samples=n_samples
        )
        return (await self._call(shard, paths.SHARD_PUSH, body, headers, round_number))[2]

    async def _call(
        self, shard: str, path: str, body: bytes, headers: dict[str, str], round_number: int
    ) -> tuple[bytes, Mapping[str, str], Span]:
        if self._session is None:
            self._session = aiohttp.ClientSession(skip_auto_headers=("User-Agent",))
        started, clock = time.time(), time.perf_counter()
        content, answer_headers, status, reason = b"", {}, "error", ""
        try:
            async with self._session.post(
                self.shards[shard] + path,
                data=body,
                headers={**headers, **self._headers},
                timeout=self._timeout,
            ) as response:
                content, answer_headers = await response.read(), response.headers
                status = str(response.status)
                reason = content[:300].decode("utf-8", "replace")
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            reason = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
            status = "timeout" if isinstance(error, TimeoutError) else "error"
        span = Span(
            worker=shard,
            endpoint=path,
            start=started,
            end=started + (time.perf_counter() - clock),
            status=status,
            round_number=round_number,
            bytes_sent=len(body),
            bytes_received=len(content),
            peer=self.caller,
            worker_url=self.shards[shard],
        )
        if not span.ok:
            raise ShardCallError(f"{path} on {shard} failed ({status}): {reason}")
        return content, answer_headers, span
