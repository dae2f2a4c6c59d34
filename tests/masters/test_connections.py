"""The master's keep-alive connections (``masters/_connections.py``) against real sockets on
127.0.0.1: servers that answer, close, stall, or send what is not HTTP, as a worker, a crashed
worker or a wrong port would."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from chimera_nb.masters._connections import ConnectionLost, ConnectionPool

OK = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok"

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        ),
        0,
    )
    return head + await reader.readexactly(length)


async def _serve(handler: Handler, exchange: Callable[[str], Awaitable[None]]) -> list[int]:
    """Run ``exchange(url)`` against a server whose connections ``handler`` serves; returns
    the local port of every connection the server accepted."""
    accepted: list[int] = []

    async def on_connection(reader, writer):
        accepted.append(writer.get_extra_info("peername")[1])
        try:
            await handler(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(on_connection, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        await exchange(f"http://127.0.0.1:{port}")
    return accepted


async def _answer_each(reader, writer):
    while True:
        try:
            await _read_request(reader)
        except asyncio.IncompleteReadError:
            return
        writer.write(OK)
        await writer.drain()


def test_one_connection_carries_every_call_and_the_answer_is_whole():
    async def exchange(url):
        pool = ConnectionPool(4)
        for _ in range(5):
            status, headers, body = await pool.request("POST", url + "/x", b"abc", {}, 5.0)
            assert (status, headers["content-type"], body) == (200, "text/plain", b"ok")
        pool.close()

    assert len(asyncio.run(_serve(_answer_each, exchange))) == 1


def test_a_connection_the_server_closed_is_not_reused():
    async def answer_once(reader, writer):  # keep-alive promised, then closed
        await _read_request(reader)
        writer.write(OK)
        await writer.drain()

    async def exchange(url):
        pool = ConnectionPool(4)
        for _ in range(3):
            assert (await pool.request("GET", url + "/", b"", {}, 5.0))[0] == 200
            await asyncio.sleep(0.05)  # the server's close arrives meanwhile
        pool.close()

    assert len(asyncio.run(_serve(answer_once, exchange))) == 3


def test_connection_close_is_honoured():
    async def answer_and_close(reader, writer):
        while True:
            try:
                await _read_request(reader)
            except asyncio.IncompleteReadError:
                return
            writer.write(OK.replace(b"\r\n\r\n", b"\r\nconnection: close\r\n\r\n", 1))
            await writer.drain()

    async def exchange(url):
        pool = ConnectionPool(4)
        for _ in range(2):
            assert (await pool.request("POST", url + "/", b"", {}, 5.0))[2] == b"ok"
        pool.close()

    assert len(asyncio.run(_serve(answer_and_close, exchange))) == 2


@pytest.mark.parametrize(
    ("reply", "error", "message"),
    [
        (b"", ConnectionLost, "disconnected before answering"),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort", ConnectionLost, "disconnected"),
        (b"SSH-2.0-OpenSSH_9.2\r\n", ConnectionLost, "not HTTP"),
    ],
)
def test_a_server_that_hangs_up_or_is_not_http_is_an_error_that_says_so(reply, error, message):
    async def bad(reader, writer):
        await _read_request(reader)
        writer.write(reply)
        await writer.drain()

    async def exchange(url):
        pool = ConnectionPool(4)
        with pytest.raises(error, match=message):
            await pool.request("POST", url + "/", b"{}", {}, 5.0)
        pool.close()

    asyncio.run(_serve(bad, exchange))


def test_a_silent_server_times_out_and_its_connection_is_dropped():
    async def silent_then_answer(reader, writer):
        await _read_request(reader)
        await asyncio.sleep(0.5)  # too late: the caller gave up

    async def exchange(url):
        pool = ConnectionPool(4)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(TimeoutError):
            await pool.request("POST", url + "/", b"", {}, 0.2)
        assert loop.time() - started < 0.4
        assert pool._reuse(("127.0.0.1", int(url.rsplit(":", 1)[1]))) is None
        pool.close()

    asyncio.run(_serve(silent_then_answer, exchange))


def test_a_cancelled_call_does_not_leave_its_connection_for_the_next():
    async def exchange(url):
        pool = ConnectionPool(4)
        call = asyncio.ensure_future(pool.request("POST", url + "/slow", b"", {}, 5.0))
        await asyncio.sleep(0.05)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        assert (await pool.request("POST", url + "/", b"", {}, 5.0))[0] == 200
        pool.close()

    async def slow_first(reader, writer):
        request = await _read_request(reader)
        if b"/slow" in request:
            await asyncio.sleep(0.3)
        writer.write(OK)
        await writer.drain()
        await _answer_each(reader, writer)

    assert len(asyncio.run(_serve(slow_first, exchange))) == 2


def test_a_closed_port_is_refused():
    async def exchange():
        pool = ConnectionPool(4)
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        with pytest.raises(ConnectionRefusedError):
            await pool.request("GET", f"http://127.0.0.1:{port}/", b"", {}, 5.0)

    asyncio.run(exchange())


def test_no_more_than_limit_calls_are_in_flight():
    in_flight, most = 0, 0

    async def counting(reader, writer):
        nonlocal in_flight, most
        while True:
            try:
                await _read_request(reader)
            except asyncio.IncompleteReadError:
                return
            in_flight += 1
            most = max(most, in_flight)
            await asyncio.sleep(0.02)
            in_flight -= 1
            writer.write(OK)
            await writer.drain()

    async def exchange(url):
        pool = ConnectionPool(3)
        await asyncio.gather(*(pool.request("GET", url + "/", b"", {}, 5.0) for _ in range(12)))
        pool.close()

    accepted = asyncio.run(_serve(counting, exchange))
    assert most == 3 and len(accepted) == 3
