"""Metrics of a model on a split: accuracy, precision, recall, F1, ROC AUC, confusion matrix, per image.

The metrics are scikit-learn's; this module chooses them, names them and writes them with the run.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support, roc_auc_score

from .atomic import write_json_atomic, write_text_atomic
from .predict import Predictor, rows_to_csv
from .rundata import load_labelled, load_run_split
from .runs import load_run


def classification_metrics(y_true: np.ndarray, probabilities: np.ndarray, threshold: float) -> dict:
    """Binary metrics with class 1 as positive; confusion matrix rows = true class, columns = predicted.

    Precision, recall and F1 are 0 where undefined (nothing predicted or present); ROC AUC is NaN with one class."""
    y_true = np.asarray(y_true).astype(int)
    y_pred = (np.asarray(probabilities) >= threshold).astype(int)
    precision, recall, f1, _ = precision_recall_fscore_support(y_true, y_pred, average="binary", pos_label=1, zero_division=0.0)
    both_classes = len(np.unique(y_true)) == 2  # else ROC AUC is undefined (scikit-learn warns or raises)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)), "precision": float(precision), "recall": float(recall),
        "f1": float(f1), "roc_auc": float(roc_auc_score(y_true, probabilities)) if both_classes else float("nan"),
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=[0, 1]).tolist(), "images": int(len(y_true)),
    }


def per_image_rows(files: list[str], y_true: np.ndarray, probabilities: np.ndarray, class_names: list[str], threshold: float) -> list[dict]:
    """One row per image: file, true label, probability of class 1, predicted label."""
    return [
        {"file": f, "true_label": class_names[int(t)], "probability": round(float(p), 6),
         "predicted_label": class_names[int(p >= threshold)]}
        for f, t, p in zip(files, y_true, probabilities)
    ]


def predict_split(run, side: str = "validation", data_dir=None, data=None, cache_dir=None, log=print):
    """(predictor, split, probabilities of class 1) of a loaded run on its own validation or test files (in its own
    data folder unless data_dir is given), or on `data`, any folder of class folders named after its classes."""
    split = (load_labelled(run, data, cache_dir, log) if data is not None
             else load_run_split(run, side, data_dir, cache_dir, log))
    predictor = Predictor.from_run(run)
    return predictor, split, predictor.predict_pixels(np.asarray(split.x))


def evaluate_run(run_dir, data_dir=None, cache_dir=None, log=print, side: str = "validation", data=None) -> dict:
    """Evaluate a run's saved model on its validation or test split (or on `data`, a labelled folder); writes
    evaluation.json (saying which images) and predictions.csv."""
    run = load_run(run_dir)
    predictor, split, probabilities = predict_split(run, side, data_dir, data, cache_dir, log)
    metrics = classification_metrics(split.y, probabilities, predictor.threshold)
    metrics.update(run=str(run.path), class_names=run.class_names, skipped_files=len(split.skipped),
                   split="data" if data is not None else side, folder=str(split.root))
    rows = per_image_rows(split.files, split.y, probabilities, run.class_names, predictor.threshold)
    write_json_atomic(run.path / "evaluation.json", metrics)
    write_text_atomic(run.path / "predictions.csv", rows_to_csv(rows))
    return metrics


def format_metrics(metrics: dict) -> str:
    """Readable metrics with the confusion matrix laid out by class name."""
    names = metrics["class_names"]
    (tn, fp), (fn, tp) = metrics["confusion_matrix"]
    width = max(len(n) for n in names) + 2
    lines = [f"run: {metrics['run']}  ({metrics['images']} validation images)"]
    lines += [f"{k:<10}{metrics[k]:.4f}" for k in ("accuracy", "precision", "recall", "f1", "roc_auc")]
    lines += ["", f"confusion matrix (rows: true, columns: predicted; positive = {names[1]})",
              " " * width + "".join(f"{n:>{width}}" for n in names),
              f"{names[0]:<{width}}{tn:>{width}}{fp:>{width}}", f"{names[1]:<{width}}{fn:>{width}}{tp:>{width}}",
              "", f"per-image results: {metrics['run']}/predictions.csv"]
    return "\n".join(lines)
