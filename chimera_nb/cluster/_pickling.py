"""Pickling a worker object to send it to the process (or container) that serves it.

A worker object travels as a pickle, written by the cluster and read only by the worker's
own process, over a private socket pair or a file readable by this user only. The pickler
notes every class the object uses, so that the zygote can import those of trusted
libraries once, before it forks, and a container can mount the user's own modules.
"""

from __future__ import annotations

import io
import pickle
import types

from .._exceptions import ConfigurationError

__all__ = ["pickle_target"]


class _ClassRecorder(pickle.Pickler):
    """A pickler that notes every class and function it pickles, as ``"module:qualname"``.

    The zygote looks them up once (when they belong to libraries it trusts), so that four
    workers do not each import scikit-learn after the fork.
    """

    def __init__(self, file) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.classes: set[str] = set()

    def persistent_id(self, obj: object) -> None:
        kind = obj if isinstance(obj, (type, types.FunctionType)) else type(obj)
        module = getattr(kind, "__module__", None) or "builtins"
        if module != "builtins":
            self.classes.add(f"{module}:{getattr(kind, '__qualname__', '')}")
        # returning None: pickle every object as usual

    def uses_main(self) -> bool:
        return any(name.startswith("__main__:") for name in self.classes)


def pickle_target(name: str, target: object) -> tuple[bytes, list[str]]:
    """Pickle a worker target, and list the classes a worker process needs to unpickle it.

    Raises
    ------
    ConfigurationError
        If the target cannot be pickled, or its class lives in ``__main__`` (a notebook),
        where a worker process cannot import it from.
    """
    buffer = io.BytesIO()
    recorder = _ClassRecorder(buffer)
    try:
        recorder.dump(target)
    except Exception as error:
        if recorder.uses_main():
            raise ConfigurationError(_defined_in_main(name, target)) from error
        raise ConfigurationError(
            f"Worker {name!r} ({type(target).__name__}) cannot be sent to its process: "
            f"{error}. A worker must be picklable: keep open files, locks, clients and "
            "lambdas out of its attributes."
        ) from error
    if recorder.uses_main():
        raise ConfigurationError(_defined_in_main(name, target))
    return buffer.getvalue(), sorted(recorder.classes)


def _defined_in_main(name: str, target: object) -> str:
    return (
        f"Worker {name!r} uses {type(target).__name__} or a function defined in the notebook "
        "or script itself (module __main__), which a worker process cannot import. Move "
        "that class or function to a .py file next to the notebook and import it from there."
    )
