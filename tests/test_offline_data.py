"""The top-level ``data/`` folder: true copies of the shared wine-quality files with a README
that tells the truth about them, and the demo using them with the network closed."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

from chimera_nb import datasets, demo
from tests.conftest import REPO_ROOT, SHARED, require_shared
from tests.test_datasets import offline_environment

DATA = REPO_ROOT / "data" / "wine-quality"
FILES = ["winequality-red.csv", "winequality-white.csv", "winequality.names"]


@pytest.mark.parametrize("name", FILES)
def test_data_folder_holds_a_byte_identical_copy_of_the_shared_file(name: str) -> None:
    # Prepare
    shared = require_shared(SHARED / "datasets" / "wine-quality" / name)

    # Execute
    actual = (DATA / name).read_bytes()

    # Assert
    assert actual == shared.read_bytes()


def test_data_readme_gives_the_true_sha256_of_every_file() -> None:
    # Prepare
    readme = (REPO_ROOT / "data" / "README.md").read_text()

    # Execute: the table row of each file, and the 64-hex-digit sum in it.
    stated = {
        name: re.search(rf"`{re.escape(name)}`.*`([0-9a-f]{{64}})`", readme).group(1)
        for name in FILES
    }

    # Assert
    for name in FILES:
        assert stated[name] == hashlib.sha256((DATA / name).read_bytes()).hexdigest(), name


def test_data_readme_gives_source_licence_and_citation() -> None:
    # Execute
    readme = (REPO_ROOT / "data" / "README.md").read_text()

    # Assert
    for needed in (
        "https://archive.ics.uci.edu/dataset/186/wine+quality",
        datasets._WINE_URL,  # where the loader downloads from
        "CC BY 4.0",
        "https://creativecommons.org/licenses/by/4.0/",
        "P. Cortez, A. Cerdeira, F. Almeida, T. Matos and J. Reis",
        "Decision Support Systems",
        "MIT",
    ):
        assert needed in readme, needed


def test_offline_demo_trains_on_wine_quality_from_the_data_folder(tmp_path: Path) -> None:
    # Prepare: the network closed for real, an empty cache, no explicit source.
    cache = tmp_path / "cache"
    cache.mkdir()
    environment = {**offline_environment(cache), "PYTHONPATH": str(REPO_ROOT)}

    # Execute
    finished = subprocess.run(
        [sys.executable, "-m", "chimera_nb", "demo", "--offline", "--max-iter", "20"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=180,
    )

    # Assert
    output = finished.stdout + finished.stderr
    assert finished.returncode == 0, output
    assert "Dataset: UCI wine quality (red + white), 6497 rows, 12 features" in output
    assert "soft vote over 7 classes" in output  # quality grades 3 to 9, not 3 cultivars
    assert "bundled" not in output
    assert list(cache.iterdir()) == []  # read in place: nothing downloaded or cached
    assert (tmp_path / "demo-output" / "loss.png").is_file()


def test_offline_demo_without_data_folder_or_cache_falls_back_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Prepare: an installed wheel: no data/ beside the package, and an empty cache.
    monkeypatch.setattr(datasets, "_SHIPPED_WINE_DIR", tmp_path / "no-data" / "wine-quality")
    monkeypatch.setenv("CHIMERA_DATA_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("CHIMERA_WINE_QUALITY_URL", raising=False)

    # Execute
    name, (X, y), (Xc, yc) = demo._datasets(offline=True)

    # Assert
    assert name == "scikit-learn's bundled diabetes and wine data (offline)"
    assert (X.shape, Xc.shape) == ((442, 10), (178, 13))
    printed = capsys.readouterr().out
    assert "--offline" in printed and "run the demo once without --offline" in printed
