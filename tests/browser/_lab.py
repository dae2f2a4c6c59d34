"""A throwaway JupyterLab server (which also serves Notebook 7's pages) for one test.

Nothing of the user's Jupyter setup is used: config, data, runtime, settings and workspace
folders all live under the test's tmp_path. The server is shut down through its REST API
(which also shuts down its kernels), then killed if it lingers, and every process that was
ever its descendant must be gone afterwards.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED = REPO_ROOT.parent / "shared"

# Flags measured to work with Debian's chromium on this kind of machine (see DESIGN.md):
# without the background-networking ones, Chromium keeps dialing Google on a closed network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

# JupyterLab user settings for a quiet, deterministic page: no news or update checks (no
# network, no toast over the notebook), no autosave (the page never writes the notebook), and
# every cell rendered in the DOM (windowing would drop off-screen cells and widgets).
LAB_USER_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


class JupyterLabServer:
    """``jupyter lab`` on 127.0.0.1 with a token, serving ``root_dir``.

    The kit is importable in its kernels through PYTHONPATH (the repository root), and the
    wine-quality loader reads the local copy in ../shared instead of the internet.
    """

    def __init__(self, root_dir: Path, work_dir: Path) -> None:
        self.root_dir = Path(root_dir)
        self.work_dir = Path(work_dir)
        self.token = secrets.token_hex(16)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.work_dir / "jupyterlab.log"
        self.proc: subprocess.Popen | None = None
        self._seen: dict[int, psutil.Process] = {}  # every descendant ever seen, by pid
        self._stopped = False

    # -- start -------------------------------------------------------------------------------
    def environment(self) -> dict[str, str]:
        jupyter = self.work_dir / "jupyter"
        dirs = {
            "JUPYTER_CONFIG_DIR": jupyter / "config",
            "JUPYTER_DATA_DIR": jupyter / "data",
            "JUPYTER_RUNTIME_DIR": jupyter / "runtime",
            "IPYTHONDIR": jupyter / "ipython",
            "CHIMERA_DATA_HOME": self.work_dir / "chimera-data",
            "TMPDIR": self.work_dir / "tmp",
        }
        for path in dirs.values():
            path.mkdir(parents=True, exist_ok=True)
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("JUPYTER_", "JPY_")) and k not in {"IPYTHONDIR", "MPLBACKEND"}
        }
        env.update({k: str(v) for k, v in dirs.items()})
        env["PYTHONPATH"] = os.pathsep.join(
            [str(REPO_ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
        )
        env["CHIMERA_WINE_QUALITY_URL"] = (SHARED / "datasets" / "wine-quality").as_uri() + "/"
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _write_server_config(self) -> None:
        """Leave out what a test page does not use and what costs seconds at every start:
        the language-server scan (jupyter_lsp) and the page's build check."""
        config = self.work_dir / "jupyter" / "config"
        (config / "labconfig").mkdir(parents=True, exist_ok=True)
        (config / "jupyter_server_config.json").write_text(
            json.dumps({"ServerApp": {"jpserver_extensions": {"jupyter_lsp": False}}})
        )
        (config / "labconfig" / "page_config.json").write_text(
            json.dumps({"buildCheck": False, "buildAvailable": False})
        )

    def _write_lab_settings(self) -> Path:
        settings = self.work_dir / "jupyter" / "lab-user-settings"
        for name, values in LAB_USER_SETTINGS.items():
            path = settings / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        return settings

    def command(self) -> list[str]:
        self._write_server_config()
        return [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--allow-root",
            "--ip=127.0.0.1",
            f"--port={self.port}",
            "--ServerApp.port_retries=0",
            f"--ServerApp.token={self.token}",
            f"--ServerApp.root_dir={self.root_dir}",
            "--ServerApp.terminals_enabled=False",
            f"--LabApp.user_settings_dir={self._write_lab_settings()}",
            f"--LabApp.workspaces_dir={self.work_dir / 'jupyter' / 'lab-workspaces'}",
        ]

    def start(self, timeout: float = 60.0) -> JupyterLabServer:
        log = open(self.log_path, "wb")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            self.command(),
            env=self.environment(),
            cwd=self.root_dir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: killable as a whole
        )
        log.close()
        started = time.monotonic()
        deadline = started + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"jupyter lab exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            try:
                response = httpx.get(f"{self.url}/api/status", headers=self.headers, timeout=2)
                if response.status_code == 200:
                    print(f"\njupyter lab up in {time.monotonic() - started:.1f} s at {self.url}")
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"jupyter lab did not answer within {timeout} s:\n{self.log_tail()}")

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    def notebook_url(self, relative_path: str, workspace: str | None = None) -> str:
        """A fresh workspace, so that no saved layout from another run is restored."""
        workspace = workspace or f"test-{secrets.token_hex(4)}"
        return (
            f"{self.url}/lab/workspaces/{workspace}/tree/{relative_path}?reset&token={self.token}"
        )

    def notebook7_url(self, relative_path: str) -> str:
        """The same notebook in Notebook 7's page (served by the same server)."""
        return f"{self.url}/notebooks/{relative_path}?token={self.token}"

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    # -- processes ---------------------------------------------------------------------------
    def remember_descendants(self) -> list[psutil.Process]:
        """Record the server's current descendants (kernels, the kit's workers...)."""
        if self.proc is None:
            return []
        try:
            children = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        for child in children:
            self._seen.setdefault(child.pid, child)
        return children

    def kernels(self) -> list[dict]:
        """The server's kernels; [] while it cannot say (it answers 500 for a kernel that is
        still starting)."""
        try:
            response = httpx.get(f"{self.url}/api/kernels", headers=self.headers, timeout=5)
        except httpx.HTTPError:
            return []
        kernels = response.json() if response.status_code == 200 else []
        return [k for k in kernels if isinstance(k, dict)] if isinstance(kernels, list) else []

    def kernel_ready(self) -> bool:
        """A kernel exists, a page is connected to it, and it is idle."""
        return any(
            k.get("connections", 0) > 0 and k.get("execution_state") == "idle"
            for k in self.kernels()
        )

    # -- stop --------------------------------------------------------------------------------
    def stop(self, timeout: float = 20.0) -> None:
        """Shut down the server with its kernels; raise if any descendant survives."""
        if self._stopped or self.proc is None:
            return
        self._stopped = True
        began = time.monotonic()
        self.remember_descendants()
        try:
            httpx.post(f"{self.url}/api/shutdown", headers=self.headers, timeout=10)
        except httpx.HTTPError:
            pass
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.proc.wait(5)
            raise AssertionError(
                f"jupyter lab did not exit within {timeout} s of /api/shutdown:\n{self.log_tail()}"
            ) from None
        deadline = time.monotonic() + 10
        left = [p for p in self._seen.values() if _alive(p)]
        while left and time.monotonic() < deadline:
            time.sleep(0.1)
            left = [p for p in left if _alive(p)]
        if left:
            described = []
            for p in left:
                try:
                    described.append((p.pid, " ".join(p.cmdline())[:200]))
                    p.kill()
                except psutil.NoSuchProcess:
                    pass
            raise AssertionError(f"processes of the jupyter server left behind: {described}")
        print(
            f"jupyter lab and its {len(self._seen)} descendant processes gone in "
            f"{time.monotonic() - began:.1f} s"
        )

    def _signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass
