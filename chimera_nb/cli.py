"""The ``chimera-nb`` command: ``demo``, ``serve-worker`` and ``run``."""

from __future__ import annotations

import argparse
import os
import runpy
import sys
from pathlib import Path

from ._exceptions import ChimeraError

__all__ = ["main"]


def _demo(args: argparse.Namespace) -> None:
    from .demo import main as demo

    demo(n_workers=args.workers, max_iter=args.max_iter, output=args.output, offline=args.offline)


def _serve_worker(args: argparse.Namespace) -> None:
    """Run a seed-style worker script as a server (e.g. on another machine)."""
    from .auth import WORKER_TOKEN_VARIABLE, require_token_for, validate_token

    script = Path(args.script)
    if not script.is_file():
        raise ChimeraError(f"no worker script at {script}")
    name = args.name or script.stem
    token = args.token or os.environ.get(WORKER_TOKEN_VARIABLE) or None
    if token is not None:
        validate_token(token)
    require_token_for(args.host, token, f"Worker {name!r}")
    os.environ.update(
        {
            "CHIMERA_WORKER_NAME": name,
            "CHIMERA_WORKER_HOST": args.host,
            "CHIMERA_WORKER_PORT": str(args.port),
            "CHIMERA_TRAIN_DATA_DIR": str(args.data_dir or Path("chimera_train_data") / name),
        }
    )
    if token is not None:
        os.environ[WORKER_TOKEN_VARIABLE] = token
    sys.argv = [str(script)]
    runpy.run_path(str(script), run_name="__main__")


def _run(args: argparse.Namespace) -> None:
    """Serve a seed project's workers and a master without writing a master file."""
    from .masters import AggregationMaster, ParameterServerMaster
    from .seed import run

    master = (
        AggregationMaster()
        if args.master == "aggregation"
        else ParameterServerMaster(args.model_type, max_iter=args.max_iter)
    )
    run(master, args.port, directory=args.directory)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="chimera-nb", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="fit with local workers and print/plot the results")
    demo.add_argument("--workers", type=int, default=3, help="number of workers (default 3)")
    demo.add_argument("--max-iter", type=int, default=200, help="parameter-server rounds")
    demo.add_argument("--output", type=Path, default=Path("demo-output"), help="where PNGs go")
    demo.add_argument(
        "--offline",
        action="store_true",
        help="never download: wine quality from the repository's data/ folder or the cache; "
        "scikit-learn's bundled sets only if neither is there",
    )
    demo.set_defaults(handler=_demo)

    serve = commands.add_parser("serve-worker", help="serve a worker script (chimera_workers/x.py)")
    serve.add_argument("script")
    serve.add_argument("--name", help="worker name (default: the script's name)")
    serve.add_argument(
        "--host", default="127.0.0.1", help="where to listen; anything but loopback needs --token"
    )
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--data-dir", type=Path, help="default chimera_train_data/<name>")
    serve.add_argument(
        "--token",
        help="shared token the master must send (Authorization: Bearer); default "
        "$CHIMERA_WORKER_TOKEN, which keeps it out of the process list",
    )
    serve.set_defaults(handler=_serve_worker)

    project = commands.add_parser("run", help="run a seed-style project's workers and a master")
    project.add_argument("directory", nargs="?", default=".")
    project.add_argument(
        "--master", choices=["parameter-server", "aggregation"], default="parameter-server"
    )
    project.add_argument("--model-type", choices=["regressor", "classifier"], default="regressor")
    project.add_argument("--max-iter", type=int, default=1000)
    project.add_argument("--port", type=int, default=8080)
    project.set_defaults(handler=_run)

    args = parser.parse_args(argv)
    try:
        args.handler(args)
    except ChimeraError as error:
        print(f"chimera-nb: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
