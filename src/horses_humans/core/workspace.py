"""Workspace: the folders a command reads data from, writes runs to and caches decoded arrays in, and the log it
reports to; one object that travels through training instead of four loose arguments (a cache folder dropped on
the way once sent the validation split back to the default cache: issue 18)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from ..config import resolve_data_dir, resolve_runs_dir, user_cache_dir


def quiet(line: str) -> None:
    """A log that drops every line."""


@dataclasses.dataclass(frozen=True)
class Workspace:
    """Where the data set is, where runs go, where decoded pixels and features are cached, and where lines go."""

    data_dir: Path
    runs_dir: Path
    cache_dir: Path
    log: Callable[[str], None] = print

    @classmethod
    def from_env(
        cls,
        data_dir: str | Path | None = None,
        runs_dir: str | Path | None = None,
        cache_dir: str | Path | None = None,
        log: Callable[[str], None] = print,
    ) -> Workspace:
        """The given folders, the others from the environment: --data-dir / $HORSES_HUMANS_DATA, --runs-dir /
        $HORSES_HUMANS_RUNS / ./runs, --cache-dir / $HORSES_HUMANS_CACHE / the per-user cache."""
        cache = Path(cache_dir).expanduser() if cache_dir else user_cache_dir()
        return cls(resolve_data_dir(data_dir), resolve_runs_dir(runs_dir), cache, log)

    def quiet(self) -> Workspace:
        """The same folders, logging nothing."""
        return dataclasses.replace(self, log=quiet)
