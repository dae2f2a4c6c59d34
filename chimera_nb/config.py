"""The seed's ``CHIMERA_*`` environment variables, validated before anything starts.

Chimera's master file configures the cluster by setting environment variables, lists written
as JSON strings::

    os.environ["CHIMERA_WORKERS_NODES_NAMES"] = '["worker1", "worker2"]'
    os.environ["CHIMERA_WORKERS_MAPPED_PORTS"] = "[5001, 5002]"

:func:`load_settings` reads them into a :class:`ChimeraSettings` and turns every mistake into
one :class:`~chimera_nb.ConfigurationError` that lists all the problems at once, so a student
fixes them in one go instead of meeting them one container crash at a time.

Differences from the seed, on purpose:

* ``CHIMERA_WORKERS_HOST`` defaults to ``127.0.0.1``, not ``0.0.0.0``: workers accept training
  requests from anyone who can reach them, so they listen on this machine only unless asked.
* The seed's one-element defaults (``[2]`` CPU shares, port ``[101]``) are gone: a list that is
  not set means "2 shares for every worker" and "pick free ports"; a list that is set must have
  one value per worker.
* Two variables are new: ``CHIMERA_BACKEND`` (how workers are started) and
  ``CHIMERA_MASTER_HOST`` (where the master listens).
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import os
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, ValidationError, ValidationInfo, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from ._exceptions import ConfigurationError

__all__ = [
    "ENV_PREFIX",
    "WORKER_NAME_PATTERN",
    "Backend",
    "ChimeraSettings",
    "load_settings",
    "validate_worker_name",
]

#: Every variable this module reads starts with this prefix.
ENV_PREFIX = "CHIMERA_"

#: A worker name becomes a file name, a Docker container name and a Python module name.
WORKER_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")

#: How workers are started: local processes, Docker containers, Swarm services, or already up.
Backend = Literal["process", "docker", "swarm", "attach"]

_WHY_NAMES_ARE_STRICT = (
    "a worker name becomes a file name (chimera_workers/<name>.py), a Docker container name "
    "and a Python module name, so it may use only ASCII letters, digits, '_' and '-', must "
    "start with a letter or digit and have at most 63 characters"
)
_HOSTNAME = re.compile(
    r"(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)
_DOCKER_NETWORK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_LIST_EXAMPLES = {
    "WORKERS_NODES_NAMES": '["worker1", "worker2"]',
    "WORKERS_CPU_SHARES": "[2, 4]",
    "WORKERS_MAPPED_PORTS": "[5001, 5002]",
}
_HINT = (
    "Lists are JSON strings with double quotes, one value per worker, e.g. "
    'CHIMERA_WORKERS_NODES_NAMES=\'["worker1", "worker2"]\' and '
    "CHIMERA_WORKERS_MAPPED_PORTS='[5001, 5002]' (in Python: json.dumps([...]))."
)


# ---------------------------------------------------------------------------------------------
# Checks shared with other modules
# ---------------------------------------------------------------------------------------------


def _worker_name_problem(name: object) -> str | None:
    """Say what is wrong with a worker name, or return None if it is fine."""
    if not isinstance(name, str):
        return f"must be a string, not {type(name).__name__}"
    if name == "":
        return "is empty"
    if len(name) > 63:
        return f"has {len(name)} characters, but at most 63 are allowed"
    bad = sorted({c for c in name if not re.fullmatch(r"[A-Za-z0-9_-]", c)})
    if bad:
        shown = ", ".join("' ' (space)" if c == " " else repr(c) for c in bad)
        return f"contains {shown}, which {'is' if len(bad) == 1 else 'are'} not allowed"
    if WORKER_NAME_PATTERN.fullmatch(name) is None:
        return "must start with a letter or a digit"
    return None


def validate_worker_name(name: str) -> str:
    """Return ``name`` if it is a safe worker name, else raise :class:`ConfigurationError`.

    Parameters
    ----------
    name : str
        A worker name such as ``"worker1"``.

    Returns
    -------
    str
        The same name, so that calls can be chained.

    Notes
    -----
    A worker name is used as ``chimera_workers/<name>.py``, as a Docker container name and as
    a Python module name. Refusing path separators, dots, spaces and shell characters here
    means no later module has to quote or escape it.

    Examples
    --------
    >>> validate_worker_name("worker1")
    'worker1'
    """
    problem = _worker_name_problem(name)
    if problem is not None:
        raise ConfigurationError(
            f"Worker name {name!r} {problem}: {_WHY_NAMES_ARE_STRICT}. "
            "Rename the worker script and its data folder, e.g. to 'worker1'."
        )
    return name


def _pydantic_worker_name(name: str) -> str:
    problem = _worker_name_problem(name)
    if problem is not None:
        raise ValueError(problem)  # _describe adds _WHY_NAMES_ARE_STRICT once
    return name


def _at_least_two(share: int) -> int:
    if share < 2:
        raise ValueError("must be at least 2, Docker's smallest CPU share")
    return share


def _tcp_port(port: int) -> int:
    if not 1 <= port <= 65535:
        raise ValueError("must be a TCP port between 1 and 65535")
    return port


def _host(host: str) -> str:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if _HOSTNAME.fullmatch(host) is None:
            raise ValueError(
                "must be an IP address such as 127.0.0.1 or a host name such as localhost"
            ) from None
    return host


WorkerName = Annotated[str, AfterValidator(_pydantic_worker_name)]
CPUShare = Annotated[int, AfterValidator(_at_least_two)]
Port = Annotated[int, AfterValidator(_tcp_port)]
Host = Annotated[str, AfterValidator(_host)]


# ---------------------------------------------------------------------------------------------
# Where the values come from
# ---------------------------------------------------------------------------------------------

#: The mapping :func:`load_settings` was given; None means ``os.environ``. Sources are built
#: in a classmethod that takes no per-call argument, and a ContextVar hands the mapping over
#: without a module global that two threads loading settings at once would share.
_environ: ContextVar[Mapping[str, str] | None] = ContextVar("chimera_environ", default=None)


class _VariablesSource(PydanticBaseSettingsSource):
    """Read ``CHIMERA_<FIELD>`` from a mapping and hand each value over as the raw string.

    pydantic-settings' own environment source decodes JSON lists before validation and stops
    at the first bad one with an error that names no variable. Handing over the raw string
    lets :meth:`ChimeraSettings._parse_json_list` report bad JSON like any other problem.
    """

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self.environ = environ

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self.environ.get(ENV_PREFIX + field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        values = {}
        for field_name, field in self.settings_cls.model_fields.items():
            value, key, _ = self.get_field_value(field, field_name)
            if value is not None:
                values[key] = value
        return values


@contextmanager
def _reading(environ: Mapping[str, str] | None) -> Iterator[None]:
    token = _environ.set(environ)
    try:
        yield
    finally:
        _environ.reset(token)


# ---------------------------------------------------------------------------------------------
# The settings
# ---------------------------------------------------------------------------------------------


class ChimeraSettings(BaseSettings):
    """The seed's ``CHIMERA_*`` variables, checked and with defaults filled in.

    Field names are the variable names without ``CHIMERA_``: they are the seed's public
    contract, so they keep its spelling (``settings.WORKERS_NODES_NAMES``). Build one with
    :func:`load_settings`; calling ``ChimeraSettings()`` reads ``os.environ`` the same way.
    Invalid values raise :class:`~chimera_nb.ConfigurationError` listing every problem.

    Attributes
    ----------
    NETWORK_NAME : str
        Docker network the workers join (docker and swarm backends).
    NETWORK_PREFIX : str
        First three octets of the network's IPv4 addresses, e.g. ``"192.168.10"``.
    NETWORK_SUBNET_MASK : int
        Bits of the network part of the subnet ``<prefix>.0/<mask>``, 0 to 32.
    WORKERS_NODES_NAMES : list of str
        One name per worker script ``chimera_workers/<name>.py``. Required.
    WORKERS_CPU_SHARES : list of int or None
        Docker CPU shares per worker (each >= 2); None gives every worker 2.
    WORKERS_MAPPED_PORTS : list of int or None
        Host port per worker; None lets the backend pick free ports.
    WORKERS_HOST : str
        Address the workers' ports are bound to on the host.
    WORKERS_PORT : int
        Port a worker listens on inside its container.
    WORKERS_ENDPOINTS_MAX_RETRIES : int
        Extra attempts after a failed call to a worker.
    WORKERS_ENDPOINTS_TIMEOUT : float
        Seconds the master waits for one worker call.
    BACKEND : {"process", "docker", "swarm", "attach"}
        How workers are started.
    MASTER_HOST : str
        Address the master server listens on.

    Examples
    --------
    >>> settings = load_settings({"CHIMERA_WORKERS_NODES_NAMES": '["w1", "w2"]'})
    >>> settings.n_workers, settings.cpu_shares, settings.mapped_ports
    (2, [2, 2], None)
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, case_sensitive=True, frozen=True, extra="ignore"
    )

    NETWORK_NAME: str = "chimera-network"
    NETWORK_PREFIX: str = "192.168.10"
    NETWORK_SUBNET_MASK: int = Field(default=24, ge=0, le=32)
    WORKERS_NODES_NAMES: list[WorkerName]
    WORKERS_CPU_SHARES: list[CPUShare] | None = None
    WORKERS_MAPPED_PORTS: list[Port] | None = None
    WORKERS_HOST: Host = "127.0.0.1"
    WORKERS_PORT: Port = 80
    WORKERS_ENDPOINTS_MAX_RETRIES: int = Field(default=0, ge=0)
    WORKERS_ENDPOINTS_TIMEOUT: float = Field(default=100.0, gt=0, allow_inf_nan=False)
    BACKEND: Backend = "process"
    MASTER_HOST: Host = "127.0.0.1"

    def __init__(self, **values: Any) -> None:
        # Raise the kit's error, not pydantic's, however the settings are built.
        try:
            super().__init__(**values)
        except ValidationError as error:
            raise ConfigurationError(_describe(error, _environ.get())) from None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keyword arguments first, then the variables; the seed uses no .env or secrets."""
        environ = _environ.get()
        variables = _VariablesSource(settings_cls, os.environ if environ is None else environ)
        return init_settings, variables

    # --- lists arrive as JSON strings ----------------------------------------------------------

    @field_validator(
        "WORKERS_NODES_NAMES", "WORKERS_CPU_SHARES", "WORKERS_MAPPED_PORTS", mode="before"
    )
    @classmethod
    def _parse_json_list(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, str):
            return value
        text = value.strip()
        optional = info.field_name != "WORKERS_NODES_NAMES"
        if optional and text in ("", "null"):
            return None
        example = _LIST_EXAMPLES[str(info.field_name)]
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(_json_problem(text, error, example)) from None
        if not isinstance(parsed, list):
            # A ValueError, not a TypeError: pydantic reports only the former as a problem.
            raise ValueError(f"must be a JSON list such as {example}")  # noqa: TRY004
        return parsed

    # --- checks that look at more than one value -------------------------------------------------

    @field_validator("NETWORK_NAME")
    @classmethod
    def _check_network_name(cls, name: str) -> str:
        if _DOCKER_NETWORK_NAME.fullmatch(name) is None:
            raise ValueError(
                "must be a Docker network name: letters, digits, '_', '.' and '-', "
                "starting with a letter or digit"
            )
        return name

    @field_validator("NETWORK_PREFIX")
    @classmethod
    def _check_network_prefix(cls, prefix: str) -> str:
        octets = prefix.split(".")
        if len(octets) != 3 or not all(
            o.isdigit() and o.isascii() and str(int(o)) == o and int(o) <= 255 for o in octets
        ):
            raise ValueError(
                "must be the first three octets of an IPv4 address, such as 192.168.10"
            )
        return prefix

    @field_validator("NETWORK_SUBNET_MASK")
    @classmethod
    def _check_subnet(cls, mask: int, info: ValidationInfo) -> int:
        prefix = info.data.get("NETWORK_PREFIX")
        if prefix is None:
            return mask  # the prefix is already reported
        try:
            ipaddress.ip_network(f"{prefix}.0/{mask}")
        except ValueError:
            raise ValueError(
                f"{prefix}.0/{mask} is not a network address (its host bits are not zero); "
                f"use a mask of 24 or more, or change CHIMERA_NETWORK_PREFIX"
            ) from None
        return mask

    @field_validator("WORKERS_NODES_NAMES")
    @classmethod
    def _check_names_unique(cls, names: list[str]) -> list[str]:
        if not names:
            raise ValueError('lists no workers; name at least one, e.g. ["worker1"]')
        duplicated = [n for n, count in Counter(names).items() if count > 1]
        if duplicated:
            raise ValueError(
                f"must be unique, but {', '.join(map(repr, duplicated))} appear more than once"
            )
        by_case = Counter(n.casefold() for n in names)
        clashing = [n for n in names if by_case[n.casefold()] > 1]
        if clashing:
            raise ValueError(
                f"{', '.join(map(repr, clashing))} differ only in case, so their scripts and "
                "data folders would be the same on macOS and Windows; rename one"
            )
        return names

    @field_validator("WORKERS_CPU_SHARES", "WORKERS_MAPPED_PORTS")
    @classmethod
    def _check_one_per_worker(cls, values: list[int] | None, info: ValidationInfo) -> Any:
        names = info.data.get("WORKERS_NODES_NAMES")
        if values is None or names is None:
            return values  # unset, or the names are already reported
        if len(values) != len(names):
            unset_means = (
                "2 shares for every worker"
                if info.field_name == "WORKERS_CPU_SHARES"
                else "free ports picked for you"
            )
            raise ValueError(
                f"has {_count(len(values), 'value')} but CHIMERA_WORKERS_NODES_NAMES has "
                f"{_count(len(names), 'name')}; give one value per worker, in the same order, "
                f"or leave {ENV_PREFIX}{info.field_name} unset for {unset_means}"
            )
        if info.field_name == "WORKERS_MAPPED_PORTS":
            duplicated = [p for p, count in Counter(values).items() if count > 1]
            if duplicated:
                raise ValueError(
                    f"must be unique, but {', '.join(map(str, duplicated))} appear more than "
                    "once; "
                    "two workers cannot listen on the same host port"
                )
        return values

    # --- resolved values ------------------------------------------------------------------------

    @property
    def n_workers(self) -> int:
        """Number of workers, one per name."""
        return len(self.WORKERS_NODES_NAMES)

    @property
    def cpu_shares(self) -> list[int]:
        """CPU shares per worker, in name order: 2 each unless set."""
        if self.WORKERS_CPU_SHARES is None:
            return [2] * self.n_workers
        return list(self.WORKERS_CPU_SHARES)

    @property
    def mapped_ports(self) -> list[int] | None:
        """Host port per worker, in name order, or None to let the backend pick free ones."""
        return None if self.WORKERS_MAPPED_PORTS is None else list(self.WORKERS_MAPPED_PORTS)


def load_settings(environ: Mapping[str, str] | None = None) -> ChimeraSettings:
    """Read and check the ``CHIMERA_*`` variables.

    Parameters
    ----------
    environ : mapping of str to str, optional
        Where to read the variables; ``os.environ`` if None. Tests and notebooks pass a plain
        dict so that nothing leaks between runs.

    Returns
    -------
    ChimeraSettings
        The checked settings, defaults filled in.

    Raises
    ------
    ConfigurationError
        One error listing every problem as ``CHIMERA_<FIELD>: <what is wrong> (got <value>)``.
    """
    with _reading(environ):
        return ChimeraSettings()


# ---------------------------------------------------------------------------------------------
# Turning pydantic's errors into one message
# ---------------------------------------------------------------------------------------------


def _json_problem(text: str, error: json.JSONDecodeError, example: str) -> str:
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


def _describe(error: ValidationError, environ: Mapping[str, str] | None) -> str:
    """One line per problem, then the hint."""
    environ = os.environ if environ is None else environ
    lines = []
    for problem in error.errors():
        field, *items = problem["loc"]
        where = ENV_PREFIX + str(field) + "".join(f"[{i}]" for i in items)
        if problem["type"] == "missing":
            lines.append(
                f"{where}: is required but not set; it names one worker per script "
                f"chimera_workers/<name>.py{_near_miss(str(field), environ)}"
            )
            continue
        cause = problem.get("ctx", {}).get("error")
        what = str(cause) if isinstance(cause, ValueError) else problem["msg"]
        what = what.replace("Input should be", "must be", 1)
        lines.append(f"{where}: {what} (got {_shown(problem['input'])})")
    listing = "\n".join(f"  - {line}" for line in lines)
    count = _count(len(lines), "problem")
    bad_name = any(
        p["loc"][0] == "WORKERS_NODES_NAMES" and len(p["loc"]) > 1 for p in error.errors()
    )
    why = f"Why names are strict: {_WHY_NAMES_ARE_STRICT}.\n" if bad_name else ""
    return f"The CHIMERA_* settings have {count}:\n{listing}\n{why}{_HINT}"


def _near_miss(field: str, environ: Mapping[str, str]) -> str:
    """Point at a set variable whose name is a likely typo of the missing one."""
    wanted = ENV_PREFIX + field
    unknown = [
        k
        for k in environ
        if k.startswith(ENV_PREFIX) and k[len(ENV_PREFIX) :] not in ChimeraSettings.model_fields
    ]
    close = difflib.get_close_matches(wanted, unknown, n=1, cutoff=0.85)
    return f"; {close[0]} is set, did you mean {wanted}?" if close else ""


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _shown(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
