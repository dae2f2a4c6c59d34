"""Workers as Docker Swarm services, one per worker, on one machine or several:
``CHIMERA_BACKEND=swarm``.

A :class:`SwarmCluster` is a :class:`~chimera_nb.cluster.DockerCluster` whose workers are
services (one replica each) on an overlay network, so the swarm may place them on any
machine that joined it. What changes, and why:

* **Ports** are published in *host* mode by default: each worker answers on its port of the
  machine it runs on, and the cluster's URL names that machine (``127.0.0.1`` for this one,
  the node's swarm address otherwise). The routing mesh (``publish_mode="ingress"``) needs
  IPVS in the kernel, which containers and minimal VMs often lack. Swarm publishes on every
  address of a machine, never on loopback only: the run's token protects the workers.
* **Targets travel as swarm configs**: a pickled worker object or a worker script is stored
  in the swarm (up to 500 KB) and handed to whichever machine runs the worker. Training data
  is bind-mounted from the machine the worker runs on, at the path it has here: put it there
  (a shared folder, or a copy), and pin workers with ``constraints``.
* **Images** must exist on every machine: the offline image only works on this machine,
  so its workers are pinned here (``node.id==<this node>``); for several machines, build
  the kit's image (:func:`~chimera_nb.cluster.build_worker_image`), push it to a registry
  the machines can reach, and pass ``image=`` (or set ``CHIMERA_WORKERS_IMAGE``).
* **Faults**: ``kill`` crashes a worker on this machine (elsewhere it scales the service to
  0); ``pause``/``unpause`` and ``disconnect``/``reconnect`` work on this machine's workers.
  A killed worker stays down (restart policy ``none``) until :meth:`restart`.
* CPU shares do not exist in Swarm (it reserves and limits CPUs instead); they are ignored.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .._exceptions import ClusterError, ConfigurationError
from .._sockets import url_of
from ..logs import status_logger
from ..states import WorkerState
from ..validation import validate_constraint
from ._containers import IN_CONTAINER, ContainerWorker
from ._engine import RUN_LABEL, WORKER_LABEL, engine_errors, remove_quietly, remove_run
from .docker import DockerCluster

__all__ = ["SwarmCluster"]

_CONFIG_LIMIT = 500 * 1024  # bytes: Docker's limit for one config
_ENDED = {"complete", "failed", "shutdown", "rejected", "orphaned", "remove"}
_GONE_WAIT = 30.0  # seconds to wait for a removed service's containers to go
_RETRIES = 3  # new tasks for a worker whose container failed to start for a passing reason
#: Seconds a task may wait for its host-mode port: after a restart, the swarm may still count
#: the port as taken by the removed task for a moment, then places the new task by itself.
_PORT_GRACE = 15.0


class SwarmCluster(DockerCluster):
    """A few workers, each a Docker Swarm service with one replica, for a master to drive.

    Takes :class:`~chimera_nb.cluster.DockerCluster`'s parameters (``cpu_shares`` is
    ignored: Swarm has no CPU shares), and:

    Parameters
    ----------
    constraints : sequence of str, or mapping of str to sequence of str, optional
        Placement constraints for every worker (``["node.role==worker"]``), or per worker
        (``{"worker1": ["node.hostname==lab-pc-1"]}``).
    publish_mode : {"host", "ingress"}, default="host"
        How ports are published (see the module's notes).

    Notes
    -----
    The engine this process talks to must be a swarm manager: ``docker swarm init
    --advertise-addr 127.0.0.1`` makes a one-machine swarm; the README shows how other
    machines join one.
    """

    backend = "swarm"

    def __init__(
        self,
        workers: Mapping[str, Any] | Sequence[Any],
        *,
        constraints: Sequence[str] | Mapping[str, Sequence[str]] | None = None,
        publish_mode: str = "host",
        **options: Any,
    ) -> None:
        super().__init__(workers, **options)
        if publish_mode not in ("host", "ingress"):  # a choice, not a rule of validation
            raise ConfigurationError(
                f"publish_mode must be 'host' or 'ingress', got {publish_mode!r}."
            )
        self.publish_mode = publish_mode
        self._constraints = _constraints_per_worker(constraints, self.names)
        # An added worker gets the constraints given for every worker (none if per worker).
        shared = None if isinstance(constraints, Mapping) else constraints
        self._added_constraints = _constraints_per_worker(shared, ["added"])["added"]
        self._configs: dict[str, Any] = {}
        self._retries: dict[str, int] = {}
        self._port_wait: dict[str, float] = {}  # worker -> when its task began to wait
        self._node_id: str | None = None

    # --- what differs from DockerCluster ----------------------------------------------------

    def _check_engine(self) -> None:
        swarm = self._client.info().get("Swarm") or {}
        if swarm.get("LocalNodeState") != "active" or not swarm.get("ControlAvailable"):
            raise ClusterError(
                "This Docker engine is not a swarm manager (swarm state "
                f"{swarm.get('LocalNodeState') or 'inactive'!r}). On one machine run "
                "'docker swarm init --advertise-addr 127.0.0.1'; for several, see the "
                "README (docker swarm init on the master's machine, docker swarm join on "
                "the others). Or use CHIMERA_BACKEND=docker."
            )
        self._node_id = swarm.get("NodeID")

    def _network_options(self) -> dict[str, Any]:
        return {"driver": "overlay", "attachable": True, "scope": "swarm"}

    def _admit(self, worker: ContainerWorker) -> None:
        self._constraints.setdefault(worker.name, self._added_constraints)
        super()._admit(worker)

    def _launch(self, worker: ContainerWorker) -> None:
        import docker

        self._retries.pop(worker.name, None)
        self._port_wait.pop(worker.name, None)
        command, environment, mounts = self._container_spec(worker)
        configs = []
        constraints = list(self._constraints[worker.name])
        if self._image.mode == "offline":  # its image and mounts exist on this machine only
            constraints.append(f"node.id=={self._node_id}")
        target_in_container = command[-1]
        source = _target_source(worker)
        if source is not None:
            data, label = source
            if len(data) <= _CONFIG_LIMIT:
                mounts = {
                    host: inside for host, inside in mounts.items() if inside != target_in_container
                }
                config = self._client.configs.create(
                    name=f"{self._resource_name(worker)}-{label}",
                    data=data,
                    labels={**self._labels, WORKER_LABEL: worker.name},
                )
                self._configs[worker.name] = config
                configs.append(
                    docker.types.ConfigReference(
                        config.id,
                        config.name,
                        filename=target_in_container,
                        uid=str(os.getuid()),
                        gid=str(os.getgid()),
                        mode=0o400,
                    )
                )
            else:
                self._write_payload(worker)
                constraints.append(f"node.id=={self._node_id}")
                status_logger.warning(
                    "worker %s: its target is %d KB, over a swarm config's 500 KB; it is "
                    "bind-mounted from %s, so it runs only on this machine",
                    worker.name,
                    len(data) // 1024,
                    self._run_dir,
                )
        ports = {worker.port: (self.container_port, "tcp", self.publish_mode)}
        doing = f"Swarm could not create the service of worker {worker.name!r}"
        with engine_errors(doing):
            worker.handle = self._client.services.create(
                self._image.reference,
                command,
                name=self._resource_name(worker),
                hostname=worker.name,
                env=[f"{key}={value}" for key, value in environment.items()],
                mounts=[
                    docker.types.Mount(inside, host, type="bind", read_only=True)
                    for host, inside in mounts.items()
                ]
                + [docker.types.Mount("/tmp", None, type="tmpfs")],
                configs=configs,
                networks=[self._network.name],
                # DNS round-robin needs no IPVS load balancer, which host-mode ports do
                # not use anyway; the routing mesh (ingress) needs a virtual IP.
                endpoint_spec=docker.types.EndpointSpec(
                    mode="vip" if self.publish_mode == "ingress" else "dnsrr", ports=ports
                ),
                constraints=sorted(set(constraints)),
                mode=docker.types.ServiceMode("replicated", 1),
                restart_policy=docker.types.RestartPolicy(condition="none"),
                labels={**self._labels, WORKER_LABEL: worker.name},
                container_labels={**self._labels, WORKER_LABEL: worker.name},
                user=f"{os.getuid()}:{os.getgid()}",
                workdir=IN_CONTAINER,
                read_only=True,
                cap_drop=["ALL"],
                stop_grace_period=1_000_000_000,  # ns: workers exit at once on SIGTERM
            )
        worker.state = WorkerState.STARTING
        worker.url = self._url_on(worker, self._wait_for_node(worker))

    def _wait_for_node(self, worker: ContainerWorker) -> str | None:
        """The node the swarm put the worker's task on; None if it cannot be placed (the
        wait for ``GET /health`` then reports why)."""
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            task = self._task(worker)
            if task is not None and task.get("NodeID"):
                return task["NodeID"]
            if task is not None and self._gone(worker):
                return None
            time.sleep(0.05)
        return None

    def _url_on(self, worker: ContainerWorker, node_id: str | None) -> str:
        if self.publish_mode == "ingress" or node_id in (None, self._node_id):
            return url_of(self.host, worker.port)  # published on this machine too
        address = self._client.nodes.get(node_id).attrs["Status"]["Addr"]
        return f"http://{address}:{worker.port}"

    def _task(self, worker: ContainerWorker) -> dict | None:
        """The newest task of the worker's service."""
        import docker

        if worker.handle is None:
            return None
        try:
            tasks = worker.handle.tasks()
        except docker.errors.NotFound:
            return None
        return max(tasks, key=lambda task: task.get("CreatedAt", ""), default=None)

    def _gone(self, worker: ContainerWorker) -> str | None:
        task = self._task(worker)
        if task is None:
            return "has no task (its service was removed from outside chimera-nb)"
        status = task.get("Status") or {}
        state, error = status.get("State"), status.get("Err")
        if state in _ENDED and _transient(error) and self._retries.get(worker.name, 0) < _RETRIES:
            self._retries[worker.name] = self._retries.get(worker.name, 0) + 1
            status_logger.warning("worker %s: retrying its start after: %s", worker.name, error)
            worker.handle.reload()
            worker.handle.force_update()  # a new task for the same service
            return None
        if state in _ENDED:
            code = (status.get("ContainerStatus") or {}).get("ExitCode")
            return f"stopped (swarm task {state}, exit code {code}{', ' + error if error else ''})"
        if state == "pending" and error:
            if "port already in use" in error:  # perhaps by the task a restart removed
                started = self._port_wait.setdefault(worker.name, time.monotonic())
                if time.monotonic() - started < _PORT_GRACE:
                    return None
            return f"cannot be placed on any node: {error}"
        return None

    def _logs_of(self, handle: Any, n_lines: int) -> bytes:
        """The last lines the service's task printed (its logs come in chunks)."""
        return b"".join(handle.logs(stdout=True, stderr=True, tail=n_lines))

    def _time_log_urls(self) -> None:
        """Every call: a worker's URL names the machine the swarm put it on, which only its
        launch tells (and a restart may change)."""
        return None

    # --- faults: done to the worker's container, on this machine ------------------------------

    def _kill(self, worker: ContainerWorker, sig: int | str) -> bool:
        if self._local_container(worker) is None:
            worker.handle.scale(0)  # on another machine: stop it through the swarm
            return True
        return super()._kill(worker, sig)

    def _container(self, worker: ContainerWorker, action: str) -> Any:
        container = self._local_container(worker)
        if container is None:
            raise ClusterError(
                f"Cannot {action} worker {worker.name!r}: it runs on another machine, and "
                "only the Docker engine there can do that. kill() and slow() work anywhere."
            )
        return container

    def _local_container(self, worker: ContainerWorker) -> Any | None:
        """The worker's container if it runs on this machine, else None."""
        import docker

        task = self._task(worker)
        if task is None or task.get("NodeID") != self._node_id:
            return None
        container_id = ((task.get("Status") or {}).get("ContainerStatus") or {}).get("ContainerID")
        try:
            return self._client.containers.get(container_id) if container_id else None
        except docker.errors.NotFound:
            return None

    # --- tearing down: a service's container goes some time after the service -----------------

    def _discard(self, worker: ContainerWorker) -> None:
        """Save the worker's log, remove its service and config, and wait until its
        container on this machine is gone (so that its port is free again)."""
        import docker

        if worker.handle is None:
            return
        self._save_log(worker)
        container = self._local_container(worker)
        remove_quietly(worker.handle)
        if container is not None:  # the swarm takes seconds to stop a task; we need not wait
            try:
                container.remove(force=True)
            except docker.errors.APIError:
                pass  # already going
        worker.handle = None
        self._wait_for_containers({WORKER_LABEL: worker.name})
        config = self._configs.pop(worker.name, None)
        if config is not None:
            remove_quietly(config)
        self._pickle_path(worker).unlink(missing_ok=True)  # a large target (a launch rewrites it)

    def _wait_for_containers(self, labels: dict[str, str]) -> None:
        filters = [f"{RUN_LABEL}={self._run_id}"] + [f"{k}={v}" for k, v in labels.items()]
        deadline = time.monotonic() + _GONE_WAIT
        while self._client.containers.list(all=True, filters={"label": filters}):
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"The containers of run {self._run_id} ({labels}) did not go within "
                    f"{_GONE_WAIT:g} s of removing their services; see 'docker ps -a "
                    f"--filter label={RUN_LABEL}={self._run_id}'."
                )
            time.sleep(0.1)

    def _remove_network(self, network: Any) -> None:
        """Remove the overlay network, and wait until this machine's copy of it is gone
        too (it lingers a moment after a container was reconnected to it by hand)."""
        super()._remove_network(network)
        deadline = time.monotonic() + _GONE_WAIT
        while self._client.networks.list(names=[network.name]):
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"The network {network.name} was removed but is still listed after "
                    f"{_GONE_WAIT:g} s; remove it with 'docker network rm {network.name}'."
                )
            time.sleep(0.1)

    def _remove_leftovers(self) -> None:
        """Services and configs of this run that no worker holds (a failed start), then
        wait for every container of the run to go, so that the network can be removed."""
        remove_run(self._client, self._run_id, "services", "configs")
        self._wait_for_containers({})


def _transient(error: str | None) -> bool:
    """Whether a task failed for a passing reason, worth a new task: the engine sometimes
    cannot remount a container's configs read-only while another container starts
    ("unable to remount dir as readonly ... device or resource busy", moby/moby#48783)."""
    return bool(error) and "starting container failed" in error and "resource busy" in error


def _target_source(worker: ContainerWorker) -> tuple[bytes, str] | None:
    """The bytes a swarm config carries for the worker's target, and a name suffix."""
    if isinstance(worker.target, Path):
        return worker.target.read_bytes(), "script"
    return (worker.payload, "pickle") if worker.payload else None


def _constraints_per_worker(
    constraints: Sequence[str] | Mapping[str, Sequence[str]] | None, names: list[str]
) -> dict[str, list[str]]:
    if constraints is None:
        return {name: [] for name in names}
    if isinstance(constraints, Mapping):
        unknown = sorted(set(constraints) - set(names))
        if unknown:
            raise ConfigurationError(
                f"constraints names {unknown}, which are not workers of this cluster ({names})."
            )
        given = {name: constraints.get(name, []) for name in names}
    elif isinstance(constraints, Sequence) and not isinstance(constraints, (str, bytes)):
        given = {name: constraints for name in names}
    else:
        raise ConfigurationError(
            "constraints must be a list of constraints for every worker, or a mapping "
            f"worker -> list, got {type(constraints).__name__}."
        )
    for name, listed in given.items():
        if isinstance(listed, (str, bytes)):
            raise ConfigurationError(
                f"The constraints of worker {name!r} must be a list, e.g. "
                f"[{listed!r}], not a string."
            )
    return {name: [validate_constraint(item) for item in listed] for name, listed in given.items()}
