"""Which workers a master drives: a cluster, or a mapping of worker name to URL, turned into
one dict that also carries the workers' shared token."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from .._exceptions import ConfigurationError
from ..auth import MASTER_TOKEN_VARIABLE

__all__ = ["WorkerEndpoints", "resolve_endpoints"]


class WorkerEndpoints(dict):
    """Worker name -> base URL, plus the shared ``token`` the workers require (or None).

    A plain dict to everything that reads it; the token rides along so that a master that
    keeps its endpoints (to predict later) keeps the token too.
    """

    token: str | None = None


def resolve_endpoints(workers: Any) -> WorkerEndpoints:
    """``workers`` as a ``name -> URL`` dict: a :class:`~chimera_nb._types.Cluster` (anything
    with ``.endpoints``) or a mapping. Its ``token`` is the cluster's (``cluster.token``),
    else the mapping's, else the ``CHIMERA_WORKERS_TOKEN`` variable's, else None."""
    endpoints = getattr(workers, "endpoints", workers)
    if not isinstance(endpoints, Mapping):
        raise ConfigurationError(
            "workers must be a cluster (e.g. LocalCluster) or a mapping of worker name to URL, "
            f"got {type(workers).__name__}"
        )
    token = (
        getattr(workers, "token", None)
        or getattr(endpoints, "token", None)
        or os.environ.get(MASTER_TOKEN_VARIABLE)
        or None
    )
    endpoints = WorkerEndpoints(endpoints)
    endpoints.token = token
    if not endpoints:
        raise ConfigurationError("workers is empty: a master needs at least one worker")
    return endpoints
