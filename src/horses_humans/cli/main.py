"""The `horses-humans` command: parses arguments, sets up logging and dispatches to the command modules, which call
the library (cli/data.py, train.py, predict.py, runs.py, serve.py, export.py)."""

from __future__ import annotations

import argparse
import logging
import sys

from .. import __version__
from ..config import HorsesHumansError
from ..core.backend import configure, import_backend, quiet_native_stderr
from . import data, export, predict, runs, serve, train
from .common import find_runs

# The commands in the order --help lists them, each added by its module with its handler (args.handler).
ADD_COMMANDS = (
    data.add_data,
    train.add_train,
    predict.add_evaluate,
    predict.add_calibrate,
    predict.add_predict,
    predict.add_unsure,
    serve.add_serve,
    runs.add_report,
    predict.add_explain,
    export.add_export,
    data.add_weights,
    runs.add_card,
    runs.add_runs,
    runs.add_compare,
    train.add_experiment,
)
LEVELS = {-1: logging.WARNING, 0: logging.INFO, 1: logging.DEBUG}  # -q, neither, -v


def build_parser() -> argparse.ArgumentParser:
    """The whole command-line interface."""
    parser = argparse.ArgumentParser(
        prog="horses-humans", description="Train, evaluate and use Horses-or-Humans image classifiers."
    )
    parser.add_argument("--version", action="version", version=f"horses-humans {__version__}")
    loudness = parser.add_mutually_exclusive_group()
    loudness.add_argument(
        "-v", "--verbose", dest="verbosity", action="store_const", const=1, default=0, help="debug lines too (stderr)"
    )
    loudness.add_argument(
        "-q", "--quiet", dest="verbosity", action="store_const", const=-1, help="only warnings and errors on stderr"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in ADD_COMMANDS:
        add(sub)
    return parser


class StderrHandler(logging.StreamHandler):
    """A handler writing to whatever sys.stderr is when a line is logged (a test's capture, a redirect)."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass  # always the current sys.stderr


def configure_logging(verbosity: int = 0) -> None:
    """Send the package's log lines (logger "horses_humans" and below) to stderr, bare at the default level, with
    their level and logger's name at -v; set once, re-levelled on each call."""
    package = logging.getLogger("horses_humans")
    handler = next((h for h in package.handlers if isinstance(h, StderrHandler)), None)
    if handler is None:
        handler = StderrHandler()
        package.addHandler(handler)
    verbose = "%(levelname)s %(name)s: %(message)s"
    handler.setFormatter(logging.Formatter(verbose if verbosity > 0 else "%(message)s"))
    package.setLevel(LEVELS[verbosity])


def main(argv: list[str] | None = None) -> int:
    """Entry point: every user-fixable error is one line on stderr and exit status 2."""
    configure()  # before anything can import TensorFlow
    with quiet_native_stderr():  # should a module the parser reads import TensorFlow, its start-up notices stay hidden
        parser = build_parser()
    try:
        args = parser.parse_args(argv)  # a comma-separated option's bad value raises HorsesHumansError here
        configure_logging(args.verbosity)
        find_runs(args)  # RUN as a path, a name in the runs folder, or latest: the run folder it names
        if needs_backend(args):
            import_backend()
        return args.handler(args)
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


if __name__ == "__main__":
    sys.exit(main())
