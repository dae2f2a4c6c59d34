"""The package's shape, checked: layers import downward only, no import loops, private
modules stay inside their package, and no module grows past the size where it mixes jobs.

The layers are those of DESIGN.md ("Architecture"); ARCHITECTURE.md draws them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "chimera_nb"

#: Lowest first. A module may import from its own layer or any layer below.
LAYERS = [
    (
        "foundation",
        [
            "chimera_nb._exceptions",
            "chimera_nb._registry",
            "chimera_nb._runtime",
            "chimera_nb._sockets",
            "chimera_nb._types",
            "chimera_nb._version",
            "chimera_nb.auth",
            "chimera_nb.datasets",
            "chimera_nb.logs",
            "chimera_nb.spans",
            "chimera_nb.states",
            "chimera_nb.validation",
        ],
    ),
    ("algorithms", ["chimera_nb.algorithms"]),
    ("wire", ["chimera_nb.wire"]),
    ("workers", ["chimera_nb.workers"]),
    ("masters", ["chimera_nb.masters"]),
    ("cluster", ["chimera_nb.cluster"]),
    ("seed", ["chimera_nb.seed", "chimera_nb.nodes", "chimera_nb.utils"]),
    ("notebook", ["chimera_nb.notebook", "chimera_nb.plots", "chimera_nb.labs"]),
    ("cli", ["chimera_nb.cli", "chimera_nb.demo", "chimera_nb.__main__", "chimera_nb"]),
]
MAX_LINES = 410


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> int:
    best, best_length = None, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            matches = module == prefix or module.startswith(prefix + ".")
            if matches and len(prefix) > best_length:
                best, best_length = index, len(prefix)
    assert best is not None, f"{module} is in no layer: add it to LAYERS"
    return best


def imports_of(module: str) -> set[str]:
    """Every chimera_nb module ``module`` imports, anywhere in it (functions and
    TYPE_CHECKING blocks included), resolved to the deepest module that exists."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            candidates = [f"{target}.{alias.name}" for alias in node.names] + [target]
        elif isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        else:
            continue
        for candidate in candidates:
            if candidate in MODULES and candidate != module:
                found.add(candidate)
                break
    return found


GRAPH = {module: imports_of(module) for module in MODULES}


def test_every_import_goes_to_the_same_layer_or_below():
    # Execute
    upward = [
        f"{module} ({LAYERS[layer_of(module)][0]}) imports {target} ({LAYERS[layer_of(target)][0]})"
        for module, targets in GRAPH.items()
        for target in targets
        if layer_of(target) > layer_of(module)
    ]

    # Assert
    assert upward == []


def test_the_imports_have_no_loop():
    # Prepare
    visiting, done, loops = [], set(), []

    def visit(module: str) -> None:
        if module in done:
            return
        if module in visiting:
            loops.append(visiting[visiting.index(module) :] + [module])
            return
        visiting.append(module)
        for target in sorted(GRAPH[module]):
            visit(target)
        visiting.pop()
        done.add(module)

    # Execute
    for module in sorted(GRAPH):
        visit(module)

    # Assert
    assert loops == []


def is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_private_modules_are_imported_only_inside_their_package():
    # Execute
    outside = [
        f"{module} imports {target}"
        for module, targets in GRAPH.items()
        for target in targets
        if is_private(target.rpartition(".")[2])
        and not (module + ".").startswith(target.rpartition(".")[0] + ".")
    ]

    # Assert
    assert outside == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_is_long_enough_to_mix_jobs(module):
    # Execute
    lines = len(MODULES[module].read_text().splitlines())

    # Assert
    assert lines <= MAX_LINES, f"{module} has {lines} lines: split it by job"
