"""Tests of chimera_nb.datasets against the real wine-quality files, served on 127.0.0.1."""

from __future__ import annotations

import functools
import http.server
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from chimera_nb._exceptions import DatasetError
from chimera_nb.datasets import load_sklearn_dataset, load_wine_quality, wine_quality_is_cached

SHARED_WINE_QUALITY = (
    Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "wine-quality"
)

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
    if not (SHARED_WINE_QUALITY / "winequality-red.csv").is_file():
        message = f"the shared wine-quality copy is missing at {SHARED_WINE_QUALITY}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return SHARED_WINE_QUALITY


@pytest.fixture
def wine_server(shared_folder: Path) -> Iterator[LocalServer]:
    server = LocalServer(_QuietHandler, shared_folder)
    yield server
    server.stop()


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


def test_unknown_color_raises_value_error_naming_the_argument(tmp_path: Path) -> None:
    # Execute / Assert
    with pytest.raises(ValueError, match="color must be 'red', 'white' or 'both', got 'rose'"):
        load_wine_quality("rose", data_home=tmp_path)  # type: ignore[arg-type]


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
