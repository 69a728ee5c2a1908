"""Honest probabilities: temperature scaling fitted on validation, expected calibration error, reliability bins.

A model trained to zero loss answers 99.99% even where it is often wrong. One number, the temperature T, fitted to
minimise the validation negative log-likelihood of log(p) / T, softens its probabilities without changing a single
label (outputs.tempered). RUN/calibration.json keeps T and the before/after numbers; Run.output applies it, so
predict, the server, evaluate, the report and exports all serve calibrated probabilities.

A run with test-time flips serves the mean of the tempered probabilities of an image and its mirror, so its T is
fitted on exactly that: the fit takes a stack of views (V, N, C) and scores their tempered mean.
"""

from __future__ import annotations

import logging

import numpy as np

from ..models.outputs import PROBABILITY_FLOOR, tempered
from ..runs.record import load_run_split
from ..runs.store import load_run, update_calibration
from .predictor import Predictor

logger = logging.getLogger(__name__)  # progress lines; the CLI sends them to stderr

ECE_BINS = 15
# T from 1 to 148: calibration only softens. Validation renders are easier than the photos users send, so a T below 1
# (sharper) fitted on a handful of validation mistakes would promise more than the model keeps on real photos.
LOG_T_RANGE = (0.0, 5.0)
VIEWS = {1: "each image", 2: "each image and its mirror (test-time flips): T fitted on their mean, as served"}


def negative_log_likelihood(y_true, probabilities) -> float:
    """Mean -log p(true class) of class indices y_true (N,) under probabilities (N, C), p clipped as outputs does."""
    probabilities = np.asarray(probabilities, np.float64)
    p = probabilities[np.arange(len(probabilities)), np.asarray(y_true, int)]
    return float(-np.mean(np.log(np.clip(p, PROBABILITY_FLOOR, 1.0))))


def views_of(probabilities) -> np.ndarray:
    """Uncalibrated probabilities (N, C), or a stack of views (V, N, C) (an image and its mirror) -> (V, N, C)."""
    probabilities = np.asarray(probabilities, np.float32)
    return probabilities[None] if probabilities.ndim == 2 else probabilities


def served(probabilities, temperature: float = 1.0) -> np.ndarray:
    """(N, C) probabilities as a run serves them: the mean of each view's tempered probabilities (what
    Predictor.predict_proba gives with the run's temperature and flips)."""
    return np.mean([tempered(view, temperature) for view in views_of(probabilities)], axis=0)


def fit_temperature(y_true, probabilities) -> float:
    """The T in [1, 148] that minimises the NLL of the served softmax(log p / T) on (y_true (N,), uncalibrated
    probabilities (N, C) or views (V, N, C)); exactly 1.0 when every image is answered right (the NLL then only
    falls as T -> 0)."""
    from scipy.optimize import minimize_scalar

    y_true = np.asarray(y_true, int)
    if not mistakes(y_true, served(probabilities)):
        return 1.0
    loss = lambda log_t: negative_log_likelihood(y_true, served(probabilities, float(np.exp(log_t))))  # noqa: E731
    result = minimize_scalar(loss, bounds=LOG_T_RANGE, method="bounded", options={"xatol": 1e-4})
    return float(np.exp(result.x))


def mistakes(y_true, probabilities) -> int:
    """How many rows' largest probability is not the true class."""
    return int(np.sum(np.asarray(probabilities).argmax(axis=1) != np.asarray(y_true, int)))


def reliability_bins(y_true, probabilities, bins: int = ECE_BINS) -> dict:
    """Top-label reliability in equal-width confidence bins: edges (bins + 1,), then per bin the mean confidence,
    the accuracy (NaN where empty) and the count (bins,)."""
    probabilities = np.asarray(probabilities, np.float64)
    confidence = probabilities.max(axis=1)
    correct = (probabilities.argmax(axis=1) == np.asarray(y_true, int)).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)  # (lo, hi]; 0 goes to bin 0
    count = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.bincount(index, confidence, bins) / count
        accuracy = np.bincount(index, correct, bins) / count
    return {"edges": edges, "confidence": mean_confidence, "accuracy": accuracy, "count": count}


def expected_calibration_error(y_true, probabilities, bins: int = ECE_BINS) -> float:
    """Top-label ECE: the count-weighted mean |accuracy - confidence| over equal-width confidence bins."""
    table = reliability_bins(y_true, probabilities, bins)
    filled = table["count"] > 0
    gaps = np.abs(table["accuracy"][filled] - table["confidence"][filled])
    return float(np.sum(gaps * table["count"][filled]) / max(int(table["count"].sum()), 1))


def bins_record(table: dict) -> dict:
    """reliability_bins as JSON lists (NaN -> None)."""
    clean = lambda a: [None if np.isnan(v) else round(float(v), 6) for v in a]  # noqa: E731
    return {
        "edges": clean(table["edges"]),
        "confidence": clean(table["confidence"]),
        "accuracy": clean(table["accuracy"]),
        "count": [int(c) for c in table["count"]],
    }


def calibration_record(y_true, raw_views, bins: int = ECE_BINS) -> dict:
    """Fit T on (y_true, uncalibrated probabilities (N, C) or views (V, N, C)) and describe the before and after,
    for calibration.json (`mistakes` 0 means there was nothing to fit: T stays 1.0)."""
    temperature = fit_temperature(y_true, raw_views)
    raw_probabilities, after = served(raw_views), served(raw_views, temperature)
    return {
        "temperature": round(temperature, 6),
        "fitted_on": "validation",
        "images": int(len(y_true)),
        "method": "temperature scaling",
        "views": VIEWS[len(views_of(raw_views))],
        "bins": bins,
        "mistakes": mistakes(y_true, raw_probabilities),
        "ece_before": expected_calibration_error(y_true, raw_probabilities, bins),
        "ece_after": expected_calibration_error(y_true, after, bins),
        "nll_before": negative_log_likelihood(y_true, raw_probabilities),
        "nll_after": negative_log_likelihood(y_true, after),
        "reliability_before": bins_record(reliability_bins(y_true, raw_probabilities, bins)),
        "reliability_after": bins_record(reliability_bins(y_true, after, bins)),
    }


def calibrate_run(run_dir, data_dir=None, cache_dir=None, log=logger.info) -> dict:
    """Fit the run's temperature on its validation images and record it in RUN/calibration.json; returns the record.

    The fit always starts from the model's own probabilities (T = 1), so calibrating twice gives the same T."""
    run = load_run(run_dir)
    split = load_run_split(run, "validation", data_dir, cache_dir, log)
    predictor, x = Predictor.uncalibrated(run), np.asarray(split.x)
    views = [predictor.predict_proba(x)] + ([predictor.predict_proba(x[:, :, ::-1])] if run.config.tta else [])
    record = calibration_record(split.y, np.stack(views))
    return update_calibration(run.path, **record)


def format_calibration(record: dict) -> str:
    """One line: T, and ECE and NLL before and after, on how many validation images."""
    unfit = " (no mistakes to fit on: kept)" if record.get("mistakes") == 0 else ""
    return (
        f"temperature {record['temperature']:.3f}{unfit} (fitted on {record['images']} {record['fitted_on']} images): "
        f"ECE {record['ece_before']:.4f} -> {record['ece_after']:.4f}, "
        f"NLL {record['nll_before']:.4f} -> {record['nll_after']:.4f}"
    )
