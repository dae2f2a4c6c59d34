"""CI for the graded labs (``notebooks/labs/NN_name/NN_name.ipynb``), graded as an instructor
grades them: ``otter assign``, then ``otter run`` on each submission (see ``grade.py``).

For every lab: the solution scores full marks; the untouched student version scores only the
free points, and runs top to bottom in a fresh kernel with its checks saying in words what is
wrong; the lab's deliberately wrong solution (``wrong_solution.py``) fails the hidden test
that should catch it. Every grading takes less than a minute and leaves no process behind;
so do the gradings of code that never returns, on a worker and on the master.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[2]
LABS_DIR = REPO / "notebooks" / "labs"
LABS = sorted(
    folder.name for folder in LABS_DIR.iterdir() if (folder / f"{folder.name}.ipynb").is_file()
)
FREE = {"q0"}  # every lab's free point
GRADING_LIMIT = 60.0  # seconds one grading may take (the acceptance)
PROCESS_TIMEOUT = 240.0  # past this, the grading hangs: stop it and fail


@dataclass(frozen=True)
class Assigned:
    """What ``otter assign`` made of one lab."""

    name: str
    folder: Path
    autograder: Path  # the zip
    solution: Path  # the solution notebook (autograder version)
    student: Path


_assigned: dict[str, Assigned] = {}


def assign(name: str, workspace: Path) -> Assigned:
    """``otter assign`` one lab, once per test session."""
    if name not in _assigned:
        out = workspace / name
        master = LABS_DIR / name / f"{name}.ipynb"
        subprocess.run(
            [sys.executable, "-m", "otter", "assign", str(master), str(out)],
            check=True,
            capture_output=True,
            timeout=PROCESS_TIMEOUT,
        )
        (autograder,) = (out / "autograder").glob("*.zip")
        _assigned[name] = Assigned(
            name,
            out,
            autograder,
            out / "autograder" / f"{name}.ipynb",
            out / "student" / f"{name}.ipynb",
        )
    return _assigned[name]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("labs")


@pytest.fixture(scope="module", params=LABS)
def lab(request, workspace) -> Assigned:
    return assign(request.param, workspace)


def grade(assigned: Assigned, submission: Path) -> dict:
    """Grade ``submission`` in a process of its own; its report (see ``grade.py``)."""
    report = submission.with_suffix(".report.json")
    process = subprocess.Popen(
        [
            sys.executable,
            str(REPO / "tests" / "labs" / "grade.py"),
            str(assigned.autograder),
            str(submission),
            str(report),
        ],
        cwd=submission.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        _, errors = process.communicate(timeout=PROCESS_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        pytest.fail(f"grading {submission.name} did not end in {PROCESS_TIMEOUT:g} s")
    assert process.returncode == 0, errors.decode()[-3000:]
    outcome = json.loads(report.read_text())
    print(
        f"{assigned.name}, {submission.stem}: {outcome['score']:g}/{outcome['possible']:g} in {outcome['seconds']:.1f} s"
    )
    return outcome


def assert_graded_cleanly(outcome: dict) -> None:
    assert outcome["seconds"] < GRADING_LIMIT, f"grading took {outcome['seconds']:.1f} s"
    assert outcome["subreaper"] and outcome["left_behind"] == []


def with_cell_replaced(notebook: Path, replaces: str, source: str, destination: Path) -> Path:
    """A copy of ``notebook`` whose one code cell that starts with ``replaces`` holds ``source``."""
    document = nbformat.read(notebook, as_version=4)
    cells = [
        c
        for c in document.cells
        if c.cell_type == "code" and c.source.lstrip().startswith(replaces)
    ]
    assert len(cells) == 1, f"{len(cells)} cells of {notebook.name} start with {replaces!r}"
    cells[0].source = source
    destination.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(document, destination)
    return destination


def wrong_solution(name: str) -> tuple[str, str, str]:
    """(the cell it replaces, the hidden test that must catch it, its code) of a lab."""
    text = (LABS_DIR / name / "wrong_solution.py").read_text()
    replaces = re.search(r"^# replaces: (.+)$", text, re.M).group(1).strip()
    caught_by = re.search(r"^# caught by: (.+)$", text, re.M).group(1).strip()
    code = "\n".join(line for line in text.splitlines() if not line.startswith("#")).strip()
    return replaces, caught_by, code


# -- every lab, graded three ways --------------------------------------------------------------


def test_every_lab_has_a_wrong_solution_and_a_free_point(lab):
    # Execute
    replaces, caught_by, code = wrong_solution(lab.name)
    master = nbformat.read(LABS_DIR / lab.name / f"{lab.name}.ipynb", as_version=4)
    # Assert
    assert code.startswith(replaces) and caught_by
    assert any("name: q0" in cell.source for cell in master.cells if cell.cell_type == "raw")


def test_the_solution_scores_full_marks(lab):
    # Execute
    outcome = grade(lab, lab.solution)
    # Assert
    assert_graded_cleanly(outcome)
    failed = [
        (question, case["code"][:120], case["message"][-500:])
        for question, result in outcome["questions"].items()
        for case in result["cases"]
        if not case["passed"]
    ]
    assert failed == []
    assert outcome["score"] == outcome["possible"] > len(FREE)


def test_the_untouched_student_version_scores_only_the_free_points(lab):
    # Execute
    outcome = grade(lab, lab.student)
    # Assert
    assert_graded_cleanly(outcome)
    scores = {question: result["score"] for question, result in outcome["questions"].items()}
    assert {q: s for q, s in scores.items() if q not in FREE} == dict.fromkeys(
        set(scores) - FREE, 0
    )
    assert outcome["score"] == sum(outcome["questions"][q]["possible"] for q in FREE)


def test_the_wrong_solution_fails_the_hidden_test_that_should_catch_it(lab, workspace):
    # Prepare
    replaces, caught_by, code = wrong_solution(lab.name)
    submission = with_cell_replaced(
        lab.solution, replaces, code, workspace / "wrong" / f"{lab.name}.ipynb"
    )
    # Execute
    outcome = grade(lab, submission)
    # Assert
    assert_graded_cleanly(outcome)
    cases = [
        (question, case)
        for question, result in outcome["questions"].items()
        for case in result["cases"]
        if caught_by in case["code"]
    ]
    assert len(cases) == 1, f"no single test says {caught_by!r}"
    question, case = cases[0]
    assert case["hidden"] and not case["passed"]
    public = [c for c in outcome["questions"][question]["cases"] if not c["hidden"]]
    assert all(c["passed"] for c in public), (
        "the public check should not catch it: that is the hidden test's job"
    )
    assert outcome["score"] < outcome["possible"]


def test_the_untouched_student_version_runs_top_to_bottom_and_its_checks_say_what_is_wrong(
    lab, workspace
):
    # Prepare
    import nbclient

    folder = workspace / "jupyterlab" / lab.name
    shutil.copytree(lab.student.parent, folder, ignore=shutil.ignore_patterns("*.report.json"))
    document = nbformat.read(folder / lab.student.name, as_version=4)
    client = nbclient.NotebookClient(
        document, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
    )
    # Execute
    client.execute()  # raises CellExecutionError at the first cell that fails
    checks = {}
    for cell in document.cells:
        found = re.match(r'grader\.check\("(q\d+)"\)', cell.source)
        if found:
            checks[found.group(1)] = "".join(
                output.get("data", {}).get("text/plain", "") + output.get("text", "")
                for output in cell.outputs
            )
    # Assert
    assert set(checks) >= FREE and len(checks) > len(FREE)
    for question, shown in checks.items():
        if question in FREE:
            assert "All test cases passed" in shown, shown
            continue
        messages = re.findall(r"AssertionError: (.+)", shown)
        assert messages and all(len(message.split()) >= 6 for message in messages), (
            question,
            shown[-1500:],
        )


# -- code that never returns -------------------------------------------------------------------

NEVER_RETURNS = {
    # On the workers: every fit-step runs into the worker's time limit.
    "01_data_parallelism": (
        "def squared_loss_gradient",
        "def squared_loss_gradient(weights, bias, X, y):\n    while True:\n        pass\n",
        {"q1": 0, "q2": 3, "q3": 3, "q4": 1},  # q4's classification fit needs no squared loss
    ),
    # On the master: every call of the round policy runs into its time limit.
    "03_stragglers_and_failures": (
        "class BackupWorkers",
        "class BackupWorkers:\n"
        "    def __init__(self, k, deadline=None):\n"
        "        self.k, self.deadline = k, deadline\n\n"
        "    def closes(self, answered, failed, n_workers, elapsed):\n"
        "        while True:\n"
        "            pass\n",
        {"q1": 0, "q2": 0, "q3": 0},
    ),
    # On the master: the pipeline master calls the schedule before every step.
    "07_pipeline": (
        "def one_f_one_b_schedule",
        "def one_f_one_b_schedule(p, m):\n    while True:\n        pass\n",
        {"q1": 0, "q2": 3},  # q2 counts activations of the kit's schedules and a GPipe run
    ),
}


@pytest.mark.parametrize("name", sorted(NEVER_RETURNS))
def test_code_that_never_returns_fails_its_questions_and_the_grading_still_ends_in_time(
    name, workspace
):
    # Prepare
    assigned = assign(name, workspace)
    replaces, code, expected = NEVER_RETURNS[name]
    submission = with_cell_replaced(
        assigned.solution, replaces, code, workspace / "endless" / f"{name}.ipynb"
    )
    # Execute
    outcome = grade(assigned, submission)
    # Assert
    assert_graded_cleanly(outcome)
    assert {q: outcome["questions"][q]["score"] for q in expected} == expected
