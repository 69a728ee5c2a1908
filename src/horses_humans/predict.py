"""One prediction path for the CLI and the server: Predictor.from_run(dir).predict_files(paths)."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .batching import batched, chunks
from .config import DEFAULT_THRESHOLD
from .data import visible_files
from .images import ImageError, load_pixels
from .outputs import ClassOutput
from .runs import Run, load_run
from .unsure import UnsureRule, calibrate, default_rule, describe, load_rule, save_rule, unsure_share


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
        return {"file": self.file, "label": self.label, "probability": self.probability,
                "probabilities": self.probabilities, "unsure_reason": self.unsure_reason,
                "unsure_score": self.unsure_score, "error": self.error}

    def csv_row(self, class_names: list[str]) -> dict:
        """The flat row of the CSV: one p_<class> column per class."""
        known = self.probabilities or {}
        return {"file": self.file, "label": self.label, "probability": self.probability,
                **{f"p_{name}": known.get(name) for name in class_names}, "unsure_reason": self.unsure_reason,
                "unsure_score": self.unsure_score, "error": self.error}


class Predictor:
    """A loaded model with its class names and input size, and how to read its output."""

    tta = False  # test-time flips: average each image's probabilities with its mirror's (a run's --tta)

    def __init__(self, model, class_names: list[str], image_size: int, threshold: float = DEFAULT_THRESHOLD,
                 output: ClassOutput | None = None, unsure: UnsureRule | None = None):
        self.model, self.class_names, self.image_size = model, list(class_names), image_size
        self.output = output or ClassOutput.for_classes(class_names, threshold)
        self.threshold = self.output.threshold
        self.unsure = unsure or default_rule(self.output)  # when to answer "unsure" (the run's calibrated rule)

    @classmethod
    def uncalibrated(cls, run: Run) -> "Predictor":
        """The run's model (its default checkpoint) answering with its own, uncalibrated probabilities and no unsure
        rule or flips: what temperature scaling is fitted on and what exports are checked against."""
        return cls(run.load_model(), run.class_names, run.image_size, output=run.raw_output)

    @classmethod
    def from_run(cls, run: str | Path | Run, checkpoint: str | None = None) -> "Predictor":
        """Load a run's saved model (`checkpoint`: best or last, default the run's), labels and unsure rule;
        test-time flips when the run was trained with --tta."""
        run = run if isinstance(run, Run) else load_run(run, checkpoint)
        predictor = cls(run.load_model(checkpoint), run.class_names, run.image_size, output=run.output,
                        unsure=load_rule(run.path, run.output))
        predictor.tta = run.config.tta
        return predictor

    def predict_proba(self, pixels: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """Class probabilities (N, C) for a uint8 batch (N, S, S, 3), columns in class_names order."""
        # predict_on_batch runs Keras' compiled predict function: about 2x faster than an eager call for small batches
        raw = batched(self.model.predict_on_batch, pixels, batch_size, (self.output.units,))
        if not self.tta:
            return self.output.probabilities(raw)
        mirrored = batched(self.model.predict_on_batch, pixels[:, :, ::-1], batch_size, (self.output.units,))
        return (self.output.probabilities(raw) + self.output.probabilities(mirrored)) / 2

    def warm_up(self) -> "Predictor":
        """One call on a blank image, so the first real request does not pay for tracing and allocation."""
        self.predict_proba(np.zeros((1, self.image_size, self.image_size, 3), np.uint8))
        return self

    def predict_files(self, files: list[str | Path], batch_size: int = 32, max_pixels: int | None = None,
                      progress: Callable[[int, int], None] | None = None) -> list[Prediction]:
        """Decode and predict each file, batch by batch; a bad file gets an error instead of stopping the rest."""
        results = []
        for chunk in chunks(files, batch_size):
            results += self.predict_chunk(chunk, max_pixels)
            if progress:
                progress(len(results), len(files))
        return results

    def predict_chunk(self, files: list[str | Path], max_pixels: int | None = None) -> list[Prediction]:
        """Predictions for a few files decoded together (one model call)."""
        results = [Prediction(str(f)) for f in files]
        good, pixels = [], []
        for i, f in enumerate(files):
            try:
                pixels.append(load_pixels(f, self.image_size, name=str(f), max_pixels=max_pixels))
                good.append(i)
            except ImageError as exc:
                results[i].error = str(exc)
        if pixels:
            probabilities = self.predict_proba(np.stack(pixels), len(pixels))
            for i, row, verdict in zip(good, probabilities, self.unsure.apply(probabilities, self.output)):
                results[i].probabilities = dict(zip(self.class_names, map(float, row)))
                results[i].label, results[i].probability = verdict.label, float(row.max())
                if verdict.label in results[i].probabilities:
                    results[i].probability = results[i].probabilities[verdict.label]
                results[i].unsure_reason, results[i].unsure_score = verdict.reason, verdict.score
        return results


def refit_unsure(run_dir: str | Path, data_dir: Path | None = None, cache_dir: Path | None = None, log=print) -> str:
    """Fit a run's unsure rule again on its validation split (through its served probabilities), store it in
    calibration.json, and return the line that describes it."""
    from .rundata import load_run_split

    run = load_run(run_dir)
    predictor = Predictor.from_run(run)
    val = load_run_split(run, "validation", data_dir, cache_dir, log)
    probabilities = predictor.predict_proba(val.x)
    rule = calibrate(probabilities, val.y, predictor.output)
    save_rule(run.path, rule)
    return describe(rule, unsure_share(rule, probabilities, val.y, predictor.output))


def collect_files(paths: list[Path]) -> list[Path]:
    """Files named directly, plus every file under named folders (recursively, sorted) that is not hidden
    (dot files, __MACOSX: the rule the data set's folders follow)."""
    files = []
    for path in map(Path, paths):
        if path.is_dir():
            files += visible_files(path)
        else:
            files.append(path)  # a missing file becomes a per-file error, not a crash
    return files


def format_predictions(results: list[Prediction], fmt: str = "table", class_names: list[str] | None = None) -> str:
    """table | json | csv text of the predictions (errors included). The table shows each label and its probability;
    JSON adds every class's in a dict, CSV as one p_<class> column each (class_names: the model's, for the header)."""
    if fmt == "json":
        return json.dumps([r.to_dict() for r in results], indent=2) + "\n"
    if fmt == "csv":
        names = class_names or next((list(r.probabilities) for r in results if r.probabilities), [])
        header = Prediction("").csv_row(names)
        return rows_to_csv([r.csv_row(names) for r in results]) if results else ",".join(header) + "\n"
    width = max([len(r.file) for r in results] + [4])
    label_width = max([len(r.label or "") for r in results] + [8])
    lines = [f"{'file':<{width}}  {'label':<{label_width}}  probability"]
    for r in results:
        why = f"  ({r.unsure_reason}, score {r.unsure_score:.2f})" if r.unsure_reason else ""
        lines.append(f"{r.file:<{width}}  {r.label:<{label_width}}  {r.probability:.4f}{why}" if r.error is None
                     else f"{r.file:<{width}}  error: {r.error}")
    return "\n".join(lines) + "\n"


def rows_to_csv(rows: list[dict]) -> str:
    """CSV text with a header from the first row's keys."""
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return buf.getvalue()
