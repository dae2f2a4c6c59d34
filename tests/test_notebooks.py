"""Every notebook in ``notebooks/`` runs top to bottom in a fresh kernel, as a student runs
it, prints what it teaches, and leaves no process behind.

The kernel imports the kit from this repository (``PYTHONPATH``) and has no network (every
proxy variable points at a closed port) and an empty download cache: the notebooks must read
wine quality from the repository's ``data/`` folder, as a student's offline checkout does.
"""

from __future__ import annotations

import time
from pathlib import Path

import nbformat
import psutil
import pytest
from nbclient import NotebookClient

from tests.conftest import REPO_ROOT

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))
CELL_TIMEOUT = 120  # seconds per cell
NOTEBOOK_TIMEOUT = 240  # seconds per notebook, kernel start and shutdown included

#: Text each notebook must print (stdout, or the text form of a displayed value).
EXPECTED_OUTPUT = {
    "01_quickstart": [
        "rounds: 401,",  # the text says 401 rounds: 400 updates and a last evaluation
        "R² distributed (4 workers):",
        "R² scikit-learn, one machine:",
    ],
    "02_data_parallelism_parameter_server": [
        "weighted mean   vs full gradient",
        "max relative difference of the coefficients",
        "(below 1e-8: True)",  # the one tolerance the texts state
        "unweighted mean: max relative difference",
        "ms per round",
    ],
    "03_model_and_hybrid_parallelism_bagging": [
        "distinct seeds: 4 of 4",
        "same as the master's predict_proba: True",
        "the two votes differ on",  # a real wine on which soft and hard votes disagree
        "hard vote: members say",
        "BaggingClassifier",
    ],
    "04_latency_logs_and_failures": [
        "worker=worker1 endpoint=/v1/chimera/sgd/",
        "sent_after_ms",  # the master sends a round's calls one after the other
        "worker3: connection",
        "QuorumError: ",
        "quorum='all': 101 rounds",
    ],
    "05_seed_style_project": [
        "ParameterServerMaster on http://127.0.0.1:",
        '  fit: "ok"',
        "  y_pred_rows: [",
        "  weights_gradients: [",
        "master port closed: True",
        "worker ports closed: [True, True, True]",
    ],
    "06_consistency_and_faults": [
        "SSP(0) == BSP, bit for bit: True",
        "largest staleness under SSP(0): 0",
        # the persistent straggler paces SSP's clocks: the honest point of the lesson
        "SSP(3): no worker sent more than 3 gradients more than worker2: True",
        "with a persistent straggler, ASP is faster than BSP: True",
        "with a transient straggler, SSP(3) is faster than BSP: True",
        "with a transient straggler, ASP is faster than BSP: True",
        "backup_workers=1: 51 rounds in",
        "cancelled calls per worker: {'worker2': ",
        "master process killed with SIGKILL; its last checkpoint holds round 2",
        "rounds in the resumed fit's history: 51 (uninterrupted: 51)",
        "largest difference from the uninterrupted fit's weights: 0.0e+00",
        "resumed from checkpoint",
        "worker4 added after round",
        "answered within two rounds of joining: True",
        "workers per round: 3 at first, 4 at most, 3 at the end",
    ],
    "07_topologies_and_communication": [
        "ring's weights equal the star's to 1e-10: True",
        "sharded's weights equal the star's to 1e-10: True",
        "12 per round (N = 3 workers x 2 (N - 1) = 4 steps)",  # chunk calls from the spans
        "star's server: measured = N d 8 exactly: True",
        "(within 0.1% of 2 (N - 1) / N d 8: True)",  # a ring worker's bytes, N = 2, 3, 4
        # the emulated link delays every call by its bytes: a lower bound, whatever the load
        "every emulated round took at least the network's share the model predicts: True",
        "all to shard5: True",
        "hash ring: moved share between 10% and 30%: True",
        "of the blocks moved (more than 70%: True)",  # hash % S
        "the ones the ring predicted: True",
        "across the join, the weights equal the star's to 1e-10: True",
        "top-k 1% (k = 1 of d = 13): 12 bytes per worker and round, where dense sends 104",
        "from the dense final loss (within 2%: True)",  # top-k 1% with error feedback
        "(clearly worse, more than 2% above: True)",  # top-k 1% without it
    ],
    "08_federated_learning": [
        "from the parameter server's weights",  # one local full-batch step: FedAvg is GD
        "; equal to 1e-10: True",
        "LinearRegression on one machine",
        "; within 0.01: True",  # 5 local epochs on wine quality reach its R²
        "Dirichlet(0.1): rows per client [",  # and the digits each client holds
        "the clients trained on the shards drawn in section 2: True",
        "FedAvg reached the parameter server's final loss",
        # FedProx vs FedAvg either way, with numbers: the text says what the run printed
        "On Dirichlet(0.1) digits, FedProx (mu=0.1) vs FedAvg: test accuracy",
        "FedProx ahead of FedAvg on test accuracy: ",
        "So on this run FedProx is ",
        "FedAvg's training loss is lower on IID shards than on Dirichlet(0.1) shards: True",
        "only the sampled clients were asked, every round: True",
        "a replay with the same random_state samples the same clients: True",
        "the mean collapses (below 0.5): True",
        "the coordinate median stays within 0.03 of the clean run: True",
        "Krum stays within 0.03 of the clean run: True",
        "clip_norm=0.3 alone (no noise) costs less than 0.01 of the accuracy: True",
        "noise_multiplier=1 costs more than 0.2 of the accuracy, at both clip norms: True",
    ],
    "09_model_and_pipeline_parallelism": [
        "feature split vs the central twin, equal to 1e-10: True",
        "data split vs the central twin, equal to 1e-10: True",
        # wine is tall (n = 6497 rows, d = 13): per-row vectors cost more than per-parameter
        "the feature split moves more bytes per worker and round than the data split: True",
        # wide data (n = 300, d = 3001): the other way round
        "the feature split moves fewer bytes per worker and round than the data split: True",
        "wide data: the two splits' weights equal to 1e-10: True",
        "hybrid vs the central twin, equal to 1e-10: True",
        "gpipe: the step's gradients equal the one-process MLP's to 1e-10: True",
        "1f1b: the step's gradients equal the one-process MLP's to 1e-10: True",
        "test accuracy at least 0.9: True",
        "the pipeline's layers equal the one-process twin's to 1e-10: True",
        "a forward or backward took",  # why the op time is emulated: real ops take microseconds
        "GPipe holds all m = 4 micro-batches on every stage: True",
        "1F1B holds at most p - s on stage s = 0, 1, 2: True",
        "1F1B holds fewer activations at once than GPipe: True",
        # a timing: printed, not asserted (on our runs 0.03-0.06 from the theory)
        "every measured bubble within 0.1 of (p-1)/(m+p-1): ",
    ],
}


#: What every notebook prints when it reads wine quality from data/ (offline, no cache).
DATA_FROM_THE_REPOSITORY = "Data: UCI wine quality, 6497 rows x 12 features"

#: The first cell of every notebook: installs the kit and enables widgets on Colab only.
COLAB_SETUP_CELL = """\
import sys

if "google.colab" in sys.modules:  # Colab only: install the kit and turn on widgets
    %pip install -q "chimera-nb @ git+https://github.com/chimera-nb/chimera-nb"
    from google.colab import output
    output.enable_custom_widget_manager()"""


def test_every_notebook_has_expectations():
    assert [path.stem for path in NOTEBOOKS] == sorted(EXPECTED_OUTPUT)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_every_notebook_ends_with_one_cell_of_exercises(path):
    # Execute
    cells = nbformat.read(path, as_version=4).cells
    exercises = [c for c in cells if c.cell_type == "markdown" and "## Your turn" in c.source]

    # Assert: one cell, a few numbered questions, before the clean-up
    assert len(exercises) == 1
    assert exercises[0].source.count("\n1. ") + exercises[0].source.count("\n2. ") == 2
    assert cells.index(exercises[0]) > len(cells) - 4


@pytest.fixture
def kernel_env(monkeypatch, tmp_path):
    """What the kernel inherits: this repository's kit, no network, an empty cache."""
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT), prepend=":")
    monkeypatch.delenv("CHIMERA_WINE_QUALITY_URL", raising=False)
    for variable in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(variable, "http://127.0.0.1:9")  # a closed port: no download
    for variable in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(variable, "127.0.0.1,localhost")  # the kit's own servers
    monkeypatch.setenv("CHIMERA_DATA_HOME", str(tmp_path / "data-home"))
    monkeypatch.delenv("CHIMERA_LAUNCHER", raising=False)
    return tmp_path


def notebook_client(path: Path, workdir: Path) -> NotebookClient:
    return NotebookClient(
        nbformat.read(path, as_version=4),
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(workdir)}},  # the kernel's working directory
    )


def run_cells(client: NotebookClient, cells) -> None:
    for cell in cells:
        client.execute_cell(cell, client.nb.cells.index(cell))


def outputs_of(cells, stream: str | None = None) -> str:
    """The text of the cells' outputs: streams and ``text/plain`` results."""
    texts = []
    for cell in cells:
        for output in cell.get("outputs", []):
            if output.output_type == "stream" and stream in (None, output.name):
                texts.append(output.text)
            elif stream is None and "text/plain" in output.get("data", {}):
                texts.append(output.data["text/plain"])
    return "\n".join(texts)


def kernel_pid(client: NotebookClient) -> int:
    return client.km.provisioner.process.pid


def wait_until_gone(processes: list[psutil.Process], timeout: float = 10.0) -> list:
    """The processes still running (zombies count as gone) after up to ``timeout`` s."""
    deadline = time.monotonic() + timeout
    alive = processes
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    return [(p.pid, p.cmdline()) for p in alive if p.is_running()]


@pytest.mark.timeout(NOTEBOOK_TIMEOUT)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_notebook_runs_top_to_bottom_and_leaves_no_process(path, kernel_env, record_property):
    # Prepare
    client = notebook_client(path, kernel_env)
    nb = client.nb
    assert nb.cells[0].source == COLAB_SETUP_CELL, "the first cell must be the Colab setup cell"
    assert all(not cell.get("outputs") for cell in nb.cells if cell.cell_type == "code")
    # Execute
    started = time.monotonic()
    with client.setup_kernel():
        run_cells(client, nb.cells)  # raises CellExecutionError, with the traceback, on error
        left_running = psutil.Process(kernel_pid(client)).children(recursive=True)
    elapsed = time.monotonic() - started
    record_property("seconds", round(elapsed, 1))
    print(f"{path.name}: {elapsed:.1f} s")
    # Assert
    text = outputs_of(nb.cells)
    for expected in [DATA_FROM_THE_REPOSITORY, *EXPECTED_OUTPUT[path.stem]]:
        assert expected in text, f"{path.name} did not print {expected!r}; it printed:\n{text}"
    errors = outputs_of(nb.cells, stream="stderr")
    assert "Traceback" not in errors, errors
    assert not wait_until_gone(left_running), "processes outlived the kernel"
