"""Talking to the Docker engine: connecting, checking every value before it reaches the
engine, labelling what a run creates, and cleaning up what a crashed run left behind.

Every container, service, network, config and image a run creates carries labels:

* ``chimera-nb.run=<run id>``: which run made it (``docker ps -a --filter
  label=chimera-nb.run`` lists them all);
* ``chimera-nb.owner=<host>/<pid>/<start time>``: the process that owns the run, so that a
  later run on the same machine can tell a live run from a crashed one (the start time
  keeps a recycled pid from passing for the owner);
* ``chimera-nb.cluster=<name>`` and ``chimera-nb.worker=<name>``: for people reading
  ``docker ps``.

Resource names include the run id, so two runs never fight over a name; what they can
still share is a host port or a subnet, and then the error says who holds it.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .._exceptions import ClusterError, ConfigurationError
from ._launcher import pid_exists

if TYPE_CHECKING:
    import docker

__all__ = [
    "CLUSTER_LABEL",
    "OWNER_LABEL",
    "RUN_LABEL",
    "WORKER_LABEL",
    "check_constraint",
    "check_cpu_share",
    "check_image_reference",
    "check_network_name",
    "check_subnet",
    "connect",
    "describe_owner",
    "docker_slug",
    "owner_id",
    "port_holder",
    "run_labels",
    "subnet_conflict",
    "sweep_leftovers",
]

RUN_LABEL = "chimera-nb.run"
OWNER_LABEL = "chimera-nb.owner"
CLUSTER_LABEL = "chimera-nb.cluster"
WORKER_LABEL = "chimera-nb.worker"

_NETWORK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,49}")
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
_INSTALL_DOCKER_SDK = "pip install 'chimera-nb[docker]'"


# --- values that reach Docker --------------------------------------------------------------


def docker_slug(name: str, limit: int = 24) -> str:
    """A display name turned into a safe part of a Docker name (``"my lab!"`` -> ``"my-lab"``)."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-._")[:limit].strip("-._")
    return slug or "chimera"


def check_network_name(name: str) -> str:
    if not isinstance(name, str) or _NETWORK_NAME.fullmatch(name) is None:
        raise ConfigurationError(
            f"Network name {name!r} is not allowed: use 1 to 50 letters, digits, '_', '.' or "
            "'-', starting with a letter or digit (the run id is appended to it), e.g. "
            "'chimera-network'."
        )
    return name


def check_subnet(subnet: str | None) -> str | None:
    """``"192.168.10.0/24"`` (an IPv4 network address), or None to let Docker pick one."""
    if subnet is None:
        return None
    try:
        network = ipaddress.ip_network(str(subnet), strict=True)
    except ValueError as error:
        raise ConfigurationError(
            f"Subnet {subnet!r} is not an IPv4 network address ({error}); write it like "
            "'192.168.10.0/24', or leave it out to let Docker pick a free one."
        ) from None
    if network.version != 4 or network.prefixlen > 29:
        raise ConfigurationError(
            f"Subnet {subnet!r} must be IPv4 with a mask of at most 29 bits, so that it has "
            "room for a gateway and the workers, e.g. '192.168.10.0/24'."
        )
    return str(network)


def check_image_reference(reference: str) -> str:
    if not isinstance(reference, str) or _IMAGE_REFERENCE.fullmatch(reference) is None:
        raise ConfigurationError(
            f"Image {reference!r} is not a Docker image reference: write it like "
            "'chimera-nb-worker:0.1.0' or 'registry.lab:5000/chimera-worker:1' (lowercase "
            "name, optional tag), with no spaces or shell characters."
        )
    return reference


def check_cpu_share(worker: str, share: Any) -> int:
    if isinstance(share, bool) or not isinstance(share, int) or not 2 <= share <= 262_144:
        raise ConfigurationError(
            f"The CPU share of worker {worker!r} must be an integer from 2 (Docker's smallest "
            f"share) to 262144, got {share!r}. Shares are relative weights: [2, 4] gives the "
            "second worker twice the CPU time of the first when both are busy."
        )
    return share


def check_constraint(constraint: str) -> str:
    if not isinstance(constraint, str) or _CONSTRAINT.fullmatch(constraint.strip()) is None:
        raise ConfigurationError(
            f"Placement constraint {constraint!r} is not one Swarm understands: write "
            "'node.hostname==lab-pc-3', 'node.role!=manager' or 'node.labels.gpu==yes'."
        )
    return constraint.strip()


# --- the engine ------------------------------------------------------------------------------


def connect(client: docker.DockerClient | None = None) -> docker.DockerClient:
    """A client for the Docker engine of ``DOCKER_HOST`` (or the local socket), checked
    with a ping, or the ``client`` given."""
    try:
        import docker
    except ImportError:
        raise ConfigurationError(
            f"The Docker backends need the Docker SDK for Python: {_INSTALL_DOCKER_SDK}"
        ) from None
    if client is not None:
        return client
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except docker.errors.DockerException as error:
        raise ClusterError(
            f"No Docker engine answers ({error}). Start Docker (Docker Desktop, or "
            "'sudo systemctl start docker'; on a machine without systemd, "
            "'dockerd > /tmp/dockerd.log 2>&1 &' as root), check 'docker info', or use "
            "CHIMERA_BACKEND=process."
        ) from None
    return client


def owner_id(pid: int | None = None) -> str:
    """``<host>/<pid>/<start time>`` of this process (or of ``pid``)."""
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}/{pid}/{_start_ticks(pid)}"


def run_labels(run_id: str, cluster: str) -> dict[str, str]:
    return {RUN_LABEL: run_id, OWNER_LABEL: owner_id(), CLUSTER_LABEL: cluster}


def _start_ticks(pid: int) -> str:
    """When ``pid`` started, in clock ticks since boot ("0" where /proc is missing)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rpartition(b")")[2].split()[19].decode()
    except (OSError, IndexError):
        return "0"


def _owner_gone(owner: str | None) -> bool:
    """True only if ``owner`` is a process of this host that no longer runs."""
    parts = (owner or "").split("/")
    if len(parts) != 3:
        return False
    host, pid, ticks = parts
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another machine's run, or not ours to judge
    return not pid_exists(int(pid)) or _start_ticks(int(pid)) != ticks


def _labels(resource: Any) -> dict[str, str]:
    attrs = resource.attrs
    labels = attrs.get("Labels") or attrs.get("Config", {}).get("Labels") or {}
    return labels or attrs.get("Spec", {}).get("Labels") or {}


def sweep_leftovers(client: docker.DockerClient) -> list[str]:
    """Remove what crashed runs of this machine left (their owner process is gone).

    Returns a description of each thing removed. Runs whose owner still runs, or that
    belong to another machine, are left alone: they are someone's live workers.
    """
    import docker

    removed = []
    run_filter = {"label": RUN_LABEL}
    kinds: list[tuple[str, Iterable[Any], Any]] = []
    if _swarm_manager(client):
        kinds.append(("service", client.services.list(filters=run_filter), _remove))
        kinds.append(("config", client.configs.list(filters=run_filter), _remove))
    kinds.append(("container", client.containers.list(all=True, filters=run_filter), _force))
    kinds.append(("network", client.networks.list(filters=run_filter), _remove))
    kinds.append(("image", client.images.list(filters=run_filter), _force))
    for kind, resources, remove in kinds:
        for resource in resources:
            labels = _labels(resource)
            if not _owner_gone(labels.get(OWNER_LABEL)):
                continue
            try:
                remove(resource)
            except docker.errors.NotFound:
                continue
            except docker.errors.APIError as error:  # e.g. a network a container still uses
                removed.append(f"could not remove {kind} {_name(resource)}: {error}")
                continue
            removed.append(f"{kind} {_name(resource)} of run {labels.get(RUN_LABEL)}")
    return removed


def _swarm_manager(client: docker.DockerClient) -> bool:
    swarm = client.info().get("Swarm") or {}
    return swarm.get("LocalNodeState") == "active" and bool(swarm.get("ControlAvailable"))


def _remove(resource: Any) -> None:
    resource.remove()


def _force(resource: Any) -> None:
    if hasattr(resource, "tags"):  # an image: removed through the collection
        resource.client.images.remove(resource.id, force=True)
    else:
        resource.remove(force=True)


def _name(resource: Any) -> str:
    tags = getattr(resource, "tags", None)
    if tags:
        return tags[0]
    return getattr(resource, "name", None) or resource.id[:12]


def describe_owner(labels: dict[str, str]) -> str:
    """ "run 1a2b3c4d of cluster 'lab' (process 4242 on host pc-3)", for error messages."""
    host, _, rest = (labels.get(OWNER_LABEL) or "?/?/?").partition("/")
    pid = rest.partition("/")[0]
    return (
        f"run {labels.get(RUN_LABEL, '?')} of cluster {labels.get(CLUSTER_LABEL, '?')!r} "
        f"(process {pid} on host {host})"
    )


# --- who holds what ---------------------------------------------------------------------------


def port_holder(client: docker.DockerClient, port: int) -> str:
    """Who publishes host ``port``: "the container X, run ... of cluster ...", or "another
    process" when no container does."""
    for container in client.containers.list(all=True):
        published = (container.attrs.get("HostConfig") or {}).get("PortBindings") or {}
        for bindings in published.values():
            if any(str(binding.get("HostPort")) == str(port) for binding in bindings or []):
                labels = container.labels or {}
                owned = f", {describe_owner(labels)}" if RUN_LABEL in labels else ""
                return f"the container {container.name}{owned}"
    return "another process"


def subnet_conflict(
    client: docker.DockerClient, subnet: str | None, name: str, error: Exception
) -> str:
    """Why the network ``name`` could not be made; names the network holding ``subnet``."""
    text = str(error)
    if subnet is None or "overlap" not in text.lower():
        return f"Docker could not create the network {name}: {text}"
    wanted = ipaddress.ip_network(subnet)
    for network in client.networks.list():
        for config in (network.attrs.get("IPAM") or {}).get("Config") or []:
            try:
                taken = ipaddress.ip_network(config.get("Subnet", ""))
            except ValueError:
                continue
            if taken.version == 4 and taken.overlaps(wanted):
                labels = network.attrs.get("Labels") or {}
                owner = describe_owner(labels) if RUN_LABEL in labels else "not chimera-nb's"
                return (
                    f"The subnet {subnet} overlaps the network {network.name} ({taken}, "
                    f"{owner}). Pick another prefix (CHIMERA_NETWORK_PREFIX, e.g. 192.168.11; "
                    "or subnet=...), or close that run or remove that network ('docker "
                    f"network rm {network.name}')."
                )
    return f"Docker could not create the network {name}: {text}"
