"""The public tests a student notebook carries, unpacked as files that otter runs (Colab's way
to find them)."""

from __future__ import annotations

import pytest

from chimera_nb.labs.colab import unpack_public_tests, write_public_tests

NOTEBOOK = {
    "metadata": {
        "otter": {
            "OK_FORMAT": True,
            "tests": {
                "q1": {
                    "name": "q1",
                    "points": [1],
                    "suites": [
                        {
                            "cases": [
                                {
                                    "code": ">>> assert double(2) == 4, 'double(2) should be 4'\n",
                                    "hidden": False,
                                    "locked": False,
                                }
                            ],
                            "scored": True,
                            "setup": "",
                            "teardown": "",
                            "type": "doctest",
                        }
                    ],
                }
            },
        }
    }
}


def test_unpacked_tests_are_files_otter_runs_with_their_messages(tmp_path):
    # Prepare
    from otter.test_files import OKTestFile

    # Execute
    written = write_public_tests(NOTEBOOK, tmp_path / "tests")
    test_file = OKTestFile.from_file(str(written[0]))
    test_file.run({"double": lambda x: 2 * x})
    passed = test_file.test_case_results[0].passed
    test_file.run({"double": lambda x: x})
    failure = test_file.test_case_results[0]
    # Assert
    assert [path.name for path in written] == ["q1.py"]
    assert passed and not failure.passed
    assert "double(2) should be 4" in failure.message


def test_outside_colab_unpacking_says_so():
    # Execute, Assert
    with pytest.raises(RuntimeError, match="Colab only"):
        unpack_public_tests()
