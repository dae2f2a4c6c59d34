"""The estimator contract of the masters: parameters, constraints and their messages."""

from __future__ import annotations

import pytest

from chimera_nb import ConfigurationError
from chimera_nb.masters.estimator import Estimator, HasMethods, Interval, Options


class Tiny(Estimator):
    _parameter_constraints = {
        "rate": [Interval(float, 0, None, closed="neither")],
        "rounds": [None, Interval(int, 1, 10)],
        "mode": [Options("fast", "slow")],
        "rule": [None, HasMethods("aggregate")],
    }

    def __init__(self, rate=0.1, *, rounds=None, mode="fast", rule=None):
        self.rate = rate
        self.rounds = rounds
        self.mode = mode
        self.rule = rule


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"rate": 0}, "Tiny's rate must be a number in (0, inf), got 0"),
        ({"rounds": True}, "Tiny's rounds must be None or an integer in [1, 10], got True"),
        ({"rounds": 11}, "rounds must be None or an integer in [1, 10], got 11"),
        ({"rounds": 2.0}, "rounds must be None or an integer in [1, 10], got 2.0"),
        ({"mode": "Fast"}, "Tiny's mode must be 'fast' or 'slow', got 'Fast'"),
        ({"rule": "mean"}, "rule must be None or an object with aggregate(), got 'mean'"),
    ],
)
def test_a_bad_parameter_is_refused_with_what_is_allowed(parameters, message):
    # Execute / Assert
    with pytest.raises(ConfigurationError) as raised:
        Tiny(**parameters)._validate_params()
    assert message in str(raised.value)


def test_good_parameters_pass_and_read_back():
    # Prepare
    tiny = Tiny(0.5, rounds=10, mode="slow")

    # Execute
    tiny._validate_params()

    # Assert
    assert tiny.get_params() == {"rate": 0.5, "rounds": 10, "mode": "slow", "rule": None}
    assert tiny._repr_arguments() == "0.5, rounds=10, mode='slow'"
