"""Workers as Docker containers, one per worker, as in Chimera: ``CHIMERA_BACKEND=docker``.

How a start goes, and why:

1. Check every worker and option in ``__init__``, and pickle worker objects at the start
   of :meth:`DockerCluster.start`: a bad name, network, image tag or an unpicklable worker
   is a :class:`~chimera_nb.ConfigurationError` before any call to Docker.
2. Connect to the engine and remove what crashed runs of this machine left behind
   (found by label: see :mod:`chimera_nb.cluster._engine`).
3. Get the image (:mod:`chimera_nb.cluster._images`: online, offline, or the one given),
   and make a bridge network ``<network>-<run id>``, on ``subnet`` if one is given.
4. Start one container per worker. Each mounts, read-only, only its own worker's data
   folder and its own target (a seed-style script, or the worker object pickled into the
   run directory), listens on ``0.0.0.0`` inside its network namespace, and is published on
   ``127.0.0.1`` of this machine only. As the container is reachable beyond loopback inside
   Docker's network, every worker requires the run's random token (:attr:`token`), which
   the master sends. Containers run as this user, with no capabilities, a read-only root
   file system and ``no-new-privileges``.
5. Wait until every worker answers ``GET /health`` through its published port.

Closing removes every container, the network and the image the run made, and keeps each
worker's log in the run directory.
"""

from __future__ import annotations

import atexit
import itertools
import json
import os
import secrets
import socket
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._exceptions import ClusterError, ConfigurationError
from ..auth import new_token
from ..logs import attach_log_files, status_logger
from ._containers import (
    IN_CONTAINER,
    ContainerSpec,
    ContainerWorker,
    checked_host,
    container_spec,
    free_port,
    write_private,
)
from ._engine import (
    RUN_LABEL,
    WORKER_LABEL,
    check_cpu_share,
    check_image_reference,
    check_network_name,
    check_subnet,
    connect,
    docker_slug,
    port_holder,
    run_labels,
    subnet_conflict,
    sweep_leftovers,
)
from ._images import ImagePlan, image_mode_setting, prepare_image
from ._images import release_image as _release_image
from ._launcher import pickle_target, runs_root
from ._options import check_ports, checked_target, named_targets, per_worker, shard_workers
from ._remote import RemoteCluster
from .states import ClusterState, WorkerState

if TYPE_CHECKING:
    import docker

__all__ = ["IMAGE_VARIABLE", "DockerCluster"]

#: An image with the kit installed, for every worker container (e.g. pushed to a registry
#: that every Swarm node can pull from); otherwise the kit's image is made.
IMAGE_VARIABLE = "CHIMERA_WORKERS_IMAGE"
_run_numbers = itertools.count(1)
_running: dict[str, DockerCluster] = {}  # by name: a re-run notebook cell replaces its cluster


class DockerCluster(RemoteCluster):
    """A few workers, each in its own Docker container, for a master to drive.

    Parameters
    ----------
    workers : mapping of str to target, or sequence of targets
        As for :class:`~chimera_nb.cluster.LocalCluster`: worker objects
        (``SGDWorker(...)``, pickled into the run directory and mounted read-only) or
        paths of seed-style scripts. A sequence names its workers ``"worker1"``, ...
    name : str, default="chimera"
        Shown in the repr, and (made safe) in container names:
        ``<name>-<run id>-<worker>``. Starting a cluster closes any running cluster of this
        process with the same name.
    run_dir : path, optional
        Holds each worker's pickled target while it runs, ``containers.json``, the
        workers' logs after close, and the masters' ``chimera_status.log`` and
        ``chimera_time.log``. By default a fresh folder under ``<tempdir>/chimera-nb/``.
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
        The bridge network's name; the run id is appended (``chimera-network-1a2b3c4d``),
        so a network left by another run never conflicts.
    subnet : str, optional
        The network's subnet, e.g. ``"192.168.10.0/24"`` (the seed's
        ``CHIMERA_NETWORK_PREFIX`` and ``_SUBNET_MASK``); by default Docker picks one.
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
    """

    _backend = "docker"

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
        super().__init__(name, startup_timeout)
        if image is not None and image_mode is not None:
            raise ConfigurationError(
                "Pass image= (an image you made) or image_mode= (how to make the kit's "
                "image), not both."
            )
        if image is None and image_mode is None:
            image = os.environ.get(IMAGE_VARIABLE) or None
        self.image = check_image_reference(image) if image is not None else None
        self.image_mode = image_mode_setting(image_mode)
        self.host = checked_host(host)
        self.network = check_network_name(network)
        self.subnet = check_subnet(subnet)
        if isinstance(container_port, bool) or not isinstance(container_port, int):
            container_port = -1
        if not 1 <= container_port <= 65535:
            raise ConfigurationError(
                "container_port (CHIMERA_WORKERS_PORT) is the port workers listen on inside "
                "their containers: an integer from 1 to 65535, such as 80."
            )
        self.container_port = container_port
        self._cwd = Path(cwd).resolve() if cwd is not None else Path.cwd()
        self._slug = docker_slug(name)
        self._run_dir = (
            Path(run_dir)
            if run_dir is not None
            else runs_root() / f"{self._backend}-{self._slug}-{os.getpid()}-{next(_run_numbers)}"
        )
        targets = named_targets(workers)  # validates every worker name
        names = list(targets)
        fixed_ports = per_worker(ports, names, "ports", 0)
        check_ports(fixed_ports)
        shares = per_worker(cpu_shares, names, "cpu_shares", 2)
        folders = per_worker(data_dirs, names, "data_dirs", None)
        self._workers = {
            worker: ContainerWorker(
                worker,
                target=checked_target(worker, target, self._cwd),
                port=fixed_ports[worker],
                data_dir=self._cwd / (folders[worker] or Path("chimera_train_data", worker)),
                cpu_share=check_cpu_share(worker, shares[worker]),
            )
            for worker, target in targets.items()
        }
        self._client = client
        self._run_id: str | None = None
        self._labels: dict[str, str] = {}
        self._image: ImagePlan | None = None
        self._network = None
        self._detach_logs = None

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> DockerCluster:
        """Start every worker's container and wait until all answer ``GET /health``.

        Raises
        ------
        ConfigurationError
            A worker cannot be pickled; nothing reached Docker.
        ClusterError
            No engine answers, a port or subnet is taken (the message says by whom), or a
            worker exited or did not answer in time (the message quotes its log). Whatever
            the run had created is removed again.
        """
        self._require(ClusterState.NEW, "start")
        workers = list(self._workers.values())
        for worker in workers:  # before Docker: a worker that cannot travel fails here
            if not isinstance(worker.target, Path):
                worker.payload, worker.classes = pickle_target(worker.name, worker.target)
        previous = _running.get(self.name)
        if previous is not None and previous is not self:
            previous.close()
        self._client = connect(self._client)
        self._check_engine()
        for leftover in sweep_leftovers(self._client):
            status_logger.info("removed a leftover of a crashed run: %s", leftover)
        self._run_id = secrets.token_hex(4)
        self._labels = run_labels(self._run_id, self.name)
        self._token = new_token()
        self._run_dir.mkdir(parents=True, exist_ok=True)
        self._state = ClusterState.RUNNING
        _running[self.name] = self
        atexit.register(self.close)
        self._detach_logs = attach_log_files(self._run_dir)
        try:
            self._image = prepare_image(
                self._client,
                self.image_mode,
                image=self.image,
                run_tag=f"{self._slug.lower()}-{self._run_id}",
                labels=self._labels,
            )
            self._network = self._create_network()
            self._assign_ports(workers)
            _each(self._launch, workers)
            self._write_manifest()
            self._raise_unless_up(workers, "Nothing is left running; fix it and start again.")
        except BaseException:
            self._teardown()
            self._state = ClusterState.NEW
            raise
        status_logger.info(
            "%s %s: %d workers up (run %s, image %s)",
            type(self).__name__,
            self.name,
            len(workers),
            self._run_id,
            self._image.reference,
        )
        return self

    def close(self) -> None:
        """Remove every container, the network and the run's image; keep the workers' logs
        in the run directory. Safe to call twice."""
        if self._state is ClusterState.CLOSED:
            return
        try:
            if self._state is ClusterState.RUNNING:
                self._teardown()
        finally:
            self._state = ClusterState.CLOSED

    # --- what a notebook reads ------------------------------------------------------------

    @property
    def run_id(self) -> str | None:
        """The id in every name and ``chimera-nb.run`` label of this run's Docker objects."""
        return self._run_id

    def log(self, name: str, n_lines: int = 20) -> str:
        """The last lines a worker printed (its tracebacks included)."""
        worker = self._worker(name)
        saved = self._run_dir / f"{name}.log"
        if self._state is not ClusterState.RUNNING and saved.exists():
            lines = saved.read_text(errors="replace").splitlines()[-n_lines:]
        else:
            lines = self._logs(worker, n_lines).splitlines()
        return "\n".join("    " + line for line in lines) or "    (it is empty)"

    # --- faults, for demos ----------------------------------------------------------------

    def kill(self, name: str, sig: int | str = "SIGKILL") -> None:
        """Kill one worker's container (a crash). It shows FAILED until :meth:`restart`."""
        self._require(ClusterState.RUNNING, "kill a worker")
        worker = self._worker(name)
        self._handle_call(worker, "kill", signal=sig)
        worker.fault, worker.state = "killed", WorkerState.FAILED
        status_logger.warning("fault: killed worker %s (%s)", name, sig)

    def pause(self, name: str) -> None:
        """Freeze one worker's container (cgroup freezer): it holds every request until
        :meth:`unpause`, so a master waits for it, then times out. It shows SLOW."""
        self._require(ClusterState.RUNNING, "pause a worker")
        worker = self._worker(name)
        self._handle_call(worker, "pause")
        worker.fault, worker.state = "paused", WorkerState.SLOW
        status_logger.warning("fault: paused worker %s", name)

    def unpause(self, name: str) -> None:
        """Thaw a paused worker: it answers the requests it held, late."""
        self._require(ClusterState.RUNNING, "unpause a worker")
        worker = self._worker(name)
        self._handle_call(worker, "unpause")
        worker.fault = None
        worker.state = WorkerState.SLOW if worker.delay else WorkerState.UP
        status_logger.warning("fault: unpaused worker %s", name)

    def disconnect(self, name: str) -> None:
        """Take one worker's container off its network (a cable pulled): calls to it are
        refused until :meth:`reconnect`. It shows FAILED."""
        self._require(ClusterState.RUNNING, "disconnect a worker")
        worker = self._worker(name)
        self._network_call(worker, "disconnect")
        worker.fault, worker.state = "disconnected", WorkerState.FAILED
        status_logger.warning("fault: disconnected worker %s", name)

    def reconnect(self, name: str) -> None:
        """Put a disconnected worker back on its network, on the same port, and wait until
        it answers ``GET /health``."""
        self._require(ClusterState.RUNNING, "reconnect a worker")
        worker = self._worker(name)
        self._network_call(worker, "connect")
        worker.fault = None
        self._raise_unless_up([worker], f"Call restart({name!r}) to start it afresh.")
        status_logger.warning("fault: reconnected worker %s", name)

    def restart(self, name: str) -> None:
        """Replace one worker's container by a fresh one on the same port (faults and
        delays cleared), and wait until it answers ``GET /health``."""
        self._require(ClusterState.RUNNING, "restart a worker")
        worker = self._worker(name)
        self._discard(worker)
        worker.fault, worker.delay = None, 0.0
        self._launch(worker)
        self._write_manifest()
        self._raise_unless_up([worker], f"Fix it and call restart({name!r}) again.")
        status_logger.info("restarted worker %s", name)

    # --- helpers ----------------------------------------------------------------------------

    @classmethod
    def from_shards(
        cls,
        worker: Any,
        X: Any,
        y: Any,
        n_workers: int = 3,
        *,
        method: str = "contiguous",
        proportions: Sequence[float] | None = None,
        random_state: int | None = None,
        **cluster_kwargs: Any,
    ):
        """A cluster of ``n_workers`` copies of ``worker``, each holding one shard of the
        rows of ``X`` and ``y`` (``worker.with_data(X_k, y_k)``); see
        :func:`chimera_nb.algorithms.sharding.split` for ``method`` and ``proportions``."""
        workers = shard_workers(worker, X, y, n_workers, method, proportions, random_state)
        return cls(workers, **cluster_kwargs)

    def _url(self, worker: ContainerWorker) -> str:
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.host, self.host)
        return f"http://[{host}]:{worker.port}" if ":" in host else f"http://{host}:{worker.port}"

    def _resource_name(self, worker: ContainerWorker) -> str:
        return f"{self._slug}-{self._run_id}-{worker.name}"

    def _check_engine(self) -> None:
        """Refuse an engine this backend cannot use (the swarm backend needs a manager)."""

    def _create_network(self) -> Any:
        import docker

        name = f"{self.network}-{self._run_id}"
        ipam = None
        if self.subnet is not None:
            pool = docker.types.IPAMPool(subnet=self.subnet)
            ipam = docker.types.IPAMConfig(pool_configs=[pool])
        try:
            return self._client.networks.create(
                name, ipam=ipam, labels=self._labels, **self._network_options()
            )
        except docker.errors.APIError as error:
            raise ClusterError(subnet_conflict(self._client, self.subnet, name, error)) from None

    def _network_options(self) -> dict[str, Any]:
        return {"driver": "bridge"}

    def _assign_ports(self, workers: list[ContainerWorker]) -> None:
        """Fixed ports must be free; the others get a free port now, so that a worker
        keeps its port (and URL) across restart() and reconnect()."""
        for worker in workers:
            if worker.port:
                self._check_port_free(worker)
            else:
                worker.port = free_port(self.host)
            worker.url = self._url(worker)

    def _check_port_free(self, worker: ContainerWorker) -> None:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((self.host, worker.port))
                return
            except OSError:
                pass
        holder = port_holder(self._client, worker.port)
        raise ClusterError(
            f"Port {worker.port} for worker {worker.name!r} is already in use by {holder}. "
            "Nothing was started. Pick another port, leave it out to get a free one, or "
            "stop what holds it."
        )

    # --- one container per worker ---------------------------------------------------------

    def _container_spec(self, worker: ContainerWorker) -> ContainerSpec:
        return container_spec(
            worker,
            self._image,
            token=self._token,
            container_port=self.container_port,
            pickle_path=self._pickle_path(worker),
        )

    def _pickle_path(self, worker: ContainerWorker) -> Path:
        return self._run_dir / f"{worker.name}.pickle"

    def _write_payload(self, worker: ContainerWorker) -> None:
        if worker.payload:  # readable by this user only; the container runs as this user
            write_private(self._pickle_path(worker), worker.payload)

    def _launch(self, worker: ContainerWorker) -> None:
        import docker

        self._write_payload(worker)
        command, environment, mounts = self._container_spec(worker)
        try:
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
        except docker.errors.APIError as error:
            raise ClusterError(
                f"Docker could not start worker {worker.name!r}: {error.explanation or error}"
            ) from None
        worker.state = WorkerState.STARTING

    def _raise_unless_up(self, workers: list[ContainerWorker], what_now: str) -> None:
        failed = self._wait_until_up(workers)
        if not failed:
            return
        worker, problem = failed[0]
        worker.state = WorkerState.FAILED
        raise ClusterError(
            f"Worker {worker.name!r} {problem}. The end of its log:\n"
            f"{self.log(worker.name)}\n{what_now}"
        )

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

    def _logs(self, worker: ContainerWorker, n_lines: int) -> str:
        import docker

        if worker.handle is None:
            return ""
        try:
            return worker.handle.logs(tail=n_lines).decode("utf-8", "replace")
        except docker.errors.APIError:
            return ""

    def _handle_call(self, worker: ContainerWorker, action: str, **options: Any) -> None:
        import docker

        try:
            getattr(worker.handle, action)(**options)
        except docker.errors.APIError as error:
            raise ClusterError(
                f"Could not {action} worker {worker.name!r}: {error.explanation or error}"
            ) from None

    def _network_call(self, worker: ContainerWorker, action: str) -> None:
        import docker

        try:
            if action == "disconnect":
                self._network.disconnect(worker.handle, force=True)
            else:
                self._network.connect(worker.handle)
        except docker.errors.APIError as error:
            raise ClusterError(
                f"Could not {action} worker {worker.name!r}: {error.explanation or error}"
            ) from None

    def _discard(self, worker: ContainerWorker) -> None:
        """Save the worker's log, then remove its container."""
        import docker

        if worker.handle is None:
            return
        log = self._logs(worker, 10_000)
        if log:
            (self._run_dir / f"{worker.name}.log").write_text(log)
        try:
            worker.handle.remove(force=True)
        except docker.errors.NotFound:
            pass
        worker.handle = None
        worker.state = WorkerState.STOPPED

    def _teardown(self) -> None:
        """Remove everything this run made (found by its label, so also what a failed
        start made before it failed), then forget the run."""

        try:
            workers = list(self._workers.values())
            if self._client is not None and workers:
                _each(self._discard, workers)
                self._remove_labelled()
                if self._network is not None:
                    self._remove_network(self._network)
                    self._network = None
                _release_image(self._client, self._image)
                self._image = None
        finally:
            for worker in self._workers.values():
                self._pickle_path(worker).unlink(missing_ok=True)
                worker.state = WorkerState.STOPPED
            if self._detach_logs is not None:
                self._detach_logs()
                self._detach_logs = None
            atexit.unregister(self.close)
            if _running.get(self.name) is self:
                del _running[self.name]

    def _remove_network(self, network: Any) -> None:
        import docker

        try:
            network.remove()
        except docker.errors.NotFound:
            pass

    def _remove_labelled(self) -> None:
        """Containers of this run that no worker holds any more (a failed start)."""
        import docker

        if self._run_id is None:
            return
        for container in self._client.containers.list(
            all=True, filters={"label": f"{RUN_LABEL}={self._run_id}"}
        ):
            try:
                container.remove(force=True)
            except docker.errors.NotFound:
                pass

    def _write_manifest(self) -> None:
        """``containers.json``: what this run made, for people and for debugging."""
        manifest = {
            "backend": self._backend,
            "cluster": self.name,
            "run_id": self._run_id,
            "owner_pid": os.getpid(),
            "image": self._image.reference if self._image else None,
            "network": self._network.name if self._network else None,
            "workers": [
                {"name": w.name, "url": w.url, "id": getattr(w.handle, "id", None)}
                for w in self._workers.values()
            ],
        }
        temporary = self._run_dir / "containers.json.tmp"
        temporary.write_text(json.dumps(manifest, indent=2))
        temporary.replace(self._run_dir / "containers.json")


def _each(action: Any, workers: list[ContainerWorker]) -> None:
    """``action(worker)`` for every worker at once (one engine call each takes ~0.3-1 s),
    one after the other when Python is exiting (no new threads then: an atexit close)."""
    try:
        with ThreadPoolExecutor(len(workers)) as pool:
            list(pool.map(action, workers))
    except RuntimeError as error:
        if "interpreter shutdown" not in str(error):
            raise
        for worker in workers:
            action(worker)
