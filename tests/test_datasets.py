"""Tests of chimera_nb.datasets against the real wine-quality files: the repository's copy in
``data/``, read with the network closed, and the download path, served on 127.0.0.1."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from chimera_nb import datasets
from chimera_nb._exceptions import DatasetError
from chimera_nb.datasets import (
    load_sklearn_dataset,
    load_wine_quality,
    wine_quality_available_offline,
    wine_quality_is_cached,
)
from tests.conftest import REPO_ROOT, SHARED, require_shared

SHARED_WINE_QUALITY = SHARED / "datasets" / "wine-quality"
UCI_URL = "https://archive.ics.uci.edu/ml/machine-learning-databases/wine-quality/"

FEATURES = [
    "fixed_acidity", "volatile_acidity", "citric_acid", "residual_sugar", "chlorides",
    "free_sulfur_dioxide", "total_sulfur_dioxide", "density", "pH", "sulphates", "alcohol",
]  # fmt: skip
UCI_HEADER = (
    '"fixed acidity";"volatile acidity";"citric acid";"residual sugar";"chlorides";'
    '"free sulfur dioxide";"total sulfur dioxide";"density";"pH";"sulphates";"alcohol";"quality"'
)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


class _TruncatingHandler(_QuietHandler):
    """Promises a long body, sends ten bytes and hangs up: a download cut off midway."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "100000")
        self.end_headers()
        self.wfile.write(b"7.4,0.7,0,")
        self.close_connection = True


class LocalServer:
    """A real HTTP server on 127.0.0.1 in a thread; ``stop()`` may be called more than once."""

    def __init__(self, handler: type[http.server.BaseHTTPRequestHandler], folder: Path) -> None:
        factory = functools.partial(handler, directory=str(folder))
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), factory)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/"

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
            self._server.server_close()


@pytest.fixture
def shared_folder() -> Path:
    """The repository's sibling ``shared/datasets/wine-quality``: required on CI, else optional."""
    return require_shared(SHARED_WINE_QUALITY)


@pytest.fixture
def wine_server(shared_folder: Path) -> Iterator[LocalServer]:
    server = LocalServer(_QuietHandler, shared_folder)
    yield server
    server.stop()


def offline_environment(data_home: Path) -> dict[str, str]:
    """A child process's environment with no way out to the network, an empty cache in
    ``data_home``, and no explicit wine-quality source.

    Every proxy variable points at port 9 of 127.0.0.1 (discard, where nothing listens here),
    and urllib sends every http(s) request there: a real refused connection, not a mock.
    Only loopback bypasses it, so local workers still answer.
    """
    environment = {
        key: value
        for key, value in os.environ.items()
        if key.lower() not in ("no_proxy", "all_proxy", "chimera_wine_quality_url")
    }
    closed = "http://127.0.0.1:9"
    for key in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        environment[key] = closed
    environment["NO_PROXY"] = environment["no_proxy"] = "127.0.0.1,localhost"
    environment["CHIMERA_DATA_HOME"] = str(data_home)
    return environment


def run_python(code: str, *arguments: str, env: dict[str, str], cwd: Path) -> dict:
    """Run ``code`` in a fresh interpreter; it prints one JSON object, which is returned."""
    finished = subprocess.run(
        [sys.executable, "-c", code, *arguments],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode == 0, finished.stderr
    return json.loads(finished.stdout.strip().splitlines()[-1])


def frame_fingerprint(frame: pd.DataFrame) -> str:
    """The SHA-256 of a frame written as CSV: equal fingerprints, equal numbers and names."""
    return hashlib.sha256(frame.to_csv().encode()).hexdigest()


#: Loads wine quality with no argument at all, as the demo and the notebooks do, after
#: checking that the network really is closed.
_LOAD_WITH_NO_SOURCE = """
import hashlib, json, urllib.request
from chimera_nb import datasets

try:
    urllib.request.urlopen(datasets._WINE_URL + "winequality-red.csv", timeout=5).close()
    network = "open"
except OSError as error:
    network = f"closed: {error}"
bunch = datasets.load_wine_quality()
print(json.dumps({
    "network": network,
    "module": datasets.__file__,
    "shape": list(bunch.data.shape),
    "features": bunch.feature_names,
    "red_rows": int(bunch.data["is_red"].sum()),
    "fingerprint": hashlib.sha256(bunch.frame.to_csv().encode()).hexdigest(),
    "available_offline": datasets.wine_quality_available_offline(),
    "cached": datasets.wine_quality_is_cached(),
}))
"""

#: The same, in a package laid out as a wheel installs it (no ``data/`` beside it): offline
#: with an empty cache, then after a first download (from a local copy), then offline again.
_LOAD_AS_AN_INSTALLED_WHEEL = """
import json, sys
from chimera_nb import datasets
from chimera_nb._exceptions import DatasetError

report = {"module": datasets.__file__}
report["available_before"] = datasets.wine_quality_available_offline()
try:
    datasets.load_wine_quality(timeout=5)
    report["error"] = None
except DatasetError as error:
    report["error"] = str(error)
datasets.load_wine_quality(base_url=sys.argv[1])  # the first download fills the cache
report["available_after"] = datasets.wine_quality_available_offline()
report["shape"] = list(datasets.load_wine_quality(timeout=5).data.shape)  # no source given
print(json.dumps(report))
"""


def test_no_source_reads_the_repository_copy_with_the_network_closed_and_no_cache(
    shared_folder: Path, tmp_path: Path
) -> None:
    # Prepare
    home = tmp_path / "empty-cache"
    home.mkdir()
    expected = load_wine_quality(data_home=tmp_path / "download", base_url=shared_folder.as_uri())

    # Execute
    report = run_python(
        _LOAD_WITH_NO_SOURCE,
        env={**offline_environment(home), "PYTHONPATH": str(REPO_ROOT)},
        cwd=tmp_path,
    )

    # Assert
    assert "Connection refused" in report["network"]  # by the proxy, so also on a networked CI
    assert Path(report["module"]).resolve().parents[1] == REPO_ROOT
    assert report["shape"] == [6497, 12]
    assert report["features"] == [*FEATURES, "is_red"]
    assert report["red_rows"] == 1599
    assert report["fingerprint"] == frame_fingerprint(expected.frame)  # same numbers
    assert report["available_offline"] is True
    assert report["cached"] is False
    assert list(home.iterdir()) == []  # nothing was written to the cache


def test_installed_wheel_without_data_folder_downloads_once_then_works_offline(
    shared_folder: Path, tmp_path: Path
) -> None:
    # Prepare: the package alone, as a wheel installs it, with no data/ folder beside it.
    site = tmp_path / "site-packages"
    shutil.copytree(
        REPO_ROOT / "chimera_nb",
        site / "chimera_nb",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    home = tmp_path / "cache"
    home.mkdir()

    # Execute
    report = run_python(
        _LOAD_AS_AN_INSTALLED_WHEEL,
        shared_folder.as_uri(),
        env={**offline_environment(home), "PYTHONPATH": str(site)},
        cwd=tmp_path,
    )

    # Assert
    assert Path(report["module"]).resolve().parent == site / "chimera_nb"
    assert report["available_before"] is False
    assert report["error"] is not None
    assert f"{UCI_URL}winequality-red.csv" in report["error"]
    assert "data/wine-quality" in report["error"]
    assert report["available_after"] is True
    assert report["shape"] == [6497, 12]
    assert sorted(path.name for path in (home / "wine-quality").iterdir()) == [
        "winequality-red.csv",
        "winequality-white.csv",
    ]


def test_explicit_base_url_is_read_instead_of_the_repository_copy(tmp_path: Path) -> None:
    # Prepare: a source holding two red wines only, unlike the 1,599 in data/.
    source = tmp_path / "source"
    source.mkdir()
    (source / "winequality-red.csv").write_text(
        "7.4,0.7,0,1.9,0.076,11,34,0.9978,3.51,0.56,9.4,5\n"
        "7.8,0.88,0,2.6,0.098,25,67,0.9968,3.2,0.68,9.8,6\n"
    )

    # Execute
    X, y = load_wine_quality(
        "red", data_home=tmp_path / "home", base_url=source.as_uri(), return_X_y=True
    )

    # Assert
    assert X.shape == (2, 11)
    assert y.tolist() == [5, 6]
    assert wine_quality_is_cached(tmp_path / "home", color="red")


def test_repository_copy_counts_as_available_offline_but_not_as_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Prepare
    monkeypatch.delenv("CHIMERA_WINE_QUALITY_URL", raising=False)

    # Execute
    available = wine_quality_available_offline(tmp_path)
    cached = wine_quality_is_cached(tmp_path)

    # Assert
    assert available is True
    assert cached is False


def test_explicit_source_variable_leaves_only_the_cache_available_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Prepare: the loader would download from this URL, so data/ does not count.
    monkeypatch.setenv("CHIMERA_WINE_QUALITY_URL", _closed_port_url())

    # Execute
    available = wine_quality_available_offline(tmp_path)

    # Assert
    assert available is False


def test_damaged_repository_copy_raises_dataset_error_saying_how_to_restore_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Prepare: a data/ folder whose red file lost most of its columns.
    shipped = tmp_path / "data" / "wine-quality"
    shipped.mkdir(parents=True)
    (shipped / "winequality-red.csv").write_text("7.4,0.7,0,1.9\n")
    monkeypatch.setattr(datasets, "_SHIPPED_WINE_DIR", shipped)
    monkeypatch.delenv("CHIMERA_WINE_QUALITY_URL", raising=False)

    # Execute
    with pytest.raises(DatasetError) as caught:
        load_wine_quality("red", data_home=tmp_path / "home")

    # Assert
    assert str(shipped / "winequality-red.csv") in str(caught.value)
    assert "git checkout -- data/wine-quality" in str(caught.value)
    assert not wine_quality_is_cached(tmp_path / "home", color="red")


def _closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens: the port was bound, then released."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def test_red_wines_load_with_documented_column_names_and_float_features(
    wine_server: LocalServer, tmp_path: Path
) -> None:
    # Execute
    X, y = load_wine_quality("red", data_home=tmp_path, base_url=wine_server.url, return_X_y=True)

    # Assert
    assert X.shape == (1599, 11)
    assert list(X.columns) == FEATURES
    assert (X.dtypes == np.float64).all()
    assert y.name == "quality"
    assert y.shape == (1599,)
    assert X.iloc[0].tolist() == [7.4, 0.7, 0.0, 1.9, 0.076, 11.0, 34.0, 0.9978, 3.51, 0.56, 9.4]
    assert y.iloc[0] == 5


def test_white_wines_load_all_4898_rows(wine_server: LocalServer, tmp_path: Path) -> None:
    # Execute
    X, y = load_wine_quality("white", data_home=tmp_path, base_url=wine_server.url, return_X_y=True)

    # Assert
    assert X.shape == (4898, 11)
    assert y.shape == (4898,)


def test_both_colors_stack_red_then_white_with_an_is_red_feature(
    wine_server: LocalServer, tmp_path: Path
) -> None:
    # Execute
    bunch = load_wine_quality("both", data_home=tmp_path, base_url=wine_server.url)

    # Assert
    assert bunch.data.shape == (6497, 12)
    assert bunch.feature_names == [*FEATURES, "is_red"]
    assert bunch.data["is_red"].dtype == np.float64
    assert (bunch.data["is_red"].iloc[:1599] == 1.0).all()
    assert (bunch.data["is_red"].iloc[1599:] == 0.0).all()
    assert list(bunch.data.index) == list(range(6497))


def test_bunch_holds_frame_target_names_and_license(
    wine_server: LocalServer, tmp_path: Path
) -> None:
    # Execute
    bunch = load_wine_quality("red", data_home=tmp_path, base_url=wine_server.url)

    # Assert
    assert list(bunch.frame.columns) == [*FEATURES, "quality"]
    assert bunch.target.equals(bunch.frame["quality"])
    assert bunch.target_names == ["quality"]
    assert "CC BY 4.0" in bunch.DESCR
    assert "Cortez" in bunch.DESCR


def test_second_load_is_served_from_the_cache_after_the_server_stops(
    wine_server: LocalServer, tmp_path: Path
) -> None:
    # Prepare
    assert not wine_quality_is_cached(tmp_path)
    expected = load_wine_quality(data_home=tmp_path, base_url=wine_server.url, return_X_y=True)
    wine_server.stop()

    # Execute
    actual = load_wine_quality(data_home=tmp_path, base_url=wine_server.url, return_X_y=True)

    # Assert
    assert wine_quality_is_cached(tmp_path)
    pd.testing.assert_frame_equal(actual[0], expected[0])
    pd.testing.assert_series_equal(actual[1], expected[1])


def test_cache_check_can_ask_about_one_color(wine_server: LocalServer, tmp_path: Path) -> None:
    # Prepare
    load_wine_quality("red", data_home=tmp_path, base_url=wine_server.url)

    # Execute
    actual = [wine_quality_is_cached(tmp_path, color=color) for color in ("red", "white", "both")]

    # Assert
    assert actual == [True, False, False]


def test_environment_variables_choose_the_source_and_the_cache(
    wine_server: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Prepare
    monkeypatch.setenv("CHIMERA_WINE_QUALITY_URL", wine_server.url)
    monkeypatch.setenv("CHIMERA_DATA_HOME", str(tmp_path))

    # Execute
    X, _ = load_wine_quality("red", return_X_y=True)

    # Assert
    assert X.shape == (1599, 11)
    assert (tmp_path / "wine-quality" / "winequality-red.csv").is_file()


def test_file_url_loads_without_a_server(shared_folder: Path, tmp_path: Path) -> None:
    # Execute
    X, y = load_wine_quality(data_home=tmp_path, base_url=shared_folder.as_uri(), return_X_y=True)

    # Assert
    assert X.shape == (6497, 12)
    assert y.shape == (6497,)


def test_official_semicolon_file_with_header_parses_identically(
    shared_folder: Path, tmp_path: Path
) -> None:
    # Prepare: the red wines rewritten in the UCI repository's own format.
    uci_folder = tmp_path / "uci"
    uci_folder.mkdir()
    rows = (shared_folder / "winequality-red.csv").read_text().split()
    semicolon_rows = [row.replace(",", ";") for row in rows]
    (uci_folder / "winequality-red.csv").write_text("\n".join([UCI_HEADER, *semicolon_rows]) + "\n")
    expected = load_wine_quality("red", data_home=tmp_path / "a", base_url=shared_folder.as_uri())

    # Execute
    actual = load_wine_quality("red", data_home=tmp_path / "b", base_url=uci_folder.as_uri())

    # Assert
    pd.testing.assert_frame_equal(actual.frame, expected.frame)


def test_unreachable_url_raises_dataset_error_naming_the_url(tmp_path: Path) -> None:
    # Prepare
    url = _closed_port_url()

    # Execute
    with pytest.raises(DatasetError) as caught:
        load_wine_quality("red", data_home=tmp_path, base_url=url)

    # Assert
    assert f"{url}winequality-red.csv" in str(caught.value)
    assert "load_sklearn_dataset" in str(caught.value)
    assert not wine_quality_is_cached(tmp_path, color="red")


def test_download_cut_off_midway_leaves_nothing_in_the_cache(tmp_path: Path) -> None:
    # Prepare
    server = LocalServer(_TruncatingHandler, tmp_path)
    home = tmp_path / "home"

    # Execute
    try:
        with pytest.raises(DatasetError, match="Could not download .*winequality-red.csv"):
            load_wine_quality("red", data_home=home, base_url=server.url)
    finally:
        server.stop()

    # Assert
    assert [path for path in home.rglob("*") if path.is_file()] == []


def test_write_interrupted_before_the_rename_leaves_nothing_in_the_cache(
    shared_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Prepare: the process is interrupted (Ctrl-C) just as the cache file is put in place.
    def interrupted_replace(source: object, target: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted_replace)

    # Execute
    with pytest.raises(KeyboardInterrupt):
        load_wine_quality("red", data_home=tmp_path, base_url=shared_folder.as_uri())

    # Assert
    assert [path for path in tmp_path.rglob("*") if path.is_file()] == []


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("7.4,0.7,0,1.9\n7.8,0.88,0,2.6\n", "4 columns"),
        (
            "7.4,0.7,0,1.9,0.076,11,34,0.9978,3.51,0.56,9.4,5\n7.8,0.88,0,2.6,x,25,67,1,3,1,9,5\n",
            "'x'",
        ),
        ("", "No columns"),
    ],
    ids=["too-few-columns", "not-a-number", "empty"],
)
def test_malformed_csv_raises_dataset_error_naming_the_file(
    tmp_path: Path, content: str, problem: str
) -> None:
    # Prepare
    source = tmp_path / "source"
    source.mkdir()
    (source / "winequality-red.csv").write_text(content)

    # Execute
    with pytest.raises(DatasetError) as caught:
        load_wine_quality("red", data_home=tmp_path / "home", base_url=source.as_uri())

    # Assert
    assert (source / "winequality-red.csv").as_uri() in str(caught.value)
    assert problem in str(caught.value)
    assert not wine_quality_is_cached(tmp_path / "home", color="red")


def test_damaged_cache_file_raises_dataset_error_saying_to_delete_it(tmp_path: Path) -> None:
    # Prepare
    cached = tmp_path / "wine-quality" / "winequality-red.csv"
    cached.parent.mkdir()
    cached.write_text("7.4,0.7,0,1.9,0.0")

    # Execute
    with pytest.raises(DatasetError) as caught:
        load_wine_quality("red", data_home=tmp_path, base_url=_closed_port_url())

    # Assert
    assert f"Delete {cached}" in str(caught.value)


@pytest.mark.parametrize(
    "function", [load_wine_quality, wine_quality_available_offline, wine_quality_is_cached]
)
def test_unknown_color_raises_value_error_naming_the_argument(tmp_path: Path, function) -> None:
    # Execute / Assert
    with pytest.raises(ValueError, match="color must be 'red', 'white' or 'both', got 'rose'"):
        function(data_home=tmp_path, color="rose")


def test_bundled_digits_load_offline_as_a_frame_of_64_pixels() -> None:
    # Execute
    X, y = load_sklearn_dataset("digits", return_X_y=True)

    # Assert
    assert X.shape == (1797, 64)
    assert isinstance(X, pd.DataFrame)
    assert y.shape == (1797,)


def test_bundled_iris_bunch_names_its_features() -> None:
    # Execute
    bunch = load_sklearn_dataset("iris")

    # Assert
    assert list(bunch.data.columns) == bunch.feature_names
    assert bunch.data.shape == (150, 4)


def test_unknown_bundled_dataset_raises_value_error_listing_valid_names() -> None:
    # Execute / Assert
    with pytest.raises(ValueError) as caught:
        load_sklearn_dataset("mnist")

    # Assert
    for name in ("breast_cancer", "diabetes", "digits", "iris", "wine", "'mnist'"):
        assert name in str(caught.value)
