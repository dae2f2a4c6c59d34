"""Every rule a value must meet before it reaches a process, a socket or Docker, written once.

The ``CHIMERA_*`` settings (:mod:`chimera_nb.seed.settings`) and every cluster backend call
these functions, so a value the settings accept is never refused later by a backend, and a
limit (a network name's length, a CPU share's range) changes in one place.

Each rule comes as a pair:

* ``<rule>_problem(value)`` returns what is wrong, as the end of a sentence (``"must be at
  least 2, Docker's smallest CPU share"``), or None. The settings turn it into one line of
  their error (``CHIMERA_WORKERS_CPU_SHARES[0]: must be at least 2, ...``), which lists
  every problem at once.
* ``validate_<rule>(value)`` returns the value, or raises one
  :class:`~chimera_nb.ConfigurationError` that names the value and says what to do. The
  backends call it in their constructors, before anything starts.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

from ._exceptions import ConfigurationError

__all__ = [
    "MAX_CPU_SHARE",
    "MAX_NETWORK_NAME",
    "MAX_SUBNET_MASK",
    "MIN_CPU_SHARE",
    "WHY_NAMES_ARE_STRICT",
    "WORKER_NAME_PATTERN",
    "cpu_share_problem",
    "host_problem",
    "network_name_problem",
    "network_prefix_problem",
    "port_problem",
    "published_host_problem",
    "repeated",
    "subnet_problem",
    "validate_cluster_name",
    "validate_constraint",
    "validate_container_port",
    "validate_cpu_share",
    "validate_host",
    "validate_image_reference",
    "validate_network_name",
    "validate_published_host",
    "validate_startup_timeout",
    "validate_subnet",
    "validate_worker_name",
    "validate_worker_ports",
    "validate_worker_url",
    "worker_name_problem",
    "worker_names_problem",
]

H = TypeVar("H", bound=Hashable)


def repeated(values: Iterable[H]) -> list[H]:
    """The values that occur more than once, in order of first appearance."""
    return [value for value, count in Counter(values).items() if count > 1]


# --- names ------------------------------------------------------------------------------------

#: A worker name becomes a file name, a Docker container name and a Python module name.
WORKER_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")
WHY_NAMES_ARE_STRICT = (
    "a worker name becomes a file name (chimera_workers/<name>.py), a Docker container name "
    "and a Python module name, so it may use only ASCII letters, digits, '_' and '-', must "
    "start with a letter or digit and have at most 63 characters"
)


def worker_name_problem(name: object) -> str | None:
    """What is wrong with a worker name, or None if it is fine.

    At most 63 characters: the length of a DNS label, which a container's host name is.
    """
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
    problem = worker_name_problem(name)
    if problem is not None:
        raise ConfigurationError(
            f"Worker name {name!r} {problem}: {WHY_NAMES_ARE_STRICT}. "
            "Rename the worker script and its data folder, e.g. to 'worker1'."
        )
    return name


def worker_names_problem(names: Sequence[str]) -> str | None:
    """What is wrong with a list of worker names as a whole (each name is checked alone by
    :func:`worker_name_problem`): none, repeated, or differing only in case."""
    if not names:
        return 'lists no workers; name at least one, e.g. ["worker1"]'
    duplicated = repeated(names)
    if duplicated:
        return f"must be unique, but {', '.join(map(repr, duplicated))} appear more than once"
    by_case = Counter(name.casefold() for name in names)
    clashing = [name for name in names if by_case[name.casefold()] > 1]
    if clashing:
        return (
            f"{', '.join(map(repr, clashing))} differ only in case, so their scripts and "
            "data folders would be the same on macOS and Windows; rename one"
        )
    return None


def validate_cluster_name(name: object) -> str:
    """A cluster's name: any non-empty string (it is made safe where it becomes a path)."""
    if not isinstance(name, str) or not name:
        raise ConfigurationError(f"The cluster name must be a non-empty string, got {name!r}.")
    return name


def validate_startup_timeout(seconds: float) -> float:
    if not seconds > 0:
        raise ConfigurationError(f"startup_timeout must be > 0 seconds, got {seconds}")
    return float(seconds)


# --- where workers listen -------------------------------------------------------------------

_HOSTNAME = re.compile(
    r"(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)


def host_problem(host: object) -> str | None:
    """An address to listen on: an IP address, or a host name (letters, digits, '-', '.')."""
    if isinstance(host, str):
        try:
            ipaddress.ip_address(host)
            return None
        except ValueError:
            if _HOSTNAME.fullmatch(host) is not None:
                return None
    return "must be an IP address such as 127.0.0.1 or a host name such as localhost"


def validate_host(host: str) -> str:
    problem = host_problem(host)
    if problem is not None:
        raise ConfigurationError(f"host {problem}, got {host!r}.")
    return host


def published_host_problem(host: object) -> str | None:
    """Where Docker publishes a container's port: an IP address only, as the engine takes no
    host names there (``127.0.0.1`` keeps the workers on this machine)."""
    try:
        ipaddress.ip_address(host)  # type: ignore[arg-type]
    except ValueError:
        return (
            "must be an IP address to publish the workers' ports on, such as '127.0.0.1' "
            "(this machine only)"
        )
    return None


def validate_published_host(host: str) -> str:
    problem = published_host_problem(host)
    if problem is not None:
        raise ConfigurationError(f"host {problem}, got {host!r}.")
    return host


def port_problem(port: object, *, zero_means_any: bool = False) -> str | None:
    """A TCP port, 1 to 65535; where the caller picks a free port for 0, 0 too."""
    lowest = 0 if zero_means_any else 1
    if not isinstance(port, bool) and isinstance(port, int) and lowest <= port <= 65535:
        return None
    if zero_means_any:
        return "must be an integer from 0 (any free port) to 65535"
    return "must be a TCP port between 1 and 65535"


def validate_worker_ports(ports: Mapping[str, Any]) -> dict[str, int]:
    """Worker name -> host port (0: any free one); no two workers on the same fixed port."""
    for name, port in ports.items():
        problem = port_problem(port, zero_means_any=True)
        if problem is not None:
            raise ConfigurationError(f"The port for worker {name!r} {problem}, got {port!r}.")
    shared = repeated(port for port in ports.values() if port)
    if shared:
        raise ConfigurationError(
            f"Two workers cannot share a port: ports={dict(ports)} gives {shared} more than "
            "once. Give each worker its own port, or 0 for any free one."
        )
    return dict(ports)


def validate_container_port(port: object) -> int:
    problem = port_problem(port)
    if problem is not None:
        raise ConfigurationError(
            "container_port (CHIMERA_WORKERS_PORT) is the port workers listen on inside "
            f"their containers and {problem}, such as 80; got {port!r}."
        )
    return port  # type: ignore[return-value]


def validate_worker_url(name: str, url: object) -> str:
    """``http(s)://host:port`` of a worker started elsewhere, without its trailing slash."""
    parts = urlsplit(url) if isinstance(url, str) else None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or parts.username
    ):
        raise ConfigurationError(
            f"The URL of worker {name!r} must look like 'http://10.0.0.11:5001' (scheme, "
            f"host and port, no path), got {url!r}."
        )
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ConfigurationError(f"The URL of worker {name!r} has a bad port: {url!r}.") from None
    return str(url).rstrip("/")


# --- Docker -----------------------------------------------------------------------------------

#: Docker's range of CPU shares: below 2 the kernel rounds up to 2, above 262144 down.
MIN_CPU_SHARE, MAX_CPU_SHARE = 2, 262_144
#: A network name's length: the run id (``-1a2b3c4d``) is appended, and the whole name
#: stays within the 63 characters of a DNS label, easy to read in ``docker network ls``.
MAX_NETWORK_NAME = 50
#: The longest subnet mask: a /29 has 6 addresses, one for the gateway and 5 for workers.
MAX_SUBNET_MASK = 29

_NETWORK_NAME = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_.-]{{0,{MAX_NETWORK_NAME - 1}}}")
# Docker's reference grammar, simplified: [host[:port]/]path[:tag][@digest], lowercase path.
_IMAGE_REFERENCE = re.compile(
    r"(?:[A-Za-z0-9.-]+(?::[0-9]{1,5})?/)?"
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?"
)
# Swarm placement: node.<attribute> == or != <value>, e.g. node.hostname==lab-pc-3.
_CONSTRAINT = re.compile(
    r"(?:node\.(?:id|hostname|role|platform\.os|platform\.arch|labels\.[A-Za-z0-9_.-]+)"
    r"|engine\.labels\.[A-Za-z0-9_.-]+)\s*(?:==|!=)\s*[A-Za-z0-9_.-]+"
)


def cpu_share_problem(share: object) -> str | None:
    """Docker CPU shares: relative weights, ``[2, 4]`` gives the second worker twice the CPU
    time of the first when both are busy."""
    if isinstance(share, bool) or not isinstance(share, int):
        return f"must be an integer from {MIN_CPU_SHARE} to {MAX_CPU_SHARE}"
    if share < MIN_CPU_SHARE:
        return f"must be at least {MIN_CPU_SHARE}, Docker's smallest CPU share"
    if share > MAX_CPU_SHARE:
        return f"must be at most {MAX_CPU_SHARE}, Docker's largest CPU share"
    return None


def validate_cpu_share(worker: str, share: Any) -> int:
    if cpu_share_problem(share) is not None:
        raise ConfigurationError(
            f"The CPU share of worker {worker!r} must be an integer from {MIN_CPU_SHARE} "
            f"(Docker's smallest share) to {MAX_CPU_SHARE}, got {share!r}. Shares are "
            "relative weights: [2, 4] gives the second worker twice the CPU time of the first "
            "when both are busy."
        )
    return share


def network_name_problem(name: object) -> str | None:
    if isinstance(name, str) and _NETWORK_NAME.fullmatch(name) is not None:
        return None
    return (
        f"must be a Docker network name of 1 to {MAX_NETWORK_NAME} letters, digits, '_', "
        "'.' or '-', starting with a letter or digit (the run id is appended to it), e.g. "
        "'chimera-network'"
    )


def validate_network_name(name: str) -> str:
    if network_name_problem(name) is not None:
        raise ConfigurationError(
            f"Network name {name!r} is not allowed: use 1 to {MAX_NETWORK_NAME} letters, "
            "digits, '_', '.' or '-', starting with a letter or digit (the run id is appended "
            "to it), e.g. 'chimera-network'."
        )
    return name


def network_prefix_problem(prefix: object) -> str | None:
    """The seed's ``CHIMERA_NETWORK_PREFIX``: the first three octets, ``192.168.10``."""
    octets = prefix.split(".") if isinstance(prefix, str) else []
    if len(octets) == 3 and all(
        o.isdigit() and o.isascii() and str(int(o)) == o and int(o) <= 255 for o in octets
    ):
        return None
    return "must be the first three octets of an IPv4 address, such as 192.168.10"


def subnet_problem(subnet: str) -> str | None:
    """Why ``subnet`` cannot be a Docker network's subnet (it needs an IPv4 network address
    with room for a gateway and the workers), or None."""
    try:
        network = ipaddress.ip_network(subnet, strict=False)
    except ValueError as error:
        return str(error)
    if network.version != 4:
        return "it is IPv6, and the workers' networks are IPv4"
    if network.prefixlen > MAX_SUBNET_MASK:
        return (
            f"a mask of {network.prefixlen} bits leaves no room for a gateway and the workers; "
            f"use at most {MAX_SUBNET_MASK}"
        )
    if str(network) != subnet:
        return f"its host bits are not zero (the network address would be {network})"
    return None


def validate_subnet(subnet: str | None) -> str | None:
    """``"192.168.10.0/24"``, or None to let Docker pick a free subnet."""
    if subnet is None:
        return None
    problem = subnet_problem(str(subnet))
    if problem is not None:
        raise ConfigurationError(
            f"Subnet {subnet!r} is not an IPv4 network address Docker can use: {problem}. "
            "Write it like '192.168.10.0/24', or leave it out to let Docker pick a free one."
        )
    return str(subnet)


def validate_image_reference(reference: str) -> str:
    if not isinstance(reference, str) or _IMAGE_REFERENCE.fullmatch(reference) is None:
        raise ConfigurationError(
            f"Image {reference!r} is not a Docker image reference: write it like "
            "'chimera-nb-worker:0.1.0' or 'registry.lab:5000/chimera-worker:1' (lowercase "
            "name, optional tag), with no spaces or shell characters."
        )
    return reference


def validate_constraint(constraint: str) -> str:
    """A swarm placement constraint such as ``node.hostname==lab-pc-3``, stripped."""
    if not isinstance(constraint, str) or _CONSTRAINT.fullmatch(constraint.strip()) is None:
        raise ConfigurationError(
            f"Placement constraint {constraint!r} is not one Swarm understands: write "
            "'node.hostname==lab-pc-3', 'node.role!=manager' or 'node.labels.gpu==yes'."
        )
    return constraint.strip()
