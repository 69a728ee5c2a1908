"""How a run answers a labelled folder under its unsure rule: per class right, unsure and wrong, for measuring
the rule on real photos (scripts/real_photos.py). A folder may hold images of the run's reject class (`neither`, or
its --reject-class) even when the run has no such class: they are right only when answered unsure.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..data.layouts import labelled_folder
from ..data.pixels import Split, load_files
from ..inference.predictor import Predictor
from ..inference.unsure import answer_counts, tradeoff_curve
from ..runs.record import load_run_split
from ..runs.store import Run, load_run

logger = logging.getLogger(__name__)  # progress lines; the CLI sends them to stderr


def folder_names(run: Run) -> list[str]:
    """The class names a measuring folder may use: the run's, plus its reject class (`neither` by default)."""
    reject = run.config.reject_class
    return run.class_names + ([reject] if reject not in run.class_names else [])


def load_measuring_folder(run: Run, folder: Path, cache_dir: Path | None = None, log=logger.info) -> Split:
    """Decoded pixels of a folder of class folders named after the run's classes or its reject class."""
    names = folder_names(run)
    return load_files(labelled_folder(Path(folder), names), names, run.image_size, cache_dir, log, run.resize)


def score_folder(run_dir, folder: Path, cache_dir: Path | None = None, log=logger.info) -> dict:
    """answer_counts of a folder under the run's rule, the same without the rule ("plain": {class: right}), the
    share of the run's validation images answered unsure, and the trade-off curve on the folder."""
    run = load_run(run_dir)
    predictor = Predictor.from_run(run, runtime="keras")  # the model itself: exports are checked against it
    split = load_measuring_folder(run, folder, cache_dir, log)
    probabilities = predictor.predict_proba(split.x)
    names = folder_names(run)
    counts = answer_counts(predictor.unsure, probabilities, split.y, predictor.output, names)
    plain = {
        name: int(np.sum((split.y == i) & (predictor.output.predicted(probabilities) == i)))
        for i, name in enumerate(run.class_names)
        if name != run.config.reject_class
    }
    val = load_run_split(run, "validation", None, cache_dir, log)
    verdicts = predictor.unsure.apply(predictor.predict_proba(val.x), predictor.output)
    neither, rule = names.index(run.config.reject_class), predictor.unsure
    return {
        "counts": counts,
        "plain": plain,
        "validation_unsure": sum(v.reason is not None for v in verdicts),
        "validation_images": len(val),
        "min_confidence": predictor.unsure.min_confidence,
        "curve": tradeoff_curve(
            probabilities, split.y, predictor.output, neither, rule.min_confidence, run.config.reject_class
        ),
    }
