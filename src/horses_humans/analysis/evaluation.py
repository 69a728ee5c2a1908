"""Metrics of a model on a split: accuracy, per-class precision, recall and F1 with macro and weighted averages,
ROC AUC, the C x C confusion matrix, per image.

The metrics are scikit-learn's; this module chooses them, names them and writes them with the run. Every function
takes class probabilities (N, C) and the run's ClassOutput, which says how a row becomes a label (the threshold on
class 1 for two classes, the largest probability for more).
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support, roc_auc_score

from ..config import HorsesHumansError
from ..core.atomic import write_text_atomic
from ..data.files import unrecordable_folder
from ..inference.calibration import ECE_BINS, expected_calibration_error
from ..inference.predictor import Predictor, rows_to_csv
from ..models.outputs import ClassOutput
from ..runs.layout import EVALUATION_FILE, EVALUATIONS_DIR, PREDICTIONS_FILE
from ..runs.modelcard import write_model_card
from ..runs.record import load_labelled, load_run_split
from ..runs.store import load_run

logger = logging.getLogger(__name__)  # progress lines; the CLI sends them to stderr


def classification_metrics(y_true: np.ndarray, probabilities: np.ndarray, output: ClassOutput) -> dict:
    """Accuracy, the confusion matrix (rows true, columns predicted), per-class and averaged precision/recall/F1 and
    ROC AUC of class indices y_true (N,) against probabilities (N, C); two classes add class 1's precision/recall/F1.

    Precision, recall and F1 are 0 where undefined (nothing predicted or present); the averages are over the classes
    present in y_true; ROC AUC is NaN unless every class is present."""
    names, y_true = list(output.class_names), np.asarray(y_true).astype(int)
    probabilities = np.asarray(probabilities, np.float64).reshape(-1, len(names))
    y_pred, labels = output.predicted(probabilities), list(range(len(names)))
    scores = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0.0)
    metrics = {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "images": int(len(y_true)),
        "class_names": names,
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "per_class": {
            name: dict(zip(("precision", "recall", "f1", "support"), (*map(float, s[:3]), int(s[3]))))
            for name, *s in zip(names, *scores)
        },
        **{average: averaged(y_true, y_pred, average) for average in ("macro", "weighted")},
        "roc_auc": roc_auc(y_true, probabilities),
        "ece": expected_calibration_error(y_true, probabilities),
        "ece_bins": ECE_BINS,
        "temperature": output.temperature,
        "calibration": output.calibration_method,  # none, temperature, temperature+bias or vector (calibration.json)
        "sure_mistakes": sure_mistakes(y_true, probabilities, output),
    }
    if len(names) == 2:  # the binary headline numbers, with class 1 (humans in the reference) as positive
        metrics.update({k: metrics["per_class"][names[1]][k] for k in ("precision", "recall", "f1")})
    return metrics


SURE = 0.999  # a wrong answer above this probability is a promise broken


def sure_mistakes(y_true: np.ndarray, probabilities: np.ndarray, output: ClassOutput) -> int:
    """How many images are answered wrong with a probability above SURE (of the label they get)."""
    y_pred = output.predicted(probabilities)
    answered = probabilities[np.arange(len(y_pred)), y_pred]
    return int(np.sum((y_pred != y_true) & (answered > SURE)))


def averaged(y_true: np.ndarray, y_pred: np.ndarray, average: str) -> dict:
    """{precision, recall, f1} averaged ("macro" or "weighted") over the classes present in y_true."""
    present = sorted(set(y_true.tolist()))
    p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, labels=present, average=average, zero_division=0.0)
    return {"precision": float(p), "recall": float(r), "f1": float(f)}


def roc_auc(y_true: np.ndarray, probabilities: np.ndarray) -> float:
    """AUC of class 1 (two classes) or the one-vs-rest macro AUC (more); NaN when a class has no image."""
    classes = probabilities.shape[1]
    if len(np.unique(y_true)) < classes:  # undefined: scikit-learn warns or raises
        return float("nan")
    if classes == 2:
        return float(roc_auc_score(y_true, probabilities[:, 1]))
    # scikit-learn's multi_class="ovr" macro AUC, class by class: it would reject float32 softmax rows that sum to 1
    # only roughly, and renormalising them would break exact ties
    return float(np.mean([roc_auc_score(y_true == k, probabilities[:, k]) for k in range(classes)]))


def per_image_rows(files: list[str], y_true: np.ndarray, probabilities: np.ndarray, output: ClassOutput) -> list[dict]:
    """One row per image: file, true and predicted label, the probability of the predicted label, p_<class> of each."""
    names, probabilities = output.class_names, np.asarray(probabilities).reshape(-1, len(output.class_names))
    rows = []
    for f, t, row, k in zip(files, y_true, probabilities, output.predicted(probabilities)):
        rows.append(
            {
                "file": f,
                "true_label": names[int(t)],
                "predicted_label": names[k],
                "probability": round(float(row[k]), 6),
                **{f"p_{n}": round(float(p), 6) for n, p in zip(names, row)},
            }
        )
    return rows


@dataclass(frozen=True)
class EvalSplit:
    """The images a run is evaluated on: its own validation or test split (`side`), found in `data_dir` (None: the
    folder it was trained on), or `folder`, any folder of class folders named after its classes (wins when given)."""

    side: str = "validation"
    data_dir: Path | str | None = None
    folder: Path | str | None = None

    def name(self) -> str:
        """What evaluation.json calls it: the side, or "data" for a labelled folder."""
        return "data" if self.folder is not None else self.side


def predict_split(run, split: EvalSplit = EvalSplit(), cache_dir=None, log=logger.info):
    """(predictor, the decoded images, class probabilities (N, C)) of a loaded run on the images `split` names."""
    images = (
        load_labelled(run, split.folder, cache_dir, log)
        if split.folder is not None
        else load_run_split(run, split.side, split.data_dir, cache_dir, log)
    )
    predictor = Predictor.from_run(run, runtime="keras")  # the model itself: exports are checked against it
    return predictor, images, predictor.predict_proba(np.asarray(images.x))


def evaluate_run(
    run_dir, split: EvalSplit = EvalSplit(), checkpoint: str | None = None, cache_dir=None, log=logger.info
) -> dict:
    """Evaluate a run's saved model (`checkpoint`, default the run's) on the images `split` names (default its
    validation split); writes evaluation.json (saying which images and checkpoint), evaluations/NAME.json (one per
    split or folder, kept) and predictions.csv, then rewrites the model card."""
    run = load_run(run_dir, checkpoint)
    predictor, images, probabilities = predict_split(run, split, cache_dir, log)
    unrecordable = unrecordable_folder(images.root, "evaluated folder", "evaluating")
    if unrecordable:  # found before anything is written: the evaluation files could not be read back
        raise HorsesHumansError(f"{unrecordable}.")
    metrics = classification_metrics(images.y, probabilities, predictor.output)
    metrics.update(
        run=str(run.path),
        class_names=run.class_names,
        skipped_files=len(images.skipped),
        split=split.name(),
        folder=str(images.root),
        checkpoint=run.checkpoint,
        checkpoint_file=run.checkpoint_path().name,
    )
    rows = per_image_rows(images.files, images.y, probabilities, predictor.output)
    write_text_atomic(run.path / EVALUATION_FILE, metrics_json(metrics) + "\n")
    write_text_atomic(run.path / EVALUATIONS_DIR / f"{evaluation_name(metrics)}.json", metrics_json(metrics) + "\n")
    write_text_atomic(run.path / PREDICTIONS_FILE, rows_to_csv(rows))
    write_model_card(run.path)  # the card describes the default (served) checkpoint, whichever was evaluated
    return metrics


def evaluation_name(metrics: dict) -> str:
    """The file name an evaluation is kept under: split (or data-FOLDER) and checkpoint, e.g. test-best."""
    what = (
        metrics["split"]
        if metrics["split"] != "data"
        else "data-" + re.sub(r"[^\w.-]+", "_", Path(metrics["folder"]).name)
    )
    return f"{what}-{metrics['checkpoint']}"


def metrics_json(metrics: dict) -> str:
    """The metrics as strict JSON: an undefined ROC AUC (NaN: a class has no image) is null, not the NaN that
    JavaScript, jq and other strict parsers refuse."""
    auc = metrics["roc_auc"]
    return json.dumps({**metrics, "roc_auc": None if math.isnan(auc) else auc}, indent=2)


def calibration_words(metrics: dict) -> str:
    """How the scored probabilities were calibrated, in a few words (evaluation.json files from before the richer
    methods name only the temperature)."""
    method = metrics.get("calibration", "temperature")
    if method in ("temperature", "none"):
        return f"temperature {metrics['temperature']:.3f}"
    return f"{method} calibration" + (f", temperature {metrics['temperature']:.3f}" if method != "vector" else "")


def format_metrics(metrics: dict) -> str:
    """Readable metrics: the headline numbers, a per-class table and the confusion matrix laid out by class name."""
    names = metrics["class_names"]
    lines = [f"run: {metrics['run']}  ({metrics['images']} {metrics.get('split', 'validation')} images)"]
    headline = ("accuracy", "precision", "recall", "f1", "roc_auc") if len(names) == 2 else ("accuracy", "roc_auc")
    lines += [f"{k:<10}{metrics[k]:.4f}" for k in headline]
    if "ece" in metrics:  # evaluation.json files written before calibration lack it
        lines.append(
            f"{'ece':<10}{metrics['ece']:.4f}  ({metrics['ece_bins']} bins, {calibration_words(metrics)}; "
            f"{metrics['sure_mistakes']} wrong answers above p {SURE})"
        )
    return "\n".join(
        lines
        + [
            "",
            *class_table(metrics),
            "",
            *confusion_lines(metrics),
            "",
            f"per-image results: {metrics['run']}/predictions.csv",
        ]
    )


def class_table(metrics: dict) -> list[str]:
    """Precision, recall, F1 and support per class, then the macro and weighted averages."""
    width = max(len(n) for n in [*metrics["class_names"], "weighted avg"]) + 2
    lines = [f"{'':<{width}}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}"]
    for name, s in metrics["per_class"].items():
        lines.append(f"{name:<{width}}{s['precision']:>10.4f}{s['recall']:>10.4f}{s['f1']:>10.4f}{s['support']:>10}")
    for average in ("macro", "weighted"):
        s = metrics[average]
        lines.append(f"{average + ' avg':<{width}}{s['precision']:>10.4f}{s['recall']:>10.4f}{s['f1']:>10.4f}")
    return lines


def confusion_lines(metrics: dict) -> list[str]:
    """The C x C confusion matrix with class names on both axes."""
    names = metrics["class_names"]
    width = max(len(n) for n in names) + 2
    positive = f"; positive = {names[1]}" if len(names) == 2 else ""
    lines = [
        f"confusion matrix (rows: true, columns: predicted{positive})",
        " " * width + "".join(f"{n:>{width}}" for n in names),
    ]
    return lines + [
        f"{name:<{width}}" + "".join(f"{c:>{width}}" for c in row)
        for name, row in zip(names, metrics["confusion_matrix"])
    ]
