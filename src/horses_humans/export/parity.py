"""Does an export answer like the Keras model? Probability differences, label agreement, latency (the table of
them is tables.exports_table). Both sides are class-probability matrices (N, C), read through the run's ClassOutput."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from ..inference.unsure import uniform_rows
from ..models.outputs import ClassOutput

# What each quantization must keep, against the Keras model's probabilities on the same validation images (every
# class's, so a softmax export is held to the same bound on each of its C columns as a sigmoid one on P(class 1)):
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
    mean_abs_diff: float  # over every entry of the (N, C) matrices
    max_abs_diff: float
    label_agreement: float  # fraction of images given the same label
    rule: str  # e.g. "max |dp| <= 0.0001"
    passed: bool

    def to_dict(self) -> dict:
        return asdict(self)


def check_parity(
    reference: np.ndarray, candidate: np.ndarray, quantize: str, output: ClassOutput, distance: bool = False
) -> Parity:
    """Compare an export's class probabilities (N, C) with the Keras model's under the rule for its quantization;
    labels are read as the served model reads them (output.predicted: threshold or argmax). distance: the run's
    model has the distance check, whose uniform rows are its "unsure" answer: such a row agrees only with another
    (the argmax of equal probabilities is no label, and a quantized check that fires on another image is a
    different answer)."""
    reference, candidate = np.asarray(reference, np.float64), np.asarray(candidate, np.float64)
    width = len(output.class_names)
    if reference.shape != candidate.shape or reference.ndim != 2 or reference.shape[1] != width or not len(reference):
        raise ValueError(
            f"parity needs two equal, non-empty (N, {width}) probability matrices, "
            f"got {reference.shape} and {candidate.shape}"
        )
    diff = np.abs(candidate - reference)
    # a NaN row must not count as agreeing: argmax of NaN is 0, and class 0 may be the reference's label
    same = (output.predicted(candidate) == output.predicted(reference)) & np.all(np.isfinite(candidate), axis=1)
    if distance:
        gated, gated_too = uniform_rows(reference), uniform_rows(candidate)
        same = np.where(gated | gated_too, gated & gated_too, same)
    agreement = float(np.mean(same))
    metric, bound = RULES[quantize]
    if metric == "max_abs_diff":
        passed, rule = bool(np.all(np.isfinite(candidate)) and diff.max() <= bound), f"max |dp| <= {bound:g}"
    else:
        passed, rule = agreement >= bound, f"same label on >= {bound:.0%} of images"
    return Parity(len(reference), float(diff.mean()), float(diff.max()), agreement, rule, passed)


def p50_latency_ms(
    predict: Callable[[np.ndarray], np.ndarray], image: np.ndarray, runs: int = 50, warmup: int = 5
) -> float:
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
