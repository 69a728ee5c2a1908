"""Metrics of a model on a split: accuracy, precision, recall, F1, ROC AUC, confusion matrix, per image."""

from __future__ import annotations

import csv
import io

import numpy as np


def roc_auc(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve via the rank-sum (Mann-Whitney) statistic, ties averaged."""
    y_true = np.asarray(y_true).astype(bool)
    n_pos, n_neg = int(y_true.sum()), int((~y_true).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = np.asarray(scores)[order]
    ranks[order] = np.arange(1, len(scores) + 1)
    for value in np.unique(sorted_scores):  # average ranks over ties
        tied = np.asarray(scores) == value
        ranks[tied] = ranks[tied].mean()
    return float((ranks[y_true].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def roc_curve(y_true: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false positive rates, true positive rates) at every distinct score, from (0, 0) to (1, 1)."""
    y_true = np.asarray(y_true).astype(bool)
    order = np.argsort(-np.asarray(scores), kind="mergesort")
    scores, y_true = np.asarray(scores)[order], y_true[order]
    last = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]  # last index of each tied score
    tp, fp = np.cumsum(y_true)[last], np.cumsum(~y_true)[last]
    return np.r_[0.0, fp / max(fp[-1], 1)], np.r_[0.0, tp / max(tp[-1], 1)]


def classification_metrics(y_true: np.ndarray, probabilities: np.ndarray, threshold: float = 0.5) -> dict:
    """Binary metrics with class 1 as positive; confusion matrix rows = true class, columns = predicted."""
    y_true = np.asarray(y_true).astype(int)
    y_pred = (np.asarray(probabilities) >= threshold).astype(int)
    cm = np.zeros((2, 2), int)
    np.add.at(cm, (y_true, y_pred), 1)
    tp, fp, fn = cm[1, 1], cm[0, 1], cm[1, 0]
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "accuracy": float((y_pred == y_true).mean()), "precision": float(precision), "recall": float(recall),
        "f1": float(f1), "roc_auc": roc_auc(y_true, probabilities), "confusion_matrix": cm.tolist(),
        "images": int(len(y_true)),
    }


def per_image_rows(files: list[str], y_true: np.ndarray, probabilities: np.ndarray, class_names: list[str], threshold: float = 0.5) -> list[dict]:
    """One row per image: file, true label, probability of class 1, predicted label."""
    return [
        {"file": f, "true_label": class_names[int(t)], "probability": round(float(p), 6),
         "predicted_label": class_names[int(p >= threshold)]}
        for f, t, p in zip(files, y_true, probabilities)
    ]


def rows_to_csv(rows: list[dict]) -> str:
    """CSV text with a header from the first row's keys."""
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return buf.getvalue()


def predict_validation(run, data_dir, cache_dir=None, log=print):
    """(predictor, validation split, probabilities of class 1) for a loaded run; classes must agree."""
    from pathlib import Path

    from .config import HorsesHumansError
    from .data import VALIDATION, load_split
    from .predict import Predictor

    split = load_split(Path(data_dir), VALIDATION, run.image_size, cache_dir, warn=log)
    if split.class_names != run.class_names:
        raise HorsesHumansError(f"{data_dir}: classes {split.class_names} differ from the run's {run.class_names}.")
    predictor = Predictor.from_run(run)
    return predictor, split, predictor.predict_pixels(np.asarray(split.x))


def evaluate_run(run_dir, data_dir, cache_dir=None, log=print) -> dict:
    """Evaluate a run's saved model on the validation split; writes evaluation.json and predictions.csv."""
    from .atomic import write_json_atomic, write_text_atomic
    from .runs import load_run

    run = load_run(run_dir)
    predictor, split, probabilities = predict_validation(run, data_dir, cache_dir, log)
    metrics = classification_metrics(split.y, probabilities, predictor.threshold)
    metrics.update(run=str(run.path), class_names=run.class_names, skipped_files=len(split.skipped))
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
