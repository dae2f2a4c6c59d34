"""The ``CHIMERA_*`` settings' error message: every problem on one line, then a hint.

pydantic reports each problem with a location and a short message; a student needs the
variable's name, what is wrong, the value it had, and how lists are written. One
:class:`~chimera_nb.ConfigurationError` lists all of them, so they are fixed in one go.
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from ..validation import WHY_NAMES_ARE_STRICT

__all__ = ["ENV_PREFIX", "HINT", "count", "describe", "json_problem"]

#: Every variable the settings read starts with this prefix.
ENV_PREFIX = "CHIMERA_"
HINT = (
    "Lists are JSON strings with double quotes, one value per worker, e.g. "
    'CHIMERA_WORKERS_NODES_NAMES=\'["worker1", "worker2"]\' and '
    "CHIMERA_WORKERS_MAPPED_PORTS='[5001, 5002]' (in Python: json.dumps([...]))."
)


def json_problem(text: str, error: json.JSONDecodeError, example: str) -> str:
    if "'" in text:
        try:
            json.loads(text.replace("'", '"'))
        except json.JSONDecodeError:
            pass
        else:
            return (
                "uses single quotes, which JSON does not allow; use double quotes, "
                f"e.g. {example} (in Python: json.dumps([...]), not str([...]))"
            )
    if not text.startswith("["):
        return f"is not a JSON list; write it in brackets, e.g. {example}"
    return f"is not valid JSON ({error.msg} at character {error.pos}); write e.g. {example}"


def describe(
    error: ValidationError, environ: Mapping[str, str] | None, fields: Iterable[str]
) -> str:
    """One line per problem, then the hint."""
    environ = os.environ if environ is None else environ
    lines = []
    for problem in error.errors():
        field, *items = problem["loc"]
        where = ENV_PREFIX + str(field) + "".join(f"[{i}]" for i in items)
        if problem["type"] == "missing":
            lines.append(
                f"{where}: is required but not set; it names one worker per script "
                f"chimera_workers/<name>.py{_near_miss(str(field), environ, fields)}"
            )
            continue
        cause = problem.get("ctx", {}).get("error")
        what = str(cause) if isinstance(cause, ValueError) else problem["msg"]
        what = what.replace("Input should be", "must be", 1)
        lines.append(f"{where}: {what} (got {_shown(problem['input'])})")
    listing = "\n".join(f"  - {line}" for line in lines)
    how_many = count(len(lines), "problem")
    bad_name = any(
        p["loc"][0] == "WORKERS_NODES_NAMES" and len(p["loc"]) > 1 for p in error.errors()
    )
    why = f"Why names are strict: {WHY_NAMES_ARE_STRICT}.\n" if bad_name else ""
    return f"The CHIMERA_* settings have {how_many}:\n{listing}\n{why}{HINT}"


def _near_miss(field: str, environ: Mapping[str, str], fields: Iterable[str]) -> str:
    """Point at a set variable whose name is a likely typo of the missing one."""
    wanted = ENV_PREFIX + field
    known = set(fields)
    unknown = [k for k in environ if k.startswith(ENV_PREFIX) and k[len(ENV_PREFIX) :] not in known]
    close = difflib.get_close_matches(wanted, unknown, n=1, cutoff=0.85)
    return f"; {close[0]} is set, did you mean {wanted}?" if close else ""


def count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _shown(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
