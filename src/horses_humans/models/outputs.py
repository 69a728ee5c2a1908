"""How to read a model's output: its classes, the kind of output layer, and the threshold.

Two classes keep the reference's single sigmoid unit (the probability of class_names[1]; the reference CNN stays
9,494,561 parameters); three or more use a softmax over one unit per class. Everything downstream (predict, the
server, evaluation, the report, exports and their parity checks) reads raw model outputs through one ClassOutput,
so it always sees an (N, C) matrix of class probabilities, whatever the output layer is.

Calibration (calibration.py fits it on validation, RUN/calibration.json keeps it) maps them to
softmax(log p * scale / T + bias): a temperature T softens (T > 1) or sharpens (T < 1) them, which for a sigmoid is
sigmoid(logit(p) / T); a per-class bias (temperature + bias, two classes) and per-class scales (vector scaling, N
classes) also correct a model that favours one class. T = 1 with no scale and no bias leaves the model's
probabilities as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..config import DEFAULT_THRESHOLD, HorsesHumansError

SIGMOID, SOFTMAX = "sigmoid", "softmax"
# calibration methods (calibration.py fits them): the map softmax(log p * scale / T + bias) uses ...
NONE, TEMPERATURE, TEMPERATURE_BIAS, VECTOR = "none", "temperature", "temperature+bias", "vector"  # T / T, bias / both


@dataclass(frozen=True)
class ClassOutput:
    """The class list and how the model's output gives their probabilities."""

    class_names: tuple[str, ...]
    kind: str  # SIGMOID (two classes: one unit, P(class_names[1])) or SOFTMAX (one unit per class)
    threshold: float = DEFAULT_THRESHOLD  # sigmoid only: P(class_names[1]) >= threshold means class_names[1]
    temperature: float = 1.0  # applied after the model: the threshold reads the calibrated probability
    scale: tuple[float, ...] | None = None  # vector scaling: per class, multiplies log p (before / T); None: all 1
    bias: tuple[float, ...] | None = None  # per class, added to the scaled log p; None: all 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "class_names", tuple(self.class_names))
        for name in ("scale", "bias"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, tuple(float(v) for v in getattr(self, name)))
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
        self.check_class_terms()

    def check_class_terms(self) -> None:
        """A calibration scale or bias holds one finite number per class (scales above 0), else a clear error."""
        for name, values, low in (("class_scale", self.scale, 0.0), ("class_bias", self.bias, -np.inf)):
            if values is None:
                continue
            if len(values) != len(self.class_names) or not np.all(np.isfinite(values) & (np.array(values) > low)):
                raise HorsesHumansError(
                    f"calibration {name} {list(values)}: it must hold one finite number per class "
                    f"{list(self.class_names)}{', each above 0' if low == 0 else ''} "
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
        threshold, temperature = labels.get("threshold", DEFAULT_THRESHOLD), labels.get("temperature", 1.0)
        return cls(tuple(names), kind, threshold, temperature, labels.get("class_scale"), labels.get("class_bias"))

    @property
    def is_calibrated(self) -> bool:
        """Whether probabilities are mapped after the model (a temperature other than 1, a scale or a bias)."""
        return self.temperature != 1.0 or self.scale is not None or self.bias is not None

    @property
    def calibration_method(self) -> str:
        """Which calibration method made the map (calibration.py's names), read from the terms it uses."""
        if self.scale is not None:
            return VECTOR
        if self.bias is not None:
            return TEMPERATURE_BIAS
        return TEMPERATURE if self.temperature != 1.0 else NONE

    def uncalibrated(self) -> ClassOutput:
        """The same output read without calibration: the model's own probabilities."""
        return replace(self, temperature=1.0, scale=None, bias=None)

    def calibration_record(self) -> dict:
        """The labels.json entries of the calibration (temperature, class_scale, class_bias), only those it uses."""
        record = {"temperature": self.temperature} if self.temperature != 1.0 else {}
        if self.scale is not None:
            record["class_scale"] = list(self.scale)
        if self.bias is not None:
            record["class_bias"] = list(self.bias)
        return record

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
        return calibrated(probabilities, self.temperature, self.scale, self.bias)

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
        # calibrated: exports and /v1/model say how their probabilities were made
        return {**record, **self.calibration_record()}


PROBABILITY_FLOOR = 1e-7  # p is clipped to [1e-7, 1 - 1e-7] before the log: a saturated float32 p is exactly 0 or 1


def tempered(probabilities, temperature: float) -> np.ndarray:
    """Class probabilities (N, C) -> softmax(log p / T), float32; T = 1.0 returns them unchanged.

    For two classes this is sigmoid(logit(p1) / T), so a sigmoid and its two-column form agree. Dividing by T keeps
    the order of a row: the argmax, and a sigmoid's side of 0.5, never change."""
    return calibrated(probabilities, temperature)


def calibrated(probabilities, temperature: float = 1.0, scale=None, bias=None) -> np.ndarray:
    """Class probabilities (N, C) -> softmax(log p * scale / T + bias), float32 (scale and bias (C,), None: 1 and 0);
    the identity returns them unchanged. A bias or unequal scales can change a row's label: that is what they fix."""
    probabilities = np.asarray(probabilities, np.float32)
    if temperature == 1.0 and scale is None and bias is None:
        return probabilities
    logits = np.log(np.clip(probabilities.astype(np.float64), PROBABILITY_FLOOR, 1.0 - PROBABILITY_FLOOR))
    logits = logits * (1.0 if scale is None else np.asarray(scale, np.float64)) / temperature
    logits = logits + (0.0 if bias is None else np.asarray(bias, np.float64))
    logits -= logits.max(axis=1, keepdims=True)  # no overflow in exp
    scaled = np.exp(logits)
    return (scaled / scaled.sum(axis=1, keepdims=True)).astype(np.float32)
