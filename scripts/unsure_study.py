"""What else could say "unsure" or calibrate better, measured on the runs scripts/real_photos.py trained (seed 0):
the numbers behind docs/own-data.md's "What to expect on real photos" remarks on feature distances and on the
baseline's ECE.

- Feature distance: the mean cosine distance of an image's pooled MobileNetV2 features to its k nearest training
  renders (the recommended run's backbone), thresholded to flag at most 2% of validation (as the confidence rule
  is); then the best any threshold could do when picked on the dev photos themselves (optimistic by construction).
- Calibration of the baseline CNN: one temperature against a temperature plus a bias on the logit (Platt scaling),
  each fitted on one half of validation (random halves, seed 0) and scored (ECE) on the other.

    DATA=../shared/data python scripts/unsure_study.py      after scripts/real_photos.py; a minute or two
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

from horses_humans.analysis.answers import load_measuring_folder
from horses_humans.inference.calibration import expected_calibration_error, fit_temperature
from horses_humans.inference.predictor import Predictor
from horses_humans.models.outputs import tempered
from horses_humans.models.recipes import get_recipe
from horses_humans.runs.record import load_run_split
from horses_humans.runs.store import load_run
from horses_humans.training.features import cached_features

ROOT = Path(__file__).resolve().parent.parent
SHARE = 0.02  # of validation flagged, as unsure.MAX_UNSURE_SHARE
QUIET = lambda line: None  # noqa: E731


def latest(folder: Path) -> Path:
    """The newest finished run in folder."""
    return sorted(p.parent for p in folder.glob("*/metrics.json"))[-1]


def pooled(run, split) -> np.ndarray:
    """L2-normalised, spatially averaged backbone features (N, D) of a split."""
    model = Predictor.from_run(run, runtime="keras").model
    maps = cached_features(get_recipe(run.config.recipe), model, split, log=QUIET)
    vectors = maps.reshape(len(maps), -1, maps.shape[-1]).mean(axis=1)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def knn_distance(queries: np.ndarray, reference: np.ndarray, k: int) -> np.ndarray:
    """Mean cosine distance (N,) to the k nearest reference vectors."""
    return 1 - np.sort(queries @ reference.T, axis=1)[:, -k:].mean(axis=1)


def distance_study(runs: Path, photos: Path) -> None:
    """Flagged shares of validation, real photos and neither photos per k; the best dev-picked threshold."""
    run = load_run(latest(runs / "recommended-s0"))
    train, val = (pooled(run, load_run_split(run, side, log=QUIET)) for side in ("train", "validation"))
    dev = load_measuring_folder(run, photos, log=QUIET)
    real, neither = dev.y < 2, dev.y == 2
    features = pooled(run, dev)
    for k in (1, 5, 20):
        v, d = knn_distance(val, train, k), knn_distance(features, train, k)
        t = np.quantile(v, 1 - SHARE)
        best = max(((d[neither] > c).mean(), c) for c in d if (d[real] > c).mean() <= 0.02)
        print(
            f"k={k:>2}: distance validation {v.min():.2f}-{v.max():.2f}, real photos {d[real].min():.2f}-"
            f"{d[real].max():.2f}, neither {d[neither].min():.2f}-{d[neither].max():.2f}; calibrated on validation "
            f"(t {t:.3f}): real photos flagged {(d[real] > t).mean():.1%}, neither {(d[neither] > t).mean():.1%}; "
            f"picked on the dev photos (<= 2% real lost): neither {best[0]:.1%}"
        )


def platt_nll(ab, z, y) -> float:
    """Binary NLL of sigmoid(a z + b)."""
    q = np.clip(1 / (1 + np.exp(-(ab[0] * z + ab[1]))), 1e-12, 1 - 1e-12)
    return float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q)))


def calibration_study(runs: Path) -> None:
    """Held-out ECE of temperature scaling and of Platt scaling on the baseline's validation halves."""
    run = load_run(latest(runs / "baseline-CNN-reference-s0"))
    val = load_run_split(run, "validation", log=QUIET)
    p = Predictor.uncalibrated(run).predict_proba(val.x)
    p1 = np.clip(p[:, 1].astype(np.float64), 1e-7, 1 - 1e-7)
    z, y = np.log(p1 / (1 - p1)), val.y
    order = np.random.default_rng(0).permutation(len(y))
    halves = [(order[: len(y) // 2], order[len(y) // 2 :]), (order[len(y) // 2 :], order[: len(y) // 2])]
    print(f"baseline: {np.mean(np.abs(z) >= 16):.1%} of validation outputs saturated (|logit| >= 16)")
    for fit, score in halves:
        t = fit_temperature(y[fit], p[fit])
        a, b = minimize(platt_nll, [1 / t, 0.0], args=(z[fit], y[fit])).x
        q = 1 / (1 + np.exp(-(a * z[score] + b)))
        print(
            f"half fit -> other half: temperature {t:.2f} ECE "
            f"{expected_calibration_error(y[score], tempered(p[score], t)):.3f}; "
            f"temperature + bias ({1 / a:.2f}, {b:.2f}) ECE "
            f"{expected_calibration_error(y[score], np.stack([1 - q, q], 1)):.3f}"
        )


def main() -> None:
    runs = Path(os.environ.get("RUNS", ROOT / "runs" / "real-photos"))
    photos = Path(os.environ.get("REAL_PHOTOS", ROOT.parent / "shared" / "real-photos-dev"))
    distance_study(runs, photos)
    calibration_study(runs)


if __name__ == "__main__":
    main()
