"""Does an export answer like the Keras model? Probability differences, label agreement, latency (the table of
them is tables.exports_table)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np

from .config import DEFAULT_THRESHOLD

# What each quantization must keep, against the Keras model's probabilities on the same validation images:
# float exports agree to float rounding, float16 to about three decimals, integer ones on the label.
RULES = {
    "none": ("max_abs_diff", 1e-4),
    "float16": ("max_abs_diff", 1e-2),
    "dynamic": ("label_agreement", 0.99),
    "int8": ("label_agreement", 0.99),
}


@dataclass(frozen=True)
class Parity:
    """How closely an export's probabilities follow the Keras model's on `images` validation images."""

    images: int
    mean_abs_diff: float
    max_abs_diff: float
    label_agreement: float  # fraction of images given the same label
    rule: str  # e.g. "max |dp| <= 0.0001"
    passed: bool

    def to_dict(self) -> dict:
        return asdict(self)


def check_parity(reference: np.ndarray, candidate: np.ndarray, quantize: str, threshold: float = DEFAULT_THRESHOLD) -> Parity:
    """Compare an export's probabilities with the Keras model's under the rule for its quantization."""
    reference, candidate = np.asarray(reference, np.float64), np.asarray(candidate, np.float64)
    if reference.shape != candidate.shape or not len(reference):
        raise ValueError(f"parity needs two equal, non-empty sets of probabilities, got {reference.shape} and {candidate.shape}")
    diff = np.abs(candidate - reference)
    agreement = float(np.mean((candidate >= threshold) == (reference >= threshold)))
    metric, bound = RULES[quantize]
    if metric == "max_abs_diff":
        passed, rule = bool(np.all(np.isfinite(candidate)) and diff.max() <= bound), f"max |dp| <= {bound:g}"
    else:
        passed, rule = agreement >= bound, f"same label on >= {bound:.0%} of images"
    return Parity(len(reference), float(diff.mean()), float(diff.max()), agreement, rule, passed)


def p50_latency_ms(predict: Callable[[np.ndarray], np.ndarray], image: np.ndarray, runs: int = 50, warmup: int = 5) -> float:
    """Median wall time of one single-image prediction (after a few warm-up calls), in milliseconds."""
    batch = np.asarray(image, np.float32)[None]
    for _ in range(warmup):
        predict(batch)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        predict(batch)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e3)

