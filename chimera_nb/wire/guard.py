"""The guard in front of every server of the kit, masters and workers alike: which requests
it answers, how large their bodies may be, and a 500 that keeps the connection open.

Why a server on 127.0.0.1 needs it
----------------------------------
Loopback keeps other machines out, not other web pages. A page from any site, open in a
browser on this machine, can send a "simple" POST (a form, or ``fetch`` with
``mode: "no-cors"``) to ``http://127.0.0.1:8080/v1/chimera/parameter-server/fit``: the
browser hides the answer from the page, but the fit runs. With DNS rebinding (the page's own
host name re-pointed at 127.0.0.1) the page can even read the answers. So:

* **Origin.** A browser names the page behind such a request in the ``Origin`` header. A
  request whose ``Origin`` is present but is neither this server's own origin nor allowed
  gets 403. curl, ``requests``, httpx, the kit's masters and the seed's clients send no
  ``Origin``, so they pass as before.
* **Host.** A request that arrived on a loopback address must be addressed (``Host``) to a
  loopback name (``localhost``, ``127.0.0.1``, ``[::1]``) or to this machine's name; a
  rebinding page addresses its own name and gets 403. On other addresses (a worker in a
  container reached through a published port or by container name, a lab PC reached by name
  or address) the names clients use cannot be known in advance and the worker token protects
  the server, so ``Host`` is checked there only when allowed hosts are configured.

Both lists can be widened with the ``allowed_origins`` / ``allowed_hosts`` arguments or the
``CHIMERA_ALLOWED_ORIGINS`` / ``CHIMERA_ALLOWED_HOSTS`` variables (comma-separated, or a JSON
list; ``*`` allows any).

Bodies
------
A body larger than its endpoint's limit gets 413 before it is buffered: at once when
``Content-Length`` says so, else (a chunked body) as soon as the bytes received pass the
limit. Data endpoints (:data:`~chimera_nb.wire.paths.DATA`: rows to predict, fit-step
vectors) take up to ``CHIMERA_MAX_BODY_MB`` megabytes (default 256); every other endpoint 1 MB.

Errors
------
An exception that no handler turned into an answer gets a JSON 500 saying what failed.
Starlette re-raises such an exception after its own 500, and uvicorn then drops the
connection, so that a client's next request on it failed too; answered here, the connection
stays usable.

The guard is plain ASGI (not ``BaseHTTPMiddleware``, which costs a task per request): on the
fit-step hot path it adds one pass over the headers.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import socket
from collections.abc import Iterable
from typing import NamedTuple

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._exceptions import ConfigurationError
from ..auth import is_loopback
from ..logs import status_logger
from . import paths

__all__ = [
    "HOSTS_VARIABLE",
    "MAX_BODY_VARIABLE",
    "ORIGINS_VARIABLE",
    "BodyLimits",
    "Guard",
    "allowed_names",
]

ORIGINS_VARIABLE = "CHIMERA_ALLOWED_ORIGINS"
HOSTS_VARIABLE = "CHIMERA_ALLOWED_HOSTS"
MAX_BODY_VARIABLE = "CHIMERA_MAX_BODY_MB"
MB = 1_000_000


class BodyLimits(NamedTuple):
    """The most bytes a request body may have: on data endpoints, and on all others."""

    data: int = 256 * MB
    control: int = 1 * MB

    @classmethod
    def from_environment(cls) -> BodyLimits:
        """The defaults, with the data limit from ``CHIMERA_MAX_BODY_MB`` if it is set."""
        raw = os.environ.get(MAX_BODY_VARIABLE)
        if raw is None:
            return cls()
        try:
            megabytes = float(raw)
        except ValueError:
            megabytes = -1.0
        if not megabytes > 0:
            raise ConfigurationError(
                f"{MAX_BODY_VARIABLE} must be a positive number of megabytes, got {raw!r}"
            )
        return cls(data=int(megabytes * MB))


def allowed_names(given: Iterable[str] | None, variable: str) -> frozenset[str]:
    """``given`` plus the names in environment variable ``variable``, lower-cased.

    The variable holds names separated by commas, or a JSON list of them.
    """
    raw = os.environ.get(variable, "").strip()
    try:
        listed = json.loads(raw) if raw.startswith("[") else raw.split(",")
    except ValueError:
        listed = None
    if not isinstance(listed, list) or not all(isinstance(name, str) for name in listed):
        raise ConfigurationError(
            f"{variable} must list names separated by commas, or as a JSON list of strings, "
            f"got {raw!r}"
        )
    names = [*(given or ()), *listed]
    return frozenset(name.strip().lower().rstrip("/") for name in names if name.strip())


@functools.lru_cache(maxsize=64)
def _loopback(host: str) -> bool:
    """:func:`~chimera_nb.auth.is_loopback`, remembered: the same few addresses and names
    come with every request, and parsing one costs more than the rest of the guard."""
    return is_loopback(host)


def _host_name(host: str) -> str:
    """``"[::1]:8080"`` -> ``"::1"``; ``"Lab-PC:81"`` -> ``"lab-pc"``."""
    host = host.lower()
    if host.startswith("["):
        return host[1 : host.find("]")]
    return host.partition(":")[0]


async def _answer(status: int, detail: str, scope: Scope, receive: Receive, send: Send) -> None:
    await JSONResponse({"detail": detail}, status_code=status)(scope, receive, send)


class Guard:
    """ASGI middleware: Origin and Host checks, body limits and a JSON 500 (see the module).

    Parameters
    ----------
    app : ASGI app
    origins, hosts : frozenset of str
        Origins (``"http://host:port"``) and host names allowed besides the defaults;
        ``"*"`` allows any.
    limits : BodyLimits
    """

    def __init__(
        self, app: ASGIApp, *, origins: frozenset[str], hosts: frozenset[str], limits: BodyLimits
    ) -> None:
        self.app = app
        self.origins = origins
        self.hosts = hosts
        self.limits = limits
        self.machine = socket.gethostname().lower()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = origin = length = None
        for key, value in scope["headers"]:
            if key == b"host":
                host = value.decode("latin-1")
            elif key == b"origin":
                origin = value.decode("latin-1")
            elif key == b"content-length":
                length = int(value)
        refusal = self._host_refusal(scope, host) or self._origin_refusal(scope, host, origin)
        if refusal:
            await _answer(403, refusal, scope, receive, send)
            return
        limit = self.limits.data if scope["path"] in paths.DATA else self.limits.control
        if length is not None and length > limit:
            await _answer(413, _too_large(scope, limit), scope, receive, send)
            return
        if length is None:  # a chunked body, or none: count what arrives
            receive = _counting(receive, limit, scope)
        await self._call_answering_errors(scope, receive, send)

    def _host_refusal(self, scope: Scope, host: str | None) -> str | None:
        """Why ``host`` may not be answered, or None (see the module's docstring)."""
        server = scope.get("server")
        on_loopback = server is not None and _loopback(server[0])
        if host is None or "*" in self.hosts or not (on_loopback or self.hosts):
            return None
        name = _host_name(host)
        if name in self.hosts or name == self.machine or _loopback(name):
            return None
        where = "a loopback address" if on_loopback else "this address"
        allowed = ", ".join(["localhost", "127.0.0.1", "[::1]", self.machine, *sorted(self.hosts)])
        return (
            f"The request came in on {where}, where this server answers only requests "
            f"addressed to {allowed}; this one was addressed to {host!r}, as a web page using "
            "DNS rebinding would be. If you reach the server by that name on purpose, allow "
            f"it: set {HOSTS_VARIABLE}={name} before starting the server (names separated by "
            "commas)."
        )

    def _origin_refusal(self, scope: Scope, host: str | None, origin: str | None) -> str | None:
        """Why a page of ``origin`` may not be answered, or None (no ``Origin``: not a page)."""
        if origin is None:
            return None
        origin = origin.lower()
        own = f"{scope['scheme']}://{host}".lower()
        if origin == own or origin in self.origins or "*" in self.origins:
            return None
        return (
            f"This server answers web pages of its own origin ({own}) only, and this request "
            f"came from a page of {origin}: a page on another site could otherwise start fits "
            f"on your machine. If that page is yours, allow it: set {ORIGINS_VARIABLE}={origin} "
            "before starting the server (origins separated by commas, or * for any)."
        )

    async def _call_answering_errors(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Call the app; answer an exception it let escape with a JSON 500."""
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception as error:
            if started:  # half an answer is out: only closing the connection can say so
                raise
            where = f"{scope['method']} {scope['path']}"
            status_logger.error("%s failed: %r", where, error)
            logging.getLogger("uvicorn.error").error("%s failed", where, exc_info=error)
            detail = (
                f"The server failed while answering {where}: {type(error).__name__}: {error}. "
                "This is a bug (in chimera-nb, or in the worker's estimator); the server's "
                "log has the traceback."
            )
            await _answer(500, detail, scope, receive, send)


def _too_large(scope: Scope, limit: int) -> str:
    advice = (
        f"send fewer rows per request, or raise the limit with {MAX_BODY_VARIABLE}"
        if scope["path"] in paths.DATA
        else "this endpoint takes a small JSON body, or none"
    )
    return (
        f"The body of {scope['method']} {scope['path']} is larger than this endpoint's limit "
        f"of {limit / MB:g} MB: {advice}."
    )


def _counting(receive: Receive, limit: int, scope: Scope) -> Receive:
    """``receive``, raising HTTP 413 once the body's bytes pass ``limit``."""
    received = 0

    async def counting() -> Message:
        nonlocal received
        message = await receive()
        received += len(message.get("body", b""))
        if received > limit:
            raise HTTPException(413, _too_large(scope, limit))
        return message

    return counting
