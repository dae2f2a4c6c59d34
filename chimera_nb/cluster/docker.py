"""Workers as Docker containers, one per worker, as in Chimera: ``CHIMERA_BACKEND=docker``.

How a start goes, and why:

1. Check every worker and option in ``__init__``, and pickle worker objects at the start
   of :meth:`DockerCluster.start`: a bad name, network, image tag or an unpicklable worker
   is a :class:`~chimera_nb.ConfigurationError` before any call to Docker.
2. Connect to the engine, remove what crashed runs of this machine left (found by label,
   see :mod:`._engine`), and start the run's reaper (:mod:`._reaper`).
3. Get the image (:mod:`chimera_nb.cluster._images`: online, offline, or the one given),
   and make a bridge network ``<network>-<run id>``, on ``subnet`` if one is given.
4. Start one container per worker. Each mounts, read-only, only its own worker's data
   folder and its own target (a seed-style script, or the worker object pickled into the
   run directory), listens on ``0.0.0.0`` inside its network namespace, and is published on
   ``127.0.0.1`` of this machine only. As the container is reachable beyond loopback inside
   Docker's network, every worker requires the run's random token (:attr:`token`), which
   the master sends. Containers run as this user, with no capabilities, a read-only root
   file system and ``no-new-privileges``.
5. Wait until every worker answers ``GET /health`` through its published port
   (:class:`~chimera_nb.cluster.BaseCluster` does that, as for every backend).

Closing removes every container, the network and the image the run made, and keeps each
worker's log in the run directory.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._exceptions import ConfigurationError
from .._sockets import free_port, port_is_free, url_of, worker_port_error
from ..auth import new_token
from ..logs import status_logger
from ..states import WorkerState
from ..validation import (
    MIN_CPU_SHARE,
    validate_container_port,
    validate_cpu_share,
    validate_image_reference,
    validate_network_name,
    validate_published_host,
    validate_subnet,
)
from ._containers import IN_CONTAINER, ContainerSpec, ContainerWorker, container_spec
from ._engine import (
    WORKER_LABEL,
    at_once,
    connect,
    create_network,
    engine_errors,
    port_holder,
    remove_quietly,
    remove_run,
    run_labels,
    sweep_leftovers,
)
from ._images import ImagePlan, image_mode_setting, prepare_image, release_image
from ._options import owned_workers, per_worker
from ._pickling import pickle_target
from ._reaper import Reaper
from ._rundirs import write_private
from .base import BaseCluster, slug

if TYPE_CHECKING:
    import docker

__all__ = ["IMAGE_VARIABLE", "DockerCluster"]

#: An image with the kit installed, for every worker container (e.g. pushed to a registry
#: that every Swarm node can pull from); otherwise the kit's image is made.
IMAGE_VARIABLE = "CHIMERA_WORKERS_IMAGE"


class DockerCluster(BaseCluster):
    """A few workers, each in its own Docker container, for a master to drive.

    Parameters
    ----------
    workers : mapping of str to target, or sequence of targets
        As for :class:`~chimera_nb.cluster.LocalCluster`: worker objects (pickled into the
        run directory, mounted read-only) or seed-style scripts; a sequence's are "worker1"...
    name : str, default="chimera"
        Shown in the repr, and (made safe) in container names:
        ``<name>-<run id>-<worker>``. Starting a cluster closes any running cluster of this
        process with the same name, whatever its backend.
    run_dir : path, optional
        Holds each worker's pickled target while it runs, ``containers.json``, the
        workers' logs after close, and the masters' ``chimera_status.log`` and
        ``chimera_time.log``. By default a new private folder in ``<tempdir>/chimera-nb-<uid>/``.
    host : str, default="127.0.0.1"
        Where the containers' ports are published on this machine.
    ports : mapping of str to int, or sequence of int, optional
        Fixed host ports (``CHIMERA_WORKERS_MAPPED_PORTS``); 0 or missing: a free one.
    data_dirs : mapping of str to path, or sequence of paths, optional
        Each worker's training-data folder, by default ``<cwd>/chimera_train_data/<name>``;
        a container mounts only its own (read-only), if it exists.
    cwd : path, optional
        Where relative paths start; by default the current directory.
    cpu_shares : mapping of str to int, or sequence of int, optional
        Docker CPU shares per worker (``CHIMERA_WORKERS_CPU_SHARES``), 2 each by default.
    network : str, default="chimera-network"
        The bridge network's name, with the run id appended (``chimera-network-1a2b3c4d``).
    subnet : str, optional
        Its subnet, e.g. ``"192.168.10.0/24"`` (``CHIMERA_NETWORK_PREFIX``, ``_SUBNET_MASK``).
    container_port : int, default=80
        The port workers listen on inside their containers (``CHIMERA_WORKERS_PORT``).
    image : str, optional
        An image with chimera-nb installed (``python`` on its PATH) to run instead of the
        kit's own, by default ``CHIMERA_WORKERS_IMAGE`` if set; see
        :func:`~chimera_nb.cluster.build_worker_image`.
    image_mode : {"auto", "online", "offline"}, optional
        How to get the kit's image when ``image`` is not given; by default
        ``CHIMERA_IMAGE_MODE``, else ``"auto"`` (see :mod:`chimera_nb.cluster._images`).
    startup_timeout : float, default=60.0
        Seconds to wait, once the containers run, for all to answer ``GET /health``.
    client : docker.DockerClient, optional
        The engine to use; by default that of ``DOCKER_HOST`` or the local socket.

    Examples
    --------
    >>> from chimera_nb.cluster import DockerCluster
    >>> with DockerCluster.from_shards(SGDWorker("regressor"), X, y, 3) as cluster:  # doctest: +SKIP
    ...     master = ParameterServerMaster("regressor").fit(cluster)
    ...     cluster.pause("worker2")      # a straggler: its calls time out

    Notes
    -----
    Faults: :meth:`kill` kills a container, :meth:`pause` and :meth:`unpause` freeze and
    thaw it (cgroup freezer), :meth:`disconnect` and :meth:`reconnect` take it off its
    network and back, :meth:`slow` delays answers over HTTP.
    """

    backend = "docker"
    _manifest_name = "containers.json"
    _record_type = ContainerWorker

    _workers: dict[str, ContainerWorker]

    def __init__(
        self,
        workers: Mapping[str, Any] | Sequence[Any],
        *,
        name: str = "chimera",
        run_dir: str | os.PathLike | None = None,
        host: str = "127.0.0.1",
        ports: Mapping[str, int] | Sequence[int] | None = None,
        data_dirs: Mapping[str, Any] | Sequence[Any] | None = None,
        cwd: str | os.PathLike | None = None,
        cpu_shares: Mapping[str, int] | Sequence[int] | None = None,
        network: str = "chimera-network",
        subnet: str | None = None,
        container_port: int = 80,
        image: str | None = None,
        image_mode: str | None = None,
        startup_timeout: float = 60.0,
        client: docker.DockerClient | None = None,
    ) -> None:
        super().__init__(name, run_dir=run_dir, startup_timeout=startup_timeout)
        if image is not None and image_mode is not None:
            raise ConfigurationError(
                "Pass image= (an image you made) or image_mode= (how to make the kit's "
                "image), not both."
            )
        if image is None and image_mode is None:
            image = os.environ.get(IMAGE_VARIABLE) or None
        self.image = validate_image_reference(image) if image is not None else None
        self.image_mode = image_mode_setting(image_mode)
        self.host = validate_published_host(host)
        self.network_prefix = validate_network_name(network)
        self.subnet = validate_subnet(subnet)
        self.container_port = validate_container_port(container_port)
        self._cwd = Path(cwd).resolve() if cwd is not None else Path.cwd()
        self._slug = slug(name)
        self._workers = owned_workers(
            ContainerWorker, workers, ports=ports, data_dirs=data_dirs, cwd=self._cwd
        )
        shares = per_worker(cpu_shares, self.names, "cpu_shares", MIN_CPU_SHARE)
        for worker in self._workers.values():
            worker.cpu_share = validate_cpu_share(worker.name, shares[worker.name])
        self._client = client
        self._run_id: str | None = None
        self._labels: dict[str, str] = {}
        self._image: ImagePlan | None = None
        self._network: Any = None
        self._reaper: Reaper | None = None

    @property
    def run_id(self) -> str | None:
        """The id in every name and ``chimera-nb.run`` label of this run's Docker objects."""
        return self._run_id

    # --- how a start prepares, and a close tears down ---------------------------------------

    def _prepare_worker(self, worker: ContainerWorker) -> None:
        """Pickle a worker object: one that cannot travel fails before Docker is called."""
        if not isinstance(worker.target, Path):
            worker.payload, worker.classes = pickle_target(worker.name, worker.target)

    def _open(self) -> None:
        """Connect, sweep what crashed runs left, start the reaper, make image, network, ports."""
        self._client = connect(self._client)
        self._check_engine()
        for leftover in sweep_leftovers(self._client):
            status_logger.info("removed a leftover of a crashed run: %s", leftover)
        self._run_id = secrets.token_hex(4)
        self._labels = run_labels(self._run_id, self.name)
        self._reaper = Reaper(self._run_id, self._run_dir / "reaper.log")
        self._token = new_token()
        for worker in self._workers.values():
            self._admit(worker)
        self._image = prepare_image(
            self._client,
            self.image_mode,
            image=self.image,
            run_tag=f"{self._slug.lower()}-{self._run_id}",
            labels=self._labels,
        )
        name = f"{self.network_prefix}-{self._run_id}"
        options = self._network_options()
        self._network = create_network(self._client, name, self.subnet, self._labels, **options)
        status_logger.info(
            "run %s: image %s, network %s", self._run_id, self._image.reference, name
        )

    def _release(self) -> None:
        """Remove what the run made (by its label: also what a failed start made), and the
        pickled targets; then let the reaper go (what is left, it removes when we exit)."""
        try:
            with self._reaper or nullcontext():
                if self._client is not None and self._run_id is not None:
                    self._remove_leftovers()
                    if self._network is not None:
                        self._remove_network(self._network)
                        self._network = None
                    release_image(self._client, self._image)
                    self._image = None
        finally:
            for worker in self._workers.values():
                self._pickle_path(worker).unlink(missing_ok=True)

    def _check_engine(self) -> None:
        """Refuse an engine this backend cannot use (the swarm backend needs a manager)."""

    def _network_options(self) -> dict[str, Any]:
        return {"driver": "bridge"}

    def _admit(self, worker: ContainerWorker) -> None:
        """A host port, fixed (and free) or free now: it keeps it (and its URL) across restart()."""
        if not worker.port:
            worker.port = free_port(self.host)
        elif not port_is_free(self.host, worker.port):
            holder = port_holder(self._client, worker.port)
            raise worker_port_error(
                worker.name, self.host, worker.port, None, "Nothing was started.", holder
            )
        worker.url = url_of(self.host, worker.port)

    def _remove_leftovers(self) -> None:
        remove_run(self._client, self._run_id, "containers")

    def _remove_network(self, network: Any) -> None:
        remove_quietly(network)

    def _manifest(self) -> dict[str, Any]:
        return {
            "run_id": self._run_id,
            "image": self._image.reference if self._image else None,
            "network": self._network.name if self._network else None,
            "workers": [
                {"name": w.name, "url": w.url, "id": getattr(w.handle, "id", None)}
                for w in self._workers.values()
            ],
        }

    # --- one container per worker ---------------------------------------------------------

    def _launch_all(self, workers: list[ContainerWorker]) -> None:
        at_once(self._launch, workers)

    def _launch(self, worker: ContainerWorker) -> None:
        import docker

        self._write_payload(worker)
        command, environment, mounts = self._container_spec(worker)
        with engine_errors(f"Docker could not start worker {worker.name!r}"):
            worker.handle = self._client.containers.run(
                self._image.reference,
                command,
                name=self._resource_name(worker),
                hostname=worker.name,
                detach=True,
                environment=environment,
                mounts=[
                    docker.types.Mount(target, source, type="bind", read_only=True)
                    for source, target in mounts.items()
                ],
                network=self._network.name,
                ports={f"{self.container_port}/tcp": (self.host, worker.port)},
                cpu_shares=worker.cpu_share,
                labels={**self._labels, WORKER_LABEL: worker.name},
                user=f"{os.getuid()}:{os.getgid()}" if hasattr(os, "getuid") else None,
                working_dir=IN_CONTAINER,
                read_only=True,
                tmpfs={"/tmp": "size=64m"},
                cap_drop=["ALL"],
                security_opt=["no-new-privileges"],
            )
        worker.state = WorkerState.STARTING

    def _stop_workers(self, workers: list[ContainerWorker]) -> None:
        at_once(self._discard, workers)

    def _discard(self, worker: ContainerWorker) -> None:
        """Save the worker's log in the run directory; remove its container and pickle."""
        if worker.handle is None:
            return
        self._save_log(worker)
        remove_quietly(worker.handle, force=True)
        worker.handle = None
        self._pickle_path(worker).unlink(missing_ok=True)

    def _save_log(self, worker: ContainerWorker) -> None:
        log = self._live_log(worker, 10_000)
        if log:
            write_private(self._run_dir / f"{worker.name}.log", log.encode())

    def _gone(self, worker: ContainerWorker) -> str | None:
        import docker

        if worker.handle is None:
            return "has no container"
        try:
            worker.handle.reload()
        except docker.errors.NotFound:
            return "lost its container (removed from outside chimera-nb)"
        state = worker.handle.attrs.get("State") or {}
        if state.get("Status") in ("exited", "dead"):
            return f"exited (code {state.get('ExitCode')})"
        return None

    def _live_log(self, worker: ContainerWorker, n_lines: int) -> str | None:
        import docker

        if worker.handle is None:
            return None
        try:
            return self._logs_of(worker.handle, n_lines).decode("utf-8", "replace")
        except docker.errors.APIError:
            return None

    def _logs_of(self, handle: Any, n_lines: int) -> bytes:
        """The last lines a container printed."""
        return handle.logs(tail=n_lines)

    # --- faults: the engine does them to the container ---------------------------------------

    def _kill(self, worker: ContainerWorker, sig: int | str) -> bool:
        self._container_call(worker, "kill", signal=sig)
        return True

    def _pause(self, worker: ContainerWorker) -> None:
        self._container_call(worker, "pause")

    def _unpause(self, worker: ContainerWorker) -> None:
        self._container_call(worker, "unpause")

    def _disconnect(self, worker: ContainerWorker) -> None:
        with engine_errors(f"Could not disconnect worker {worker.name!r}"):
            self._network.disconnect(self._container(worker, "disconnect"), force=True)

    def _reconnect(self, worker: ContainerWorker) -> None:
        with engine_errors(f"Could not reconnect worker {worker.name!r}"):
            self._network.connect(self._container(worker, "reconnect"))

    def _container_call(self, worker: ContainerWorker, action: str, **options: Any) -> None:
        with engine_errors(f"Could not {action} worker {worker.name!r}"):
            getattr(self._container(worker, action), action)(**options)

    def _container(self, worker: ContainerWorker, action: str) -> Any:
        """The worker's container, on which ``action`` is done."""
        return worker.handle

    # --- helpers ----------------------------------------------------------------------------

    def _resource_name(self, worker: ContainerWorker) -> str:
        return f"{self._slug}-{self._run_id}-{worker.name}"

    def _peer_url(self, worker: ContainerWorker) -> str:
        return f"http://{self._resource_name(worker)}:{self.container_port}"

    def _pickle_path(self, worker: ContainerWorker) -> Path:
        return self._run_dir / f"{worker.name}.pickle"

    def _write_payload(self, worker: ContainerWorker) -> None:
        if worker.payload:  # readable by this user only; the container runs as this user
            write_private(self._pickle_path(worker), worker.payload)

    def _container_spec(self, worker: ContainerWorker) -> ContainerSpec:
        return container_spec(
            worker,
            self._image,
            token=self._token,
            container_port=self.container_port,
            pickle_path=self._pickle_path(worker),
        )
