"""`data` (download, import, check) and `weights install`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..config import DEFAULT_REJECT_CLASS, resolve_data_dir
from .common import add_data_dir, log


def add_data(sub) -> None:
    """`data download | import | check`."""
    data = sub.add_parser("data", help="get and check the data set")
    data.set_defaults(handler=cmd_data)
    actions = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    p = actions.add_parser("download", help="download the official zips (sha256-verified) and unpack them")
    add_data_dir(p)
    add_import(actions)
    p = actions.add_parser(
        "check",
        help="layout, per-class counts per split, sizes, modes, unreadable files, duplicates "
        "(also across classes), leakage, balance",
    )
    add_data_dir(p)
    p.add_argument(
        "--reject-class",
        default=DEFAULT_REJECT_CLASS,
        metavar="NAME",
        help="the class folder `train --reject-class` will be given (default neither): checked to be there",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")


def add_import(actions) -> None:
    p = actions.add_parser(
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


def add_weights(sub) -> None:
    """`weights install`."""
    from ..models.backbones import BACKBONES

    p = sub.add_parser("weights", help="pretrained backbone weights")
    p.set_defaults(handler=cmd_weights)
    w = p.add_subparsers(dest="weights_command", required=True, metavar="ACTION").add_parser(
        "install",
        help="check a weights file loads into a backbone, then copy it into the Keras cache under its official name",
    )
    w.add_argument("file", type=Path)
    w.add_argument("--backbone", required=True, choices=sorted(BACKBONES))
    w.add_argument("--alpha", type=float, default=0.35, help="MobileNetV2 width of the file (default 0.35)")


def cmd_data(args: argparse.Namespace) -> int:
    from ..data import download, importing, importplan

    data_dir = resolve_data_dir(args.data_dir)
    if args.data_command == "download":
        download.download(data_dir, log=log)
    elif args.data_command == "import":
        limits = importplan.ImportLimits.given(args.max_bytes, args.max_files)
        importing.import_path(args.path, data_dir, args.split, log=log, limits=limits)
    else:
        from ..data.check import check_dataset, format_report

        report = check_dataset(data_dir, reject_class=args.reject_class)
        print(json.dumps(report, indent=2) if args.json else format_report(report))
        return 1 if report["problems"] else 0
    return 0


def cmd_weights(args: argparse.Namespace) -> int:
    from ..models.weights import install_weights

    print(f"installed {install_weights(args.file, args.backbone, args.alpha)}")
    return 0
