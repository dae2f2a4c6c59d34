"""The image a worker container runs, made one of two ways.

**online**: a real image, ``FROM python:<this Python's X.Y>-slim`` with the kit's
dependencies installed by pip and the kit's own source copied in
(:func:`build_worker_image`). It needs a registry (Docker Hub) and PyPI once; the result
is tagged by a hash of the kit's source, its requirements and the base, and kept as a
cache, as pip keeps wheels: the next run starts at once. This is the path for Docker
Desktop on macOS and Windows, and for Swarm across machines (push it to a registry every
node can pull from).

**offline**: no registry at all. An *empty* image is imported from an empty tar archive,
and each container bind-mounts, read-only, the host's system folders (``/usr``, ``/lib``...),
this Python's installation and environment, and the kit's source, all at the paths they have
here. The container then runs exactly the interpreter and packages of this process. It works
only where the engine runs on this same Linux machine; the empty image is made per run and
removed at close.

``CHIMERA_IMAGE_MODE=auto`` (the default) picks online when the kit's image is already
built, or its base image is here or can be pulled; else offline. ``online`` or ``offline``
forces one; a cluster's ``image="name:tag"`` runs an image you made (the kit installed).
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import site
import sys
import tarfile
import tempfile
import threading
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, requires, version
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from .._exceptions import ClusterError, ConfigurationError
from ..validation import validate_image_reference

if TYPE_CHECKING:
    import docker

__all__ = [
    "KIT_IN_CONTAINER",
    "ImagePlan",
    "build_worker_image",
    "choose_mode",
    "dockerfile",
    "image_mode_setting",
    "offline_mounts",
    "prepare_image",
    "release_image",
    "worker_image_tag",
    "worker_requirements",
]

ImageMode = Literal["auto", "online", "offline"]

#: Where the offline path mounts the kit's package folder inside a container.
KIT_IN_CONTAINER = "/chimera/kit"
#: The labels of an image :func:`build_worker_image` made (kept as a cache across runs).
KIT_IMAGE_LABEL = "chimera-nb.kit-image"

_KIT = Path(__file__).resolve().parents[1]  # .../chimera_nb
_SYSTEM_FOLDERS = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"]
_SYSTEM_FILES = ["/etc/ld.so.cache", "/etc/localtime"]
_PROBE_SECONDS = 5.0
_FALLBACK_REQUIREMENTS = [  # used only if neither pyproject.toml nor metadata is found
    "fastapi>=0.110",
    "uvicorn[standard]>=0.29",
    "httpx>=0.27",
    "aiohttp>=3.9",
    "pydantic>=2.6",
    "pydantic-settings>=2.2",
    "numpy>=1.24",
    "pandas>=2.0",
    "scikit-learn>=1.3",
    "matplotlib>=3.7",
    "ipywidgets>=8.0",
]


@dataclass
class ImagePlan:
    """How to run the kit in a container: which image, which interpreter, what to mount."""

    mode: Literal["online", "offline", "given"]
    reference: str
    python: str  # the interpreter's path inside the container
    mounts: list[str] = field(default_factory=list)  # host paths mounted read-only, same path
    pythonpath: list[str] = field(default_factory=list)  # folders inside the container
    made_for_run: bool = False  # remove it at close


def image_mode_setting(requested: str | None) -> ImageMode:
    """The image mode asked for (argument, else ``CHIMERA_IMAGE_MODE``, else auto), checked."""
    mode = requested if requested is not None else os.environ.get("CHIMERA_IMAGE_MODE", "auto")
    mode = str(mode).strip().lower()
    if mode not in ("auto", "online", "offline"):
        raise ConfigurationError(
            f"The image mode must be 'auto', 'online' or 'offline', got {mode!r} (argument "
            "image_mode= or CHIMERA_IMAGE_MODE). To run an image you built, pass image='name:tag'."
        )
    return mode  # type: ignore[return-value]


# --- which path ------------------------------------------------------------------------------


def base_image() -> str:
    """``python:X.Y-slim`` for this interpreter's X.Y: pickles and wheels then match."""
    return f"python:{sys.version_info.major}.{sys.version_info.minor}-slim"


def choose_mode(client: docker.DockerClient, mode: ImageMode) -> Literal["online", "offline"]:
    """Resolve ``auto``: online if the kit's image or its base is here or can be pulled."""
    if mode != "auto":
        return mode
    if not sys.platform.startswith("linux"):
        return "online"  # the engine runs in a VM: this machine's files mean nothing there
    if _exists(client, worker_image_tag()) or _exists(client, base_image()):
        return "online"
    return "online" if _registry_answers(client, base_image()) else "offline"


def _exists(client: docker.DockerClient, reference: str) -> bool:
    import docker

    try:
        client.images.get(reference)
    except docker.errors.ImageNotFound:
        return False
    return True


def _registry_answers(client: docker.DockerClient, reference: str) -> bool:
    """Whether the engine can reach the registry of ``reference`` within a few seconds."""
    answer: list[bool] = []

    def probe() -> None:
        try:
            client.api.inspect_distribution(reference)
            answer.append(True)
        except Exception:  # noqa: BLE001 - any failure means "not quickly"
            answer.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(_PROBE_SECONDS)
    return bool(answer and answer[0])


def prepare_image(
    client: docker.DockerClient,
    mode: ImageMode,
    *,
    image: str | None,
    run_tag: str,
    labels: dict[str, str],
) -> ImagePlan:
    """The image for one run: the one given, the kit's (built if needed), or an empty one."""
    if image is not None:
        return ImagePlan("given", validate_image_reference(image), "python")
    if choose_mode(client, mode) == "online":
        return ImagePlan("online", build_worker_image(client), "python")
    reference = f"chimera-nb-base:{run_tag}"
    empty = io.BytesIO()
    tarfile.open(fileobj=empty, mode="w").close()
    changes = [f"LABEL {key}={value}" for key, value in labels.items()]
    repository, _, tag = reference.partition(":")
    client.api.import_image_from_data(
        empty.getvalue(), repository=repository, tag=tag, changes=changes
    )
    return ImagePlan(
        "offline",
        reference,
        sys.executable,
        mounts=offline_mounts(),
        pythonpath=[KIT_IN_CONTAINER],
        made_for_run=True,
    )


def release_image(client: docker.DockerClient, plan: ImagePlan | None) -> None:
    """Remove the image if this run made it (a built kit image stays, as a cache)."""
    import docker

    if plan is None or not plan.made_for_run:
        return
    try:
        client.images.remove(plan.reference, force=True)
    except docker.errors.NotFound:
        pass


# --- offline: this machine's files ------------------------------------------------------------


def offline_mounts() -> list[str]:
    """Host paths an offline container mounts read-only at the same place: system folders,
    this Python's prefixes and site-packages (fewest folders that cover them all)."""
    candidates = [*_SYSTEM_FOLDERS, *_SYSTEM_FILES]
    candidates += [sys.base_prefix, sys.base_exec_prefix, sys.prefix, sys.exec_prefix]
    candidates += site.getsitepackages() if hasattr(site, "getsitepackages") else []
    user_site = site.getusersitepackages() if hasattr(site, "getusersitepackages") else None
    if user_site and user_site in sys.path:
        candidates.append(user_site)
    candidates.append(str(Path(sys.executable).resolve().parent.parent))
    # A path and, if it goes through a link, the place it leads to: /bin -> /usr/bin, a
    # venv's python -> the base interpreter. Docker mounts a link's target at the link's
    # path, so /bin/sh and /lib64/ld-linux... are found where programs look for them.
    paths = {os.path.abspath(path) for path in candidates if os.path.exists(path)}
    paths |= {os.path.realpath(path) for path in paths}
    folders: list[str] = []
    for path in sorted(paths):  # a parent sorts before its children
        if not any(path.startswith(kept.rstrip("/") + "/") for kept in folders):
            folders.append(path)
    return folders


def kit_source() -> Path:
    """The folder of the ``chimera_nb`` package this process runs."""
    return _KIT


# --- online: a real image ---------------------------------------------------------------------


def worker_requirements() -> list[str]:
    """The kit's runtime requirements, pinned to the versions installed here.

    Read from ``pyproject.toml`` in a source checkout, else from the installed kit's
    metadata. Pinning makes a container compute what a local process computes: the same
    numpy and scikit-learn give the same numbers, bit for bit.
    """
    pyproject = _KIT.parent / "pyproject.toml"
    listed: list[str] = []
    if pyproject.is_file():
        import tomllib

        listed = list(tomllib.loads(pyproject.read_text())["project"]["dependencies"])
    else:
        try:
            listed = [item for item in requires("chimera-nb") or [] if "extra ==" not in item]
        except PackageNotFoundError:
            pass
    return [_pinned(item) for item in listed or _FALLBACK_REQUIREMENTS]


def _pinned(requirement: str) -> str:
    """``"numpy>=1.24"`` -> ``"numpy==<the version installed here>"`` (as given if absent)."""
    match = re.match(r"\s*([A-Za-z0-9_.-]+)(\[[^\]]*\])?", requirement)
    if match is None:
        return requirement
    try:
        return f"{match.group(1)}{match.group(2) or ''}=={version(match.group(1))}"
    except PackageNotFoundError:
        return requirement


def dockerfile(base: str, requirements: list[str]) -> str:
    """The Dockerfile of the kit's worker image (the build context holds ``chimera_nb/``)."""
    quoted = " ".join(f'"{requirement}"' for requirement in requirements)
    return f"""\
# chimera-nb worker image, generated by chimera_nb.cluster._images.dockerfile
FROM {base}
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \\
    PIP_DISABLE_PIP_VERSION_CHECK=1 OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
RUN python -m pip install {quoted}
COPY chimera_nb /opt/chimera-nb/chimera_nb
# A .pth file rather than PYTHONPATH, which each container sets for the user's own code.
RUN python -c "import site, pathlib; pathlib.Path(site.getsitepackages()[0], 'chimera-nb.pth').write_text('/opt/chimera-nb\\n')" \\
    && python -c "import chimera_nb.workers, chimera_nb.cluster._container_entry"
WORKDIR /chimera
"""


def worker_image_tag(base: str | None = None, requirements: list[str] | None = None) -> str:
    """``chimera-nb-worker:<version>-py<X.Y>-<hash>``: the hash covers the kit's source, its
    requirements and the base, so an edited kit gets a new image."""
    from .._version import __version__

    base = base or base_image()
    digest = hashlib.sha256(dockerfile(base, requirements or worker_requirements()).encode())
    for path in sorted(_KIT.rglob("*.py")):
        digest.update(str(path.relative_to(_KIT)).encode())
        digest.update(path.read_bytes())
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    return f"chimera-nb-worker:{__version__}-py{python}-{digest.hexdigest()[:12]}"


def build_worker_image(
    client: docker.DockerClient | None = None,
    *,
    tag: str | None = None,
    base: str | None = None,
    requirements: list[str] | None = None,
) -> str:
    """Build the kit's worker image (online path) unless it exists; return its tag.

    Parameters
    ----------
    client : docker.DockerClient, optional
        Default: the engine of ``DOCKER_HOST`` or the local socket.
    tag : str, optional
        Default :func:`worker_image_tag`. Give ``registry:5000/chimera-worker:1`` to push
        it (``docker push``) for Swarm nodes on other machines.
    base : str, optional
        Default ``python:X.Y-slim`` for this Python's X.Y.
    requirements : list of str, optional
        Default: the kit's own (add e.g. ``"xgboost"`` if your workers need it).
    """
    from ._engine import connect

    client = connect(client)
    base = base or base_image()
    requirements = list(requirements) if requirements is not None else worker_requirements()
    tag = validate_image_reference(tag or worker_image_tag(base, requirements))
    if _exists(client, tag):
        return tag
    import shutil

    print(  # a build takes minutes: say why nothing else happens meanwhile
        f"chimera-nb: building the worker image {tag} from {base} (once; it is kept)",
        file=sys.stderr,
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="chimera-nb-image-") as context:
        Path(context, "Dockerfile").write_text(dockerfile(base, requirements))
        shutil.copytree(_KIT, Path(context, "chimera_nb"), ignore=_not_source)
        log: list[str] = []
        stream = client.api.build(
            path=context,
            tag=tag,
            rm=True,
            forcerm=True,
            decode=True,
            labels={KIT_IMAGE_LABEL: tag},
            timeout=1800,
        )
        for chunk in stream:
            log.extend(str(chunk.get("stream", "")).splitlines())
            if "error" in chunk:
                tail = "\n".join("    " + line for line in log[-15:])
                raise ClusterError(
                    f"Building the worker image {tag} from {base} failed: {chunk['error']}\n"
                    f"{tail}\nWithout a registry or PyPI, use CHIMERA_IMAGE_MODE=offline."
                )
    return tag


def _not_source(folder: str, names: list[str]) -> list[str]:
    return [name for name in names if name == "__pycache__" or name.endswith((".pyc", ".pyo"))]
