"""Runs you can name: `train --name NAME` writes RUNS_DIR/NAME (NAME-2, NAME-3 on a clash), and every command that
takes RUN accepts a folder's path, a name in the runs folder, or `latest` (the newest finished run)."""

from __future__ import annotations

import re
from pathlib import Path

from ..config import HorsesHumansError, resolve_runs_dir
from .layout import METRICS_FILE
from .store import is_finished, make_first_free, run_dirs

LATEST = "latest"  # RUN: the finished run whose training ended last
# A name is one folder: no slash, no leading dot or dash (hidden files, options), nothing a shell or a URL mangles.
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
MAX_CLASHES = 1000  # NAME-2 ... NAME-1000, then an error


def check_run_name(name: str) -> str:
    """The name, when it can be a run folder's name; else a one-line error saying which characters can."""
    if not SAFE_NAME.fullmatch(name) or name == LATEST:
        why = f"{LATEST!r} means the newest run" if name == LATEST else "it must be one folder name"
        raise HorsesHumansError(
            f"--name {name!r}: {why}; use up to 100 letters, digits, '.', '_' and '-', starting with a letter or "
            "digit (e.g. --name horses-v2)."
        )
    return name


def named_run_dir(runs_dir: Path, name: str) -> Path:
    """A new folder RUNS_DIR/NAME, or NAME-2, NAME-3, ... when taken (made here, so two trainings never share one)."""
    check_run_name(name)
    path = make_first_free(Path(runs_dir) / (name if n == 1 else f"{name}-{n}") for n in range(1, MAX_CLASHES + 1))
    if path is not None:
        return path
    raise HorsesHumansError(
        f"{runs_dir}: {name} and {name}-2 to {name}-{MAX_CLASHES} all exist; choose another --name."
    )


def find_run(run: str | Path, runs_dir: str | Path | None = None) -> Path:
    """The run folder RUN names: a folder's path, `latest` (the newest finished run in the runs folder), or a name in
    the runs folder (runs_dir, else $HORSES_HUMANS_RUNS, else ./runs); a one-line error saying what was tried."""
    given = Path(run).expanduser()
    if given.is_dir():
        return given
    folder = resolve_runs_dir(runs_dir)
    if str(run) == LATEST:
        return latest_run(folder)
    named = folder / str(run)
    if SAFE_NAME.fullmatch(str(run)) and named.is_dir():
        return named
    tried = f"the path {given}" + (f" and the name in {folder}/ ({named})" if SAFE_NAME.fullmatch(str(run)) else "")
    raise HorsesHumansError(
        f"{run}: no such run directory (tried {tried}); give a run folder, a name `horses-humans runs` lists, or "
        f"{LATEST} (the newest finished run), with --runs-dir DIR for another runs folder."
    )


def latest_run(runs_dir: Path) -> Path:
    """The finished run in runs_dir whose training ended last (its metrics.json, written last, is the newest)."""
    finished = [path for path in run_dirs(runs_dir) if is_finished(path)]
    if not finished:
        raise HorsesHumansError(
            f"{LATEST}: no finished run in {runs_dir}/; train one with `horses-humans train --runs-dir {runs_dir}`, "
            "or give a run folder's path."
        )
    return max(finished, key=lambda path: ((path / METRICS_FILE).stat().st_mtime_ns, path.name))
