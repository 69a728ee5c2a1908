"""What `predict` runs, as a library call: predict every image under some paths with a run and write the rows to
stdout or a file (table, CSV, JSON Lines, JSON), resuming an interrupted file, in this process or on Ray."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..config import DEFAULT_MAX_PIXELS, HorsesHumansError, check_positive
from ..data.files import PassedOver
from .predictor import Predictor, Tally, predict_paths
from .resultfiles import check_output, choose_format, model_stamp, open_results, printable

logger = logging.getLogger(__name__)
ENGINES = ("local", "ray")


@dataclass(frozen=True)
class PredictRequest:
    """A run, the images (files, or folders walked recursively) and where and how their rows are written."""

    run: Path
    paths: list[Path]
    output: Path | None = None  # None: stdout
    fmt: str | None = None  # table, csv, jsonl, json (ray: parquet too); None: from output's extension, else a table
    checkpoint: str | None = None
    runtime: str = "auto"
    batch_size: int = 32
    workers: int | None = None
    max_pixels: int | None = DEFAULT_MAX_PIXELS
    resume: bool = False  # continue output, an interrupted run's file, without writing a row twice
    strict: bool = False  # the exit status: 1 if any file has no answer (else only if none has)
    engine: str = "local"
    address: str | None = None  # engine ray: an existing cluster

    def check(self) -> None:
        """One clear error for an option that cannot apply, before any model loads."""
        check_positive("batch_size", self.batch_size)
        check_positive("workers", self.workers)
        check_positive("max_pixels", self.max_pixels)
        if self.engine not in ENGINES:
            raise HorsesHumansError(f"--engine {self.engine!r}: choose one of {', '.join(ENGINES)}.")
        if self.address and self.engine != "ray":
            raise HorsesHumansError(f"--address {self.address}: a cluster address needs --engine ray.")
        if self.resume and self.engine == "ray":
            raise HorsesHumansError(
                "--resume: --engine ray writes its output whole, at the end; resume with --engine local."
            )


def predict_to_output(
    request: PredictRequest,
    progress: Callable[[int, int | None], None] | None = None,
    log: Callable[[str], None] = logger.info,
) -> int:
    """Predict the request's images and write their rows; `log` gets which model answers, a line per skipped file
    and a summary. Returns the exit status: 0, or 1 if no file (strict: any file) could not be predicted."""
    request.check()
    if request.engine == "ray":
        return predict_on_ray(request, log)
    tally = predict_locally(request, progress, lambda line: log(printable(line)))  # names: no ESC reaches a terminal
    log(tally.summary(request.output))
    return tally.exit_status(request.strict)


def predict_locally(request: PredictRequest, progress, log: Callable[[str], None]) -> Tally:
    """The rows written batch by batch as they come (a killed run keeps them); what happened, tallied."""
    from ..runs.store import load_run

    fmt = choose_format(request.fmt, request.output)
    run = load_run(request.run, request.checkpoint)
    # what answers (resume continues only its own file); Predictor.from_run below says auto's warnings, once
    model = model_stamp(run, request.checkpoint, request.runtime, warn=lambda line: None)
    check_output(request.output, fmt, request.resume, run.class_names, model)  # before the model loads
    predictor = Predictor.from_run(run, request.checkpoint, request.runtime)  # imports TensorFlow only for Keras
    log(f"answering with {predictor.source}")
    with open_results(request.output, fmt, predictor.class_names, model, request.resume) as writer:
        return predict_paths(
            predictor, request.paths, writer, request.batch_size, request.workers, progress, log, request.max_pixels
        )


def predict_on_ray(request: PredictRequest, log: Callable[[str], None]) -> int:
    """The same rows from a Ray Data pipeline (the [ray] extra), written whole at the end."""
    from .rayengine import RayPredict, predict_with_ray

    passed = PassedOver()
    total, failed = predict_with_ray(
        RayPredict(
            request.run,
            request.paths,
            request.output,
            request.fmt,
            request.checkpoint,
            request.runtime,
            request.workers,
            request.address,
            request.batch_size,
            request.max_pixels,
            request.strict,
        ),
        passed,
    )
    for row in failed:
        log(f"skipped: {printable(row.error)}")
    log(f"predicted {total - len(failed)} of {total} files ({len(failed)} skipped){passed.summary()}")
    return 1 if len(failed) == total or (request.strict and failed) else 0
