"""The seed's two log files, and a reader that turns the time log into a DataFrame.

* ``chimera_status.log``: timestamped events and errors (a fit started, round 7 lost
  worker2, ...), written through the ``chimera_status`` logger.
* ``chimera_time.log``: one line per call a master made to a worker endpoint (each span of
  :mod:`chimera_nb.spans`), written through the ``chimera_time`` logger as ``key=value``
  pairs that :func:`read_time_log` parses::

      2026-11-21T22:41:03.123 INFO worker=worker1 endpoint=/v1/chimera/sgd/fit-step latency_ms=1.204 status=200 round=7 attempt=1 bytes_sent=96 bytes_received=120 url=http://127.0.0.1:5001

  ``status`` is the HTTP status code, or what went wrong when there was none (``timeout``,
  ``refused``, ``disconnected``, ``error``); ``url`` is the worker's base URL. A master's own
  fit and predict requests get a line too (the seed's *master endpoint latency*), with
  ``worker=master`` and the master's URL (:func:`log_master_request`).

Files are attached to a directory with :func:`attach_log_files` (a cluster attaches its run
directory; :func:`chimera_nb.run` attaches the project directory).
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd

__all__ = [
    "MASTER",
    "STATUS_LOG",
    "TIME_LOG",
    "attach_log_files",
    "flush_time_log",
    "log_master_request",
    "log_worker_call",
    "read_time_log",
    "status_logger",
    "time_logger",
]

STATUS_LOG = "chimera_status.log"
TIME_LOG = "chimera_time.log"
#: The ``worker`` of a time-log line that times a master's own endpoint.
MASTER = "master"

status_logger = logging.getLogger("chimera_status")
time_logger = logging.getLogger("chimera_time")
for _logger in (status_logger, time_logger):
    _logger.setLevel(logging.INFO)
    _logger.propagate = False  # the kit's logs go to their files, not to the notebook


class _Formatter(logging.Formatter):
    """``2026-11-21T22:41:03.123 INFO <message>``, with the date and time of day formatted
    once a second: the time log writes thousands of lines a second while a fit runs, and
    ``strftime`` cost 0.8 of each line's 6.5 microseconds."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s.%(msecs)03d %(levelname)s %(message)s")
        self._second: tuple[int, str] = (-1, "")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        second, text = self._second
        if int(record.created) != second:  # one tuple, so that threads never mix two seconds
            text = time.strftime("%Y-%m-%dT%H:%M:%S", self.converter(record.created))
            self._second = (int(record.created), text)
        return text


_FORMATTER = _Formatter()
_attached: dict[Path, tuple[int, list[logging.Handler]]] = {}
_lock = threading.Lock()


class _WorkersFilter(logging.Filter):
    """Let through only the time-log lines of calls to some workers (by base URL), so that
    two clusters in one notebook keep separate time logs."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: set[str] | None = set()  # None: every line

    def filter(self, record: logging.LogRecord) -> bool:
        return self.urls is None or getattr(record, "worker_url", None) in self.urls


class _LogFile(logging.FileHandler):
    """A log file opened without following a link planted in its place, and (for the time
    log, one line per call to a worker) written to disk at most every quarter second rather
    than after every line: flushing each line costs a round more than its HTTP calls.
    :func:`flush_time_log` writes what is pending at once (a master does, when an action
    ends), and closing the file does too."""

    _FLUSH_EVERY = 0.25  # seconds

    def __init__(self, path: Path, *, buffered: bool) -> None:
        self.buffered = buffered
        self._flushed = 0.0
        super().__init__(path, encoding="utf-8")

    def _open(self):
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0)
        descriptor = os.open(self.baseFilename, flags, 0o600)  # a planted link: ELOOP
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            os.close(descriptor)
            raise OSError(f"{self.baseFilename} is not a regular file; remove it")
        return open(descriptor, "a", encoding=self.encoding)  # noqa: SIM115 - the handler's

    def emit(self, record: logging.LogRecord) -> None:
        if not self.buffered:
            super().emit(record)
            return
        try:
            if self.stream is None:
                self.stream = self._open()
            self.stream.write(self.format(record) + self.terminator)
            now = time.monotonic()
            if now - self._flushed >= self._FLUSH_EVERY:
                self._flushed = now
                self.stream.flush()
        except Exception:  # as logging does: a log line must never break a fit
            self.handleError(record)


def flush_time_log() -> None:
    """Write the time log's pending lines to its files now (see :class:`_LogFile`)."""
    for handler in list(time_logger.handlers):
        handler.flush()


def attach_log_files(
    directory: str | Path, *, urls: Iterable[str] | None = None
) -> Callable[[], None]:
    """Write both logs into ``directory`` until the returned function is called.

    ``urls``, if given, keeps in this directory's ``chimera_time.log`` only the calls to
    workers at those base URLs (a cluster passes its own). Attaching the same directory
    twice shares its files (they are reference-counted), so a cluster and a project run in
    the same folder do not write every line twice.
    """
    directory = Path(directory).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    with _lock:
        count, handlers = _attached.get(directory, (0, []))
        if count == 0:
            handlers = []
            for logger, filename in ((status_logger, STATUS_LOG), (time_logger, TIME_LOG)):
                handler = _LogFile(directory / filename, buffered=logger is time_logger)
                handler.setFormatter(_FORMATTER)
                logger.addHandler(handler)
                handlers.append(handler)
            handlers[1].addFilter(_WorkersFilter())
        workers = next(f for f in handlers[1].filters if isinstance(f, _WorkersFilter))
        if urls is None or workers.urls is None:
            workers.urls = None
        else:
            workers.urls.update(url.rstrip("/") for url in urls)
        _attached[directory] = (count + 1, handlers)

    def detach() -> None:
        with _lock:
            count, handlers = _attached.get(directory, (0, []))
            if count == 0:
                return
            if count > 1:
                _attached[directory] = (count - 1, handlers)
                return
            del _attached[directory]
            for logger, handler in zip((status_logger, time_logger), handlers):
                logger.removeHandler(handler)
                handler.close()

    return detach


def log_worker_call(
    worker: str,
    endpoint: str,
    latency_ms: float,
    status: int | str,
    round_number: int | None = None,
    attempt: int = 1,
    url: str | None = None,
    *,
    bytes_sent: int = 0,
    bytes_received: int = 0,
) -> None:
    """One line of ``chimera_time.log``; ``url`` (the worker's base URL) ends the line and
    picks the files."""
    if not (time_logger.handlers and time_logger.isEnabledFor(logging.INFO)):
        return  # a line costs microseconds on a round's hot path: none when nobody reads it
    line = (
        f"worker={worker} endpoint={endpoint} latency_ms={latency_ms:.3f} status={status} "
        f"round={'-' if round_number is None else round_number} attempt={attempt} "
        f"bytes_sent={bytes_sent} bytes_received={bytes_received}{f' url={url}' if url else ''}"
    )
    # A record made here, not by time_logger.info(), which would look up the calling
    # function's file and line (nobody reads them) for every call a master makes.
    record = logging.LogRecord(time_logger.name, logging.INFO, "", 0, line, None, None)
    record.worker_url = url
    time_logger.handle(record)


def log_master_request(
    endpoint: str, latency_ms: float, status: int, url: str | None = None
) -> None:
    """The line of ``chimera_time.log`` for a request a master answered (the seed's *master
    endpoint latency*): ``worker=master``, no round, ``url`` the master's base URL."""
    log_worker_call(MASTER, endpoint, latency_ms, status, url=url)


def read_time_log(path: str | Path) -> pd.DataFrame:
    """Read ``chimera_time.log`` (or the directory holding it) into a DataFrame.

    Returns
    -------
    DataFrame
        Columns ``time`` (datetime64), ``worker``, ``endpoint``, ``latency_ms`` (float),
        ``status`` (str), ``round`` (nullable int) and ``attempt`` (int); one row per call.
    """
    path = Path(path)
    if path.is_dir():
        path = path / TIME_LOG
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        timestamp, _level, *pairs = line.split(" ")
        row: dict[str, str] = dict(pair.split("=", 1) for pair in pairs if "=" in pair)
        row["time"] = timestamp
        rows.append(row)
    columns = ["time", "worker", "endpoint", "latency_ms", "status", "round", "attempt"]
    frame = pd.DataFrame(rows, columns=columns)
    frame["time"] = pd.to_datetime(frame["time"])
    frame["latency_ms"] = frame["latency_ms"].astype(float)
    frame["round"] = pd.to_numeric(frame["round"].replace("-", None)).astype("Int64")
    frame["attempt"] = frame["attempt"].astype(int)
    frame["status"] = frame["status"].astype(str)
    return frame
