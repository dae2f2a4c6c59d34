"""Learning-rate schedules: the step size as a function of the round number (from 1)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Constant", "InverseScaling", "LearningRateSchedule", "make_schedule"]


class LearningRateSchedule:
    """Base class: ``schedule(round_number) -> learning rate``."""

    def __call__(self, round_number: int) -> float:
        raise NotImplementedError


@dataclass(frozen=True)
class Constant(LearningRateSchedule):
    """The same step every round: plain gradient descent."""

    learning_rate: float

    def __call__(self, round_number: int) -> float:
        return self.learning_rate


@dataclass(frozen=True)
class InverseScaling(LearningRateSchedule):
    """``learning_rate / round_number ** power``, scikit-learn's ``'invscaling'``: large steps
    first, smaller ones later, which noisy (mini-batch) gradients need to settle."""

    learning_rate: float
    power: float = 0.25

    def __call__(self, round_number: int) -> float:
        return self.learning_rate / round_number**self.power


def make_schedule(name: str, learning_rate: float, power: float = 0.25) -> LearningRateSchedule:
    """Build a schedule from its scikit-learn name, ``'constant'`` or ``'invscaling'``."""
    if name == "constant":
        return Constant(learning_rate)
    if name == "invscaling":
        return InverseScaling(learning_rate, power)
    raise ValueError(f"learning_rate_schedule must be 'constant' or 'invscaling', got {name!r}")
