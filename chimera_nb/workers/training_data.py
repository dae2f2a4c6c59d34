"""One worker's shard: as arrays in memory (:class:`TrainingData`), or read and checked from
its seed-style folder ``chimera_train_data/<name>/`` (:func:`load_training_data`)::

    chimera_train_data/<name>/
    ├── X_train.csv            header row of feature names, then numbers only
    └── y_train.csv            header row, then one label per row

A seed-style worker reads its folder when it starts; a seed project
(:class:`~chimera_nb.seed.SeedProject`) applies the same checks to every worker's folder
before any worker starts. pandas is imported only to read CSV files, so that an SGD worker
given arrays starts without it.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._exceptions import ConfigurationError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DATA_RULES",
    "TRAIN_DATA_DIR",
    "X_FILE",
    "Y_FILE",
    "TrainingData",
    "load_training_data",
    "numeric_target_problem",
    "read_training_data",
]

TRAIN_DATA_DIR = "chimera_train_data"
X_FILE = "X_train.csv"
Y_FILE = "y_train.csv"


@dataclass(frozen=True)
class TrainingData:
    """A worker's shard as plain arrays, with the names the seed's JSON needs.

    Plain numpy (not pandas) so that an SGD worker can be unpickled and served without
    importing pandas or scikit-learn: that keeps worker start-up in the tens of milliseconds.
    """

    columns: list[str]
    X: np.ndarray  # (n_samples, n_features), float64
    y: np.ndarray  # (n_samples,), numbers or labels
    target_name: str = "y"

    @classmethod
    def of(cls, X: Any, y: Any) -> TrainingData:
        """From arrays, or from a DataFrame and a Series (which keep their names).

        Arrays get the column names ``x0, x1, ...``; the target keeps its name or is ``"y"``.
        """
        columns = getattr(X, "columns", None)
        # row-major (a DataFrame's values come column-major): a worker reads its rows twice a
        # round, X @ w and then r @ X, and both are faster on rows stored contiguously
        array = np.ascontiguousarray(X, dtype=np.float64)
        array = array.reshape(len(array), -1)
        names = (
            [str(c) for c in columns]
            if columns is not None
            else [f"x{j}" for j in range(array.shape[1])]
        )
        target = np.ravel(np.asarray(y))
        if len(array) != len(target):
            raise ValueError(f"X has {len(array)} rows but y has {len(target)}")
        target_name = getattr(y, "name", None)
        return cls(names, array, target, "y" if target_name is None else str(target_name))

    def require_numeric_target(self, worker: str) -> None:
        """Raise :class:`ConfigurationError` if this shard's target cannot be a regressor's.

        A regressor computes with ``y``, so a label such as ``"red"`` would crash it at its
        first request; refusing it here makes the mistake a start-up error that says so.
        """
        problem = numeric_target_problem(self.y)
        if problem:
            raise ConfigurationError(
                f"{worker} is a regressor, so its target y must be finite numbers, but y "
                f"{problem}. For class labels use a classifier (SGDWorker('classifier'), "
                "ClassificationWorker); else convert y to numbers (pandas.to_numeric)."
            )


#: How many bad cells to show per file; one typo often repeats down a whole column.
_MAX_CELLS_SHOWN = 5
_INDEX_HINT = "this is usually the index pandas writes: save with df.to_csv(path, index=False)"
DATA_RULES = (
    "Rows are counted from 1 after the header row. X_train.csv holds a header row naming the "
    "features, then numbers only; y_train.csv holds a header row, then one label per row "
    "(numbers, or strings for classes)."
)


def load_training_data(data_dir: Path) -> tuple[pd.DataFrame, pd.Series]:
    """Read and check one worker's ``X_train.csv`` and ``y_train.csv``.

    Parameters
    ----------
    data_dir : Path
        The worker's folder, ``chimera_train_data/<name>``.

    Returns
    -------
    X : pandas.DataFrame of shape (n_samples, n_features)
        Numeric features; the header row gives the column names.
    y : pandas.Series of shape (n_samples,)
        Labels: numbers for regression, numbers or strings for classification.

    Raises
    ------
    ConfigurationError
        If a file is missing or does not parse, ``X`` has a non-numeric, empty, NaN or
        infinite cell, ``y`` has more than one column or an empty cell, or the two files have
        different row counts. The message names each file, row and column.
    """
    X, y, problems = read_training_data(Path(data_dir))
    if problems or X is None or y is None:
        listing = "\n".join(f"  - {p}" for p in problems)
        raise ConfigurationError(
            f"The training data in {data_dir} cannot be used:\n{listing}\n{DATA_RULES}"
        )
    return X, y


def read_training_data(
    data_dir: Path,
) -> tuple[pd.DataFrame | None, pd.Series | None, list[str]]:
    """Like :func:`load_training_data`, but return the problems instead of raising (a seed
    project lists the problems of every worker's data in one error)."""
    problems: list[str] = []
    if not data_dir.is_dir():
        return None, None, [f"{data_dir}: folder is missing; create it with {X_FILE} and {Y_FILE}"]
    X_table = _read_csv(data_dir / X_FILE, problems)
    y_table = _read_csv(data_dir / Y_FILE, problems)
    X = None if X_table is None else _numeric_features(X_table, data_dir / X_FILE, problems)
    y = None if y_table is None else _labels(y_table, data_dir / Y_FILE, problems)
    if X_table is not None and y_table is not None and len(X_table) != len(y_table):
        problems.append(
            f"{data_dir / X_FILE} has {len(X_table)} rows but {data_dir / Y_FILE} has "
            f"{len(y_table)}; row i of {X_FILE} is labelled by row i of {Y_FILE}, so both "
            "need the same number of rows"
        )
    return X, y, problems


def _read_csv(path: Path, problems: list[str]) -> pd.DataFrame | None:
    """Parse one CSV file, appending a problem and returning None if it cannot be used."""
    import pandas as pd

    if not path.is_file():
        problems.append(f"{path}: file is missing")
        return None
    try:
        # Check the header ourselves: pandas silently renames an empty name to "Unnamed: 0"
        # and a repeated name "a" to "a.1", which would hide the mistake.
        with path.open(newline="", encoding="utf-8-sig") as file:
            header = next((row for row in csv.reader(file) if row), [])
        bad_header = _header_problem(header)
        if bad_header:
            problems.append(f"{path}: {bad_header}")
            return None
        table = pd.read_csv(path, encoding="utf-8-sig")
    except UnicodeDecodeError:
        problems.append(f"{path}: is not UTF-8 text; save it as 'CSV UTF-8' or with pandas")
        return None
    except (csv.Error, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        problems.append(
            f"{path}: cannot be parsed as CSV ({str(error).strip()}); every row needs as "
            "many comma-separated values as the header row"
        )
        return None
    if table.empty:
        problems.append(f"{path}: has a header row but no data rows")
        return None
    return table


def _header_problem(header: list[str]) -> str | None:
    names = [name.strip() for name in header]
    if not names:
        return "is empty; its first row must name the columns"
    if "" in names:
        return f"column {names.index('') + 1} has no name in the header row; {_INDEX_HINT}"
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        shown = ", ".join(map(repr, repeated))
        return f"the header row repeats {shown}; give each column its own name"
    if len(names) == 1 and ";" in names[0]:
        return "looks separated by ';', but chimera reads comma-separated files"
    return None


def _numeric_features(table: pd.DataFrame, path: Path, problems: list[str]) -> pd.DataFrame | None:
    """Convert ``X`` to numbers, reporting each non-numeric, empty or infinite cell."""
    import pandas as pd

    X = table.apply(pd.to_numeric, errors="coerce")
    as_float = X.to_numpy(dtype=float, na_value=np.nan)
    is_missing = table.isna().to_numpy()
    is_text = np.isnan(as_float) & ~is_missing
    is_infinite = np.isinf(as_float)
    cells = []
    for row, column in zip(*np.nonzero(is_text | is_missing | is_infinite)):
        where = f"row {row + 1}, column {table.columns[column]!r}"
        if is_text[row, column]:
            value = table.iat[row, column]
            cells.append(f"{where}: {value!r} is not a number")
        elif is_missing[row, column]:
            cells.append(f"{where}: is empty or NaN")
        else:
            cells.append(f"{where}: is infinite")
    if cells:
        problems.append(f"{path}: {_some(cells)}; features must be finite numbers")
        return None
    return X


def _labels(table: pd.DataFrame, path: Path, problems: list[str]) -> pd.Series | None:
    if table.shape[1] != 1:
        names = ", ".join(map(repr, table.columns))
        problems.append(
            f"{path}: has {table.shape[1]} columns ({names}), but must have exactly one, the "
            "label; put features in X_train.csv"
        )
        return None
    y = table.iloc[:, 0]
    missing = np.flatnonzero(y.isna().to_numpy())
    if missing.size:
        cells = [f"row {row + 1}: is empty or NaN" for row in missing]
        problems.append(f"{path}: {_some(cells)}; every sample needs a label")
        return None
    return y


def numeric_target_problem(y: Any) -> str | None:
    """Why ``y`` cannot be a regressor's target (``"holds values that are not numbers:
    'red', 'white'"``), or None if it holds finite numbers only."""
    try:
        values = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError):
        texts = dict.fromkeys(
            repr(v) for v in np.ravel(np.asarray(y, dtype=object)) if _not_a_number(v)
        )
        return f"holds values that are not numbers: {', '.join(list(texts)[:_MAX_CELLS_SHOWN])}"
    n_bad = int(np.size(values) - np.isfinite(values).sum())
    return f"holds {n_bad} infinite or NaN values" if n_bad else None


def _not_a_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return True
    return False


def _some(cells: list[str]) -> str:
    shown = "; ".join(cells[:_MAX_CELLS_SHOWN])
    more = len(cells) - _MAX_CELLS_SHOWN
    return shown + (f"; and {more} more cells like these" if more > 0 else "")
