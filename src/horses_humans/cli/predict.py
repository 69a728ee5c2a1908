"""Commands that answer with a run's model: `predict`, `evaluate`, `calibrate`, `unsure` and `explain`."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..config import DEFAULT_MAX_PIXELS
from .common import add_cache_dir, add_checkpoint, add_run, add_run_data_dir, log, run_data_dir

RUNTIMES = ["auto", "keras", "onnx", "tflite"]


def add_evaluate(sub) -> None:
    p = sub.add_parser(
        "evaluate", help="metrics, confusion matrix and a per-image CSV on the run's validation (or test) split"
    )
    p.set_defaults(handler=cmd_evaluate)
    add_run(p)
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


def add_calibrate(sub) -> None:
    p = sub.add_parser(
        "calibrate",
        help="choose and fit the run's calibration on its validation images (training does it too) "
        "into RUN/calibration.json: every served probability is then calibrated",
    )
    p.set_defaults(handler=cmd_calibrate)
    add_run(p)
    p.add_argument(
        "--method",
        choices=("auto", "best", "none", "temperature", "temperature+bias", "vector"),
        default="auto",
        help="auto: none or temperature (they keep every label), whichever has the lower held-out log-loss over 5 "
        "folds of validation; best: the same choice among every method (a bias or per-class scale can move labels); "
        "or fit this one (temperature+bias: two classes; vector: three or more; none: the model's own probabilities)",
    )
    add_run_data_dir(p)
    add_cache_dir(p)


def add_predict(sub) -> None:
    p = sub.add_parser(
        "predict", help="label and probability for images or folders (walked recursively), written as they come"
    )
    p.set_defaults(handler=cmd_predict)
    add_run(p)
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
        choices=RUNTIMES,
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


def add_unsure(sub) -> None:
    p = sub.add_parser(
        "unsure",
        help='fit the run\'s "unsure" rule again on its validation split (at most 2%% unsure), '
        "store it in RUN/calibration.json and print it",
    )
    p.set_defaults(handler=cmd_unsure)
    add_run(p)
    p.add_argument(
        "--min-confidence",
        metavar="auto|off|TAU",
        type=checked_min_confidence,
        help="how tau is chosen from now on: auto (the largest leaving at most 2%% of validation unsure), off (unsure "
        "only by the 'none of these' class and the distance check) or a probability in (0, 1) "
        "(default: the run's choice, train --min-confidence)",
    )
    add_run_data_dir(p)
    add_cache_dir(p)


def add_explain(sub) -> None:
    p = sub.add_parser("explain", help="activation tiles and a Grad-CAM overlay (PNG) for one image")
    p.set_defaults(handler=cmd_explain)
    add_run(p)
    p.add_argument("image", type=Path)
    p.add_argument(
        "--layer", help="layer for Grad-CAM, nested as backbone/NAME (default: the recipe's last conv layer)"
    )
    p.add_argument("--class", dest="class_name", metavar="NAME", help="explain this class (default: the predicted one)")
    p.add_argument("--out", type=Path, help="folder for the PNGs (default: RUN/explain)")
    add_checkpoint(p)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ..analysis.evaluation import EvalSplit, evaluate_run, format_metrics, metrics_json

    split = EvalSplit(args.split, run_data_dir(args), args.data)
    metrics = evaluate_run(args.run, split, args.checkpoint, args.cache_dir, log)
    print(metrics_json(metrics) if args.json else format_metrics(metrics))
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from ..inference.calibration import calibrate_run, format_calibration

    print(format_calibration(calibrate_run(args.run, run_data_dir(args), args.cache_dir, log=log, method=args.method)))
    log("the unsure rule is fitted on calibrated probabilities: `horses-humans unsure RUN` fits it again")
    return 0


def checked_min_confidence(value: str) -> str:
    """--min-confidence checked as argparse reads it (a bad one: one usage line, before any model is loaded)."""
    from ..config import HorsesHumansError, parse_min_confidence

    try:
        return str(parse_min_confidence(value))
    except HorsesHumansError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--min-confidence ")) from None


def cmd_unsure(args: argparse.Namespace) -> int:
    from ..inference.predictor import refit_unsure

    print(refit_unsure(args.run, run_data_dir(args), args.cache_dir, log, args.min_confidence))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from ..core.progress import ProgressBar
    from ..inference.predictfiles import PredictRequest, predict_to_output

    request = PredictRequest(
        run=args.run,
        paths=args.paths,
        output=args.output,
        fmt="json" if args.json else "csv" if args.csv else args.format,
        checkpoint=args.checkpoint,
        runtime=args.runtime,
        batch_size=args.batch_size,
        workers=args.workers,
        max_pixels=args.max_pixels,
        resume=args.resume,
        strict=args.strict,
        engine=args.engine,
        address=args.address,
    )
    with ProgressBar("predicting") as progress:  # drawn only on a terminal: stdout stays clean for --json/--csv
        return predict_to_output(request, progress, log)


def cmd_explain(args: argparse.Namespace) -> int:
    from ..analysis.explain import write_explanation

    result = write_explanation(args.run, args.image, args.layer, args.out, args.class_name, args.checkpoint)
    chosen = f"; Grad-CAM of {result['explained']}" if args.class_name else ""
    print(f"{args.image}: {result['label']} (probability {result['probability']:.4f}){chosen}")
    print("\n".join(f"wrote {path}" for path in result["paths"]))
    return 0
