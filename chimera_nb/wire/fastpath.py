"""Lean routes for the hot path: a round's calls answered without FastAPI's per-request work.

Every round of a fit sends one request to each worker, and FastAPI's routing, request object,
dependency solving and response classes cost a worker about 100 microseconds per request:
more than computing a linear gradient. :class:`FastRoutes` answers the few paths a fit calls
every round (``sgd/fit-step``) with a plain function of the body and headers, and passes
every other request on to the app. It sits *inside* the guard, the token check and the
request metrics, so those still apply; the FastAPI route stays for ``/docs`` and calls the
same function.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping

from pydantic import ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from .encoding import JSON, BodyError
from .server import bad_body

__all__ = ["FastRoutes", "RawHandler", "read_body"]

#: ``await handler(body, headers)`` -> ``(status, body, headers)``; header names lowercase.
RawHandler = Callable[[bytes, Mapping[str, str]], Awaitable[tuple[int, bytes, dict[str, str]]]]


async def read_body(receive: Receive) -> bytes:
    """The whole request body, however many messages it arrives in."""
    chunks, more = [], True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


class FastRoutes:
    """ASGI middleware: a POST to one of ``routes``' paths is answered by its handler;
    anything else goes on to ``app``. A body the handler cannot use (``BodyError``, a
    pydantic ``ValidationError``) gets the kit's usual 422 naming the field."""

    def __init__(self, app: ASGIApp, *, routes: Mapping[str, RawHandler]) -> None:
        self.app = app
        self.routes = dict(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = None
        if scope["type"] == "http" and scope["method"] == "POST":
            handler = self.routes.get(scope["path"])
        if handler is None:
            await self.app(scope, receive, send)
            return
        headers = {
            key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]
        }
        try:
            status, body, answer_headers = await handler(await read_body(receive), headers)
        except (BodyError, ValidationError) as error:
            status, body = 422, json.dumps(bad_body(error)).encode()
            answer_headers = {"content-type": JSON}
        raw = [
            (key.encode("latin-1"), value.encode("latin-1"))
            for key, value in answer_headers.items()
        ]
        raw.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": body})
