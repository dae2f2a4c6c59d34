"""A page of another origin, open in a real Chromium, tries to start a fit on a master served
on 127.0.0.1, the two ways a page can without the master's consent: ``fetch`` with
``mode: "no-cors"`` (the browser sends it and hides the answer) and a form posting
``text/plain``. The guard (chimera_nb.wire.guard) refuses both with 403; the same page,
once its origin is allowed, does start the fit, so the requests did reach the master.
"""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from fastapi.responses import HTMLResponse

from chimera_nb import LocalCluster, ParameterServerMaster, SGDWorker
from chimera_nb.wire import paths
from chimera_nb.wire.server import finish_app, new_app
from tests.conftest import MasterServer
from tests.wire.serving import ServedApp

PAGE = """<!doctype html>
<iframe name="sink"></iframe>
<form id="form" method="post" action="{fit}" enctype="text/plain" target="sink">
  <input name="x" value="1">
</form>
<script>
  window.done = (async () => {{
    await fetch("{fit}", {{method: "POST", mode: "no-cors"}});
    const sent = new Promise((resolve) => (document.querySelector("iframe").onload = resolve));
    document.getElementById("form").submit();
    await sent;
    return true;
  }})();
</script>
"""


@pytest.fixture(scope="module")
def workers():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    with LocalCluster([SGDWorker().with_data(X, X @ [1.0, 2.0, 3.0])], name="browser") as cluster:
        yield cluster


def page_of_another_origin(target: dict[str, str]) -> ServedApp:
    """The page, served from another port of 127.0.0.1 (another origin); it posts to
    ``target["fit"]``, set once the master is up."""
    app = new_app("another site")

    @app.get("/")
    async def page() -> HTMLResponse:
        return HTMLResponse(PAGE.format(fit=target["fit"]))

    return ServedApp(finish_app(app))


def fit_refusals(url: str) -> int:
    """How many fit requests the master at ``url`` refused with 403 (from its metrics)."""
    sample = (
        f'chimera_http_requests_total{{endpoint="{paths.PARAMETER_SERVER_FIT}",method="POST",'
        'status="403"}'
    )
    lines = httpx.get(url + paths.METRICS).text.splitlines()
    return sum(int(float(line.split()[-1])) for line in lines if line.startswith(sample))


@pytest.mark.parametrize("allowed", [False, True], ids=["refused", "allowed"])
def test_a_page_of_another_origin_cannot_start_a_fit_unless_allowed(
    chromium, workers, monkeypatch, allowed
):
    # Prepare
    master = ParameterServerMaster("regressor", max_iter=5)
    target: dict[str, str] = {}
    context = chromium.new_context()
    try:
        with page_of_another_origin(target) as page:
            if allowed:
                monkeypatch.setenv("CHIMERA_ALLOWED_ORIGINS", page.url)
            with MasterServer(master, workers) as server:
                target["fit"] = server.url + paths.PARAMETER_SERVER_FIT

                # Execute
                tab = context.new_page()
                tab.goto(page.url + "/")
                tab.evaluate("window.done")
                refused = fit_refusals(server.url)
    finally:
        context.close()

    # Assert
    if allowed:
        assert hasattr(master, "history_") and refused == 0
    else:
        assert not hasattr(master, "history_")
        assert refused == 2  # both reached the master, which refused them
