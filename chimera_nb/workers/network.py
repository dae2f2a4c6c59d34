"""The network in front of a worker, emulated inside the worker: latency, bandwidth, lost
calls and partitions. One machine then shows what a slow or broken network does to a round,
on every backend alike (processes, containers, attached workers), and a seeded run replays.

:class:`EmulatedNetwork` is the worker app's outermost middleware: it stands between the
wire and everything else (the guard, the token check, the fast fit-step route), where a
network stands. For each call, the settings of its caller's link
(:class:`~chimera_nb.wire.models.NetworkRequest`) apply:

- ``latency_ms`` is a **round trip**, as ``ping`` reports it: the answer leaves that much
  later, so the call's span at the master grows by ``latency_ms``.
- ``bandwidth_mbps`` adds the time the request's and the answer's bodies take on a link of
  that speed, ``bytes * 8 / (mbps * 1e6)`` seconds (headers are not counted).
- ``drop`` is the probability that a call is lost, drawn from the link's numpy generator,
  seeded with ``seed``: one draw per call, in the order the calls arrive, so the same seed
  and the same calls lose the same calls.
- ``partitioned`` loses every call.

A lost call is never answered: the worker hangs up without sending a byte, which a master
reports as a connection error ("disconnected before answering"), in its spans and in the
round's ``failed``, never as an HTTP status.

Which calls: the fault controls (``faults/delay``, ``faults/network``) always get through,
so that the cluster can undo what it did. A partition cuts every other call, ``GET /health``
too (heartbeats must see the worker gone); latency, bandwidth and drops leave ``GET /health``
and ``GET /metrics`` alone, which are the lecturer's view of the room, not the lesson.

Links: a caller names itself in the ``X-Chimera-Peer`` header (a master sends none, and is
``"master"``); settings given for a peer apply to its calls only, ahead of the settings for
every caller (``peer`` None). So a ring of workers can lose one link and keep the others.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import numpy as np
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..wire import paths
from ..wire.models import NetworkRequest

__all__ = ["MASTER_PEER", "PEER_HEADER", "EmulatedNetwork", "Link", "Network"]

#: The header a caller names itself in, and the name of a caller that sends none.
PEER_HEADER, MASTER_PEER = "x-chimera-peer", "master"

_CONTROLS = frozenset({paths.FAULTS_DELAY, paths.FAULTS_NETWORK})  # never touched
_PROBES = frozenset({paths.HEALTH, paths.METRICS})  # cut by a partition only
_HANG_UP_WAIT = 1.0  # seconds to wait for the server to notice the connection it closed


@dataclass
class Link:
    """One caller's link to the worker: its settings and the generator of its drops."""

    settings: NetworkRequest
    rng: np.random.Generator = field(init=False)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.settings.seed)

    def loses_call(self) -> bool:
        """Whether the next call on this link is lost (one draw when ``drop`` is set)."""
        if self.settings.partitioned:
            return True
        return bool(self.settings.drop) and self.rng.random() < self.settings.drop

    def seconds(self, n_bytes: int) -> float:
        """How much later a call that carried ``n_bytes`` of bodies is answered."""
        seconds = self.settings.latency_ms / 1000
        if self.settings.bandwidth_mbps is not None:
            seconds += n_bytes * 8 / (self.settings.bandwidth_mbps * 1e6)
        return seconds


class Network:
    """The links of one worker: the settings for every caller (key None) and per peer."""

    def __init__(self) -> None:
        self.links: dict[str | None, Link] = {}

    def configure(self, settings: NetworkRequest) -> None:
        """Apply ``settings`` to their peer's link (a fresh generator from their seed);
        normal settings remove the link."""
        if settings.normal():
            self.links.pop(settings.peer, None)
        else:
            self.links[settings.peer] = Link(settings)

    def link(self, peer: str) -> Link | None:
        """The link the calls of ``peer`` take, or None for a normal network."""
        return self.links.get(peer) or self.links.get(None)


class EmulatedNetwork:
    """ASGI middleware: each call passes through its caller's :class:`Link` (see the module).

    Plain ASGI, as the token check: a worker with a normal network pays one dict lookup.
    """

    def __init__(self, app: ASGIApp, *, network: Network) -> None:
        self.app = app
        self.network = network

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        link = None
        if scope["type"] == "http" and self.network.links and scope["path"] not in _CONTROLS:
            link = self.network.link(_peer(scope))
        if link is None or (scope["path"] in _PROBES and not link.settings.partitioned):
            await self.app(scope, receive, send)
            return
        if link.loses_call():
            await _hang_up(receive, send)
            return
        await self._delayed(link, scope, receive, send)

    async def _delayed(self, link: Link, scope: Scope, receive: Receive, send: Send) -> None:
        """Call the app, holding its answer until the link's delay for both bodies is over."""
        n_bytes, held = 0, []

        async def counted() -> Message:
            nonlocal n_bytes
            message = await receive()
            n_bytes += len(message.get("body", b""))
            return message

        async def held_back(message: Message) -> None:
            nonlocal n_bytes
            held.append(message)
            n_bytes += len(message.get("body", b""))
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                await _sleep_at_least(link.seconds(n_bytes))
                for message in held:
                    await send(message)

        await self.app(scope, counted, held_back)


async def _sleep_at_least(seconds: float) -> None:
    """Wait ``seconds`` by the clock. ``asyncio.sleep`` alone can end early: uvloop counts
    from the time its loop read at the start of the iteration, before the app computed the
    answer, so a 20 ms link could answer after 19.4 ms."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        await asyncio.sleep(left)


def _peer(scope: Scope) -> str:
    """Who is calling: the ``X-Chimera-Peer`` header, else the master."""
    for key, value in scope["headers"]:
        if key == PEER_HEADER.encode():
            return value.decode("latin-1")
    return MASTER_PEER


async def _hang_up(receive: Receive, send: Send) -> None:
    """Close the connection without answering, as a lost call looks to its caller.

    ASGI has no message for it. Under uvicorn, ``receive`` belongs to the request's cycle,
    which holds the connection's transport: close it, then wait until uvicorn has seen the
    connection go (else it would log an app that did not answer). Under any other server,
    start an answer and fail: a server can then only close the connection.
    """
    transport = getattr(getattr(receive, "__self__", None), "transport", None)
    if transport is None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise ConnectionAbortedError("the emulated network lost this call")
    transport.close()

    async def until_gone() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass  # the rest of a body the caller was still sending

    await asyncio.wait_for(until_gone(), _HANG_UP_WAIT)
