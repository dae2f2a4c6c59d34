"""Sending a function written in a notebook to the workers, as source code.

A worker runs in its own process and gets its worker object as a pickle; pickle sends a
function *by name*, and a function defined in a notebook lives in ``__main__``, which the
worker's process cannot import. So a lab worker carries the function's **source** instead
(:class:`ShippedFunction`) and compiles it in its own process when it starts. The pickle
only travels between local processes of this user (see :mod:`chimera_nb.cluster._pickling`).

What the source may use from the notebook: modules (``np``), other functions defined there
(sent along), and plain constants (numbers, strings). Anything else, such as the notebook's
``X``, is refused with a sentence saying why: **a worker computes only with its own shard**.
"""

from __future__ import annotations

import builtins
import dis
import importlib
import inspect
import linecache
import textwrap
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .._exceptions import ConfigurationError

__all__ = ["ShippedFunction"]

_CONSTANTS = (int, float, complex, str, bytes, bool, type(None))
_GLOBAL_LOADS = {"LOAD_GLOBAL", "LOAD_NAME"}


@dataclass(frozen=True)
class ShippedFunction:
    """A function travelling as source code: ``source`` defines ``name`` and what it needs.

    Examples
    --------
    >>> def double(x):
    ...     return 2 * x
    >>> shipped = ShippedFunction.of(double)  # doctest: +SKIP
    >>> shipped.compile()(21)  # doctest: +SKIP
    42
    """

    name: str
    source: str

    @classmethod
    def of(cls, function: Callable) -> ShippedFunction:
        """The source of ``function`` and of what it uses from its module, or a
        :class:`~chimera_nb.ConfigurationError` saying what cannot travel and why."""
        _check_plain(function)
        parts: dict[str, str] = {}
        _collect(function, parts, seen=set())
        imports = sorted(part for part in parts.values() if part.startswith(("import ", "from ")))
        rest = [part for part in parts.values() if not part.startswith(("import ", "from "))]
        header = ["from __future__ import annotations", *imports]
        return cls(function.__name__, "\n".join(header) + "\n\n" + "\n\n".join(rest))

    @property
    def filename(self) -> str:
        """What tracebacks call the code: ``<your squared_loss_gradient>``."""
        return f"<your {self.name}>"

    def compile(self) -> Callable:
        """Run the source in a fresh namespace and return the function (in a worker)."""
        lines = self.source.splitlines(keepends=True)
        linecache.cache[self.filename] = (len(self.source), None, lines, self.filename)
        namespace: dict[str, Any] = {"__name__": f"lab_{self.name}"}
        exec(compile(self.source, self.filename, "exec"), namespace)  # noqa: S102 - our own user's code
        return namespace[self.name]

    def __repr__(self) -> str:
        return self.name


def _check_plain(function: Any) -> None:
    name = getattr(function, "__name__", repr(function))
    if not isinstance(function, types.FunctionType):
        raise ConfigurationError(
            f"{name} is a {type(function).__name__}; a worker can be sent a plain function "
            "defined with def."
        )
    if name == "<lambda>":
        raise ConfigurationError("a lambda cannot be sent to the workers: define it with def.")
    if function.__closure__:
        raise ConfigurationError(
            f"{name} uses variables of the function it is defined in "
            f"({', '.join(function.__code__.co_freevars)}), which cannot be sent to the "
            "workers: define it at the top level of a cell and pass what it needs as arguments."
        )


def _collect(function: types.FunctionType, parts: dict[str, str], seen: set[str]) -> None:
    """Add to ``parts`` (name -> code) what ``function`` needs, then ``function`` itself."""
    seen.add(function.__name__)
    for name in sorted(_global_names(function.__code__)):
        if name in parts or name in seen or name == function.__name__:
            continue
        if name not in function.__globals__:
            if hasattr(builtins, name):
                continue
            raise ConfigurationError(
                f"{function.__name__} uses {name}, which is not defined: run the cell that "
                "defines it first."
            )
        parts[name] = _part(function, name, function.__globals__[name], parts, seen)
    parts[function.__name__] = _source(function)


def _part(
    function: types.FunctionType, name: str, value: Any, parts: dict[str, str], seen: set[str]
) -> str:
    """The code that gives ``name`` its ``value`` in the worker's process."""
    if isinstance(value, types.ModuleType):
        module = value.__name__
        return f"import {module}" if module == name else f"import {module} as {name}"
    if isinstance(value, types.FunctionType) and value.__globals__ is function.__globals__:
        _check_plain(value)
        _collect(value, parts, seen)
        source = parts.pop(value.__name__)  # placed here, after what it needs
        return source if name == value.__name__ else f"{source}\n\n{name} = {value.__name__}"
    importable = _import_line(name, value)
    if importable:
        return importable
    if type(value).__module__ == "numpy" and getattr(value, "shape", None) == ():
        return f"{name} = {value.item()!r}"  # a numpy scalar, as a plain number
    if isinstance(value, _CONSTANTS) or (
        isinstance(value, (tuple, frozenset)) and all(isinstance(v, _CONSTANTS) for v in value)
    ):
        return f"{name} = {value!r}"
    raise ConfigurationError(
        f"{function.__name__} uses {name} (a {type(value).__name__}) from the notebook, which "
        "is not sent to the workers: a worker computes only with its own shard and what the "
        "master sends it. Pass what the function needs as arguments."
    )


def _import_line(name: str, value: Any) -> str | None:
    """``from module import thing as name``, if ``value`` can be imported that way."""
    module, qualname = getattr(value, "__module__", None), getattr(value, "__qualname__", None)
    if not module or not qualname or module == "__main__" or "." in qualname:
        return None
    try:
        found = getattr(importlib.import_module(module), qualname, None)
    except ImportError:
        return None
    if found is not value:
        return None
    return f"from {module} import {qualname}" + ("" if qualname == name else f" as {name}")


def _global_names(code: types.CodeType) -> set[str]:
    """The global names a code object (and the code nested in it) reads."""
    names = {
        instruction.argval
        for instruction in dis.get_instructions(code)
        if instruction.opname in _GLOBAL_LOADS
    }
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            names |= _global_names(constant)
    return names


def _source(function: types.FunctionType) -> str:
    try:
        return textwrap.dedent(inspect.getsource(function)).strip()
    except (OSError, TypeError) as error:
        raise ConfigurationError(
            f"cannot read the source of {function.__name__} ({error}), so it cannot be sent to "
            "the workers: define it in a notebook cell or a .py file."
        ) from None
