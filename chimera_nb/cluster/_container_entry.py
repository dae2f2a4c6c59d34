"""The first Python code a worker container runs: ``python -m chimera_nb.cluster._container_entry``.

The container's environment says who the worker is (``CHIMERA_WORKER_NAME``, ``_HOST``,
``_PORT``, ``CHIMERA_TRAIN_DATA_DIR``, ``CHIMERA_WORKER_TOKEN``: see
:mod:`chimera_nb.workers.launch`); the arguments say what to run:

* ``--script /chimera/worker/<name>.py``: a seed-style worker script, run as ``__main__``;
* ``--pickle /chimera/worker.pickle``: a worker object the cluster pickled into its run
  directory, mounted read-only. Pickle runs code when loaded, which is why this file
  comes only from the cluster's own run directory (or a Swarm config the cluster made),
  never from the network.
"""

from __future__ import annotations

import argparse
import os
import pickle
import runpy
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--script", help="a seed-style worker script, run as __main__")
    source.add_argument("--pickle", help="a pickled worker object whose serve() is called")
    arguments = parser.parse_args(argv)
    name = os.environ.get("CHIMERA_WORKER_NAME", "?")
    print(f"chimera-nb: worker {name!r} starting in a container, pid {os.getpid()}", flush=True)
    if arguments.script is not None:
        sys.argv = [arguments.script]
        runpy.run_path(arguments.script, run_name="__main__")
    else:
        with open(arguments.pickle, "rb") as file:
            worker = pickle.load(file)  # noqa: S301 - the cluster's own file, see above
        worker.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
