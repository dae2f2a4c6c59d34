"""The shared token that protects workers reachable from other machines.

A worker runs whatever training requests it is sent, so a worker that listens on anything
but this machine's loopback address must be protected. chimera-nb uses one shared secret
per cluster, sent by the master as ``Authorization: Bearer <token>``:

* a worker is given its token by its launcher (environment variable
  ``CHIMERA_WORKER_TOKEN``, or ``chimera-nb serve-worker --token``) and then answers every
  endpoint but ``GET /health`` with 401 unless the request carries it;
* a master takes the token from its cluster (``cluster.token``: the container backends make
  a random one per run) or from ``CHIMERA_WORKERS_TOKEN``, and sends it with every call.

Make a token with ``python -c "import secrets; print(secrets.token_urlsafe(32))"``. The token
travels in plain HTTP: it keeps strangers on a lab network out, not an eavesdropper who
can read the traffic; use a network you trust, or a VPN between the machines.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import re
import secrets

from ._exceptions import ConfigurationError

__all__ = [
    "MASTER_TOKEN_VARIABLE",
    "WORKER_TOKEN_VARIABLE",
    "bearer_header",
    "is_loopback",
    "new_token",
    "require_token_for",
    "token_matches",
    "validate_token",
    "worker_token_from_environment",
]

#: Where a worker reads the token it requires.
WORKER_TOKEN_VARIABLE = "CHIMERA_WORKER_TOKEN"
#: Where a master reads the token it sends, when its cluster has none.
MASTER_TOKEN_VARIABLE = "CHIMERA_WORKERS_TOKEN"

_MIN_LENGTH = 16
_TOKEN = re.compile(r"[A-Za-z0-9._~+/=-]+")  # characters an HTTP header carries as they are
_MAKE_ONE = 'python -c "import secrets; print(secrets.token_urlsafe(32))"'


def new_token() -> str:
    """A fresh random token (256 bits, URL-safe): one per cluster run."""
    return secrets.token_urlsafe(32)


def validate_token(token: str) -> str:
    """Return ``token`` if it can serve as a shared token, else raise ConfigurationError."""
    if not isinstance(token, str) or len(token) < _MIN_LENGTH or not _TOKEN.fullmatch(token):
        shown = "an empty token" if not token else f"a token of {len(str(token))} characters"
        raise ConfigurationError(
            f"A worker token must have at least {_MIN_LENGTH} characters among letters, digits "
            f"and ._~+/=- (got {shown}). Make one with: {_MAKE_ONE}"
        )
    return token


def bearer_header(token: str | None) -> dict[str, str]:
    """The header a master sends (empty without a token)."""
    return {"authorization": f"Bearer {token}"} if token else {}


def token_matches(authorization: str | None, token: str) -> bool:
    """Whether an ``Authorization`` header carries ``token``, compared in constant time."""
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


def is_loopback(host: str) -> bool:
    """Whether ``host`` is an address only this machine can reach (``localhost`` counts)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def require_token_for(host: str, token: str | None, who: str = "A worker") -> None:
    """Refuse to expose a worker beyond loopback without a token."""
    if token is None and not is_loopback(host):
        raise ConfigurationError(
            f"{who} listening on {host} can be reached from other machines, and it runs "
            "whatever it is sent, so it needs a shared token: pass --token T (or set "
            f"{WORKER_TOKEN_VARIABLE}) and give the master the same token "
            f"({MASTER_TOKEN_VARIABLE}=T). Make one with: {_MAKE_ONE}. Or listen on 127.0.0.1."
        )


def worker_token_from_environment() -> str | None:
    """The token a worker process was given in ``CHIMERA_WORKER_TOKEN``, checked."""
    token = os.environ.get(WORKER_TOKEN_VARIABLE) or None
    return validate_token(token) if token is not None else None
