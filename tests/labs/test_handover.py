"""Handing a rule's calls over to the serving thread: answers and errors come back to the
caller, every call is recorded, and a rule that never returns is stopped there."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from chimera_nb.algorithms import Gradient, ShardGradient
from chimera_nb.labs.contracts import ContractError
from chimera_nb.labs.handover import Handover, is_students
from chimera_nb.labs.limits import TimeLimitError
from chimera_nb.masters.estimator import HasMethods


class Mean:
    def aggregate(self, gradients):
        answers = list(gradients.values())
        return Gradient(
            np.mean([a.weights for a in answers], axis=0),
            np.mean([a.bias for a in answers], axis=0),
        )


class Unfinished:
    def aggregate(self, gradients): ...


class Endless:
    def aggregate(self, gradients):
        while True:
            pass


GRADIENTS = {
    "worker1": ShardGradient(np.array([[1.0]]), np.array([1.0]), 10, 0.0),
    "worker2": ShardGradient(np.array([[3.0]]), np.array([3.0]), 10, 0.0),
}


def call_from_another_thread(handover: Handover, rule, method: str, args) -> dict:
    """Call like the master's event loop does, while this thread serves."""
    outcome: dict = {}

    def call() -> None:
        try:
            outcome["answer"] = handover.call(rule, method, args)
        except BaseException as error:  # noqa: BLE001
            outcome["error"] = error
        outcome["thread"] = threading.get_ident()

    thread = threading.Thread(target=call)
    handover.open()
    try:
        thread.start()
        handover.serve(lambda: not thread.is_alive())
    finally:
        handover.close()
    thread.join()
    return outcome


def test_a_call_from_another_thread_runs_on_the_serving_thread_and_is_recorded():
    # Prepare
    handover, ran_on = Handover(), []

    class Recording(Mean):
        def aggregate(self, gradients):
            ran_on.append(threading.get_ident())
            return super().aggregate(gradients)

    handover.round_number = 4
    # Execute
    outcome = call_from_another_thread(handover, Recording(), "aggregate", (GRADIENTS,))
    # Assert
    assert ran_on == [threading.get_ident()] != [outcome["thread"]]
    assert np.allclose(outcome["answer"].weights, [[2.0]])
    call = handover.calls[0]
    assert (call.rule, call.method, call.round_number) == ("Recording", "aggregate", 4)
    assert call.workers == ("worker1", "worker2") and call.error is None


def test_a_wrong_answer_is_handed_back_as_an_error_that_says_what_to_return():
    # Execute
    outcome = call_from_another_thread(Handover(), Unfinished(), "aggregate", (GRADIENTS,))
    # Assert
    assert isinstance(outcome["error"], ContractError)
    assert str(outcome["error"]) == (
        "your Unfinished.aggregate() returned None; it must return Gradient(weights, bias). "
        "Did you forget `return`, or leave the `...` in place?"
    )


def test_a_rule_that_never_returns_is_stopped_and_the_caller_gets_the_time_limit_error():
    # Prepare
    handover = Handover(call_limit=0.3)
    # Execute
    started = time.monotonic()
    outcome = call_from_another_thread(handover, Endless(), "aggregate", (GRADIENTS,))
    # Assert
    assert time.monotonic() - started < 3
    assert isinstance(outcome["error"], TimeLimitError)
    assert "your Endless.aggregate() ran longer than 0.3 s" in str(outcome["error"])
    assert handover.calls[0].error.startswith("TimeLimitError")


def test_with_nobody_serving_the_call_runs_where_it_is_made():
    # Execute
    answer = Handover().call(Mean(), "aggregate", (GRADIENTS,))
    # Assert
    assert np.allclose(answer.bias, [2.0])


def test_a_stand_in_passes_the_masters_checks_and_reads_like_the_rule():
    # Prepare
    rule = Mean()
    # Execute
    stand_in = Handover().wrap(rule)
    # Assert
    assert HasMethods("aggregate")(stand_in)
    assert repr(stand_in) == repr(rule)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Mean(), True),
        (len, False),
        (None, False),
        (3, False),
        (Gradient, False),
        (Handover(), False),
    ],
)
def test_only_rules_written_outside_the_kit_are_handed_over(value, expected):
    # Execute, Assert
    assert is_students(value) is expected
