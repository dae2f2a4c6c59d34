"""Fixtures shared by the test suite: the shared datasets, real master servers, and a final
check that no process the tests started is left behind."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import psutil
import pytest
import uvicorn

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"


def require_shared(path: Path) -> Path:
    """``path`` under ../shared; missing is a failure in CI and a skip on a laptop."""
    if path.exists():
        return path
    message = f"{path} is missing (the repository's sibling folder shared/)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def wine_quality(tmp_path_factory):
    """The real wine-quality data (red + white), loaded through the kit's own loader from
    the copy in ../shared, as ``(X, y)`` with a float target."""
    from chimera_nb.datasets import load_wine_quality

    folder = require_shared(SHARED / "datasets" / "wine-quality")
    X, y = load_wine_quality(
        base_url=folder.as_uri() + "/",
        data_home=tmp_path_factory.mktemp("data-home"),
        return_X_y=True,
    )
    return X, y.astype(float)


class MasterServer:
    """A master served by a real uvicorn server on a free 127.0.0.1 port, in a thread."""

    def __init__(self, master, workers) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(master.build_app(workers), log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> MasterServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        assert self.server.started, "the master server did not start"
        return self

    def __exit__(self, *exc_info) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


@pytest.fixture
def serve_master():
    """``with serve_master(master, cluster) as server: httpx.post(server.url + path)``."""
    return MasterServer


@pytest.fixture(scope="session", autouse=True)
def no_process_left_behind():
    """After the whole suite, every process the tests started must be gone."""
    yield
    from chimera_nb.cluster import shutdown_launcher

    shutdown_launcher()
    deadline = time.monotonic() + 10
    children = psutil.Process().children(recursive=True)
    while children and time.monotonic() < deadline:
        time.sleep(0.1)
        children = [
            child
            for child in children
            if child.is_running() and child.status() != psutil.STATUS_ZOMBIE
        ]
    assert not children, f"processes left behind: {[(c.pid, c.cmdline()) for c in children]}"
