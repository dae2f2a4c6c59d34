"""Keep-alive HTTP/1.1 connections from a master to its workers: the calls of every round.

Why not aiohttp here: a round sends each worker one request and reads one answer, and
aiohttp's request and response objects, cookie jar, tracing hooks and URL handling cost a
master about 50 microseconds per call, more than the exchange itself over loopback. A round
needs none of them: an open socket per worker, the request written in one piece, the answer
read by httptools (the parser uvicorn serves the workers with). Workers reached by https
still go through aiohttp (see :mod:`.client`).

A connection carries one exchange at a time. After it, the connection waits in the pool for
the next call to the same worker, unless the worker asked to close it, it broke, or the call
was cancelled (its answer may still come, so the connection is closed instead).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Mapping
from urllib.parse import urlsplit

import httptools

__all__ = ["ConnectionLost", "ConnectionPool", "Exchange"]

#: A connection idle this long is closed rather than reused: a server may have closed it
#: meanwhile (uvicorn's default keep-alive is 5 s; the kit's workers keep 300 s).
_IDLE_SECONDS = 4.0

#: (status, headers with lowercase names, body)
Exchange = tuple[int, dict[str, str], bytes]


@functools.lru_cache(maxsize=256)
def _target(url: str) -> tuple[tuple[str, int], str, str]:
    """``http://host:port/path`` -> ((host, port), path, Host header), parsed once per URL:
    a fit calls the same few URLs every round."""
    target = urlsplit(url)
    return (target.hostname or "", target.port or 80), target.path or "/", target.netloc


class ConnectionLost(ConnectionError):
    """The worker closed the connection, or sent what is not HTTP, before a whole answer."""


class _Connection(asyncio.Protocol):
    """One keep-alive connection: writes a request, parses the answer as it arrives."""

    def __init__(self) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self._answer: asyncio.Future[Exchange] | None = None
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._transport: asyncio.Transport | None = None
        self.reusable = False
        self.idle_since = 0.0

    # -- asyncio's protocol callbacks -------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._fail(ConnectionLost(f"answered with what is not HTTP ({error})"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.reusable = False
        self._fail(ConnectionLost("disconnected before answering") if exc is None else exc)

    # -- httptools' callbacks ----------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        answer, self._answer = self._answer, None
        if answer is None or answer.done():
            return
        self.reusable = self._parser.should_keep_alive()
        answer.set_result((self._parser.get_status_code(), self._headers, b"".join(self._body)))

    # -- used by the pool ---------------------------------------------------------------------

    async def exchange(self, request: bytes, timeout: float) -> Exchange:
        """Send ``request`` (head and body) and wait at most ``timeout`` s for the answer."""
        loop = asyncio.get_running_loop()
        self._answer = answer = loop.create_future()
        self._headers, self._body, self.reusable = {}, [], False
        timer = loop.call_later(timeout, self._fail, TimeoutError())
        try:
            assert self._transport is not None
            self._transport.write(request)
            return await answer
        finally:
            timer.cancel()

    def _fail(self, error: BaseException) -> None:
        answer, self._answer = self._answer, None
        if answer is not None and not answer.done():
            answer.set_exception(error)
        self.close()

    def close(self) -> None:
        self.reusable = False
        if self._transport is not None:
            self._transport.close()


class ConnectionPool:
    """Connections to plain-http workers, kept between calls; at most ``limit`` in use at
    once (more concurrent calls wait for one, as 200 concurrent predictions should)."""

    def __init__(self, limit: int) -> None:
        self._idle: dict[tuple[str, int], list[_Connection]] = {}
        self._slots = asyncio.Semaphore(limit)

    async def request(
        self,
        method: str,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        timeout: float,
    ) -> Exchange:
        """One exchange with the server of ``url`` (``http://host:port/path``), connecting
        included within ``timeout`` seconds."""
        address, path, host = _target(url)
        lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
        if body or method == "POST":
            lines.append(f"Content-Length: {len(body)}")
        lines += [f"{name}: {value}" for name, value in headers.items()]
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        async with self._slots:
            started = time.monotonic()
            connection = self._reuse(address) or await self._connect(address, timeout)
            try:
                answer = await connection.exchange(request, timeout - (time.monotonic() - started))
            except BaseException:  # a timeout, a lost connection or a cancelled call
                connection.close()
                raise
            if connection.reusable:
                connection.idle_since = time.monotonic()
                self._idle.setdefault(address, []).append(connection)
            else:
                connection.close()
            return answer

    def _reuse(self, address: tuple[str, int]) -> _Connection | None:
        idle = self._idle.get(address)
        now = time.monotonic()
        while idle:
            connection = idle.pop()
            if connection.reusable and now - connection.idle_since < _IDLE_SECONDS:
                return connection
            connection.close()
        return None

    @staticmethod
    async def _connect(address: tuple[str, int], timeout: float) -> _Connection:
        """A new connection within ``timeout`` seconds. ``asyncio.wait``, not ``wait_for``:
        before Python 3.12, ``wait_for`` could swallow the cancelling of a call (a round
        closed without this worker) when the connection was made at that moment, and the
        call went on to wait for an answer nobody wanted."""
        loop = asyncio.get_running_loop()
        connecting = asyncio.ensure_future(loop.create_connection(_Connection, *address))
        try:
            done, _ = await asyncio.wait({connecting}, timeout=timeout)
        except asyncio.CancelledError:
            _abandon(connecting)
            raise
        if not done:
            _abandon(connecting)
            raise TimeoutError(f"no connection within {timeout:g} s")
        return connecting.result()[1]  # or the connection's error, e.g. refused

    def close(self) -> None:
        """Close every idle connection (those in use close when their call ends)."""
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()


def _abandon(connecting: asyncio.Future) -> None:
    """Stop making a connection nobody waits for, and close it if it was made anyway."""
    connecting.cancel()
    connecting.add_done_callback(_close_if_made)


def _close_if_made(connecting: asyncio.Future) -> None:
    if not connecting.cancelled() and connecting.exception() is None:
        transport, _ = connecting.result()
        transport.close()
