"""Workers that compute with a student's function: the lab's way to put the student's code where
it belongs, in the worker processes of a real cluster.

* :class:`LabSGDWorker` answers ``fit-step`` with the loss and gradient the student's function
  gives on the shard (lab 1: the gradient of squared loss, of softmax);
* :class:`LabClassificationWorker` fits its member on the bootstrap rows the student's function
  draws from the seed the master sent (lab 2);
* :class:`LabRingWorker` does each step of the ring all-reduce with the student's functions,
  and :class:`LabSGDWorker` can compress its gradient with the student's top-k (lab 5).

The function travels as source (:mod:`.shipping`) and is compiled when the worker starts. What
it returns is checked (:mod:`.contracts`); whatever goes wrong comes back to the master as
HTTP 500 whose detail says it in words (``your squared_loss_gradient returned None...``), so
it shows in the master's ``history_`` and in the error the lab run reports. In a fit-step,
the function also runs under a time limit, on the worker's main thread.

This module is imported in worker processes: it imports no master, cluster or scikit-learn.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from ..algorithms.compression import SparseVector, TopK
from ..algorithms.ring import RingPhase, RingStep
from ..wire import FitStepResult
from ..wire.compressed import CompressedFitStepResult, CompressionRequest
from ..workers import ClassificationWorker, RingWorker, SGDWorker
from ..workers.training_data import TrainingData
from .contracts import (
    ContractError,
    check_bootstrap_rows,
    check_gradient,
    check_ring_step,
    check_top_k,
)
from .limits import time_limit
from .shipping import ShippedFunction

__all__ = ["LabClassificationWorker", "LabRingWorker", "LabSGDWorker", "StudentCodeError"]

#: Seconds a student's function may run for one request on a worker.
CALL_LIMIT = 2.0


def _shipped(function: Callable | ShippedFunction | None) -> ShippedFunction | None:
    if function is None or isinstance(function, ShippedFunction):
        return function
    return ShippedFunction.of(function)


def _compiled(shipped: ShippedFunction | None) -> Callable | None:
    return None if shipped is None else shipped.compile()


class StudentCodeError(Exception):
    """The student's function failed in this worker; the worker answers HTTP 500 saying how."""


def _failure(shipped: ShippedFunction, error: BaseException) -> StudentCodeError:
    """What the student's function did, and on which of its lines."""
    if isinstance(error, ContractError):
        return StudentCodeError(str(error))
    where = ""
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        if frame.filename == shipped.filename:
            where = f" at `{(frame.line or '').strip()}`"
            break
    return StudentCodeError(f"your {shipped.name} raised {type(error).__name__}: {error}{where}")


async def _answer_student_error(request: Request, error: StudentCodeError) -> JSONResponse:
    return JSONResponse({"detail": str(error)}, status_code=500)


def _answering_student_errors(handler: Callable) -> Callable:
    """A fast-path handler (see the kit's ``wire.fastpath``) that answers a
    :class:`StudentCodeError` as FastAPI's handler below does."""

    async def answer(body: bytes, headers: Any) -> tuple[int, bytes, dict[str, str]]:
        try:
            return await handler(body, headers)
        except StudentCodeError as error:
            detail = json.dumps({"detail": str(error)}).encode()
            return 500, detail, {"content-type": "application/json"}

    return answer


class _AnswersStudentErrors:
    """Answer a :class:`StudentCodeError` with HTTP 500 and its sentence, not as a crash of
    the kit's, on the FastAPI routes and on the fast path that answers fit-steps first."""

    def _add_routes(self, app: FastAPI) -> None:
        super()._add_routes(app)
        app.add_exception_handler(StudentCodeError, _answer_student_error)

    def _fast_routes(self) -> dict[str, Callable]:
        routes = getattr(super(), "_fast_routes", dict)()
        return {path: _answering_student_errors(handler) for path, handler in routes.items()}


class LabSGDWorker(_AnswersStudentErrors, SGDWorker):
    """An :class:`~chimera_nb.SGDWorker` whose shard gradient is a function you wrote.

    Parameters
    ----------
    model_type : {"regressor", "classifier"}
        A classifier needs three classes or more (your function is a softmax gradient).
    gradient : function, optional
        ``gradient(weights, bias, X, y) -> (loss, weights_gradient, bias_gradient)``, the
        *mean* loss of the rows ``X, y`` and its gradient; ``y`` holds targets, or class
        indices for a classifier. None: the kit's own loss.
    top_k : function, optional
        ``top_k(gradient, residual, k) -> ((indices, values), new_residual)``: your top-k
        encoder with error feedback, used when the master asks for top-k compression
        (``ParameterServerMaster(compression=TopK(ratio, error_feedback))``; ``k`` comes from
        the ratio). With error feedback the worker keeps the new residual for the next round;
        without, it passes zeros and forgets it. None: the kit's :class:`TopK`.

    Examples
    --------
    >>> LabSGDWorker("regressor", gradient=squared_loss_gradient)  # doctest: +SKIP
    LabSGDWorker('regressor', gradient=squared_loss_gradient)
    """

    def __init__(
        self,
        model_type: str = "regressor",
        gradient: Callable | ShippedFunction | None = None,
        *,
        top_k: Callable | ShippedFunction | None = None,
    ) -> None:
        super().__init__(model_type)
        self.gradient = _shipped(gradient)
        self.top_k = _shipped(top_k)

    def _repr_arguments(self) -> str:
        top_k = "" if self.top_k is None else f", top_k={self.top_k!r}"
        return f"{self.model_type!r}, gradient={self.gradient!r}{top_k}"

    def load(self, name: str, data: TrainingData) -> LabSGDWorker:
        super().load(name, data)
        self._function = _compiled(self.gradient)
        self._top_k = _compiled(self.top_k)
        self._residual: tuple[str, np.ndarray] | None = None  # (fit, residual) of error feedback
        return self

    def _loss_and_gradient(
        self,
        weights: np.ndarray,
        bias: np.ndarray,
        X: np.ndarray,
        targets: np.ndarray,
        n_classes: int,
    ) -> tuple[float, np.ndarray, np.ndarray]:
        """Your function's loss and gradient (the kit's without one), checked, under a time
        limit; the rest of the fit-step is the kit's (see :meth:`SGDWorker.fit_step`)."""
        if self._function is None:
            return super()._loss_and_gradient(weights, bias, X, targets, n_classes)
        try:
            with time_limit(CALL_LIMIT, f"your {self.gradient.name}"):
                answer = self._function(weights.copy(), bias.copy(), X.copy(), targets)
            return check_gradient(answer, self.gradient.name, weights.shape)
        except Exception as error:
            raise _failure(self.gradient, error) from None

    def compressed(
        self, result: FitStepResult, request: CompressionRequest
    ) -> CompressedFitStepResult:
        """Top-k compression by your function (the kit's without one, and for QSGD): the kit
        turns the gradient into the master's units, your function picks what to send."""
        if self._top_k is None or request.method != "top_k":
            return super().compressed(result, request)
        everything = request.model_copy(update={"ratio": 1.0, "error_feedback": False})
        dense = super().compressed(result, everything)  # all of it, in the master's units
        gradient = dense.gradient.dense()
        if self._residual is None or self._residual[0] != request.fit:
            self._residual = (request.fit, np.zeros_like(gradient))  # a new fit starts afresh
        residual = self._residual[1] if request.error_feedback else np.zeros_like(gradient)
        k = TopK(request.ratio).k(gradient.size)
        try:
            with time_limit(CALL_LIMIT, f"your {self.top_k.name}"):
                answer = self._top_k(gradient.copy(), residual.copy(), k)
            indices, values, new_residual = check_top_k(answer, self.top_k.name, gradient.size)
        except Exception as error:
            raise _failure(self.top_k, error) from None
        if request.error_feedback:
            self._residual = (request.fit, new_residual)
        order = np.argsort(indices)
        sent = SparseVector(gradient.size, indices[order].astype(np.uint32), values[order])
        return CompressedFitStepResult(sent, dense.n_outputs, dense.n_samples, dense.loss)


class LabRingWorker(_AnswersStudentErrors, RingWorker):
    """A :class:`~chimera_nb.RingWorker` that does each step of the ring all-reduce with your
    functions: the kit's rounds, chunks and calls to the neighbour, your arithmetic.

    Parameters
    ----------
    model_type : {"regressor", "classifier"}
    reduce_scatter_step, all_gather_step : function, optional
        ``step(chunks, received, position, step) -> (chunks, send)``: this worker's chunks
        (a list of N arrays) after the chunk ``received`` from its left neighbour at ``step``
        (0 ... N - 2) of the phase, and the index of the chunk to send at the next step. The
        worker sends that chunk; its neighbour refuses one it did not expect (409). None:
        the kit's step.

    Examples
    --------
    >>> LabRingWorker("regressor", reduce_scatter_step=rs_step, all_gather_step=ag_step)  # doctest: +SKIP
    LabRingWorker('regressor', reduce_scatter_step=rs_step, all_gather_step=ag_step)
    """

    def __init__(
        self,
        model_type: str = "regressor",
        *,
        reduce_scatter_step: Callable | ShippedFunction | None = None,
        all_gather_step: Callable | ShippedFunction | None = None,
    ) -> None:
        super().__init__(model_type)
        self.reduce_scatter_step = _shipped(reduce_scatter_step)
        self.all_gather_step = _shipped(all_gather_step)

    def _repr_arguments(self) -> str:
        return (
            f"{self.model_type!r}, reduce_scatter_step={self.reduce_scatter_step!r}, "
            f"all_gather_step={self.all_gather_step!r}"
        )

    def load(self, name: str, data: TrainingData) -> LabRingWorker:
        super().load(name, data)
        self._steps = {
            RingPhase.REDUCE_SCATTER: self.reduce_scatter_step,
            RingPhase.ALL_GATHER: self.all_gather_step,
        }
        self._compiled = {phase: _compiled(shipped) for phase, shipped in self._steps.items()}
        return self

    def _ring_step(
        self, ring: Any, buffer: np.ndarray, step: RingStep, received: np.ndarray
    ) -> int:
        """Your step for this phase on the chunks of ``buffer`` (the kit's without one),
        checked, under a time limit; the worker then sends the chunk it names."""
        shipped, function = self._steps[step.phase], self._compiled[step.phase]
        if function is None:
            return super()._ring_step(ring, buffer, step, received)
        chunks = [buffer[part].copy() for part in ring.slices]
        try:
            with time_limit(CALL_LIMIT, f"your {shipped.name}"):
                answer = function(chunks, received.copy(), ring.setup.position, step.step)
            new_chunks, send = check_ring_step(answer, shipped.name, [len(c) for c in chunks])
        except Exception as error:
            raise _failure(shipped, error) from None
        buffer[:] = np.concatenate(new_chunks)
        return send


class LabClassificationWorker(_AnswersStudentErrors, ClassificationWorker):
    """A bagging member that draws its bootstrap rows with a function you wrote.

    Parameters
    ----------
    estimator : scikit-learn classifier with ``predict_proba``
    bootstrap_rows : function, optional
        ``bootstrap_rows(n_samples, seed) -> rows``: the row numbers of a bootstrap sample of
        ``n_samples`` rows, drawn from ``seed`` (the seed the master sent this worker). None:
        the kit's own bootstrap.
    """

    def __init__(
        self, estimator: Any, bootstrap_rows: Callable | ShippedFunction | None = None
    ) -> None:
        super().__init__(estimator, bootstrap=True)
        self.bootstrap_rows = _shipped(bootstrap_rows)

    def _repr_arguments(self) -> str:
        return f"{self.estimator!r}, bootstrap_rows={self.bootstrap_rows!r}"

    def load(self, name: str, data: TrainingData) -> LabClassificationWorker:
        super().load(name, data)
        self._function = None if self.bootstrap_rows is None else self.bootstrap_rows.compile()
        return self

    def _sample_rows(self, random_state: int) -> np.ndarray:
        """The rows your function draws from the master's seed (the kit's without one),
        checked; the rest of the fit is the kit's (see :meth:`ClassificationWorker.fit`)."""
        if self._function is None:
            return super()._sample_rows(random_state)
        name = self.bootstrap_rows.name
        try:
            rows = self._function(len(self.X_), random_state)
            return check_bootstrap_rows(rows, name, len(self.X_))
        except Exception as error:
            raise _failure(self.bootstrap_rows, error) from None
