"""What `export` runs, as a library call: the requests checked before any model loads, each export made in turn
with progress, and the trade-off table (kept in RUN/export/exports.md when every format was asked for)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..config import HorsesHumansError, check_positive
from ..core.tables import exports_markdown, write_exports_markdown
from .formats import ALL, FORMATS, check_request
from .pipeline import ExportResult, export_all, open_source

logger = logging.getLogger(__name__)


@dataclass
class ExportReport:
    """What one export call made: each result, the trade-off table, and where the table was kept (every format)."""

    results: list[ExportResult]
    table: str
    table_path: Path | None = None

    @property
    def shipped(self) -> bool:
        """Whether every export asked for passed its parity check and was published."""
        return all(result.shipped for result in self.results)


def export_requests(fmt: str | None, quantize: str = "none", every: bool = False) -> list[tuple[str, str]]:
    """The (format, quantize) pairs asked for: one, or every format and quantization; checked before a model loads."""
    if every and quantize != "none":
        raise HorsesHumansError("--all exports every quantization already; leave out --quantize.")
    if not every and fmt is None:
        raise HorsesHumansError(f"export: name a --format ({', '.join(FORMATS)}), or ask for --all.")
    requests = list(ALL) if every else [(fmt, quantize)]
    for request in requests:
        check_request(*request)  # a bad combination fails here, before the model is loaded
    return requests


def export_run(
    run_dir: str | Path,
    requests: list[tuple[str, str]],
    *,
    data_dir: Path | None = None,
    cache_dir: Path | None = None,
    checkpoint: str | None = None,
    latency_runs: int = 50,
    log: Callable[[str], None] = logger.info,
    progress: Callable[[int, int], None] | None = None,
) -> ExportReport:
    """Make each requested export of a run (checked against its Keras model, published only if it passes) and the
    trade-off table; asked for every export (ALL), the table is also written to RUN/export/exports.md."""
    check_positive("latency_runs", latency_runs)
    for request in requests:
        check_request(*request)
    source = open_source(run_dir, data_dir, cache_dir, log, checkpoint)
    results = []
    for i, request in enumerate(requests):
        if progress:
            progress(i, len(requests))
        results += export_all(source, [request], latency_runs)
    if progress:
        progress(len(requests), len(requests))
    if sorted(requests) != sorted(ALL):
        return ExportReport(results, exports_markdown(source, results))
    table, path = write_exports_markdown(source, results)
    log(f"wrote {path}")
    return ExportReport(results, table, path)
