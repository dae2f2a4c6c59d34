"""What one worker's container holds, for the docker and swarm backends: its command, its
environment and its read-only mounts.

Inside a container the seed's layout is rebuilt under ``/chimera`` (the working directory):

* ``/chimera/chimera_train_data/<name>``: this worker's data folder, and no other worker's;
* ``/chimera/worker/<name>.py`` (a seed-style script) or ``/chimera/worker.pickle`` (a worker
  object pickled by the cluster into its run directory);
* ``/chimera/code/<module>``: modules of your own that a pickled worker needs (e.g.
  ``my_workers.py`` beside the notebook), found from what the pickle refers to;
* ``/chimera/kit/chimera_nb``: the kit (offline image only; the online image has it installed).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from ..auth import WORKER_TOKEN_VARIABLE
from ._images import KIT_IN_CONTAINER, ImagePlan, kit_source
from ._records import WorkerRecord

__all__ = [
    "IN_CONTAINER",
    "ContainerSpec",
    "ContainerWorker",
    "container_spec",
    "user_code",
]

IN_CONTAINER = "/chimera"
ENTRY = "chimera_nb.cluster._container_entry"


@dataclass
class ContainerWorker(WorkerRecord):
    """A worker of a container backend (docker, swarm)."""

    target: Any = None  # a worker object, or the Path of a seed-style script
    port: int = 0  # host port: asked for (0: any free one), then the one published
    data_dir: Path | None = None
    cpu_share: int = 2
    payload: bytes = b""  # the pickled target
    classes: list[str] = field(default_factory=list)  # "module:qualname" the payload uses
    handle: Any = None  # the docker Container (or the swarm Service)


class ContainerSpec(NamedTuple):
    command: list[str]
    environment: dict[str, str]
    mounts: dict[str, str]  # host path -> path in the container, all read-only


def container_spec(
    worker: ContainerWorker,
    plan: ImagePlan,
    *,
    token: str,
    container_port: int,
    pickle_path: Path,
) -> ContainerSpec:
    """The command, environment and mounts of ``worker``'s container."""
    mounts = {path: path for path in plan.mounts}
    if plan.mode == "offline":
        mounts[str(kit_source())] = f"{KIT_IN_CONTAINER}/chimera_nb"
    mounts.update(user_code(worker.classes, plan))
    data_in_container = f"{IN_CONTAINER}/chimera_train_data/{worker.name}"
    if worker.data_dir is not None and worker.data_dir.is_dir():
        mounts[str(worker.data_dir)] = data_in_container
    command = [plan.python, "-m", ENTRY]
    if isinstance(worker.target, Path):
        mounts[str(worker.target)] = f"{IN_CONTAINER}/worker/{worker.name}.py"
        command += ["--script", f"{IN_CONTAINER}/worker/{worker.name}.py"]
    else:
        mounts[str(pickle_path)] = f"{IN_CONTAINER}/worker.pickle"
        command += ["--pickle", f"{IN_CONTAINER}/worker.pickle"]
    environment = {
        # who the worker is (read by chimera_nb.workers.launch.current_context)
        "CHIMERA_WORKER_NAME": worker.name,
        "CHIMERA_WORKER_HOST": "0.0.0.0",  # its own network namespace: the token guards it
        "CHIMERA_WORKER_PORT": str(container_port),
        "CHIMERA_TRAIN_DATA_DIR": data_in_container,
        WORKER_TOKEN_VARIABLE: token,
        # how Python runs in a read-only container
        "PYTHONPATH": ":".join([*plan.pythonpath, f"{IN_CONTAINER}/code"]),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "HOME": "/tmp",
        # one BLAS thread per worker, as for local worker processes
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    return ContainerSpec(command, environment, mounts)


def user_code(classes: list[str], plan: ImagePlan) -> dict[str, str]:
    """Mounts for the modules a pickled worker needs that are neither the kit, nor the
    standard library, nor installed packages: the user's own ``.py`` files and packages,
    at ``/chimera/code/<name>``."""
    roots = [os.path.realpath(path) for path in (*plan.mounts, str(kit_source()))]
    roots += [os.path.realpath(path) for path in (sys.prefix, sys.base_prefix)]
    mounts: dict[str, str] = {}
    for entry in classes:
        top = entry.partition(":")[0].split(".")[0]
        if top in sys.stdlib_module_names or top in ("builtins", "chimera_nb"):
            continue
        module = sys.modules.get(top)
        file = getattr(module, "__file__", None)
        locations = list(getattr(module, "__path__", []) or [])
        if file is not None:
            source = Path(file).parent if Path(file).name == "__init__.py" else Path(file)
        elif locations:
            source = Path(locations[0])  # a namespace package
        else:
            continue
        real = os.path.realpath(source)
        if any(real == root or real.startswith(root.rstrip("/") + "/") for root in roots):
            continue
        mounts[str(source)] = f"{IN_CONTAINER}/code/{source.name}"
    return mounts
