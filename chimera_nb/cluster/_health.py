"""Asking workers ``GET /health``: once (for ``status()``), or until all of them answer
(after a start), for every backend alike.

The wait asks every worker at once, each in its own thread, and stops as soon as one of
them cannot come up any more: its backend says it is gone (the process exited, the
container stopped), it has no ``/health`` route, or the time is up.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor

import httpx

from .._types import WorkerURL
from ..wire import paths

__all__ = ["PROBE_TIMEOUT", "answers_health", "health_client", "wait_until_healthy"]

PROBE_TIMEOUT = 1.0  # seconds for one GET /health


def health_client() -> httpx.Client:
    """A client for the cluster's own calls to its workers.

    ``trust_env=False``: an ``HTTP(S)_PROXY`` set for the internet must not catch the
    workers. ``verify=False``: workers speak plain HTTP, so skip loading the CA bundle (70 ms).
    """
    return httpx.Client(trust_env=False, verify=False)


def answers_health(client: httpx.Client, url: WorkerURL, timeout: float = PROBE_TIMEOUT) -> bool:
    """Whether the worker at ``url`` answers ``GET /health`` with 200 within ``timeout`` s."""
    try:
        return client.get(url + paths.HEALTH, timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def wait_until_healthy(
    urls: Mapping[str, WorkerURL],
    gone: Callable[[str], str | None],
    timeout: float,
    *,
    poll: float,
    look_every: float,
) -> dict[str, str]:
    """Wait, for all workers at once, until each answers ``GET /health`` with 200.

    Parameters
    ----------
    urls : mapping of str to str
        Worker name -> base URL.
    gone : callable
        ``gone(name)`` says why a worker can never answer (its process exited...), or None.
    timeout : float
        Seconds for all of them.
    poll : float
        Seconds between two tries of one worker that did not answer yet.
    look_every : float
        Seconds between two calls of ``gone`` for one worker (a backend that asks the
        Docker engine pays a few milliseconds per call).

    Returns
    -------
    dict of str to str
        Name -> what went wrong, for the workers that did not come up; empty when all did.
        The first problem stops the others' waits (their problem is then "").
    """
    deadline = time.monotonic() + timeout
    give_up = threading.Event()

    def wait_for(name: str) -> str | None:
        """None once the worker answers 200, else what went wrong ("" if told to give up)."""
        health = urls[name] + paths.HEALTH
        next_look = 0.0
        while not give_up.is_set():
            now = time.monotonic()
            if now >= next_look:
                problem = gone(name)
                if problem:
                    give_up.set()
                    return problem
                next_look = now + look_every
            remaining = deadline - now
            if remaining <= 0:
                give_up.set()
                return f"did not answer GET /health within {timeout:g} s (at {health})"
            try:  # a socket that listens already makes this wait until the worker serves
                response = client.get(health, timeout=min(PROBE_TIMEOUT, remaining))
            except httpx.HTTPError:
                give_up.wait(poll)
                continue
            if response.status_code == 200:
                return None
            if response.status_code == 404:
                give_up.set()
                return "answers HTTP but has no GET /health route, which every worker needs"
            give_up.wait(poll)
        return ""

    with health_client() as client, ThreadPoolExecutor(len(urls)) as pool:
        try:
            problems = dict(zip(urls, pool.map(wait_for, urls)))
        finally:
            give_up.set()  # on Ctrl-C, too: do not wait out the startup timeout
    failed = {name: problem for name, problem in problems.items() if problem is not None}
    # The worker that failed first comes first: the others only stopped waiting for it.
    return dict(sorted(failed.items(), key=lambda item: not item[1]))
