"""Grade one submission with otter, as an instructor would, and report every test case and
every process the grading left running.

    python -m tests.labs.grade AUTOGRADER_ZIP SUBMISSION.ipynb REPORT.json

It calls ``otter run``'s own function (``otter.run.main``: the autograder in a temporary
folder, the notebook executed in a fresh kernel, no Docker) and writes ``REPORT.json``:
the score, the time, each question's test cases (hidden or public, passed or not, the first
lines of their code), and ``left_behind``.

Why a process of its own: on Linux it makes itself a *child subreaper*, so that every process
the grading starts and leaves (the kernel, the worker launcher, the workers, all in sessions
of their own) becomes its child when its parent exits, and can be seen and counted here,
instead of escaping to init. What is left after the grading is reported and then killed.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
import time
from pathlib import Path

import psutil

_PR_SET_CHILD_SUBREAPER = 36  # from <linux/prctl.h>
_SETTLE = 15.0  # seconds for the kernel and its workers to exit once the grading is done


def become_subreaper() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


def reap() -> None:
    """Collect the exit status of every child that ended (orphans included)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def still_running() -> list[psutil.Process]:
    reap()
    alive = []
    for child in psutil.Process().children(recursive=True):
        try:
            if child.status() != psutil.STATUS_ZOMBIE:
                alive.append(child)
        except psutil.NoSuchProcess:
            continue
    return alive


def describe(process: psutil.Process) -> str:
    try:
        return f"{process.pid}: {' '.join(process.cmdline())[:200]}"
    except psutil.Error:
        return str(process.pid)


def grade(autograder: Path, submission: Path) -> dict:
    import otter.run

    started = time.monotonic()
    results = otter.run.main(
        str(submission), autograder=str(autograder), output_dir=None, no_logo=True
    )
    seconds = time.monotonic() - started
    questions = {}
    for name, test_file in results.results.items():
        questions[name] = {
            "score": test_file.score,
            "possible": test_file.possible,
            "cases": [
                {
                    "hidden": result.test_case.hidden,
                    "passed": result.passed,
                    "code": result.test_case.body[:400],
                    "message": (result.message or "")[-2000:],
                }
                for result in test_file.test_case_results
            ],
        }
    return {
        "score": results.total,
        "possible": results.possible,
        "seconds": seconds,
        "questions": questions,
    }


def main(autograder: str, submission: str, report: str) -> int:
    subreaper = become_subreaper()
    outcome = grade(Path(autograder), Path(submission))
    deadline = time.monotonic() + _SETTLE
    left = still_running()
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = still_running()
    outcome["subreaper"] = subreaper
    outcome["left_behind"] = [describe(process) for process in left]
    for process in left:
        try:
            process.kill()
        except psutil.Error:
            pass
    reap()
    Path(report).write_text(json.dumps(outcome, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
