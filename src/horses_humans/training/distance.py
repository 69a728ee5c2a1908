"""Fit a run's distance check (`train --distance-unsure`, models/distance.py) on its training images, once the served
checkpoint is saved and before it is calibrated, so calibration and the unsure rule see the gated model."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data.pixels import Split
from ..models.distance import DISTANCE_FILE, DistanceGate
from ..models.recipes import Recipe
from ..runs.store import load_run
from .features import extract


def fit_distance_gate(run_dir: Path, recipe: Recipe, splits: list[Split], seed: int, log) -> DistanceGate:
    """Pooled backbone features of the run's images (the fit and validation splits: every image it was given is one
    it knows) through its saved checkpoint -> the gate, written to the run (atomically). The threshold is cross-fitted,
    so it does not lean on an image finding itself."""
    model = load_run(run_dir).load_model()  # no gate yet: the file is written below
    extractor = recipe.feature_extractor(model)
    features = np.concatenate([extract(extractor, np.asarray(split.x)) for split in splits if len(split)])
    gate = DistanceGate.fit(features.mean(axis=(1, 2)), seed=seed)
    gate.save(Path(run_dir) / DISTANCE_FILE)
    log(
        f"distance check: unsure past distance {gate.threshold:.4f} ({gate.quantile:.0%} of {len(gate.reference)} "
        f"training images' cross-fitted distances, {gate.k} nearest)"
    )
    return gate
