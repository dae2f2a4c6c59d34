"""A lab's real runs: start a small cluster, fit a master with the student's code inside, and
keep what happened, the run's protocol trace, for the student and for the graders.

* :func:`start_cluster` starts a few workers on shards of the data (or on the same data), and
  can slow or kill some of them;
* :func:`fit` fits a master on a running cluster: the student's rules run on this thread
  under time limits (:mod:`.handover`), the whole fit under one more, and the result is a
  :class:`LabRun`;
* :func:`run` does both and closes the cluster.

A run that failed is data too, as a failed worker is in ``history_``: :func:`fit` returns a
:class:`LabRun` whose :attr:`~LabRun.problem` says in words what went wrong (``run.ok`` is
False), so a notebook runs on to its checks, which tell the student what to fix. Only an
interrupt (the stop button) is raised.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import _runtime
from .._exceptions import QuorumError
from ..algorithms import MemberPrediction
from ..cluster import LocalCluster
from ..masters import RoundRecord, StepEvent
from ..spans import Span
from .handover import Handover, RuleCall, is_students
from .limits import shielded, time_limit

__all__ = ["LabRun", "fit", "run", "start_cluster"]

#: Seconds to wait for a fit to end once it is abandoned (it ends at its next await).
_ABANDON_WAIT = 10.0


def start_cluster(
    worker: Any,
    X: Any,
    y: Any,
    n_workers: int = 3,
    *,
    proportions: Sequence[float] | None = None,
    method: str = "contiguous",
    random_state: int | None = None,
    same_data: bool = False,
    slow: Mapping[str, float] | None = None,
    kill: Sequence[str] = (),
    name: str = "lab",
) -> LocalCluster:
    """Start ``n_workers`` copies of ``worker`` as local processes and return the running
    cluster; use it in a ``with`` block, which closes it.

    Parameters
    ----------
    worker : a chimera-nb worker, such as ``SGDWorker("regressor")`` or a lab worker
    X, y : the data; each worker gets one shard of the rows (see
        :func:`chimera_nb.algorithms.split`: ``method``, ``proportions``, ``random_state``),
        or, with ``same_data=True``, all of them (bagging on the same data).
    slow : mapping of worker name to seconds, optional
        Workers to slow down: each answers its training calls that much later.
    kill : names of workers to kill (SIGKILL) once all are up.
    name : str
        The cluster's name; starting another with the same name closes this one.

    Examples
    --------
    >>> with start_cluster(SGDWorker("regressor"), X, y, n_workers=4, slow={"worker4": 0.5}) as cluster:  # doctest: +SKIP
    ...     lab_run = fit(ParameterServerMaster("regressor", max_iter=5), cluster)
    """
    if same_data:
        cluster = LocalCluster([worker.with_data(X, y)] * n_workers, name=name)
    else:
        cluster = LocalCluster.from_shards(
            worker,
            X,
            y,
            n_workers,
            method=method,
            proportions=proportions,
            random_state=random_state,
            name=name,
        )
    cluster.start()
    try:
        for worker_name, seconds in (slow or {}).items():
            cluster.slow(worker_name, seconds)
        for worker_name in kill:
            cluster.kill(worker_name)
    except BaseException:
        cluster.close()
        raise
    return cluster


@dataclass
class LabRun:
    """One lab fit and everything it left behind.

    Attributes
    ----------
    master : the master, fitted if the run is :attr:`ok`
    error : exception or None
        What ended the run early; :attr:`problem` says it in words.
    rule_calls : list of RuleCall
        Every call the master made to a rule you wrote (your aggregator, combiner, round
        policy), with its round and the workers whose answers it received.
    events : list of StepEvent
        Every flowchart step the master went through.
    seconds : float
        How long the fit took.
    predictions, probabilities : ndarray or None
        The master's answers for the rows given as ``predict=``.
    member_predictions : dict of str to MemberPrediction, or None
        Bagging: each fitted member's own answer for those rows, asked over REST.
    """

    master: Any
    error: BaseException | None = None
    rule_calls: list[RuleCall] = field(default_factory=list)
    events: list[StepEvent] = field(default_factory=list)
    seconds: float = 0.0
    predictions: np.ndarray | None = None
    probabilities: np.ndarray | None = None
    member_predictions: dict[str, MemberPrediction] | None = None

    @property
    def ok(self) -> bool:
        """Whether the fit (and the predictions asked for) went through."""
        return self.error is None

    @property
    def problem(self) -> str | None:
        """What went wrong, in words; None if nothing did."""
        if self.error is None:
            return None
        failed = getattr(self.error, "failed", None)
        if isinstance(self.error, QuorumError) and failed:
            by_reason: dict[str, list[str]] = {}
            for name, reason in failed.items():
                by_reason.setdefault(reason, []).append(name)
            reasons = "; ".join(f"{', '.join(names)}: {why}" for why, names in by_reason.items())
            answered = ", ".join(self.error.answered) or "none"
            return f"the run failed: too few workers answered (answered: {answered}). {reasons}"
        problem = f"the run failed: {type(self.error).__name__}: {self.error}"
        if str(self.error).endswith("got Ellipsis"):
            problem += " (an answer still `...`: finish its question first)"
        return problem

    @property
    def history(self) -> list[RoundRecord]:
        """The master's ``history_``: one record per round (who answered, failed, was
        cancelled; loss; latencies)."""
        return list(getattr(self.master, "history_", []))

    @property
    def spans(self) -> list[Span]:
        """The master's ``spans_``: one span per call to a worker."""
        spans = getattr(self.master, "spans_", None)
        return [] if spans is None else spans.snapshot()

    def calls(self):
        """The spans as a DataFrame (``master.spans_.to_frame()``)."""
        return self.master.spans_.to_frame()

    def round_seconds(self) -> dict[int, float]:
        """Round number -> seconds from the round's first step to the next round's first
        (for the last round, to its own last step): how long each round took."""
        starts: dict[int, float] = {}
        ends: dict[int, float] = {}
        for event in self.events:
            if event.round_number is not None:
                starts.setdefault(event.round_number, event.time)
                ends[event.round_number] = event.time
        numbers = sorted(starts)
        return {
            number: (starts[numbers[i + 1]] if i + 1 < len(numbers) else ends[number])
            - starts[number]
            for i, number in enumerate(numbers)
        }

    def rounds(self):
        """One row per round: who answered, failed and was not waited for; loss; seconds."""
        import pandas as pd

        seconds = self.round_seconds()
        columns = ["round", "answered", "failed", "cancelled", "loss", "seconds"]
        return pd.DataFrame(
            [
                {
                    "round": record.round_number,
                    "answered": record.answered,
                    "failed": sorted(record.failed),
                    "cancelled": sorted(record.cancelled),
                    "loss": record.loss,
                    "seconds": seconds.get(record.round_number),
                }
                for record in self.history
            ],
            columns=columns,
        ).set_index("round")

    def __repr__(self) -> str:
        master = type(self.master).__name__
        if not self.ok:
            return f"LabRun({master}: {self.problem})"
        rounds = len(self.history)
        loss = self.history[-1].loss if self.history else None
        summary = f"{rounds} round{'s' if rounds != 1 else ''} in {self.seconds:.2f} s"
        if loss is not None:
            summary += f", final loss {loss:.6g}"
        return f"LabRun({master}: ok, {summary})"


def fit(
    master: Any,
    cluster: Any,
    *,
    predict: Any = None,
    time_limit: float = 30.0,
    call_limit: float = 2.0,
) -> LabRun:
    """Fit ``master`` on the running ``cluster`` and return the :class:`LabRun`.

    The rules you wrote (``aggregator=``, ``combiner=``, ``round_policy=``, ``consistency=``,
    ``seeds=``) run on this thread, each call at most ``call_limit`` seconds; the whole fit
    (and the predictions) at most ``time_limit`` seconds.

    Parameters
    ----------
    predict : array-like or DataFrame, optional
        Rows to predict once fitted (kept in the run; bagging members are asked too).
    """
    handover = Handover(call_limit)
    students = {name: value for name, value in master.get_params().items() if is_students(value)}
    master.set_params(**{name: handover.wrap(value) for name, value in students.items()})
    events: list[StepEvent] = []

    def follow(event: StepEvent) -> None:
        events.append(event)
        handover.follow(event)

    unsubscribe = master.events.subscribe(follow)
    lab_run = LabRun(master, rule_calls=handover.calls, events=events)
    started = time.perf_counter()
    handover.open()
    try:
        what = f"the fit of {type(master).__name__}"
        _, lab_run.error = _wait(handover, master.fit_async(cluster), time_limit, what)
        lab_run.seconds = time.perf_counter() - started
        if lab_run.error is None and predict is not None:
            lab_run.error = _predict(lab_run, handover, cluster, predict, time_limit)
    finally:
        handover.close()
        unsubscribe()
        master.set_params(**students)
    return lab_run


def run(
    master: Any,
    worker: Any,
    X: Any,
    y: Any,
    n_workers: int = 3,
    *,
    predict: Any = None,
    time_limit: float = 30.0,
    call_limit: float = 2.0,
    **cluster_options: Any,
) -> LabRun:
    """Start a cluster (:func:`start_cluster`), :func:`fit` ``master`` on it, close it."""
    with start_cluster(worker, X, y, n_workers, **cluster_options) as cluster:
        return fit(master, cluster, predict=predict, time_limit=time_limit, call_limit=call_limit)


def _wait(
    handover: Handover, coroutine: Any, seconds: float, what: str
) -> tuple[Any, BaseException | None]:
    """Run ``coroutine`` on the kit's event loop, serving the rule calls meanwhile; return
    ``(result, None)``, or ``(None, what it raised)``. Past ``seconds``, abandon it, wait
    until it has really ended, and return the TimeLimitError."""
    ended = threading.Event()

    async def tracked() -> Any:
        try:
            return await coroutine
        finally:
            ended.set()

    future = _runtime.submit(tracked())
    try:
        with time_limit(seconds, what):
            handover.serve(future.done)
    except BaseException as stopped:
        with shielded():
            handover.stop()  # no rule call may run unguarded while it ends
            future.cancel()  # the fit (or prediction) ends at its next await
            ended.wait(_ABANDON_WAIT)
        if isinstance(stopped, KeyboardInterrupt):
            raise
        return None, stopped
    error = future.exception()
    return (None, error) if error is not None else (future.result(), None)


def _predict(
    lab_run: LabRun, handover: Handover, cluster: Any, X: Any, seconds: float
) -> BaseException | None:
    """The master's predictions (and probabilities) for ``X``, and each member's own."""
    master = lab_run.master
    if not hasattr(master, "fitted_workers_"):  # the model lives on the master: no worker asked
        lab_run.predictions = master.predict(X)
        if getattr(master, "model_type", None) == "classifier":
            lab_run.probabilities = master.predict_proba(X)
        return None
    answers: dict[str, Any] = {}
    for name, method in (
        ("predictions", "predict_async"),
        ("probabilities", "predict_proba_async"),
    ):
        what = f"the predictions of {type(master).__name__}"
        answers[name], error = _wait(handover, _quietly(getattr(master, method)(X)), seconds, what)
        if error is not None:
            return error
    lab_run.predictions = answers.get("predictions")
    lab_run.probabilities = answers.get("probabilities")
    lab_run.member_predictions = _ask_members(master, cluster, X)
    return None


async def _quietly(coroutine: Any) -> Any:
    """A regressor has no probabilities: None instead of its AttributeError."""
    try:
        return await coroutine
    except AttributeError:
        return None


def _ask_members(master: Any, cluster: Any, X: Any) -> dict[str, MemberPrediction]:
    """Each fitted member's answer for ``X``, asked over REST as the master asks them."""
    import httpx

    from ..auth import bearer_header
    from ..wire import paths

    if hasattr(X, "columns"):
        body = {"X_pred_columns": [str(c) for c in X.columns], "X_pred_rows": X.to_numpy().tolist()}
    else:
        rows = np.asarray(X, dtype=np.float64).tolist()
        body = {"X_pred_columns": list(master.columns_), "X_pred_rows": rows}
    answers = {}
    with httpx.Client(headers=bearer_header(cluster.token), timeout=30.0) as client:
        for name in master.fitted_workers_:
            reply = client.post(cluster.endpoints[name] + paths.MODEL_PREDICT, json=body)
            reply.raise_for_status()
            answer = reply.json()
            answers[name] = MemberPrediction(
                np.asarray(answer["y_pred_rows"]), answer.get("classes")
            )
    return answers
