"""Talking to the Docker engine: connecting, labelling what a run creates, turning the
engine's errors into sentences, and cleaning up what a crashed run left behind. (Every
value is checked before it gets here, by :mod:`chimera_nb.validation`.)

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
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from .._exceptions import ClusterError, ConfigurationError
from ._owners import owner_gone, owner_id

if TYPE_CHECKING:
    import docker

__all__ = [
    "CLUSTER_LABEL",
    "OWNER_LABEL",
    "RUN_LABEL",
    "WORKER_LABEL",
    "at_once",
    "connect",
    "create_network",
    "describe_owner",
    "engine_errors",
    "port_holder",
    "remove_quietly",
    "remove_run",
    "run_labels",
    "subnet_conflict",
    "sweep_leftovers",
]

RUN_LABEL = "chimera-nb.run"
OWNER_LABEL = "chimera-nb.owner"
CLUSTER_LABEL = "chimera-nb.cluster"
WORKER_LABEL = "chimera-nb.worker"

_INSTALL_DOCKER_SDK = "pip install 'chimera-nb[docker]'"
T = TypeVar("T")


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


def run_labels(run_id: str, cluster: str) -> dict[str, str]:
    return {RUN_LABEL: run_id, OWNER_LABEL: owner_id(), CLUSTER_LABEL: cluster}


def _labels(resource: Any) -> dict[str, str]:
    attrs = resource.attrs
    labels = attrs.get("Labels") or attrs.get("Config", {}).get("Labels") or {}
    return labels or attrs.get("Spec", {}).get("Labels") or {}


def sweep_leftovers(client: docker.DockerClient, run_id: str | None = None) -> list[str]:
    """Remove what crashed runs of this machine left (their owner process is gone): of
    every run, or only of run ``run_id`` (what its reaper removes).

    Returns a description of each thing removed, or that could not be removed. Runs whose
    owner still runs, or that belong to another machine, are left alone: they are
    someone's live workers.
    """
    import docker

    removed = []
    run_filter = {"label": RUN_LABEL if run_id is None else f"{RUN_LABEL}={run_id}"}
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
            if not owner_gone(labels.get(OWNER_LABEL)):
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


# --- calls that every container backend makes ---------------------------------------------------


@contextmanager
def engine_errors(doing: str) -> Iterator[None]:
    """Turn an error of the engine into a :class:`ClusterError` that starts with ``doing``
    (``"Could not pause worker 'w1'"``) and gives the engine's explanation."""
    import docker

    try:
        yield
    except docker.errors.APIError as error:
        raise ClusterError(f"{doing}: {error.explanation or error}") from None


def remove_quietly(resource: Any, **options: Any) -> None:
    """Remove a container, service, network or config that may be gone already."""
    import docker

    try:
        resource.remove(**options)
    except docker.errors.NotFound:
        pass


def at_once(action: Callable[[T], object], items: list[T]) -> None:
    """``action(item)`` for every item at once (one engine call each takes ~0.3-1 s), one
    after the other when Python is exiting (no new threads then: an atexit close)."""
    if not items:
        return
    try:
        with ThreadPoolExecutor(len(items)) as pool:
            list(pool.map(action, items))
    except RuntimeError as error:
        if "interpreter shutdown" not in str(error):
            raise
        for item in items:
            action(item)


def create_network(
    client: docker.DockerClient,
    name: str,
    subnet: str | None,
    labels: dict[str, str],
    **options: Any,
) -> Any:
    """A network for one run, on ``subnet`` if given; a subnet that is taken is reported
    with the network that holds it."""
    import docker

    ipam = None
    if subnet is not None:
        ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=subnet)])
    try:
        return client.networks.create(name, ipam=ipam, labels=labels, **options)
    except docker.errors.APIError as error:
        raise ClusterError(subnet_conflict(client, subnet, name, error)) from None


def remove_run(client: docker.DockerClient, run_id: str, *kinds: str) -> None:
    """Remove what a run made that no worker holds any more (after a failed start), of the
    kinds given: ``"containers"``, ``"services"``, ``"configs"``."""
    run_filter = {"label": f"{RUN_LABEL}={run_id}"}
    for kind in kinds:
        collection = getattr(client, kind)
        listing = {"all": True} if kind == "containers" else {}
        for resource in collection.list(filters=run_filter, **listing):
            remove_quietly(resource, **({"force": True} if kind == "containers" else {}))
