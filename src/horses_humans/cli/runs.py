"""Commands that read finished runs: `runs`, `compare`, `report` and `card`."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..config import resolve_runs_dir
from .common import RUN_HELP, RUNS_DIR_HELP, add_cache_dir, add_checkpoint, add_run, add_run_data_dir, log, run_data_dir


def add_report(sub) -> None:
    p = sub.add_parser(
        "report", help="RUN/report/report.html: samples, augmentation, curves, activations, Grad-CAM, metrics, mistakes"
    )
    p.set_defaults(handler=cmd_report)
    add_run(p, "compare")
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


def add_card(sub) -> None:
    p = sub.add_parser(
        "card", help="write RUN/MODEL_CARD.md (model details, uses, data, results, limitations) and print it"
    )
    p.set_defaults(handler=cmd_card)
    add_run(p)


def add_runs(sub) -> None:
    p = sub.add_parser(
        "runs", help="list finished runs as a Markdown results table (damaged ones skipped with a warning)"
    )
    p.set_defaults(handler=cmd_runs)
    p.add_argument("--runs-dir", help="default: $HORSES_HUMANS_RUNS, else ./runs")
    p.add_argument(
        "--all",
        action="store_true",
        help="also list unfinished and damaged runs (with why) and leftover temporary files",
    )


def add_compare(sub) -> None:
    p = sub.add_parser("compare", help="several runs side by side: Markdown/HTML table and overlaid training curves")
    p.set_defaults(handler=cmd_compare)
    p.add_argument("runs", type=Path, nargs="+", metavar="RUN", help=RUN_HELP)
    p.add_argument("--runs-dir", help=RUNS_DIR_HELP)
    p.set_defaults(run_args=("runs",))
    p.add_argument(
        "--out",
        type=Path,
        default=Path("compare"),
        help="folder for compare.md, compare.html, curves.png (default: ./compare)",
    )


def cmd_report(args: argparse.Namespace) -> int:
    from ..analysis.report import write_report

    path = write_report(args.run, run_data_dir(args), args.cache_dir, args.compare, log=log, checkpoint=args.checkpoint)
    print(f"wrote {path}")  # the result: where the report is
    return 0


def cmd_card(args: argparse.Namespace) -> int:
    from ..runs.modelcard import write_model_card

    path = write_model_card(args.run)
    print(path.read_text(), end="")
    log(f"wrote {path}")
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    from ..core.tables import results_table, run_problems_table
    from ..runs.store import list_runs, run_problems, unfinished_runs, warn

    runs_dir = resolve_runs_dir(args.runs_dir)
    print(results_table(list_runs(runs_dir, log=(lambda line: None) if args.all else warn)))  # --all: in its table
    if args.all:
        print(f"\nNot listed above (in {runs_dir}):\n\n{run_problems_table(run_problems(runs_dir))}")
    elif unfinished := unfinished_runs(runs_dir):
        warn(f"note: {len(unfinished)} unfinished run(s) not listed: `horses-humans runs --all` says which and why")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from ..analysis.compare import write_comparison

    markdown, paths = write_comparison(args.runs, args.out)
    print(markdown, end="")  # stdout stays pure Markdown
    for path in paths:
        log(f"wrote {path}")
    return 0
