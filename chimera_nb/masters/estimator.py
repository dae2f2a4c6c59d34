"""scikit-learn's estimator contract for the masters, without importing scikit-learn.

A master's ``__init__`` only stores each keyword argument under its own name; ``get_params``
reads them back from the signature, so ``sklearn.base.clone(master)`` builds an unfitted copy
with the same arguments, and ``set_params`` changes them. The arguments are checked at the
start of ``fit`` against a table of constraints (``_parameter_constraints``), so that a bad
value fails before any worker is called, with a message that names it.

Examples
--------
>>> class Tiny(Estimator):
...     _parameter_constraints = {"rate": [Interval(float, 0, None, closed="neither")]}
...     def __init__(self, rate=0.1):
...         self.rate = rate
>>> Tiny(rate=0.5).get_params()
{'rate': 0.5}
>>> Tiny(rate=-1)._validate_params()
Traceback (most recent call last):
...
chimera_nb._exceptions.ConfigurationError: Tiny's rate must be a number in (0, inf), got -1
"""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Callable
from typing import Any, ClassVar

from .._exceptions import ConfigurationError

__all__ = ["Estimator", "HasMethods", "Interval", "Options", "describe_constraints"]


class Interval:
    """Numbers of one kind (``int`` or ``float``, never ``bool``) between two bounds.

    ``closed`` says which bounds belong to it: "left", "right", "both" or "neither"; a bound
    of None is unbounded.
    """

    def __init__(
        self,
        kind: type,
        low: float | None,
        high: float | None,
        *,
        closed: str = "both",
    ) -> None:
        self.kind = kind
        self.low, self.high, self.closed = low, high, closed

    def __call__(self, value: Any) -> bool:
        wanted = numbers.Integral if self.kind is int else numbers.Real
        if isinstance(value, bool) or not isinstance(value, wanted):
            return False
        if self.low is not None:
            if value < self.low or (value == self.low and self.closed in ("right", "neither")):
                return False
        if self.high is not None:
            if value > self.high or (value == self.high and self.closed in ("left", "neither")):
                return False
        return True

    def __str__(self) -> str:
        kind = "an integer" if self.kind is int else "a number"
        left = "[" if self.closed in ("left", "both") and self.low is not None else "("
        right = "]" if self.closed in ("right", "both") and self.high is not None else ")"
        low = "-inf" if self.low is None else f"{self.low:g}"
        high = "inf" if self.high is None else f"{self.high:g}"
        return f"{kind} in {left}{low}, {high}{right}"


class Options:
    """One of a few values, such as ``"regressor"`` or ``"classifier"``."""

    def __init__(self, *values: Any) -> None:
        self.values = values

    def __call__(self, value: Any) -> bool:
        return any(value == option and type(value) is type(option) for option in self.values)

    def __str__(self) -> str:
        return " or ".join(repr(value) for value in self.values)


class HasMethods:
    """Any object with these methods (a rule object, such as an aggregator)."""

    def __init__(self, *methods: str) -> None:
        self.methods = methods

    def __call__(self, value: Any) -> bool:
        return all(callable(getattr(value, method, None)) for method in self.methods)

    def __str__(self) -> str:
        return "an object with " + " and ".join(f"{method}()" for method in self.methods)


#: A constraint: a check with a readable ``str``, or None for "None is allowed".
Constraint = Callable[[Any], bool] | None


def describe_constraints(constraints: list[Constraint]) -> str:
    """``"None or an integer in [1, inf)"``: what a parameter may be, for error messages."""
    return " or ".join("None" if c is None else str(c) for c in constraints)


class Estimator:
    """Base class giving ``get_params``, ``set_params``, parameter checks and a short repr.

    Subclasses store every ``__init__`` argument unchanged under its own name and list a
    constraint for each in ``_parameter_constraints``.
    """

    _parameter_constraints: ClassVar[dict[str, list[Constraint]]] = {}

    @classmethod
    def _parameter_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return [
            name
            for name, parameter in signature.parameters.items()
            if name != "self"
            and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
        ]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor's arguments, by name (``deep`` is accepted for scikit-learn)."""
        return {name: getattr(self, name) for name in self._parameter_names()}

    def set_params(self, **params: Any) -> Estimator:
        """Change constructor arguments (checked at the next ``fit``); returns ``self``."""
        valid = self._parameter_names()
        for name, value in params.items():
            if name not in valid:
                raise ConfigurationError(
                    f"{type(self).__name__} has no parameter {name!r}; its parameters are "
                    f"{', '.join(valid)}."
                )
            setattr(self, name, value)
        return self

    def _validate_params(self) -> None:
        """Check every constructor argument against its constraints, before any work."""
        for name in self._parameter_names():
            constraints = self._parameter_constraints.get(name)
            if constraints is None:  # anything goes (e.g. a list of callbacks)
                continue
            value = getattr(self, name)
            if not any(value is None if c is None else c(value) for c in constraints):
                raise ConfigurationError(
                    f"{type(self).__name__}'s {name} must be "
                    f"{describe_constraints(constraints)}, got {value!r}"
                )

    def _repr_arguments(self) -> str:
        """Positional arguments, then the keyword arguments that differ from their default."""
        parts = []
        for name, parameter in inspect.signature(type(self).__init__).parameters.items():
            if name not in self._parameter_names():
                continue
            value = getattr(self, name)
            if parameter.kind is parameter.POSITIONAL_OR_KEYWORD:
                parts.append(repr(value))
            elif value is not parameter.default and value != parameter.default:
                parts.append(f"{name}={value!r}")
        return ", ".join(parts)
