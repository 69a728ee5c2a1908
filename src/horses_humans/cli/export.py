"""`export`: one format, or every format and quantization with the trade-off table."""

from __future__ import annotations

import argparse

from .common import add_cache_dir, add_checkpoint, add_run, add_run_data_dir, log, run_data_dir


def add_export(sub) -> None:
    from ..export.formats import FORMATS, QUANTIZE

    p = sub.add_parser(
        "export",
        help=f"export a run's model ({', '.join(FORMATS)}), each checked against the Keras model",
    )
    p.set_defaults(handler=cmd_export)
    add_run(p)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument(  # no argparse choices: check_request answers an unknown format in one error line
        "--format",
        metavar="FORMAT",
        help=f"{' | '.join(FORMATS)}: web is ONNX + a static page; onnx one self-describing file (uint8 in, calibrated "
        "probabilities out, classes in its metadata); tflite_labels model.tflite + labels.txt of that same model; tfjs "
        "a TF.js graph model of it (the official converter, in a venv of its own built on first use: ~1 min, 3 GB)",
    )
    which.add_argument(
        "--all",
        action="store_true",
        help="every format and quantization but tfjs; prints the trade-off table and writes RUN/export/exports.md",
    )
    p.add_argument(
        "--quantize",
        default="none",
        choices=QUANTIZE,
        help="tflite: none, float16, dynamic (int8 weights) or int8 (calibrated on training images); tflite_labels: "
        "none, float16 or dynamic; web: none or dynamic; tfjs: none or float16",
    )
    p.add_argument("--latency-runs", type=int, default=50, help="single-image calls timed per export (default 50)")
    add_checkpoint(p)
    add_run_data_dir(p)
    add_cache_dir(p)


def cmd_export(args: argparse.Namespace) -> int:
    from ..config import check_positive
    from ..core.progress import ProgressBar
    from ..export.requests import export_requests, export_run

    check_positive("latency_runs", args.latency_runs)
    requests = export_requests(args.format, args.quantize, every=args.all)  # before the model loads
    with ProgressBar("exports") as progress:
        report = export_run(
            args.run,
            requests,
            data_dir=run_data_dir(args),
            cache_dir=args.cache_dir,
            checkpoint=args.checkpoint,
            latency_runs=args.latency_runs,
            log=log,
            progress=progress,
        )
    print(report.table, end="")  # stdout stays pure Markdown
    return 0 if report.shipped else 1
