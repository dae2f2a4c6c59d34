"""The seed's project layout, checked in full before any worker starts.

A Chimera project is a folder like this, one script and one data folder per worker name::

    my_project/
    ├── master.py                      sets CHIMERA_* and calls chimera_nb.run(...)
    ├── chimera_workers/
    │   ├── worker1.py                 builds a worker and calls worker.serve()
    │   └── worker2.py
    └── chimera_train_data/
        ├── worker1/
        │   ├── X_train.csv            header row of feature names, then numbers only
        │   └── y_train.csv            header row, then one label per row
        └── worker2/ ...

:meth:`SeedProject.discover` checks all of it and raises one
:class:`~chimera_nb.ConfigurationError` listing every problem, so that a mistake in the last
worker's data does not surface as a crashed process after the other workers have started.
Workers call :func:`load_training_data` at startup, which applies the same checks.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ._exceptions import ConfigurationError
from .config import validate_worker_name

__all__ = [
    "TRAIN_DATA_DIR",
    "WORKERS_DIR",
    "X_FILE",
    "Y_FILE",
    "SeedProject",
    "load_training_data",
]

WORKERS_DIR = "chimera_workers"
TRAIN_DATA_DIR = "chimera_train_data"
X_FILE = "X_train.csv"
Y_FILE = "y_train.csv"

#: How many bad cells to show per file; one typo often repeats down a whole column.
_MAX_CELLS_SHOWN = 5
_INDEX_HINT = "this is usually the index pandas writes: save with df.to_csv(path, index=False)"
_DATA_RULES = (
    "Rows are counted from 1 after the header row. X_train.csv holds a header row naming the "
    "features, then numbers only; y_train.csv holds a header row, then one label per row "
    "(numbers, or strings for classes)."
)


# ---------------------------------------------------------------------------------------------
# One worker's data
# ---------------------------------------------------------------------------------------------


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
    X, y, problems = _read_training_data(Path(data_dir))
    if problems or X is None or y is None:
        listing = "\n".join(f"  - {p}" for p in problems)
        raise ConfigurationError(
            f"The training data in {data_dir} cannot be used:\n{listing}\n{_DATA_RULES}"
        )
    return X, y


def _read_training_data(
    data_dir: Path,
) -> tuple[pd.DataFrame | None, pd.Series | None, list[str]]:
    """Like :func:`load_training_data`, but return the problems instead of raising."""
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


def _some(cells: list[str]) -> str:
    shown = "; ".join(cells[:_MAX_CELLS_SHOWN])
    more = len(cells) - _MAX_CELLS_SHOWN
    return shown + (f"; and {more} more cells like these" if more > 0 else "")


# ---------------------------------------------------------------------------------------------
# The whole project
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeedProject:
    """A checked seed project: where each worker's script and data are.

    Build one with :meth:`discover`, which refuses a project with any problem.

    Attributes
    ----------
    root : Path
        The project folder.
    names : tuple of str
        Worker names, in the order of ``CHIMERA_WORKERS_NODES_NAMES``.
    feature_names : tuple of str
        Column names of ``X_train.csv``, the same for every worker.
    n_samples : mapping of str to int
        Rows of training data per worker (the size of each worker's shard).

    Examples
    --------
    >>> project = SeedProject.discover(Path("my_project"), ["worker1", "worker2"])  # doctest: +SKIP
    >>> project.worker_script("worker1")  # doctest: +SKIP
    PosixPath('my_project/chimera_workers/worker1.py')
    """

    root: Path
    names: tuple[str, ...]
    feature_names: tuple[str, ...]
    n_samples: Mapping[str, int] = field(hash=False)

    @classmethod
    def discover(cls, root: Path, names: Sequence[str]) -> SeedProject:
        """Check the layout under ``root`` for the given workers and read their data.

        Raises
        ------
        ConfigurationError
            One error listing every problem found, each with its path and what to do.
        """
        root = Path(root)
        if not root.is_dir():
            raise ConfigurationError(
                f"The seed project folder {root} does not exist or is not a folder. Pass the "
                f"folder that holds {WORKERS_DIR}/ and {TRAIN_DATA_DIR}/."
            )
        problems = _name_problems(names)
        good = [n for n in dict.fromkeys(names) if not _name_problems([n])]
        problems += _script_problems(root, good)
        columns: dict[str, list[str]] = {}
        n_samples: dict[str, int] = {}
        data_root = root / TRAIN_DATA_DIR
        if good and not data_root.is_dir():
            problems.append(
                f"{data_root}: folder is missing; create it with one folder per worker "
                f"({', '.join(good)}), each holding {X_FILE} and {Y_FILE}"
            )
        elif good:
            for name in good:
                X, _, found = _read_training_data(data_root / name)
                problems += found
                if X is not None:
                    columns[name] = list(X.columns)
                    n_samples[name] = len(X)
        problems += _column_problems(data_root, columns)
        if problems:
            listing = "\n".join(f"  - {p}" for p in problems)
            count = f"{len(problems)} problem" + ("s" if len(problems) != 1 else "")
            raise ConfigurationError(
                f"The seed project in {root} has {count}:\n{listing}\n{_DATA_RULES}"
            )
        first = next(iter(columns.values()), [])
        return cls(root, tuple(names), tuple(map(str, first)), n_samples)

    def worker_script(self, name: str) -> Path:
        """The script that starts worker ``name``: ``chimera_workers/<name>.py``."""
        return self.root / WORKERS_DIR / f"{self._known(name)}.py"

    def data_dir(self, name: str) -> Path:
        """Worker ``name``'s data folder: ``chimera_train_data/<name>``."""
        return self.root / TRAIN_DATA_DIR / self._known(name)

    def _known(self, name: str) -> str:
        if name not in self.names:
            raise ConfigurationError(
                f"Worker {name!r} is not part of the project in {self.root}, whose workers are "
                f"{', '.join(self.names)}. Use one of those names, or add it to "
                "CHIMERA_WORKERS_NODES_NAMES and discover the project again."
            )
        return name

    def __repr__(self) -> str:
        return (
            f"SeedProject({str(self.root)!r}, {len(self.names)} workers: "
            f"{', '.join(self.names)}; {len(self.feature_names)} features)"
        )


def _name_problems(names: Sequence[str]) -> list[str]:
    if len(names) == 0:
        return ["no worker names were given; list them in CHIMERA_WORKERS_NODES_NAMES"]
    problems = []
    for name in names:
        try:
            validate_worker_name(name)
        except ConfigurationError as error:
            problems.append(str(error))
    repeated = sorted({n for n in names if list(names).count(n) > 1})
    if repeated:
        problems.append(f"worker names must be unique, but {', '.join(map(repr, repeated))} repeat")
    return problems


def _script_problems(root: Path, names: list[str]) -> list[str]:
    workers_dir = root / WORKERS_DIR
    if not names:
        return []
    if not workers_dir.is_dir():
        scripts = ", ".join(f"{n}.py" for n in names)
        return [
            f"{workers_dir}: folder is missing; create it with one script per worker ({scripts})"
        ]
    found = sorted(p.name for p in workers_dir.glob("*.py"))
    seen = f"it holds {', '.join(found)}" if found else "it holds no .py files"
    return [
        f"{workers_dir / f'{n}.py'}: worker script is missing ({seen}); create it, or rename "
        "the worker in CHIMERA_WORKERS_NODES_NAMES to match a script"
        for n in names
        if not (workers_dir / f"{n}.py").is_file()
    ]


def _column_problems(data_root: Path, columns: Mapping[str, list[str]]) -> list[str]:
    """Every worker must have the same features, in the same order, to share one model."""
    if len(columns) < 2:
        return []
    (first, expected), *others = columns.items()
    problems = []
    for name, actual in others:
        if actual == expected:
            continue
        order = " (the same names in another order)" if set(actual) == set(expected) else ""
        problems.append(
            f"{data_root / name / X_FILE}: has columns {actual}{order}, but "
            f"{data_root / first / X_FILE} has {expected}; every worker needs the same "
            "feature columns in the same order"
        )
    return problems
