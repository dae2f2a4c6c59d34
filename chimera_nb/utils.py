"""The original Chimera's ``chimera.utils``: its two loggers and ``parse_times_file``.

The original wrote one line per call to ``chimera_time.log``::

    http://localhost:81/v1/chimera/sgd/fit-step worker endpoint latency = 0.0123 s
    http://localhost:8080/v1/chimera/parameter-server/fit master endpoint latency = 1.5 s

and its ``parse_times_file`` grouped the seconds by URL, for workers and for the master. The
kit's time log has more in each line (``key=value`` pairs: see :mod:`chimera_nb.logs`, and
:func:`chimera_nb.read_time_log` for a DataFrame); :func:`parse_times_file` reads both
formats into the original's shape, so the original's analysis scripts keep working.
"""

from __future__ import annotations

import os
from pathlib import Path

from .logs import TIME_LOG, status_logger, time_logger

__all__ = ["parse_times_file", "status_logger", "time_logger"]

#: The name the kit writes in the ``worker=`` field of a master's own endpoint lines.
MASTER = "master"


def parse_times_file(filepath: str | os.PathLike = TIME_LOG) -> dict[str, dict[str, list[float]]]:
    """Latencies from a time log, in seconds, grouped by URL.

    Parameters
    ----------
    filepath : path, default="chimera_time.log"
        A time log written by the kit or by the original Chimera.

    Returns
    -------
    dict
        ``{"worker": {url: [seconds, ...]}, "master": {url: [seconds, ...]}}``, in the order
        the calls were logged. A URL is the endpoint's full address, such as
        ``http://127.0.0.1:5001/v1/chimera/sgd/fit-step``.

    Examples
    --------
    >>> times = parse_times_file("chimera_time.log")  # doctest: +SKIP
    >>> times["worker"]["http://127.0.0.1:5001/v1/chimera/sgd/fit-step"][:3]  # doctest: +SKIP
    [0.0012, 0.0011, 0.0011]
    """
    times: dict[str, dict[str, list[float]]] = {"worker": {}, "master": {}}
    for line in Path(filepath).read_text(encoding="utf-8").splitlines():
        parsed = _kit_line(line) if "latency_ms=" in line else _original_line(line)
        if parsed is not None:
            kind, url, seconds = parsed
            times[kind].setdefault(url, []).append(seconds)
    return times


def _kit_line(line: str) -> tuple[str, str, float] | None:
    """``<time> INFO worker=w endpoint=/path latency_ms=1.2 ... url=http://host:port``."""
    fields = dict(pair.split("=", 1) for pair in line.split() if "=" in pair)
    if "endpoint" not in fields:
        return None
    kind = "master" if fields.get("worker") == MASTER else "worker"
    base = fields.get("url") or fields.get("worker", "")
    return kind, base + fields["endpoint"], float(fields["latency_ms"]) / 1e3


def _original_line(line: str) -> tuple[str, str, float] | None:
    """``<url> worker endpoint latency = 0.0123 s`` (or ``master``)."""
    name, equals, value = line.partition("=")
    words = name.split()
    if not equals or len(words) < 2 or words[1] not in ("worker", "master"):
        return None
    return words[1], words[0], float(value.strip().removesuffix("s").strip())
