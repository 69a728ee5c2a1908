"""A tiny finished run (tests/centroid_runs.py) with real, parity-checked exports, for the runtimes `predict` can use
instead of Keras."""

from pathlib import Path

from horses_humans.export import pipeline as ex

from .centroid_runs import centroid_setup


def exported_centroid_run(root: Path, n_classes: int = 2, requests=(("web", "none"),)) -> tuple[Path, Path]:
    """(run dir, data dir): the centroid run of n_classes with each (format, quantize) export published."""
    run, data = centroid_setup(Path(root), n_classes)
    source = ex.open_source(run, data, log=lambda line: None)
    for result in ex.export_all(source, list(requests), latency_runs=3):
        assert result.shipped, result.error
    return run, data
