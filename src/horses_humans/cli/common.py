"""Options several commands share (RUN, data, cache and runs folders, checkpoint), and where their lines go."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

logger = logging.getLogger(__name__)


RUN_HELP = "a run folder, its name in the runs folder (--runs-dir), or latest (the newest finished run)"
RUNS_DIR_HELP = "the runs folder RUN names and latest are looked up in (default: $HORSES_HUMANS_RUNS, else ./runs)"


def add_run(p: argparse.ArgumentParser, *more: str) -> None:
    """The RUN argument and --runs-dir; `more`: other arguments of the command that name runs too (e.g. --compare)."""
    p.add_argument("run", type=Path, help=RUN_HELP)
    p.add_argument("--runs-dir", help=RUNS_DIR_HELP)
    p.set_defaults(run_args=("run", *more))


def find_runs(args: argparse.Namespace) -> None:
    """Replace each RUN argument the command declared (args.run_args) by the run folder it names: a path, a name in
    --runs-dir, or latest (runs.names.find_run); one that names nothing is one error line saying what was tried."""
    from ..runs.names import find_run

    runs_dir = getattr(args, "runs_dir", None)
    for name in getattr(args, "run_args", ()):
        value = getattr(args, name)
        if isinstance(value, list):
            setattr(args, name, [find_run(run, runs_dir) for run in value])
        elif value is not None:
            setattr(args, name, find_run(value, runs_dir))


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


def log(line: str) -> None:
    """A progress or info line for the user: to the logging module, which the CLI sends to stderr (stdout carries
    only results)."""
    logger.info(line)
