"""Time limits for a student's code, so that a loop that never ends fails its question
instead of hanging a notebook, or an autograder that has forty notebooks to grade.

Why a signal: Python cannot stop a thread from outside, but a signal interrupts the *main*
thread between two bytecodes, even inside ``time.sleep``. :func:`time_limit` arms ``SIGALRM``
and its handler raises :class:`TimeLimitError` wherever the main thread is. That is why the lab
helpers run every piece of a student's code on the main thread: a rule the master calls from
its event loop is handed over to it (:mod:`.handover`), and a gradient sent to a worker runs
on that worker's main thread.

Limits nest: the innermost one that expires names itself in the error. A student's code that
catches the error and carries on gets it again every :data:`AGAIN` seconds until its block
ends. Code that must not be interrupted half-way (stopping a fit, closing a cluster) runs in
:func:`shielded`, and the error comes right after it.

:func:`limit_cells` puts one limit on every notebook cell (a lab calls it in its first cell),
which also bounds a cell the student wrote at top level.

Where there is no ``SIGALRM`` (Windows), or off the main thread, limits are not enforced: the
code simply runs.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

__all__ = ["AGAIN", "TimeLimitError", "enforced", "limit_cells", "shielded", "time_limit"]

#: Seconds between two reminders to code that swallowed a TimeLimitError.
AGAIN = 0.2


class TimeLimitError(TimeoutError):
    """Code ran longer than its time limit and was stopped there."""


@dataclass(eq=False)
class _Limit:
    deadline: float  # time.monotonic()
    message: str


_active: list[_Limit] = []  # outermost first
_shield_depth = 0
_pending = False  # the alarm came while shielded
_before: tuple[Any, float | None] | None = None  # the alarm's earlier handler and deadline


def enforced() -> bool:
    """Whether a time limit can interrupt code here: Unix, on the main thread."""
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


@contextmanager
def time_limit(seconds: float, what: str, *, hint: str = "") -> Iterator[None]:
    """Raise :class:`TimeLimitError` inside the block if it runs longer than ``seconds``.

    Parameters
    ----------
    seconds : float
    what : str
        Who is limited, for the message: ``"your aggregate()"`` gives "your aggregate() ran
        longer than 2 s and was stopped".
    hint : str, optional
        A sentence added to the message (what usually causes it).

    Examples
    --------
    >>> with time_limit(0.1, "this loop"):  # doctest: +SKIP
    ...     while True:
    ...         pass
    Traceback (most recent call last):
    TimeLimitError: this loop ran longer than 0.1 s and was stopped.
    """
    if not enforced():
        yield
        return
    message = f"{what} ran longer than {seconds:g} s and was stopped."
    limit = _push(_Limit(time.monotonic() + seconds, f"{message} {hint}".strip()))
    try:
        yield
    finally:
        _pop(limit)


@contextmanager
def shielded() -> Iterator[None]:
    """Hold back an expiring limit until the block ends (cleanup that must finish)."""
    global _shield_depth, _pending
    _shield_depth += 1
    try:
        yield
    finally:
        _shield_depth -= 1
        if _shield_depth == 0 and _pending:
            _pending = False
            _arm()  # an expired limit fires at once


def _push(limit: _Limit) -> _Limit:
    global _before
    if not _active:  # the first limit: keep whoever used the alarm before (pytest-timeout...)
        handler = signal.signal(signal.SIGALRM, _on_alarm)
        remaining = signal.getitimer(signal.ITIMER_REAL)[0]
        _before = (handler, time.monotonic() + remaining if remaining > 0 else None)
    _active.append(limit)
    _arm()
    return limit


def _pop(limit: _Limit) -> None:
    global _before
    if limit in _active:
        _active.remove(limit)
    if _active or _before is None:
        _arm()
        return
    (handler, deadline), _before = _before, None  # the last limit: give the alarm back
    signal.signal(signal.SIGALRM, handler)
    remaining = 0.0 if deadline is None else max(deadline - time.monotonic(), 0.001)
    signal.setitimer(signal.ITIMER_REAL, remaining)


def _arm() -> None:
    """Set the process's one real-time timer to the earliest deadline (or turn it off)."""
    deadlines = [limit.deadline for limit in _active]
    if _before is not None and _before[1] is not None:
        deadlines.append(_before[1])
    if not deadlines:
        signal.setitimer(signal.ITIMER_REAL, 0)
        return
    signal.setitimer(signal.ITIMER_REAL, max(min(deadlines) - time.monotonic(), 0.001))


def _on_alarm(signum: int, frame: Any) -> None:
    global _pending, _before
    now = time.monotonic()
    if _before is not None and _before[1] is not None and _before[1] <= now:
        handler, _ = _before
        _before = (handler, None)  # the earlier user's alarm: hand it over, once
        if callable(handler):
            handler(signum, frame)
    expired = [limit for limit in _active if limit.deadline <= now]
    if not expired:
        _arm()
        return
    signal.setitimer(signal.ITIMER_REAL, AGAIN)  # again, if the error gets swallowed
    if _shield_depth:
        _pending = True
        return
    raise TimeLimitError(expired[-1].message)


# -- a limit on every cell of a notebook ----------------------------------------------------

_cell_limits: dict[int, Any] = {}  # id(shell) -> the callbacks registered


def limit_cells(seconds: float | None) -> bool:
    """Stop any notebook cell that runs longer than ``seconds`` (None: no limit again).

    Returns whether a limit is in force: only in IPython (Jupyter, Colab), on the main thread,
    on Unix.
    """
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None or not enforced():
        return False
    previous = _cell_limits.pop(id(shell), None)
    if previous is not None:
        shell.events.unregister("pre_run_cell", previous[0])
        shell.events.unregister("post_run_cell", previous[1])
    if seconds is None:
        return False
    running: list[_Limit] = []
    message = (
        f"This cell ran longer than {seconds:g} s and was stopped. Every cell of a lab "
        "finishes in seconds: look for a loop that never ends."
    )

    def before(info: Any = None) -> None:
        running.append(_push(_Limit(time.monotonic() + seconds, message)))

    def after(result: Any = None) -> None:
        while running:
            _pop(running.pop())

    shell.events.register("pre_run_cell", before)
    shell.events.register("post_run_cell", after)
    _cell_limits[id(shell)] = (before, after)
    return True
