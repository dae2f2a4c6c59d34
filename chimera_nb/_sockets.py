"""Listening sockets and free ports, for every place that binds one: a worker's port (bound
by its cluster, before the worker runs), the seed master's port in ``run()``, a lab's master.

Binding first and handing the open socket over is what makes a busy port fail before
anything starts, and what lets no other process take the port meanwhile.
"""

from __future__ import annotations

import errno
import socket

from ._exceptions import ClusterError

__all__ = ["free_port", "is_busy", "listen", "port_is_free", "url_of", "worker_port_error"]


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def listen(host: str, port: int = 0, *, backlog: int = socket.SOMAXCONN) -> socket.socket:
    """A TCP socket bound to ``host:port`` (0: any free port) and listening.

    Raises
    ------
    OSError
        The port is taken (see :func:`is_busy`) or the host is not an address of this
        machine; the caller says what that means for what it was starting.
    """
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    try:
        # Reuse a port that a closed server left in TIME_WAIT; a live listener still blocks it.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock


def is_busy(error: OSError) -> bool:
    """Whether ``error`` says the address is in use by another socket."""
    return error.errno == errno.EADDRINUSE


def port_is_free(host: str, port: int) -> bool:
    """Whether ``port`` can be bound on ``host`` now (for a port another program will bind,
    such as the Docker engine publishing a container's port)."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port free on ``host`` now; another program may take it before it is used, so bind
    with :func:`listen` instead wherever this process is the one to listen."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def url_of(host: str, port: int) -> str:
    """The base URL at which this machine reaches a server listening on ``host:port``
    (a server on every address, ``0.0.0.0`` or ``::``, is reached on loopback)."""
    host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def worker_port_error(
    name: str,
    host: str,
    port: int,
    error: OSError | None,
    consequence: str,
    holder: str = "another process",
) -> ClusterError:
    """The error for a worker's port that cannot be had: taken (by ``holder``), or ``host``
    is no address of this machine. ``consequence`` says what was (not) started."""
    if error is None or is_busy(error):
        return ClusterError(
            f"Port {port} for worker {name!r} is already in use by {holder}. {consequence} "
            "Pick another port, leave it out to get a free one, or stop what holds it."
        )
    return ClusterError(
        f"Cannot listen on {host}:{port} for worker {name!r}: {error}. {consequence} "
        "Check the host address."
    )
