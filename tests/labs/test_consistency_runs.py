"""A student's consistency rule (lab 4's ``may_start``) in a real SSP fit: it runs on the main
thread under the lab's time limits, and every way it can go wrong (a wrong answer, a rule
that lets nobody start, a loop that never ends) ends the run in seconds, in words."""

from __future__ import annotations

import time

import numpy as np
import pytest

from chimera_nb import ParameterServerMaster, SGDWorker, labs

rng = np.random.default_rng(0)
X = rng.normal(size=(300, 4))
y = X @ np.array([1.0, -2.0, 0.5, 0.0]) + 3.0 + rng.normal(scale=0.1, size=300)


class AtMostOneAhead:
    def may_start(self, clock, slowest):
        return clock - slowest <= 1


class StrictlyBehind:  # the off-by-one of lab 4: a worker level with the slowest may not start
    def may_start(self, clock, slowest):
        return clock - slowest < 0


class Unfinished:
    def may_start(self, clock, slowest): ...


class Endless:
    def may_start(self, clock, slowest):
        while True:
            pass


def test_a_student_consistency_rule_runs_handed_over_and_bounds_the_staleness():
    # Prepare
    master = ParameterServerMaster("regressor", max_iter=8, tol=0.0, consistency=AtMostOneAhead())
    # Execute
    run = labs.run(master, SGDWorker("regressor"), X, y, 3, slow={"worker3": 0.02})
    # Assert
    assert run.ok, run.problem
    assert {call.method for call in run.rule_calls} == {"may_start"}
    assert all(call.error is None for call in run.rule_calls)
    assert len(master.updates_) == 24
    assert max(update.staleness for update in master.updates_) == 1
    assert isinstance(master.consistency, AtMostOneAhead)  # given back after the fit


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (
            StrictlyBehind(),
            "your StrictlyBehind.may_start() returned False for clock=0, slowest=0: a worker "
            "that is not ahead of the slowest must always start",
        ),
        (
            Unfinished(),
            "your Unfinished.may_start() returned None; it must return True or False. Did you "
            "forget `return`",
        ),
        (Endless(), "your Endless.may_start() ran longer than 0.5 s and was stopped."),
    ],
    ids=["nobody-starts", "none", "endless"],
)
def test_a_rule_that_cannot_be_used_fails_the_run_in_seconds_and_in_words(rule, message):
    # Prepare
    master = ParameterServerMaster("regressor", max_iter=5, consistency=rule)
    # Execute
    started = time.monotonic()
    run = labs.run(master, SGDWorker("regressor"), X, y, 2, call_limit=0.5, time_limit=20)
    # Assert
    assert time.monotonic() - started < 15
    assert not run.ok and message in run.problem
    assert not master.fitting
