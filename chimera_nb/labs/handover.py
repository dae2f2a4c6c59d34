"""A student's rule objects, run on the notebook's main thread while the master waits for them.

A master calls its rules (``aggregator.aggregate``, ``combiner.combine``,
``round_policy.closes``, ``consistency.may_start``) from the kit's event-loop thread. Nothing can stop a thread from
outside, so a rule that never returns would hang that loop, and every fit after it. A lab fit
therefore hands each call over: the loop thread puts the call in a queue and waits, and the
main thread, which waits for the fit anyway, runs it under a time limit (:mod:`.limits`) and
hands back the answer or the error. For the master nothing changes: its rule answered, or
raised.

Every call is also recorded as a :class:`RuleCall` (which method, in which round, with the
answers of which workers), so that a grader can check the protocol: "the aggregator got only
the workers that answered round 5".
"""

from __future__ import annotations

import concurrent.futures
import queue
import threading
import time
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .contracts import check_rule_result
from .limits import time_limit

__all__ = ["Handover", "RuleCall", "is_students"]


@dataclass(frozen=True)
class RuleCall:
    """One call a master made to a rule of the student's.

    Attributes
    ----------
    rule : str
        The rule's class (or function) name, such as ``"ShardSizeWeightedMean"``.
    method : str
        ``"aggregate"``, ``"combine"``, ``"closes"``, ``"may_start"``, or ``"__call__"`` for a
        function.
    round_number : int or None
        The round the master was in (None outside rounds).
    workers : tuple of str
        The workers whose answers the call received (for ``closes``: those answered so far).
    seconds : float
        How long the call took.
    error : str or None
        What it raised, if it raised.
    """

    rule: str
    method: str
    round_number: int | None
    workers: tuple[str, ...]
    seconds: float
    error: str | None = None


def is_students(value: Any) -> bool:
    """Whether ``value`` is a rule (object or function) written outside the kit."""
    if value is None or isinstance(value, (str, bytes, int, float, bool)):
        return False
    plain = (types.FunctionType, types.BuiltinFunctionType, type)
    kind = value if isinstance(value, plain) else type(value)
    return not (getattr(kind, "__module__", None) or "builtins").startswith(
        ("chimera_nb", "builtins")
    )


class _HandedOver:
    """Stands in for a rule object: its methods go through the :class:`Handover`."""

    def __init__(self, handover: Handover, rule: Any) -> None:
        self._handover = handover
        self._rule = rule

    def __getattr__(self, name: str) -> Any:
        if name in ("__name__", "__qualname__"):
            return getattr(self._rule, name)
        if name.startswith("_"):
            raise AttributeError(name)
        value = getattr(self._rule, name)
        if not callable(value):
            return value  # an attribute, such as a round policy's ``deadline``

        def call(*args: Any) -> Any:
            return self._handover.call(self._rule, name, args)

        return call

    def __call__(self, *args: Any) -> Any:  # a rule that is a plain function
        return self._handover.call(self._rule, "__call__", args)

    def __repr__(self) -> str:
        return repr(self._rule)


class Handover:
    """Runs the rule calls of one lab fit on the thread that :meth:`serve` s, each under
    ``call_limit`` seconds, and records them in :attr:`calls`."""

    def __init__(self, call_limit: float = 2.0) -> None:
        self.call_limit = call_limit
        self.calls: list[RuleCall] = []
        self.round_number: int | None = None
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._server: int | None = None  # the thread serving now
        self._stopped = False  # abandoning the fit: refuse every call

    def wrap(self, rule: Any) -> Any:
        """A stand-in for ``rule`` whose calls come here."""
        return _HandedOver(self, rule)

    def follow(self, event: Any) -> None:
        """An event subscriber: keeps :attr:`round_number` up to date."""
        if getattr(event, "round_number", None) is not None:
            self.round_number = event.round_number

    # -- the master's side (any thread) --------------------------------------------------

    def call(self, rule: Any, method: str, args: Sequence[Any]) -> Any:
        """Run ``rule.method(*args)`` on the serving thread and return its answer (or raise
        its error). Called on the serving thread, or when nobody serves, it runs here."""
        future: concurrent.futures.Future = concurrent.futures.Future()
        with self._lock:
            if self._stopped:
                raise RuntimeError("the lab run was stopped (its time limit) before this call")
            handed = self._server is not None and self._server != threading.get_ident()
            if handed:
                self._queue.put((rule, method, args, future))
        if not handed:
            self._run(rule, method, args, future)
        return future.result()

    # -- the serving side (the main thread) ------------------------------------------------

    def open(self) -> None:
        """From now on, calls from other threads wait for this thread to :meth:`serve`
        them (call it before the fit starts: a call made earlier would run unguarded)."""
        with self._lock:
            self._server = threading.get_ident()

    def serve(self, done: Callable[[], bool]) -> None:
        """Run the calls handed over until ``done()``; a call that raises or runs too long
        fails the master's call, not this loop."""
        while not done():
            try:
                item = self._queue.get(timeout=0.005)
            except queue.Empty:
                continue
            self._run(*item)

    def stop(self) -> None:
        """The fit is being abandoned: the calls waiting, and any made until :meth:`close`,
        fail at once (none may run unguarded on the event loop meanwhile)."""
        with self._lock:
            self._stopped = True
        self._refuse_waiting()

    def close(self) -> None:
        """Serving is over: later calls (a prediction long after) run where they are made."""
        with self._lock:
            self._server, self._stopped = None, False
        self._refuse_waiting()

    def _refuse_waiting(self) -> None:
        while True:
            try:
                *_, future = self._queue.get_nowait()
            except queue.Empty:
                return
            future.set_exception(RuntimeError("the lab run was stopped before this call"))

    def _run(self, rule: Any, method: str, args: Sequence[Any], future: Any) -> None:
        name = getattr(rule, "__name__", None) or type(rule).__name__
        started = time.perf_counter()
        error: BaseException | None = None
        try:
            what = f"your {name}()" if method == "__call__" else f"your {name}.{method}()"
            with time_limit(self.call_limit, what):
                answer = getattr(rule, method)(*args)
            answer = check_rule_result(name, method, answer, args)
        except BaseException as failure:  # noqa: BLE001 - handed back to the master's call
            error = failure
            future.set_exception(failure)
        else:
            future.set_result(answer)
        self.calls.append(
            RuleCall(
                name,
                method,
                self.round_number,
                _workers(args),
                time.perf_counter() - started,
                None if error is None else f"{type(error).__name__}: {error}",
            )
        )
        if isinstance(error, KeyboardInterrupt):
            raise error


def _workers(args: Sequence[Any]) -> tuple[str, ...]:
    """The worker names a call's first argument holds: a mapping's keys, or a list of names."""
    if not args:
        return ()
    first = args[0]
    if isinstance(first, Mapping):
        return tuple(str(name) for name in first)
    if isinstance(first, (list, tuple)) and all(isinstance(name, str) for name in first):
        return tuple(first)
    return ()
