"""One prediction path for the CLI and the server: Predictor.from_run(dir).predict_files(paths).

A Predictor runs a run's Keras model or one of its parity-checked exports (runtimes.py) behind the same calls; the
answers go through the run's ClassOutput (calibration) and unsure rule either way. predict_batches streams: files are
decoded in a thread pool (Pillow releases the GIL) while the model predicts the batch before, and each batch's rows are
handed on as soon as they are made, so memory stays flat however many files there are.
"""

from __future__ import annotations

import csv
import io
import itertools
import logging
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import DEFAULT_RESIZE, DEFAULT_THRESHOLD, HorsesHumansError
from ..core.backend import import_backend
from ..core.batching import batched
from ..data.files import PassedOver, UnreadableFile, WalkedInput, open_regular, skip_reason, walk_inputs
from ..data.images import ImageError, load_pixels
from ..models.outputs import ClassOutput
from ..runs.store import Run, load_run, read_calibration
from .runtimes import KerasRuntime, Runtime, open_export, stderr
from .unsure import UnsureRule, calibrate, default_rule, describe, load_rule, save_rule, unsure_share

logger = logging.getLogger(__name__)  # progress lines; the CLI sends them to stderr


@dataclass
class Prediction:
    """One file's answer, or the reason it has none."""

    file: str
    label: str | None = None
    probability: float | None = None  # the probability of `label`; for "unsure", the largest class probability
    probabilities: dict[str, float] | None = None  # {class name: probability}, every class, in class order
    error: str | None = None
    unsure_reason: str | None = None  # why the label is "unsure" (None when a class is answered); see unsure.py
    unsure_score: float | None = None  # in [0, 1]: how sure the rule is that the answer is unsure (0 when answered)

    def to_dict(self) -> dict:
        return {
            "file": self.file,
            "label": self.label,
            "probability": self.probability,
            "probabilities": self.probabilities,
            "unsure_reason": self.unsure_reason,
            "unsure_score": self.unsure_score,
            "error": self.error,
        }

    def csv_row(self, class_names: list[str]) -> dict:
        """The flat row of the CSV: one p_<class> column per class."""
        known = self.probabilities or {}
        return {
            "file": self.file,
            "label": self.label,
            "probability": self.probability,
            **{f"p_{name}": known.get(name) for name in class_names},
            "unsure_reason": self.unsure_reason,
            "unsure_score": self.unsure_score,
            "error": self.error,
        }


class Predictor:
    """A Runtime (the Keras model or an export) with its class names and input size, and how to read its output."""

    tta = False  # test-time flips: average each image's probabilities with its mirror's (a run's --tta)
    resize = DEFAULT_RESIZE  # how decode brings an image to the square (a run's --resize: squash, crop, pad)
    source = "a model"  # what answers, in words (from_run: the checkpoint file, or the export and its runtime)

    def __init__(
        self,
        runtime,
        class_names: list[str],
        image_size: int,
        threshold: float = DEFAULT_THRESHOLD,
        output: ClassOutput | None = None,
        unsure: UnsureRule | None = None,
        load_keras: Callable[[], object] | None = None,
    ):
        # anything else with predict_on_batch (a Keras model, a test's stand-in) is wrapped: one call path for all
        self.runtime = runtime if isinstance(runtime, Runtime) else KerasRuntime(runtime)
        self.class_names, self.image_size = list(class_names), image_size
        self.output = output or ClassOutput.for_classes(class_names, threshold)
        self.threshold = self.output.threshold
        self.unsure = unsure or default_rule(self.output)  # when to answer "unsure" (the run's calibrated rule)
        self.load_keras = load_keras  # the Keras model behind an export, for what needs layers (Grad-CAM)
        self.keras_model = None

    @property
    def model(self):
        """The Keras model (Grad-CAM, activations, export): the runtime's own, or loaded once when an export answers."""
        if isinstance(self.runtime, KerasRuntime):
            return self.runtime.model
        if self.keras_model is None:
            if self.load_keras is None:
                raise HorsesHumansError(f"{self.source} has no Keras model to explain; use --runtime keras.")
            self.keras_model = self.load_keras()
        return self.keras_model

    @classmethod
    def uncalibrated(cls, run: Run) -> Predictor:
        """The run's model (its default checkpoint) answering with its own, uncalibrated probabilities and no unsure
        rule or flips: what calibration is fitted on and what exports are checked against."""
        return cls(run.load_model(), run.class_names, run.image_size, output=run.raw_output)

    @classmethod
    def from_run(
        cls, run: str | Path | Run, checkpoint: str | None = None, runtime: str = "auto", warn=stderr
    ) -> Predictor:
        """Load a run's saved model (`checkpoint`: best or last, default the run's), labels and unsure rule;
        test-time flips when the run was trained with --tta. runtime: auto (default, as the CLI's: the run's fastest
        parity-checked full-precision export of that checkpoint, else Keras), keras, onnx or tflite; see runtimes.py.
        `warn` gets auto's one-line warnings (a damaged export) and notes (an unverified one)."""
        run = run if isinstance(run, Run) else load_run(run, checkpoint)
        checkpoint_file = run.checkpoint_path(checkpoint).name
        opened = open_export(run.path, checkpoint_file, runtime, warn)
        load_keras = lambda: keras_model(run, checkpoint)  # noqa: E731
        predictor = cls(
            opened[1] if opened else KerasRuntime(load_keras()),
            run.class_names,
            run.image_size,
            output=run.output,
            unsure=load_rule(run.path, run.output, run.config.reject_class),
            load_keras=load_keras,
        )
        predictor.tta, predictor.resize = run.config.tta, run.resize
        predictor.source = opened[0].describe() if opened else f"Keras ({checkpoint_file})"
        return predictor

    def predict_proba(self, pixels: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """Class probabilities (N, C) for a uint8 batch (N, S, S, 3), columns in class_names order; a row is NaN
        where the model's raw output was not finite (a damaged model), never a made-up label."""
        # predict_on_batch runs Keras' compiled predict function: about 2x faster than an eager call for small batches
        probabilities = self.read(batched(self.runtime.predict_on_batch, pixels, batch_size, (self.output.units,)))
        if not self.tta:
            return probabilities
        mirrored = batched(self.runtime.predict_on_batch, pixels[:, :, ::-1], batch_size, (self.output.units,))
        return (probabilities + self.read(mirrored)) / 2

    def read(self, raw: np.ndarray) -> np.ndarray:
        """Raw outputs (N, K) -> class probabilities (N, C), NaN rows where any raw value is NaN or infinite."""
        probabilities = np.array(self.output.probabilities(raw), np.float64)
        probabilities[~np.all(np.isfinite(raw), axis=1)] = np.nan  # clipping would turn inf into a sure answer
        return probabilities

    def warm_up(self) -> Predictor:
        """One call on a blank image, so the first real request does not pay for tracing and allocation."""
        self.predict_proba(np.zeros((1, self.image_size, self.image_size, 3), np.uint8))
        return self

    def predict_files(
        self,
        files: list[str | Path],
        batch_size: int = 32,
        max_pixels: int | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[Prediction]:
        """Decode and predict each file, batch by batch; a bad file gets an error instead of stopping the rest."""
        results = []
        for batch in self.predict_batches(((Path(f), None) for f in files), batch_size, max_pixels=max_pixels):
            results += batch
            if progress:
                progress(len(results), len(files))
        return results

    def predict_batches(
        self,
        entries: Iterable[WalkedInput],
        batch_size: int = 32,
        workers: int | None = None,
        max_pixels: int | None = None,
    ) -> Iterator[list[Prediction]]:
        """The rows of each batch of (path, reason to skip or None) entries, in order, as soon as it is predicted:
        `workers` threads decode the next batches while the model runs this one; at most PREFETCH batches wait."""
        with ThreadPoolExecutor(workers or default_workers(), thread_name_prefix="decode") as pool:
            pending: deque = deque()
            for batch in iter_batches(entries, batch_size):
                pending.append(
                    (
                        batch,
                        [
                            pool.submit(self.decode, path, max_pixels) if reason is None else reason
                            for path, reason in batch
                        ],
                    )
                )
                if len(pending) > PREFETCH:
                    yield self.finish(*pending.popleft())
            while pending:
                yield self.finish(*pending.popleft())

    def finish(self, batch: list[WalkedInput], decoding: list[Future | str]) -> list[Prediction]:
        """One batch's rows once its decoding is done (a skip reason stands for its decoded pixels)."""
        decoded = [item.result() if isinstance(item, Future) else item for item in decoding]
        return self.predict_decoded([path for path, _ in batch], decoded)

    def decode(self, path: str | Path, max_pixels: int | None = None) -> np.ndarray | str:
        """A regular file's pixels (S, S, 3) uint8, or why it has none (decode_file)."""
        return decode_file(path, self.image_size, max_pixels, resize=self.resize)

    def predict_chunk(self, files: list[str | Path], max_pixels: int | None = None) -> list[Prediction]:
        """Predictions for a few files decoded together (one model call): the unit a distributed engine maps over
        its batches of paths; rows as Prediction.csv_row / to_dict give them."""
        return self.predict_decoded(files, [self.decode(f, max_pixels) for f in files])

    def predict_decoded(self, files: list[str | Path], decoded: list[np.ndarray | str]) -> list[Prediction]:
        """Rows for files whose pixels (or error text) are known: one model call for all the decoded ones."""
        results = [Prediction(str(f)) for f in files]
        good = [i for i, item in enumerate(decoded) if isinstance(item, np.ndarray)]
        for i in set(range(len(files))) - set(good):
            results[i].error = decoded[i]
        if good:
            probabilities = self.predict_proba(np.stack([decoded[i] for i in good]), len(good))
            for i, row, verdict in zip(good, probabilities, self.unsure.apply(probabilities, self.output)):
                if not np.all(np.isfinite(row)):
                    results[i].error = f"{files[i]}: {self.source} answered NaN or infinity: {NOT_FINITE}"
                    continue
                results[i].probabilities = dict(zip(self.class_names, map(float, row)))
                results[i].label, results[i].probability = verdict.label, float(row.max())
                if verdict.label in results[i].probabilities:
                    results[i].probability = results[i].probabilities[verdict.label]
                results[i].unsure_reason, results[i].unsure_score = verdict.reason, verdict.score
        return results


NOT_FINITE = "the model file is damaged; rebuild the export or use --runtime keras (no label given)"
PREFETCH = 2  # batches decoded ahead of the one the model runs: enough to keep both busy, memory still flat


def decode_file(
    path: str | Path,
    image_size: int,
    max_pixels: int | None = None,
    name: str | None = None,
    resize: str = DEFAULT_RESIZE,
):
    """A regular file's pixels (S, S, 3) uint8 (brought to the square by `resize`), or why it has none, worded as the
    walk words a file it cannot read: the one decode of predict's local and Ray paths (nothing but a regular file is
    opened)."""
    try:
        with open_regular(path) as stream:
            return load_pixels(stream, image_size, name=name or str(path), max_pixels=max_pixels, resize=resize)
    except UnreadableFile as exc:
        return skip_reason(str(exc))
    except ImageError as exc:
        return str(exc)


def default_workers() -> int:
    """Decoding threads: one per CPU this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def iter_batches(entries: Iterable, size: int) -> Iterator[list]:
    """Consecutive lists of at most `size` items from any iterable (a generator is never held whole)."""
    iterator = iter(entries)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


@dataclass
class Tally:
    """What one predict run did: files answered, files skipped, rows an interrupted run had written already."""

    predicted: int = 0
    skipped: int = 0
    earlier: int = 0
    passed: PassedOver = field(default_factory=PassedOver)  # walked folders' files that are not images by name

    def summary(self, output: Path | None = None) -> str:
        """The closing line on stderr."""
        before = f"; {self.earlier} already in {output}" if self.earlier else ""
        total = self.predicted + self.skipped
        return f"predicted {self.predicted} of {total} files ({self.skipped} skipped){before}{self.passed.summary()}"

    def exit_status(self, strict: bool = False) -> int:
        """1 if no file could be predicted (or, strict, if any failed), else 0."""
        return 1 if (self.predicted == 0 and self.earlier == 0) or (strict and self.skipped) else 0


def predict_paths(
    predictor: Predictor,
    paths: Iterable[str | Path],
    writer,
    batch_size: int = 32,
    workers: int | None = None,
    progress: Callable | None = None,
    log: Callable[[str], None] = logger.info,
    max_pixels: int | None = None,
) -> Tally:
    """Walk `paths`, predict every file `writer` (a resultfiles.ResultWriter) does not hold yet, and hand it each
    batch's rows as they come; `log` gets one `skipped: REASON` line per file that has no answer; an image over
    `max_pixels` (width x height) is such a file, refused before it is decoded."""
    tally = Tally(earlier=len(writer.done))
    entries = (entry for entry in walk_inputs(paths, tally.passed) if not writer.holds(entry[0]))
    for batch in predictor.predict_batches(entries, batch_size, workers, max_pixels):
        writer.write(batch)
        for row in batch:
            if row.error:
                log(f"skipped: {row.error}")
        tally.skipped += sum(row.error is not None for row in batch)
        tally.predicted += sum(row.error is None for row in batch)
        if progress:
            progress(tally.predicted + tally.skipped, None)
    return tally


def keras_model(run: Run, checkpoint: str | None = None):
    """The run's Keras model of a checkpoint, TensorFlow imported (and set up) first: only Keras needs it."""
    import_backend()
    return run.load_model(checkpoint)


def score_checkpoints(run_dir: str | Path, checkpoints: dict, cache_dir: Path | None = None, log=logger.info) -> dict:
    """metrics.json's "checkpoints" with each saved float32 file's own validation accuracy (saved_val_accuracy)
    beside training's figure, which may come from bfloat16 arithmetic; called before metrics.json is written, so
    each checkpoint is loaded by its file name. A file holding the same epoch as another is scored once."""
    from ..runs.record import load_run_split

    run = load_run(run_dir)
    val = load_run_split(run, "validation", None, cache_dir, log)
    if not len(val):
        return checkpoints
    scored, y = {}, np.asarray(val.y)
    for name in ("best", "last"):
        record = checkpoints.get(name)
        if record and record["epoch"] not in scored:
            predictor = Predictor(run.load_model(name), run.class_names, run.image_size, output=run.raw_output)
            scored[record["epoch"]] = float(np.mean(run.raw_output.predicted(predictor.predict_proba(val.x)) == y))
        if record:
            record["saved_val_accuracy"] = scored[record["epoch"]]
    return checkpoints


def refit_unsure(
    run_dir: str | Path,
    data_dir: Path | None = None,
    cache_dir: Path | None = None,
    log=logger.info,
    min_confidence: str | None = None,
) -> str:
    """Fit a run's unsure rule again on its validation split (through its served probabilities), store it in
    calibration.json, and return the line that describes it. min_confidence (auto, off or a probability) is how tau
    is chosen; None keeps the run's choice: its stored rule's, else its config's (train --min-confidence)."""
    from ..runs.record import load_run_split

    run = load_run(run_dir)
    stored = read_calibration(run.path).get("unsure") or {}
    choice = min_confidence or stored.get("chosen") or run.config.min_confidence
    predictor = Predictor.from_run(run, runtime="keras")  # the rule is fitted on the model itself, not an export
    val = load_run_split(run, "validation", data_dir, cache_dir, log)
    probabilities = predictor.predict_proba(val.x)
    reject_class, distance = run.config.reject_class, run.has_distance_check  # its model answers uniform past it
    rule = calibrate(
        probabilities, val.y, predictor.output, reject_class=reject_class, distance=distance, choice=choice
    )
    save_rule(run.path, rule)
    return describe(rule, unsure_share(rule, probabilities, val.y, predictor.output))


def collect_files(paths: list[Path], passed: PassedOver | None = None) -> list[Path]:
    """Files named directly, plus every image file under named folders (recursively, sorted) that is not hidden
    (dot files, __MACOSX: the rule the data set's folders follow; the others counted in `passed`); see
    files.walk_inputs, its lazy form. A missing or special file is kept: it becomes a per-file error, not a crash."""
    return [path for path, _ in walk_inputs(paths, passed)]


def rows_to_csv(rows: list[dict]) -> str:
    """CSV text with a header from the first row's keys."""
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return buf.getvalue()
