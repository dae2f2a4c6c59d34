"""Tests for chimera_nb.algorithms.schedules: the step size as a function of the round number."""

from __future__ import annotations

import pytest

from chimera_nb.algorithms.schedules import Constant, InverseScaling, make_schedule


def test_constant_schedule_gives_the_same_step_every_round() -> None:
    # Prepare
    schedule = Constant(0.3)

    # Execute
    actual = [schedule(round_number) for round_number in (1, 2, 10, 10_000)]

    # Assert
    assert actual == [0.3, 0.3, 0.3, 0.3]


@pytest.mark.parametrize(
    ("round_number", "expected"), [(1, 0.1), (16, 0.05), (81, 0.1 / 3), (10_000, 0.01)]
)
def test_inverse_scaling_divides_by_the_round_number_to_the_power(round_number, expected) -> None:
    # Prepare: the default power is scikit-learn's 0.25, so round 16 halves the step.
    schedule = InverseScaling(0.1)

    # Execute
    actual = schedule(round_number)

    # Assert
    assert actual == pytest.approx(expected, rel=1e-12)


def test_inverse_scaling_uses_the_power_it_is_given() -> None:
    # Prepare
    schedule = InverseScaling(1.0, power=0.5)

    # Execute
    actual = schedule(4)

    # Assert
    assert actual == pytest.approx(0.5, rel=1e-12)


@pytest.mark.parametrize(
    ("name", "expected"),
    [("constant", Constant(0.2)), ("invscaling", InverseScaling(0.2, 0.4))],
)
def test_make_schedule_builds_the_schedule_named_as_in_scikit_learn(name, expected) -> None:
    # Execute
    actual = make_schedule(name, 0.2, power=0.4)

    # Assert
    assert actual == expected


def test_make_schedule_names_the_allowed_schedules_when_given_another() -> None:
    # Execute / Assert
    with pytest.raises(ValueError, match="must be 'constant' or 'invscaling', got 'adaptive'"):
        make_schedule("adaptive", 0.1)
