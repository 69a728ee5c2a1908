"""Progress bars on stderr, drawn with rich (which Keras already installs) only when stderr is a terminal: stdout
stays clean for --json/--csv, and a log file or a pipe gets the one-line-per-step messages alone."""

from __future__ import annotations

import sys
from functools import cache

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


@cache
def stderr_console() -> Console:
    """The console every bar draws on: one shared console, so bars can nest (epochs inside `experiment reproduce`)."""
    return Console(stderr=True)


def draws(console: Console | None = None) -> bool:
    """Whether bars are drawn: the console is a terminal (or rich is told it is) that can move its cursor."""
    console = console or stderr_console()
    return console.is_terminal and not console.is_dumb_terminal


class ProgressBar:
    """`bar(done, total)` draws or advances a bar on a terminal and does nothing elsewhere.

    A plain callable for any `progress(done, total)` parameter: it starts on its first call and stops itself when
    done reaches total; in a `with` block it is also stopped on an error. transient=True erases it when it stops.
    """

    def __init__(self, description: str, console: Console | None = None, transient: bool = False):
        self.description, self.transient = description, transient
        self.console = console or stderr_console()
        self.progress: Progress | None = None

    def __call__(self, done: int, total: int | None, description: str | None = None) -> None:
        if not draws(self.console):
            return
        if self.progress is None:
            self.start(total)
        self.progress.update(
            self.task, completed=done, total=total, description=description or self.description, refresh=True
        )  # each step is shown (steps are batches or files: a few per second)
        if total is not None and done >= total:
            self.close()

    def start(self, total: int | None = None) -> None:
        """Put the bar on the screen (log lines printed meanwhile appear above it)."""
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=self.transient,
            redirect_stdout=sys.stdout.isatty(),  # only when stdout is the same screen: never reroute piped output
        )
        self.task = self.progress.add_task(self.description, total=total)
        self.progress.start()

    def close(self) -> None:
        """Take the bar off the screen (transient) or leave its last state; calling it again is harmless."""
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
