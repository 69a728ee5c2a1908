"""`serve`: the web service, its settings from options and HORSES_HUMANS_SERVE_* variables."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..config import HorsesHumansError, resolve_runs_dir
from .common import add_checkpoint, log


def add_serve(sub) -> None:
    p = sub.add_parser(
        "serve", help="web service: upload page, REST API (/v1/predict, /v1/model, /healthz), OpenAPI docs at /docs"
    )
    p.set_defaults(handler=cmd_serve)
    p.add_argument(
        "run",
        type=Path,
        nargs="?",
        help="a run folder, its name in the runs folder, or latest (default: $HORSES_HUMANS_SERVE_RUN, else the best "
        "run in the runs folder)",
    )
    p.add_argument("--host", help="address to listen on (default: $HORSES_HUMANS_SERVE_HOST, else 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default: $HORSES_HUMANS_SERVE_PORT, else 8000)")
    p.add_argument("--runs-dir", help="where to look for the best run (default: $HORSES_HUMANS_RUNS, else ./runs)")
    add_checkpoint(p, "$HORSES_HUMANS_SERVE_CHECKPOINT, else best")
    p.add_argument(
        "--api-key",
        help="require this key on /v1/* (Authorization: Bearer KEY or X-API-Key); default: "
        "$HORSES_HUMANS_SERVE_API_KEY, else none (a warning when --host is beyond loopback)",
    )
    p.add_argument(
        "--allowed-host",
        action="append",
        metavar="NAME",
        help="answer requests whose Host header is NAME "
        "(repeatable; default: on loopback only localhost/127.0.0.1/::1, elsewhere any)",
    )
    p.add_argument(
        "--runtime",
        choices=["auto", "keras", "onnx", "tflite"],
        help="what answers: auto (default: $HORSES_HUMANS_SERVE_RUNTIME, else the run's fastest parity-checked "
        "export, else Keras), keras, or the onnx / tflite export; Grad-CAM always uses the Keras model",
    )


def cmd_serve(args: argparse.Namespace) -> int:
    from ..inference.runtimes import open_export
    from ..runs.names import find_run
    from ..runs.store import servable_run
    from ..serve.server import serve

    settings = serve_settings(args)
    chosen = settings.run and find_run(settings.run, settings.runs_dir)  # a path, a name or latest
    # the model is loaded and checked here: a bad run is one error line (exit 2) before the server starts
    run = servable_run(chosen, resolve_runs_dir(settings.runs_dir), settings.checkpoint)
    open_export(run.path, run.checkpoint_path().name, settings.runtime, warn=lambda line: None)  # the app warns
    settings = settings.model_copy(update={"run": run.path})
    log(f"serving {run.path} on http://{settings.host}:{settings.port}/ (API docs: /docs)")
    serve(settings)
    return 0


def serve_settings(args: argparse.Namespace):
    """ServeSettings from the options given, the rest from HORSES_HUMANS_SERVE_* variables; one error line if bad."""
    from pydantic import ValidationError

    from ..serve.errors import validation_problems
    from ..serve.settings import ServeSettings

    given = {
        "run": args.run,
        "host": args.host,
        "port": args.port,
        "runs_dir": args.runs_dir,
        "checkpoint": args.checkpoint,
        "api_key": args.api_key,
        "runtime": args.runtime,
        "allowed_hosts": tuple(args.allowed_host) if args.allowed_host else None,
    }
    try:
        return ServeSettings(**{k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:
        raise HorsesHumansError(
            f"serve settings (options or HORSES_HUMANS_SERVE_* variables): {validation_problems(exc)}"
        ) from None
