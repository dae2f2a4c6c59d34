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

import json
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, ValidationError, ValidationInfo, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from .._exceptions import ConfigurationError
from ..validation import (
    cpu_share_problem,
    host_problem,
    network_name_problem,
    network_prefix_problem,
    port_problem,
    published_host_problem,
    repeated,
    subnet_problem,
    worker_name_problem,
    worker_names_problem,
)
from ._messages import ENV_PREFIX, count, describe, json_problem

__all__ = ["ENV_PREFIX", "Backend", "ChimeraSettings", "load_settings"]

#: How workers are started: local processes, Docker containers, Swarm services, or already up.
Backend = Literal["process", "docker", "swarm", "attach"]

_LIST_EXAMPLES = {
    "WORKERS_NODES_NAMES": '["worker1", "worker2"]',
    "WORKERS_CPU_SHARES": "[2, 4]",
    "WORKERS_MAPPED_PORTS": "[5001, 5002]",
}


def _rule(problem: Callable[[Any], str | None]) -> AfterValidator:
    """A pydantic check from a rule of :mod:`chimera_nb.validation`: its problem sentence
    becomes the ValueError that the error message lists."""

    def check(value: Any) -> Any:
        found = problem(value)
        if found is not None:
            raise ValueError(found)
        return value

    return AfterValidator(check)


WorkerName = Annotated[str, _rule(worker_name_problem)]
WorkerNames = Annotated[list[WorkerName], _rule(worker_names_problem)]
CPUShare = Annotated[int, _rule(cpu_share_problem)]
Port = Annotated[int, _rule(port_problem)]
Host = Annotated[str, _rule(host_problem)]
NetworkName = Annotated[str, _rule(network_name_problem)]
NetworkPrefix = Annotated[str, _rule(network_prefix_problem)]


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
    Each value is checked by the same rule (:mod:`chimera_nb.validation`) that the cluster
    backends apply, so settings that pass here are not refused when the workers start.

    Attributes
    ----------
    NETWORK_NAME : str
        Docker network the workers join (docker and swarm backends), 1 to 50 characters.
    NETWORK_PREFIX : str
        First three octets of the network's IPv4 addresses, e.g. ``"192.168.10"``.
    NETWORK_SUBNET_MASK : int
        Bits of the network part of the subnet ``<prefix>.0/<mask>``, at most 29.
    WORKERS_NODES_NAMES : list of str
        One name per worker script ``chimera_workers/<name>.py``. Required.
    WORKERS_CPU_SHARES : list of int or None
        Docker CPU shares per worker (each 2 to 262144); None gives every worker 2.
    WORKERS_MAPPED_PORTS : list of int or None
        Host port per worker; None lets the backend pick free ports.
    WORKERS_HOST : str
        Address the workers' ports are bound to on the host (an IP address for the docker
        and swarm backends).
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

    NETWORK_NAME: NetworkName = "chimera-network"
    NETWORK_PREFIX: NetworkPrefix = "192.168.10"
    NETWORK_SUBNET_MASK: int = Field(default=24, ge=0, le=32)
    WORKERS_NODES_NAMES: WorkerNames
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
            raise ConfigurationError(
                describe(error, _environ.get(), type(self).model_fields)
            ) from None

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
            raise ValueError(json_problem(text, error, example)) from None
        if not isinstance(parsed, list):
            # A ValueError, not a TypeError: pydantic reports only the former as a problem.
            raise ValueError(f"must be a JSON list such as {example}")  # noqa: TRY004
        return parsed

    # --- checks that look at more than one value -------------------------------------------------

    @field_validator("NETWORK_SUBNET_MASK")
    @classmethod
    def _check_subnet(cls, mask: int, info: ValidationInfo) -> int:
        prefix = info.data.get("NETWORK_PREFIX")
        if prefix is None:
            return mask  # the prefix is already reported
        subnet = f"{prefix}.0/{mask}"
        problem = subnet_problem(subnet)
        if problem is not None:
            raise ValueError(
                f"{subnet} is not a network address Docker can use: {problem}; change "
                "CHIMERA_NETWORK_PREFIX or CHIMERA_NETWORK_SUBNET_MASK"
            )
        return mask

    @field_validator("BACKEND")
    @classmethod
    def _check_published_host(cls, backend: str, info: ValidationInfo) -> str:
        host = info.data.get("WORKERS_HOST")
        if backend in ("docker", "swarm") and host is not None:
            problem = published_host_problem(host)
            if problem is not None:
                raise ValueError(
                    f"{backend!r} publishes the workers' ports on CHIMERA_WORKERS_HOST, which "
                    f"{problem}, but it is {host!r}"
                )
        return backend

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
                f"has {count(len(values), 'value')} but CHIMERA_WORKERS_NODES_NAMES has "
                f"{count(len(names), 'name')}; give one value per worker, in the same order, "
                f"or leave {ENV_PREFIX}{info.field_name} unset for {unset_means}"
            )
        if info.field_name == "WORKERS_MAPPED_PORTS":
            duplicated = repeated(values)
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
