"""How to read a model's output: its classes, the kind of output layer, and the threshold.

Two classes keep the reference's single sigmoid unit (the probability of class_names[1]; the reference CNN stays
9,494,561 parameters); three or more use a softmax over one unit per class. Everything downstream (predict, the
server, evaluation, the report, exports and their parity checks) reads raw model outputs through one ClassOutput,
so it always sees an (N, C) matrix of class probabilities, whatever the output layer is.

A temperature T (calibration.py fits it on validation, RUN/calibration.json keeps it) softens or sharpens them:
softmax(log p / T), which for a sigmoid is sigmoid(logit(p) / T). T = 1.0 leaves the model's probabilities as they are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import DEFAULT_THRESHOLD, HorsesHumansError

SIGMOID, SOFTMAX = "sigmoid", "softmax"


@dataclass(frozen=True)
class ClassOutput:
    """The class list and how the model's output gives their probabilities."""

    class_names: tuple[str, ...]
    kind: str  # SIGMOID (two classes: one unit, P(class_names[1])) or SOFTMAX (one unit per class)
    threshold: float = DEFAULT_THRESHOLD  # sigmoid only: P(class_names[1]) >= threshold means class_names[1]
    temperature: float = 1.0  # applied after the model: the threshold reads the calibrated probability

    def __post_init__(self) -> None:
        object.__setattr__(self, "class_names", tuple(self.class_names))
        if len(self.class_names) < 2:
            raise HorsesHumansError(f"a classifier needs at least two classes, got {list(self.class_names)}.")
        if self.kind not in (SIGMOID, SOFTMAX) or (self.kind == SIGMOID) != (len(self.class_names) == 2):
            raise HorsesHumansError(
                f"output {self.kind!r} does not fit {len(self.class_names)} classes: "
                "two classes use a sigmoid, more a softmax."
            )
        if not float(self.temperature) > 0:
            raise HorsesHumansError(
                f"temperature {self.temperature!r}: it must be a positive number "
                "(fit it again with `horses-humans calibrate RUN`)."
            )

    @classmethod
    def for_classes(cls, class_names, threshold: float = DEFAULT_THRESHOLD) -> ClassOutput:
        """Sigmoid for two classes, softmax for more."""
        return cls(tuple(class_names), SIGMOID if len(class_names) == 2 else SOFTMAX, threshold)

    @classmethod
    def from_labels(cls, labels: dict) -> ClassOutput:
        """From a run's or an export's labels.json (runs made before N classes have no output_kind: sigmoid)."""
        names = labels["class_names"]
        kind = labels.get("output_kind", SIGMOID if len(names) == 2 else SOFTMAX)
        return cls(tuple(names), kind, labels.get("threshold", DEFAULT_THRESHOLD), labels.get("temperature", 1.0))

    @property
    def units(self) -> int:
        """Width of the model's output layer."""
        return 1 if self.kind == SIGMOID else len(self.class_names)

    def probabilities(self, raw) -> np.ndarray:
        """Raw model outputs (N,), (N, 1) or (N, C) -> class probabilities (N, C), float32, rows summing to 1."""
        raw = np.asarray(raw, np.float32)
        if self.kind == SIGMOID:
            p = raw.reshape(-1)
            probabilities = np.stack([1.0 - p, p], axis=1)
        else:
            probabilities = raw.reshape(-1, len(self.class_names))
        return tempered(probabilities, self.temperature)

    def predicted(self, probabilities) -> np.ndarray:
        """Class index per row of an (N, C) probability matrix: the threshold on class 1 (sigmoid), else argmax."""
        probabilities = np.asarray(probabilities).reshape(-1, len(self.class_names))
        if self.kind == SIGMOID:
            return (probabilities[:, 1] >= self.threshold).astype(np.int64)
        return np.argmax(probabilities, axis=1).astype(np.int64)

    def label_of(self, row) -> str:
        """The class name one probability row (C,) is answered with."""
        return self.class_names[int(self.predicted(np.asarray(row)[None])[0])]

    def reading(self) -> str:
        """How to read the output, in words (labels.json's `output`)."""
        if self.kind == SIGMOID:
            return (
                f"one sigmoid unit: the probability of {self.class_names[1]!r}; at or above the threshold means "
                f"{self.class_names[1]!r}, below it {self.class_names[0]!r}"
            )
        return (
            f"softmax over {len(self.class_names)} units, one per class in class_names order; the largest is the label"
        )

    def record(self) -> dict:
        """The labels.json entries that say how to read the output."""
        record = {"class_names": list(self.class_names), "output_kind": self.kind, "output": self.reading()}
        if self.kind == SIGMOID:
            record["threshold"] = self.threshold
        if self.temperature != 1.0:  # calibrated: exports and /v1/model say how their probabilities were made
            record["temperature"] = self.temperature
        return record


PROBABILITY_FLOOR = 1e-7  # p is clipped to [1e-7, 1 - 1e-7] before the log: a saturated float32 p is exactly 0 or 1


def tempered(probabilities, temperature: float) -> np.ndarray:
    """Class probabilities (N, C) -> softmax(log p / T), float32; T = 1.0 returns them unchanged.

    For two classes this is sigmoid(logit(p1) / T), so a sigmoid and its two-column form agree. Dividing by T keeps
    the order of a row: the argmax, and a sigmoid's side of 0.5, never change."""
    probabilities = np.asarray(probabilities, np.float32)
    if temperature == 1.0:
        return probabilities
    logits = np.log(np.clip(probabilities.astype(np.float64), PROBABILITY_FLOOR, 1.0 - PROBABILITY_FLOOR)) / temperature
    logits -= logits.max(axis=1, keepdims=True)  # no overflow in exp
    scaled = np.exp(logits)
    return (scaled / scaled.sum(axis=1, keepdims=True)).astype(np.float32)
