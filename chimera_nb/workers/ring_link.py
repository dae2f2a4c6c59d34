"""A ring worker's link to its right neighbour: one POST per chunk, one span per POST.

A worker may not use a master's client (layers import downward only), and needs little of
it: one call, no retries (a ring step cannot be redone alone: the whole round fails), a
span that the worker returns to the master, and an error that names the link. The call
carries ``X-Chimera-Peer: <this worker>``, so that the neighbour's emulated network applies
the settings of this link (:mod:`.network`), and the workers' shared token, if any.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import numpy as np

from ..auth import bearer_header
from ..spans import Span
from ..wire import encode_frame, paths
from ..wire.topology_models import RingChunkMeta
from .network import PEER_HEADER

__all__ = ["RingLink", "RingLinkError", "post_frame"]


class RingLinkError(Exception):
    """A ring step that failed, with the HTTP status the worker answers the master with:
    502 (the right neighbour could not be reached), 504 (the left neighbour's chunk never
    came) or 409 (a chunk of another step came)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _describe(error: Exception, timeout: float) -> tuple[str, str]:
    """(reason for a person, status word for the span) of a call that got no answer."""
    if isinstance(error, asyncio.TimeoutError):
        return f"timed out after {timeout:g} s", "timeout"
    if isinstance(error, aiohttp.ClientConnectorError):
        return "connection refused", "refused"
    if isinstance(error, (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError)):
        return "disconnected before answering", "disconnected"
    return f"{type(error).__name__}: {error}", "error"


class RingLink:
    """Sends chunks from worker ``sender`` to its right neighbour ``right`` at ``url``."""

    def __init__(self, right: str, url: str, sender: str, token: str | None) -> None:
        self.right = right
        self.url = url.rstrip("/")
        self.sender = sender
        self._headers = {PEER_HEADER: sender, **bearer_header(token)}

    @contextlib.asynccontextmanager
    async def session(self, timeout: float) -> AsyncIterator[aiohttp.ClientSession]:
        """One keep-alive connection for a round's 2(N - 1) calls."""
        async with aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=timeout), skip_auto_headers=("User-Agent",)
        ) as session:
            yield session

    async def send(
        self,
        session: aiohttp.ClientSession,
        chunk: np.ndarray,
        meta: RingChunkMeta,
        spans: list[Span],
    ) -> None:
        """POST ``chunk`` (raw float64) with ``meta``; append its span to ``spans``; raise
        :class:`RingLinkError` naming the link unless the neighbour accepted it."""
        body, headers = encode_frame([chunk], meta.model_dump())
        reason = await post_frame(
            session,
            self.url + paths.RING_CHUNK,
            body,
            {**headers, **self._headers},
            spans,
            worker=self.right,
            endpoint=paths.RING_CHUNK,
            round_number=meta.round_number,
            peer=self.sender,
            worker_url=self.url,
        )
        if reason:
            raise RingLinkError(
                502,
                f"{self.sender} could not send chunk {meta.index} ({meta.phase} step "
                f"{meta.step + 1}, round {meta.round_number}) to its right neighbour "
                f"{self.right}: the link {self.sender} -> {self.right} failed ({reason})",
            )


async def post_frame(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    headers: dict[str, str],
    spans: list[Span],
    **span_fields: Any,
) -> str:
    """POST a frame from one worker to another; append the call's span (``span_fields``:
    who was called, the endpoint, the round, the caller as ``peer``) to ``spans``. Returns
    why it failed, or "" if the receiver accepted it: the caller words the error."""
    started, clock = time.time(), time.perf_counter()
    reason, answer = "", b""
    try:
        async with session.post(url, data=body, headers=headers) as response:
            answer = await response.read()
            status = str(response.status)
            if response.status >= 300:
                reason = f"answered HTTP {status}: {_detail(answer)}"
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as error:
        reason, status = _describe(error, session.timeout.total or 0.0)
    spans.append(
        Span(
            start=started,
            end=started + (time.perf_counter() - clock),
            status=status,
            bytes_sent=len(body),
            bytes_received=len(answer),
            **span_fields,
        )
    )
    return reason


def _detail(answer: bytes) -> str:
    """The ``detail`` of an error body, else its first 200 characters."""
    try:
        return str(json.loads(answer)["detail"])
    except (ValueError, KeyError, TypeError):
        return answer[:200].decode("utf-8", "replace")
