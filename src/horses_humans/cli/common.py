"""Options several commands share (data, cache and runs folders, checkpoint), and where their lines go."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

logger = logging.getLogger(__name__)


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
