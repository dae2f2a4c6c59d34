"""The public tests of a lab notebook, as files otter can read on Colab.

``otter assign`` stores a lab's public tests inside the student notebook (its metadata), so
that one ``.ipynb`` is all a student needs. In JupyterLab and on Binder, ``otter.Notebook``
reads them from the notebook file. On Colab the kernel cannot read the notebook file, and
otter asks for a ``tests/`` folder instead: :func:`unpack_public_tests` asks Colab for the
open notebook and writes one test file per question there.
"""

from __future__ import annotations

import pprint
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["unpack_public_tests", "write_public_tests"]


def write_public_tests(notebook: Mapping[str, Any], directory: str | Path = "tests") -> list[Path]:
    """Write the tests in ``notebook``'s otter metadata as ``<directory>/<question>.py``.

    Parameters
    ----------
    notebook : mapping
        A notebook as JSON (``nbformat`` node or plain dict) made by ``otter assign``.
    directory : path, default="tests"
        Where otter looks for tests (``otter.Notebook(tests_dir=...)``).

    Returns
    -------
    list of Path
        The files written, one per question that has tests.
    """
    tests = notebook.get("metadata", {}).get("otter", {}).get("tests", {})
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, test in sorted(tests.items()):
        path = folder / f"{name}.py"
        path.write_text(f"OK_FORMAT = True\n\ntest = {pprint.pformat(dict(test), indent=4)}\n")
        written.append(path)
    return written


def unpack_public_tests(directory: str | Path = "tests") -> list[Path]:
    """On Colab: write the public tests of the notebook open there to ``directory``.

    Raises
    ------
    RuntimeError
        Outside Colab, or when Colab does not hand the notebook over; the message says to
        upload the ``tests`` folder of the lab instead.
    """
    try:
        from google.colab import _message  # only exists on Colab
    except ImportError:
        raise RuntimeError("unpack_public_tests works on Colab only") from None
    try:
        notebook = _message.blocking_request("get_ipynb", timeout_sec=30)["ipynb"]
    except Exception as error:  # noqa: BLE001 - Colab's private API: say what to do instead
        raise RuntimeError(
            f"Colab did not hand over this notebook ({error}); upload the lab's tests folder "
            "next to it instead (Files panel, left)."
        ) from None
    return write_public_tests(notebook, directory)
