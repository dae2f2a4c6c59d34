"""Fixtures for the real-browser tests: requirements, a throwaway JupyterLab, Chromium.

On a laptop without Chromium, Playwright or JupyterLab these tests are skipped with a message
saying what to install; in CI (env ``CI`` set) a missing piece is a failure, since
``.ci/install-browser`` should have installed it.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import pytest

from ._lab import CHROMIUM_ARGS, JupyterLabServer


def _chromium() -> str | None:
    for candidate in (os.environ.get("CHIMERA_CHROMIUM"), "/usr/bin/chromium"):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("chromium")


def _missing() -> list[str]:
    missing = []
    if _chromium() is None:
        missing.append("chromium (Debian: apt-get install chromium; or set CHIMERA_CHROMIUM)")
    for module, package in [
        ("playwright", "playwright"),
        ("jupyterlab", "jupyterlab"),
        ("jupyterlab_widgets", "ipywidgets"),
        ("ipykernel", "ipykernel"),
    ]:
        if importlib.util.find_spec(module) is None:
            missing.append(f"{package} (pip install {package})")
    return missing


@pytest.fixture(scope="session")
def chromium_path() -> str:
    missing = _missing()
    if missing:
        message = (
            "real-browser test needs " + ", ".join(missing) + "; run .ci/install-browser "
            "(never `playwright install`: the tests use the system's chromium)"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return _chromium()


@pytest.fixture
def jupyter_lab(tmp_path, chromium_path):
    """``start(root_dir)`` -> a running JupyterLab serving root_dir; stopped (with its
    kernels, checked with psutil) when the test ends, also on failure."""
    servers: list[JupyterLabServer] = []

    def start(root_dir: Path) -> JupyterLabServer:
        server = JupyterLabServer(root_dir, tmp_path / f"lab{len(servers)}")
        server.work_dir.mkdir(parents=True, exist_ok=True)
        servers.append(server)
        return server.start()

    yield start
    errors = []
    for server in servers:
        try:
            server.stop()
        except AssertionError as error:
            errors.append(str(error))
    assert not errors, "\n".join(errors)


@pytest.fixture(scope="module")
def chromium(chromium_path):
    """Headless Debian Chromium, shared by a module's tests (Playwright never downloads a
    browser here: ``executable_path`` points at the system's)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def browser_page(chromium):
    """A fresh page (own context: no cookies or storage from another test). Console messages
    and page errors are kept in ``page.console_messages_seen`` for failure reports."""
    context = chromium.new_context(viewport={"width": 1600, "height": 1100})
    try:
        page = context.new_page()
        page.console_messages_seen = []
        page.on("console", lambda m: page.console_messages_seen.append(f"{m.type}: {m.text}"[:300]))
        page.on("pageerror", lambda e: page.console_messages_seen.append(f"pageerror: {e}"))
        yield page
    finally:
        context.close()
