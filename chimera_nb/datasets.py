"""Datasets for the labs, as pandas objects: UCI wine quality, and scikit-learn's bundled sets.

Wine quality is the data of the seed's SGD example, so the labs use it too. Its source is
chosen in this order, per file:

1. **An explicit source**: ``base_url``, or ``$CHIMERA_WINE_QUALITY_URL``. The cache, else a
   download from there. It comes first so that a course can point every notebook at its own
   mirror, and so that the tests exercise the download path.
2. **The repository's copy** in ``data/wine-quality/``, beside the package in a source
   checkout or an editable install: read in place, with no network and no cache. This is
   what makes the demo and the notebooks give the same numbers offline as online.
3. **Otherwise** (an installed wheel, which does not carry ``data/``): the cache, else a
   download from the UCI repository, then cached, so the network is needed once.

The cache is written atomically (a temporary file renamed into place) and only after the
download has been read and checked: an interrupted or malformed download never leaves a file
that a later call would trust. When wine quality cannot be had at all,
:func:`load_sklearn_dataset` gives the datasets that ship inside scikit-learn.
"""

from __future__ import annotations

import http.client
import io
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from sklearn import datasets as sklearn_datasets
from sklearn.utils import Bunch

from ._exceptions import DatasetError

__all__ = [
    "load_sklearn_dataset",
    "load_wine_quality",
    "wine_quality_available_offline",
    "wine_quality_is_cached",
]

#: Which wines to load; "both" stacks red then white and adds an ``is_red`` feature.
WineColor = Literal["red", "white", "both"]

#: The eleven physicochemical inputs, named as in ``winequality.names`` (spaces become "_").
WINE_FEATURE_NAMES = [
    "fixed_acidity", "volatile_acidity", "citric_acid", "residual_sugar", "chlorides",
    "free_sulfur_dioxide", "total_sulfur_dioxide", "density", "pH", "sulphates", "alcohol",
]  # fmt: skip
#: The output: the median grade (0 to 10) of at least three wine experts.
WINE_TARGET_NAME = "quality"

_WINE_URL = "https://archive.ics.uci.edu/ml/machine-learning-databases/wine-quality/"
#: The copy in the repository's top-level ``data/`` folder (see ``data/README.md``). It is
#: there in a source checkout or an editable install; a wheel holds only the package.
_SHIPPED_WINE_DIR = Path(__file__).resolve().parents[1] / "data" / "wine-quality"
_RESTORE_SHIPPED = (
    "It is the repository's copy: restore it with `git checkout -- data/wine-quality` "
    "(data/README.md gives each file's SHA-256)."
)
_WINE_FILES = {"red": "winequality-red.csv", "white": "winequality-white.csv"}
_WINE_DESCR = """\
Wine Quality (red and white Vinho Verde wines)
==============================================
11 physicochemical measurements per wine; the target `quality` is the median grade (0-10)
given by at least three experts. 1599 red and 4898 white wines.

Source: UCI Machine Learning Repository, https://archive.ics.uci.edu/dataset/186/wine+quality
License: CC BY 4.0.
Citation: P. Cortez, A. Cerdeira, F. Almeida, T. Matos and J. Reis. Modeling wine preferences
by data mining from physicochemical properties. Decision Support Systems, 47(4):547-553, 2009.
"""

_SKLEARN_LOADERS = {
    "breast_cancer": sklearn_datasets.load_breast_cancer,
    "diabetes": sklearn_datasets.load_diabetes,
    "digits": sklearn_datasets.load_digits,
    "iris": sklearn_datasets.load_iris,
    "wine": sklearn_datasets.load_wine,
}

#: What every loader returns: a Bunch, or ``(X, y)`` when ``return_X_y=True``.
DatasetResult = Bunch | tuple[pd.DataFrame, pd.Series]


def load_wine_quality(
    color: WineColor = "both",
    *,
    data_home: str | os.PathLike[str] | None = None,
    base_url: str | None = None,
    timeout: float = 5.0,
    return_X_y: bool = False,
) -> DatasetResult:
    """Load the UCI wine-quality data: the repository's copy, else the cache, else a download.

    Parameters
    ----------
    color : {"red", "white", "both"}, default="both"
        Which wines. With "both", the red rows come first, then the white ones, and a
        feature ``is_red`` (1.0 or 0.0) keeps the colour, which changes the chemistry a lot.
    data_home : str or path, optional
        Cache folder for downloaded files. Default: ``$CHIMERA_DATA_HOME``, else
        ``~/.cache/chimera-nb``. The repository's ``data/`` copy is read in place, not cached.
    base_url : str, optional
        Folder URL holding ``winequality-red.csv`` and ``winequality-white.csv`` (``http(s)://``
        or ``file://``). Default: ``$CHIMERA_WINE_QUALITY_URL``. Either one, when given, is
        used (through the cache) instead of the repository's ``data/wine-quality/`` copy.
        With neither, that copy is read if it is there, else the UCI repository's files.
    timeout : float, default=5.0
        Seconds to wait for the server before giving up.
    return_X_y : bool, default=False
        Return ``(X, y)`` instead of a Bunch.

    Returns
    -------
    Bunch with ``data`` (X), ``target`` (y), ``frame`` (X and y side by side),
    ``feature_names``, ``target_names`` (``["quality"]``) and ``DESCR``; or ``(X, y)``.
    X is a float64 DataFrame of shape (n_samples, 11), or (n_samples, 12) with ``is_red``;
    y is an int64 Series named ``quality`` of shape (n_samples,).

    Raises
    ------
    ValueError
        If ``color`` is not one of the three choices.
    DatasetError
        If the download fails, or a file is not a 12-column numeric wine-quality CSV.

    Notes
    -----
    The module docstring says how the source is chosen, and why.
    :func:`wine_quality_available_offline` tells whether a call will need the network.

    The UCI files are ``;``-separated with a quoted header line; copies found elsewhere are
    often ``,``-separated without one. Both are read, and columns are always named from the
    dataset's documentation, so the result does not depend on which copy was fetched.
    """
    explicit_url = base_url or os.environ.get("CHIMERA_WINE_QUALITY_URL") or None
    frames = []
    for name in _colors(color):
        shipped = _SHIPPED_WINE_DIR / _WINE_FILES[name]
        if explicit_url is None and shipped.is_file():  # a source checkout: read in place
            frames.append(_read_local(shipped, remedy=_RESTORE_SHIPPED))
        else:  # an explicit source, or an installed wheel: the cache, else a download
            folder = _wine_dir(data_home)
            frames.append(_read_wine_file(name, folder, explicit_url or _WINE_URL, timeout))
    if color == "both":
        for frame, is_red in zip(frames, (1.0, 0.0)):
            frame.insert(len(WINE_FEATURE_NAMES), "is_red", is_red)
    frame = pd.concat(frames, ignore_index=True)

    X = frame.drop(columns=WINE_TARGET_NAME)
    y = frame[WINE_TARGET_NAME]
    if return_X_y:
        return X, y
    return Bunch(
        data=X,
        target=y,
        frame=frame,
        feature_names=list(X.columns),
        target_names=[WINE_TARGET_NAME],
        DESCR=_WINE_DESCR,
    )


def wine_quality_available_offline(
    data_home: str | os.PathLike[str] | None = None, *, color: WineColor = "both"
) -> bool:
    """Whether ``load_wine_quality(color, data_home=data_home)`` can load without the network.

    True when every file it needs is in the repository's ``data/`` copy (a source checkout)
    or in the cache (an installed wheel, after a first download). As in the loader, a set
    ``$CHIMERA_WINE_QUALITY_URL`` takes the ``data/`` copy out of play, leaving the cache.
    A demo can check this first and fall back to :func:`load_sklearn_dataset` when offline.
    """
    use_shipped = not os.environ.get("CHIMERA_WINE_QUALITY_URL")
    return all(
        (use_shipped and (_SHIPPED_WINE_DIR / _WINE_FILES[name]).is_file())
        or (_wine_dir(data_home) / _WINE_FILES[name]).is_file()
        for name in _colors(color)
    )


def wine_quality_is_cached(
    data_home: str | os.PathLike[str] | None = None, *, color: WineColor = "both"
) -> bool:
    """Whether the download cache in ``data_home`` holds ``color``'s files.

    Only the cache: a source checkout reads its ``data/`` copy without ever filling it. To
    ask whether :func:`load_wine_quality` needs the network, use
    :func:`wine_quality_available_offline`.
    """
    return all((_wine_dir(data_home) / _WINE_FILES[name]).is_file() for name in _colors(color))


def load_sklearn_dataset(name: str, *, return_X_y: bool = False) -> DatasetResult:
    """Load one of the datasets bundled with scikit-learn; no network needed.

    Parameters
    ----------
    name : {"breast_cancer", "diabetes", "digits", "iris", "wine"}
        Which dataset. "diabetes" is a regression task, the others are classification.
    return_X_y : bool, default=False
        Return ``(X, y)`` instead of a Bunch.

    Returns
    -------
    scikit-learn's Bunch (``data``, ``target``, ``frame``, ``feature_names``, ``target_names``,
    ``DESCR``), or ``(X, y)``: X a DataFrame of shape (n_samples, n_features) with the feature
    names as columns, y a Series of shape (n_samples,).

    Examples
    --------
    >>> X, y = load_sklearn_dataset("digits", return_X_y=True)
    >>> X.shape, y.shape
    ((1797, 64), (1797,))
    """
    if name not in _SKLEARN_LOADERS:
        choices = ", ".join(repr(choice) for choice in sorted(_SKLEARN_LOADERS))
        raise ValueError(f"name must be one of {choices}, got {name!r}.")
    bunch = _SKLEARN_LOADERS[name](as_frame=True)
    return (bunch.data, bunch.target) if return_X_y else bunch


def _colors(color: WineColor) -> list[str]:
    """The files' colours for ``color``, red first; a ValueError for anything else."""
    if color not in ("red", "white", "both"):
        raise ValueError(f"color must be 'red', 'white' or 'both', got {color!r}.")
    return ["red", "white"] if color == "both" else [color]


def _wine_dir(data_home: str | os.PathLike[str] | None) -> Path:
    """The folder holding the cached wine-quality files."""
    home = data_home or os.environ.get("CHIMERA_DATA_HOME") or "~/.cache/chimera-nb"
    return Path(home).expanduser() / "wine-quality"


def _read_wine_file(color: str, folder: Path, base_url: str, timeout: float) -> pd.DataFrame:
    """One colour's frame: from the cache if it is there, else downloaded, checked, cached."""
    path = folder / _WINE_FILES[color]
    if path.is_file():
        return _read_local(path, remedy=f"Delete {path} to download it again.")
    url = base_url.rstrip("/") + "/" + _WINE_FILES[color]
    raw = _download(url, timeout)
    frame = _parse_wine_csv(raw, source=url)  # check before caching: never cache a bad file
    _write_atomically(path, raw)
    return frame


def _read_local(path: Path, remedy: str) -> pd.DataFrame:
    """The checked frame of a file on disk; a damaged file's error ends with ``remedy``."""
    try:
        return _parse_wine_csv(path.read_bytes(), source=str(path))
    except DatasetError as error:
        raise DatasetError(f"{error} {remedy}") from error


def _download(url: str, timeout: float) -> bytes:
    """The bytes at ``url``, or a DatasetError saying which URL failed and what to do."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.read()
    # OSError covers refused connections, timeouts and HTTP errors (URLError, HTTPError);
    # HTTPException covers a connection cut mid-body; ValueError a malformed URL.
    except (OSError, http.client.HTTPException, ValueError) as error:
        raise DatasetError(
            f"Could not download the wine-quality data from {url} ({error}). Check the network, "
            "or set base_url / CHIMERA_WINE_QUALITY_URL to a copy (file:// works; the kit's "
            "repository has one in data/wine-quality/), or use load_sklearn_dataset('wine'), "
            "which works offline."
        ) from error


def _write_atomically(path: Path, raw: bytes) -> None:
    """Write ``raw`` to ``path`` so that ``path`` is either absent or complete.

    The bytes go to a temporary file in the same folder, which is then renamed over ``path``:
    a rename within one file system is atomic, so a crash mid-write leaves at most a stray
    temporary file, never a truncated cache.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".part", dir=path.parent
    )
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(raw)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _parse_wine_csv(raw: bytes, source: str) -> pd.DataFrame:
    """Read a wine-quality CSV (``;`` or ``,`` separated, header or not) into a checked frame.

    Returns a frame of shape (n_samples, 12): the float64 features named
    ``WINE_FEATURE_NAMES`` and the int64 ``quality``. ``source`` names the file in errors.
    """
    names = [*WINE_FEATURE_NAMES, WINE_TARGET_NAME]

    def fail(problem: str) -> DatasetError:
        return DatasetError(
            f"{source} is not a wine-quality CSV: {problem}. Expected 12 numeric columns "
            f"({', '.join(names)}), separated by ';' or ','."
        )

    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise fail("it is not UTF-8 text") from None
    # The first line tells the format: ';' means the UCI original, and a first field that is
    # not a number means a header line.
    first_line = text.lstrip().partition("\n")[0]
    sep = ";" if ";" in first_line else ","
    has_header = not _is_number(first_line.split(sep)[0].strip().strip('"'))
    try:
        table = pd.read_csv(io.StringIO(text), sep=sep, header=0 if has_header else None)
    except ValueError as error:  # pandas' ParserError and EmptyDataError are ValueErrors
        raise fail(str(error).strip()) from None

    if table.shape[1] != len(names):
        raise fail(f"it has {table.shape[1]} columns")
    if len(table) == 0:
        raise fail("it has no rows")
    if has_header:
        header = [str(column).strip().replace(" ", "_") for column in table.columns]
        if header != names:
            raise fail(f"its header is {header}")
    numbers = table.apply(pd.to_numeric, errors="coerce")
    if numbers.isna().to_numpy().any():
        row, column = np.argwhere(numbers.isna().to_numpy())[0]
        value = table.iat[row, column]
        found = "nothing" if pd.isna(value) else repr(value)
        raise fail(f"data row {row + 1}, column {names[column]}, holds {found}")
    numbers.columns = names
    quality = numbers[WINE_TARGET_NAME]
    if not (quality % 1 == 0).all():
        raise fail("quality holds non-integer grades")
    return numbers.astype(np.float64).astype({WINE_TARGET_NAME: np.int64})


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
