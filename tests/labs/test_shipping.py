"""Sending a student's function to a worker as source: what travels with it, what is refused
(and why, in words), and how it reports errors from its own lines."""

from __future__ import annotations

import traceback

import numpy as np
import pytest

from chimera_nb import ConfigurationError
from chimera_nb.labs.shipping import ShippedFunction

SCALE = 2.0
NAMES = ("a", "b")
WHOLE_DATA = np.ones((10, 3))


def residuals(weights, X, y):
    return X @ weights.T - y.reshape(-1, 1)


def half_mean_square(weights, X, y):
    """Uses a helper function, a module, and a constant of this module."""
    return np.mean(residuals(weights, X, y) ** 2) / SCALE


def uses_the_whole_data(weights, X, y):
    return float(np.mean(WHOLE_DATA @ weights.T))


LIMIT = np.float64(0.5)


def clipped(x):
    return min(x, LIMIT), NAMES


def fails_on_its_third_line(x):
    rows = [x]
    rows.append(x)
    return rows[5]


def uses_a_name_never_defined(x):
    return undefined_name + x  # noqa: F821


def test_a_function_travels_with_its_helpers_modules_and_constants():
    # Prepare
    weights, X, y = np.array([[1.0, 2.0]]), np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([1.0, 1.0])
    # Execute
    shipped = ShippedFunction.of(half_mean_square)
    compiled = shipped.compile()
    # Assert
    assert "import numpy as np" in shipped.source and "SCALE = 2.0" in shipped.source
    assert shipped.source.index("def residuals") < shipped.source.index("def half_mean_square")
    assert compiled(weights, X, y) == half_mean_square(weights, X, y)
    assert compiled is not half_mean_square and repr(shipped) == "half_mean_square"


def test_a_function_that_reads_the_notebooks_data_is_refused_because_a_worker_has_only_its_shard():
    # Execute
    with pytest.raises(ConfigurationError) as raised:
        ShippedFunction.of(uses_the_whole_data)
    # Assert
    assert "uses WHOLE_DATA (a ndarray)" in str(raised.value)
    assert "a worker computes only with its own shard" in str(raised.value)


def test_lambdas_and_closures_are_refused_with_what_to_do():
    # Prepare
    def outer():
        offset = 1

        def inner(x):
            return x + offset

        return inner

    # Execute, Assert
    with pytest.raises(ConfigurationError, match="define it with def"):
        ShippedFunction.of(lambda x: x)
    with pytest.raises(
        ConfigurationError, match=r"uses variables of the function it is defined in \(offset\)"
    ):
        ShippedFunction.of(outer())


def test_tracebacks_show_the_students_own_lines():
    # Prepare
    compiled = ShippedFunction.of(fails_on_its_third_line).compile()
    # Execute
    with pytest.raises(IndexError) as raised:
        compiled(1)
    frames = traceback.extract_tb(raised.value.__traceback__)
    # Assert
    assert frames[-1].filename == "<your fails_on_its_third_line>"
    assert frames[-1].line == "return rows[5]"


def test_tuples_of_constants_travel_and_numpy_scalars_become_numbers():
    # Execute
    shipped = ShippedFunction.of(clipped)
    # Assert
    assert "LIMIT = 0.5" in shipped.source and "NAMES = ('a', 'b')" in shipped.source
    assert shipped.compile()(2.0) == (0.5, ("a", "b"))


def test_a_name_that_is_not_defined_is_refused_before_anything_starts():
    # Execute, Assert
    with pytest.raises(ConfigurationError, match="uses undefined_name, which is not defined"):
        ShippedFunction.of(uses_a_name_never_defined)
