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
That includes a worker whose script builds a regressor (``SGDWorker("regressor")``, the
seed's default, or ``RegressionWorker``) while its ``y_train.csv`` holds labels.
Workers call :func:`~chimera_nb.workers.training_data.load_training_data` at startup,
which applies the same checks to their own folder.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .._exceptions import ConfigurationError
from ..validation import repeated, validate_worker_name
from ..workers.training_data import (
    DATA_RULES,
    TRAIN_DATA_DIR,
    X_FILE,
    Y_FILE,
    numeric_target_problem,
    read_training_data,
)

__all__ = ["TRAIN_DATA_DIR", "WORKERS_DIR", "X_FILE", "Y_FILE", "SeedProject"]

WORKERS_DIR = "chimera_workers"


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
                X, y, found = read_training_data(data_root / name)
                problems += found + _target_problems(root, name, y)
                if X is not None:
                    columns[name] = list(X.columns)
                    n_samples[name] = len(X)
        problems += _column_problems(data_root, columns)
        if problems:
            listing = "\n".join(f"  - {p}" for p in problems)
            count = f"{len(problems)} problem" + ("s" if len(problems) != 1 else "")
            raise ConfigurationError(
                f"The seed project in {root} has {count}:\n{listing}\n{DATA_RULES}"
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
    duplicated = repeated(names)
    if duplicated:
        problems.append(
            f"worker names must be unique, but {', '.join(map(repr, duplicated))} repeat"
        )
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


def _target_problems(root: Path, name: str, y) -> list[str]:
    """A regressor's target must be numbers: say so if worker ``name``'s script builds one."""
    script = root / WORKERS_DIR / f"{name}.py"
    problem = None if y is None else numeric_target_problem(y)
    if problem is None or not _builds_regressor(script):
        return []
    return [
        f"{root / TRAIN_DATA_DIR / name / Y_FILE}: {problem}, but {script} builds a regressor, "
        "whose target must be numbers; for class labels build SGDWorker('classifier') or a "
        "ClassificationWorker"
    ]


def _builds_regressor(script: Path) -> bool:
    """Whether a worker script calls ``RegressionWorker(...)``, or ``SGDWorker(...)`` with
    ``"regressor"`` or no model type (the seed's default). Read, never run."""
    try:
        tree = ast.parse(script.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):  # reported when the worker starts
        return False
    for call in (node for node in ast.walk(tree) if isinstance(node, ast.Call)):
        name = getattr(call.func, "id", None) or getattr(call.func, "attr", None)
        if name == "RegressionWorker":
            return True
        if name == "SGDWorker":
            given = [*call.args[:1], *(k.value for k in call.keywords if k.arg == "model_type")]
            if not given or (isinstance(given[0], ast.Constant) and given[0].value == "regressor"):
                return True
    return False


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
