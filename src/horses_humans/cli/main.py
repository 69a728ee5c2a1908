"""The `horses-humans` command: parses arguments and dispatches, nothing more."""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

from .. import __version__
from ..config import DEFAULT_MAX_PIXELS, PRECISIONS, HorsesHumansError, TrainConfig, resolve_data_dir, resolve_runs_dir
from ..core.backend import configure, import_backend, quiet_native_stderr
from .options import add_config_options, config_from_args


def add_data_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help="data set folder (default: $HORSES_HUMANS_DATA, else the per-user cache)")


def add_run_data_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-dir",
        help="data set folder (default: the one the run was trained on, else "
        "$HORSES_HUMANS_DATA, else the per-user cache); the run's own split is used",
    )


def run_data_dir(args) -> Path | None:
    """--data-dir as given, or None: the run's own data folder."""
    return Path(args.data_dir).expanduser() if args.data_dir else None


def add_cache_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--cache-dir",
        type=Path,
        help="cache root for decoded pixels and backbone features (default: $HORSES_HUMANS_CACHE, else "
        "~/.cache/horses-humans)",
    )


def add_checkpoint(p: argparse.ArgumentParser, default_text: str = "best") -> None:
    p.add_argument(
        "--checkpoint",
        choices=["best", "last"],
        help=f"which saved epoch: best (highest validation accuracy) or last (default: {default_text})",
    )


def build_parser() -> argparse.ArgumentParser:
    """The whole command-line interface."""
    parser = argparse.ArgumentParser(
        prog="horses-humans", description="Train, evaluate and use Horses-or-Humans image classifiers."
    )
    parser.add_argument("--version", action="version", version=f"horses-humans {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = sub.add_parser("data", help="get and check the data set").add_subparsers(
        dest="data_command", required=True, metavar="ACTION"
    )
    p = data.add_parser("download", help="download the official zips (sha256-verified) and unpack them")
    add_data_dir(p)
    p = data.add_parser(
        "import",
        help="import a local zip or folder: a whole data set in any layout (it replaces the "
        "data folder's), or one official split's class folders (--split)",
    )
    p.add_argument("path", type=Path)
    p.add_argument(
        "--split",
        choices=["horse-or-human", "validation-horse-or-human"],
        help="PATH holds this official split's class folders (default: only for a zip or folder named after it)",
    )
    p.add_argument(
        "--max-bytes",
        type=int,
        metavar="BYTES",
        help="refuse an import whose images unpack to more than this (default: 2 GiB)",
    )
    p.add_argument(
        "--max-files",
        type=int,
        metavar="N",
        help="refuse a zip or folder holding more files and folders than this (default: 50000)",
    )
    add_data_dir(p)
    p = data.add_parser(
        "check",
        help="layout, per-class counts per split, sizes, modes, unreadable files, duplicates "
        "(also across classes), leakage, balance",
    )
    add_data_dir(p)
    p.add_argument("--json", action="store_true", help="print the report as JSON")

    from ..models.backbones import BACKBONES
    from ..models.recipes import RECIPES

    p = sub.add_parser("train", help="train a recipe and write a run directory")
    add_config_options(p, TrainConfig, choices={"recipe": sorted(RECIPES)})  # one option per TrainConfig field
    add_data_dir(p)
    add_cache_dir(p)
    p.add_argument("--runs-dir", help="where run directories go (default: $HORSES_HUMANS_RUNS, else ./runs)")
    p.add_argument(
        "--resume",
        type=Path,
        metavar="RUN",
        help="continue an interrupted run from its last completed epoch, with its recorded options and data folder",
    )
    t = p.add_argument_group("tracking (optional extras)")
    t.add_argument(
        "--tensorboard", action="store_true", help="TensorBoard logs in RUN/tensorboard (extra: tensorboard)"
    )
    t.add_argument(
        "--mlflow",
        action="store_true",
        help="an MLflow run: params, metrics per epoch, the run directory as "
        "artefacts; $MLFLOW_TRACKING_URI, else RUNS_DIR/mlflow (extra: mlflow)",
    )

    p = sub.add_parser(
        "evaluate", help="metrics, confusion matrix and a per-image CSV on the run's validation (or test) split"
    )
    p.add_argument("run", type=Path)
    images = p.add_mutually_exclusive_group()
    images.add_argument(
        "--split",
        choices=["validation", "test"],
        default="validation",
        help="which of the run's splits (default: validation; test needs a DIR/test/ folder)",
    )
    images.add_argument(
        "--data", type=Path, metavar="DIR", help="any folder of class folders named after the run's classes"
    )
    add_checkpoint(p)
    add_run_data_dir(p)
    add_cache_dir(p)
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")

    p = sub.add_parser(
        "calibrate",
        help="fit the run's temperature on its validation images (training does it too) "
        "into RUN/calibration.json: every served probability is then calibrated",
    )
    p.add_argument("run", type=Path)
    add_run_data_dir(p)
    add_cache_dir(p)

    p = sub.add_parser(
        "predict", help="label and probability for images or folders (walked recursively), written as they come"
    )
    p.add_argument("run", type=Path)
    p.add_argument("paths", type=Path, nargs="+", metavar="IMAGE_OR_DIR")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="a JSON array (same as --format json)")
    fmt.add_argument("--csv", action="store_true", help="CSV (same as --format csv)")
    fmt.add_argument(
        "--format",
        choices=["table", "csv", "jsonl", "json"],
        help="output format (default: from --output's extension, .csv/.jsonl/.json, else a table)",
    )
    p.add_argument(
        "--output",
        type=Path,
        help="write the rows to this file as they come (flushed after every batch: "
        "a killed run keeps them) instead of stdout",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run's --output file: files already in it are skipped, nothing is written twice",
    )
    p.add_argument("--batch-size", type=int, default=32, help="images per model call (default: 32)")
    p.add_argument("--workers", type=int, help="threads decoding images (default: one per CPU)")
    p.add_argument(
        "--max-pixels",
        type=int,
        default=DEFAULT_MAX_PIXELS,
        metavar="N",
        help=f"refuse an image whose header announces more than N pixels (width x height) before decoding it: an "
        f"error row, like the server's limit (default: {DEFAULT_MAX_PIXELS:,}; a decode holds ~9 bytes a pixel)",
    )
    p.add_argument(
        "--runtime",
        choices=["auto", "keras", "onnx", "tflite"],
        default="auto",
        help="what runs the model: auto (default: the run's fastest parity-checked full-precision export, "
        "else Keras), keras, or the onnx / tflite export (make one with `export`)",
    )
    p.add_argument(
        "--strict", action="store_true", help="exit 1 if any file could not be predicted (default: only if none could)"
    )
    p.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="local: this process; ray: a Ray Data pipeline, the same formats (CSV on stdout unless told) and "
        "Parquet with --output FILE.parquet (needs the [ray] extra; see docs/ray.md)",
    )
    p.add_argument(
        "--address", metavar="ADDR", help="with --engine ray: an existing Ray cluster (default: a local one)"
    )
    add_checkpoint(p)

    p = sub.add_parser(
        "unsure",
        help='fit the run\'s "unsure" rule again on its validation split (at most 2%% unsure), '
        "store it in RUN/calibration.json and print it",
    )
    p.add_argument("run", type=Path)
    add_run_data_dir(p)
    add_cache_dir(p)

    p = sub.add_parser(
        "serve", help="web service: upload page, REST API (/v1/predict, /v1/model, /healthz), OpenAPI docs at /docs"
    )
    p.add_argument(
        "run",
        type=Path,
        nargs="?",
        help="run directory (default: $HORSES_HUMANS_SERVE_RUN, else the best run in the runs directory)",
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

    p = sub.add_parser(
        "report", help="RUN/report/report.html: samples, augmentation, curves, activations, Grad-CAM, metrics, mistakes"
    )
    p.add_argument("run", type=Path)
    add_run_data_dir(p)
    add_cache_dir(p)
    p.add_argument(
        "--compare",
        type=Path,
        nargs="+",
        default=[],
        metavar="RUN",
        help="other runs whose training curves are overlaid",
    )
    add_checkpoint(p)

    p = sub.add_parser("explain", help="activation tiles and a Grad-CAM overlay (PNG) for one image")
    p.add_argument("run", type=Path)
    p.add_argument("image", type=Path)
    p.add_argument(
        "--layer", help="layer for Grad-CAM, nested as backbone/NAME (default: the recipe's last conv layer)"
    )
    p.add_argument("--class", dest="class_name", metavar="NAME", help="explain this class (default: the predicted one)")
    p.add_argument("--out", type=Path, help="folder for the PNGs (default: RUN/explain)")
    add_checkpoint(p)

    from ..export.pipeline import FORMATS, QUANTIZE

    p = sub.add_parser(
        "export",
        help="export a run's model (keras, savedmodel, tflite, web, onnx, tflite_labels), each checked against the "
        "Keras model",
    )
    p.add_argument("run", type=Path)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument(  # no argparse choices: check_request answers an unknown format in one error line
        "--format",
        metavar="FORMAT",
        help=f"{' | '.join(FORMATS)}: web is ONNX + a static page; onnx one self-describing file (uint8 in, calibrated "
        "probabilities out, classes in its metadata); tflite_labels model.tflite + labels.txt of that same model",
    )
    which.add_argument(
        "--all",
        action="store_true",
        help="every format and quantization; prints the trade-off table and writes RUN/export/exports.md",
    )
    p.add_argument(
        "--quantize",
        default="none",
        choices=QUANTIZE,
        help="tflite: none, float16, dynamic (int8 weights) or int8 (calibrated on training images); tflite_labels: "
        "none, float16 or dynamic; web: none or dynamic",
    )
    p.add_argument("--latency-runs", type=int, default=50, help="single-image calls timed per export (default 50)")
    add_checkpoint(p)
    add_run_data_dir(p)
    add_cache_dir(p)

    p = sub.add_parser("weights", help="pretrained backbone weights").add_subparsers(
        dest="weights_command", required=True, metavar="ACTION"
    )
    w = p.add_parser(
        "install",
        help="check a weights file loads into a backbone, then copy it into the Keras cache under its official name",
    )
    w.add_argument("file", type=Path)
    w.add_argument("--backbone", required=True, choices=sorted(BACKBONES))
    w.add_argument("--alpha", type=float, default=0.35, help="MobileNetV2 width of the file (default 0.35)")

    p = sub.add_parser(
        "card", help="write RUN/MODEL_CARD.md (model details, uses, data, results, limitations) and print it"
    )
    p.add_argument("run", type=Path)

    p = sub.add_parser(
        "runs", help="list finished runs as a Markdown results table (damaged ones skipped with a warning)"
    )
    p.add_argument("--runs-dir", help="default: $HORSES_HUMANS_RUNS, else ./runs")
    p.add_argument(
        "--all",
        action="store_true",
        help="also list unfinished and damaged runs (with why) and leftover temporary files",
    )

    p = sub.add_parser("compare", help="several runs side by side: Markdown/HTML table and overlaid training curves")
    p.add_argument("runs", type=Path, nargs="+", metavar="RUN")
    p.add_argument(
        "--out",
        type=Path,
        default=Path("compare"),
        help="folder for compare.md, compare.html, curves.png (default: ./compare)",
    )

    p = sub.add_parser("experiment", help="the reference's experiments").add_subparsers(
        dest="experiment_command", required=True, metavar="ACTION"
    )
    e = p.add_parser(
        "reproduce",
        help="train a file of experiments (default: the reference's) over several seeds (resumable), then write a "
        "results document",
    )
    e.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 per experiment (default 3)")
    e.add_argument(
        "--experiments",
        type=Path,
        metavar="FILE",
        help="a TOML file of experiments, same schema as the default: the package's experiments.toml (the reference's)",
    )
    e.add_argument("--only", metavar="NAME[,NAME]", help="only these experiments of the file (by name)")
    e.add_argument("--epochs", type=int, help="default: each recipe's")
    e.add_argument(
        "--image-size", type=int, help="for experiments that set no size of their own (default: each recipe's)"
    )
    e.add_argument("--batch-size", type=int, help=f"default {TrainConfig.batch_size}")
    e.add_argument("--precision", choices=PRECISIONS, help=f"default {TrainConfig.precision}")
    e.add_argument(
        "--runs-dir",
        help="where the runs are found and written (default: $HORSES_HUMANS_RUNS/reproduce, else ./runs/reproduce)",
    )
    e.add_argument(
        "--out", type=Path, default=Path("docs/reproduce.md"), help="the results document (default: docs/reproduce.md)"
    )
    e.add_argument(
        "--dry-run", action="store_true", help="print which runs exist and which would be trained; train nothing"
    )
    add_data_dir(e)
    add_cache_dir(e)
    e = p.add_parser(
        "sweep", help="Optuna sweep of the baseline CNN's architecture (conv layers, filters, kernel); resumable"
    )
    e.add_argument("--trials", type=int, default=12, help="finished trials to reach (default 12)")
    e.add_argument("--epochs", type=int, default=10, help="epochs per trial (default 10)")
    e.add_argument("--seed", type=int, default=0, help="seeds the sampler and every trial's training (default 0)")
    e.add_argument("--image-size", type=int, help="default 150")
    e.add_argument("--precision", default=TrainConfig.precision, choices=PRECISIONS)
    e.add_argument("--runs-dir", default="runs/sweep", help="trial runs and study.db (default runs/sweep)")
    e.add_argument(
        "--out", type=Path, default=Path("docs/sweep.md"), help="the results document (default docs/sweep.md)"
    )
    add_data_dir(e)
    add_cache_dir(e)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point: every user-fixable error is one line on stderr and exit status 2."""
    configure()  # before anything can import TensorFlow
    with quiet_native_stderr():  # should a module the parser reads import TensorFlow, its start-up notices stay hidden
        parser = build_parser()
    try:
        args = parser.parse_args(argv)  # a comma-separated option's bad value raises HorsesHumansError here
        if needs_backend(args):
            import_backend()
        return COMMANDS[args.command](args)
    except HorsesHumansError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of stdout went away (`predict ... | head`): nothing more to say to it
        discard_stdout()
        return SIGPIPE_STATUS


SIGPIPE_STATUS = 128 + 13  # what a shell reports for a command that SIGPIPE ended (`yes | head`: 141)


def discard_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush of what it still holds raises nothing."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def needs_backend(args) -> bool:
    """Whether the command's modules import TensorFlow: then it is imported first, its start-up chatter hidden."""
    if args.command == "data":
        return args.data_command == "download"  # kept for tests/cli/test_cli.py's contract; download needs no Keras now
    return args.command not in ("runs", "card", "predict")  # predict imports it itself, only when Keras answers


def cmd_data(args) -> int:
    from ..data import download, importing, importplan

    data_dir = resolve_data_dir(args.data_dir)
    if args.data_command == "download":
        download.download(data_dir)
    elif args.data_command == "import":
        importing.import_path(
            args.path, data_dir, args.split, limits=importplan.ImportLimits.given(args.max_bytes, args.max_files)
        )
    else:
        from ..data.check import check_dataset, format_report

        report = check_dataset(data_dir)
        print(json.dumps(report, indent=2) if args.json else format_report(report))
        return 1 if report["problems"] else 0
    return 0


def cmd_train(args) -> int:
    from ..core.workspace import Workspace
    from ..training.loop import resume_run, train

    if args.resume:
        check_resume_options(args)
        resume_run(
            args.resume,
            args.data_dir and Path(args.data_dir).expanduser(),
            args.cache_dir,
            tensorboard=args.tensorboard,
            mlflow=args.mlflow,
        )
        return 0
    config = config_from_args(TrainConfig, args)
    workspace = Workspace.from_env(args.data_dir, args.runs_dir, args.cache_dir)
    train(config, workspace, tensorboard=args.tensorboard, mlflow=args.mlflow)
    return 0


def check_resume_options(args) -> None:
    """One error naming every option given with --resume that differs from the run's recorded config."""
    from ..training.resume import given_options, option_conflicts, resumable_config

    conflicts = option_conflicts(given_options(args), resumable_config(args.resume))
    if args.runs_dir and Path(args.runs_dir).expanduser().resolve() != args.resume.resolve().parent:
        conflicts.append(f"--runs-dir {args.runs_dir} (the run is in {args.resume.resolve().parent})")
    if conflicts:
        raise HorsesHumansError(
            f"--resume {args.resume}: {'; '.join(conflicts)}: a resumed run keeps its recorded "
            "options; drop these, or start a new run without --resume."
        )


def cmd_evaluate(args) -> int:
    from ..analysis.evaluation import evaluate_run, format_metrics, metrics_json

    log = lambda line: print(line, file=sys.stderr)  # noqa: E731  (stdout stays pure JSON with --json)
    metrics = evaluate_run(
        args.run, run_data_dir(args), args.cache_dir, log, side=args.split, data=args.data, checkpoint=args.checkpoint
    )
    print(metrics_json(metrics) if args.json else format_metrics(metrics))
    return 0


def cmd_calibrate(args) -> int:
    from ..inference.calibration import calibrate_run, format_calibration

    print(format_calibration(calibrate_run(args.run, run_data_dir(args), args.cache_dir)))
    return 0


def cmd_unsure(args) -> int:
    from ..inference.predictor import refit_unsure

    print(refit_unsure(args.run, run_data_dir(args), args.cache_dir, lambda line: print(line, file=sys.stderr)))
    return 0


def cmd_predict(args) -> int:
    from ..config import check_positive

    check_positive("batch_size", args.batch_size)
    check_positive("workers", args.workers)
    check_positive("max_pixels", args.max_pixels)
    fmt = "json" if args.json else "csv" if args.csv else args.format
    if args.engine == "ray" or args.address:  # a Ray Data pipeline instead (rayengine.py; Ray is an optional extra)
        return predict_on_ray(args, fmt)
    from ..core.progress import ProgressBar
    from ..inference.predictor import Predictor, predict_paths
    from ..inference.resultfiles import check_output, choose_format, model_stamp, open_results, printable
    from ..runs.store import load_run

    fmt = choose_format(fmt, args.output)
    run = load_run(args.run, args.checkpoint)
    # what answers (--resume continues only its own file); Predictor.from_run below says auto's warnings, once
    model = model_stamp(run, args.checkpoint, args.runtime, warn=lambda line: None)
    check_output(args.output, fmt, args.resume, run.class_names, model)  # before the model loads
    predictor = Predictor.from_run(run, args.checkpoint, args.runtime)  # imports TensorFlow only for Keras
    log = lambda line: print(printable(line), file=sys.stderr)  # noqa: E731  (stdout: only rows; names: no ESC)
    log(f"answering with {predictor.source}")
    with (
        open_results(args.output, fmt, predictor.class_names, model, args.resume) as writer,
        ProgressBar("predicting") as progress,
    ):  # drawn only on a terminal: stdout stays clean for --json/--csv
        tally = predict_paths(
            predictor, args.paths, writer, args.batch_size, args.workers, progress, log, args.max_pixels
        )
    log(tally.summary(args.output))
    return tally.exit_status(args.strict)


def predict_on_ray(args, fmt: str | None) -> int:
    """`predict --engine ray`: the parsed options as a RayPredict, refused in one line where they do not apply."""
    if args.engine != "ray":
        raise HorsesHumansError(f"--address {args.address}: a cluster address needs --engine ray.")
    if args.resume:
        raise HorsesHumansError(
            "--resume: --engine ray writes its output whole, at the end; resume with --engine local."
        )
    from ..inference.rayengine import RayPredict, cmd_predict_ray

    request = RayPredict(
        args.run,
        args.paths,
        args.output,
        fmt,
        args.checkpoint,
        args.runtime,
        args.workers,
        args.address,
        args.batch_size,
        args.max_pixels,
        args.strict,
    )
    return cmd_predict_ray(request)


def cmd_serve(args) -> int:
    from pydantic import ValidationError

    from ..inference.runtimes import open_export
    from ..runs.store import servable_run
    from ..serve.errors import validation_problems
    from ..serve.server import serve
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
        settings = ServeSettings(**{k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:
        raise HorsesHumansError(
            f"serve settings (options or HORSES_HUMANS_SERVE_* variables): {validation_problems(exc)}"
        ) from None
    # the model is loaded and checked here: a bad run is one error line (exit 2) before the server starts
    run = servable_run(settings.run, resolve_runs_dir(settings.runs_dir), settings.checkpoint)
    open_export(run.path, run.checkpoint_path().name, settings.runtime, warn=lambda line: None)  # the app warns
    settings = settings.model_copy(update={"run": run.path})
    print(f"serving {run.path} on http://{settings.host}:{settings.port}/ (API docs: /docs)", file=sys.stderr)
    serve(settings)
    return 0


def cmd_report(args) -> int:
    from ..analysis.report import write_report

    print(
        f"wrote {write_report(args.run, run_data_dir(args), args.cache_dir, args.compare, checkpoint=args.checkpoint)}"
    )
    return 0


def cmd_explain(args) -> int:
    from ..analysis.explain import write_explanation

    result = write_explanation(args.run, args.image, args.layer, args.out, args.class_name, args.checkpoint)
    chosen = f"; Grad-CAM of {result['explained']}" if args.class_name else ""
    print(f"{args.image}: {result['label']} (probability {result['probability']:.4f}){chosen}")
    print("\n".join(f"wrote {path}" for path in result["paths"]))
    return 0


def cmd_card(args) -> int:
    from ..runs.modelcard import write_model_card

    path = write_model_card(args.run)
    print(path.read_text(), end="")
    print(f"wrote {path}", file=sys.stderr)
    return 0


def cmd_runs(args) -> int:
    from ..core.tables import results_table, run_problems_table
    from ..runs.store import list_runs, run_problems, unfinished_runs, warn

    runs_dir = resolve_runs_dir(args.runs_dir)
    print(results_table(list_runs(runs_dir, log=(lambda line: None) if args.all else warn)))  # --all: in its table
    if args.all:
        print(f"\nNot listed above (in {runs_dir}):\n\n{run_problems_table(run_problems(runs_dir))}")
    elif unfinished := unfinished_runs(runs_dir):
        warn(f"note: {len(unfinished)} unfinished run(s) not listed: `horses-humans runs --all` says which and why")
    return 0


def cmd_compare(args) -> int:
    from ..analysis.compare import write_comparison

    markdown, paths = write_comparison(args.runs, args.out)
    print(markdown, end="")
    print("\n".join(f"wrote {path}" for path in paths), file=sys.stderr)  # stdout stays pure Markdown
    return 0


def cmd_experiment(args) -> int:
    from ..core.progress import ProgressBar

    if args.experiment_command == "sweep":
        from ..experiments.sweep import run_sweep
        from ..models.recipes import resolve
        from ..training.loop import train

        base = resolve(
            TrainConfig(
                recipe="baseline",
                epochs=args.epochs,
                seed=args.seed,
                image_size=args.image_size,
                precision=args.precision,
            )
        )
        run_sweep(
            args.trials, base, resolve_data_dir(args.data_dir), Path(args.runs_dir), args.cache_dir, args.out, train
        )
        return 0
    from ..experiments.reproduce import load_experiments, reproduce, reproduce_runs_dir

    given = {
        "epochs": args.epochs,
        "image_size": args.image_size,
        "batch_size": args.batch_size,
        "precision": args.precision,
    }
    with ProgressBar("experiment runs", transient=True) as progress:  # erased at the end: the lines tell the story
        reproduce(
            load_experiments(args.experiments),
            args.seeds,
            {k: v for k, v in given.items() if v is not None},
            reproduce_runs_dir(args.runs_dir),
            resolve_data_dir(args.data_dir),
            args.cache_dir,
            args.out,
            args.only,
            args.dry_run,
            log=progress_from_log(progress),
        )
    return 0


def progress_from_log(progress: Callable[[int, int], None]) -> Callable[[str], None]:
    """A log function that prints each line and moves `progress` on at each '[i/n] ...' line of a planned run."""

    def log(line: str) -> None:
        print(line)
        found = re.match(r"\[(\d+)/(\d+)\] ", line)
        if found:  # the line comes before run i trains: i - 1 are done
            progress(int(found[1]) - 1, int(found[2]))

    return log


def cmd_export(args) -> int:
    from ..config import check_positive
    from ..core.progress import ProgressBar
    from ..core.tables import exports_markdown, write_exports_markdown
    from ..export.pipeline import ALL, check_request, export_all, open_source

    check_positive("latency_runs", args.latency_runs)
    if args.all and args.quantize != "none":
        raise HorsesHumansError("--all exports every quantization already; leave out --quantize.")
    requests = ALL if args.all else [(args.format, args.quantize)]
    for request in requests:
        check_request(*request)  # a bad combination fails here, before the model is loaded
    log = lambda line: print(line, file=sys.stderr)  # noqa: E731  (stdout stays pure Markdown)
    source = open_source(args.run, run_data_dir(args), args.cache_dir, log, args.checkpoint)
    results = []
    with ProgressBar("exports") as progress:
        for i, request in enumerate(requests):
            progress(i, len(requests))
            results += export_all(source, [request], args.latency_runs)
        progress(len(requests), len(requests))
    if args.all:  # the whole trade-off table is kept in RUN/export/exports.md
        table, path = write_exports_markdown(source, results)
        log(f"wrote {path}")
    else:
        table = exports_markdown(source, results)
    print(table, end="")
    return 0 if all(r.shipped for r in results) else 1


def cmd_weights(args) -> int:
    from ..models.weights import install_weights

    print(f"installed {install_weights(args.file, args.backbone, args.alpha)}")
    return 0


COMMANDS = {
    "weights": cmd_weights,
    "data": cmd_data,
    "train": cmd_train,
    "evaluate": cmd_evaluate,
    "calibrate": cmd_calibrate,
    "predict": cmd_predict,
    "runs": cmd_runs,
    "report": cmd_report,
    "explain": cmd_explain,
    "compare": cmd_compare,
    "experiment": cmd_experiment,
    "serve": cmd_serve,
    "export": cmd_export,
    "card": cmd_card,
    "unsure": cmd_unsure,
}

if __name__ == "__main__":
    sys.exit(main())
