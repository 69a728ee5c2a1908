"""The "unsure" answer: when a model should not name any of its classes, and why.

An UnsureRule is fitted at the end of training and stored in RUN/calibration.json under "unsure"; every answer
(predict, the server) goes through UnsureRule.apply, so they all say `unsure` for the same images.

Rules, checked in this order:
- "unlike every image it was trained on": the run was trained with --distance-unsure and its distance check
  (models/distance.py, inside the model) answered uniform probabilities: the image's backbone features are farther
  from the training images' than almost every training image is from the others.
- "like the 'neither' examples": the run was trained with a reject class folder (outlier exposure: `neither`, or
  the one `train --reject-class NAME` named, and then "like the 'NAME' examples") and that class wins. It is never
  a label.
- "no class confident enough": the probability of the class the model would answer is below min_confidence (tau).

tau is calibrated on the validation split: the largest tau that leaves at most MAX_UNSURE_SHARE (2%) of the
validation images of the real classes unsure, i.e. the k-th smallest confidence with k = floor(2% of them).
The probabilities it thresholds are the run's served ones (calibrated where the run has a calibration map).

score (in [0, 1], how sure the rule is that the answer should be unsure; 0 when an image is answered):
- the reject class wins: its probability;
- not confident enough: (tau - confidence) / (tau - 1/C), i.e. 0 at the threshold, 1 at the uniform guess.

Measuring it: tradeoff_curve says how the answers move as tau does (the report's plot), answer_counts how a
labelled folder is answered (answers.score_folder, scripts/real_photos.py). A feature-distance rule against the
renders was measured and not adopted as a default: real photos are farther from the renders than validation is
(README, scripts/unsure_study.py); it is an option for runs trained on photos (--distance-unsure).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..config import DEFAULT_REJECT_CLASS, parse_min_confidence
from ..models.outputs import ClassOutput
from ..runs.store import read_calibration, update_calibration

UNSURE = "unsure"
NEITHER = DEFAULT_REJECT_CLASS  # a class folder with this name teaches the unsure answer unless a run names another
MAX_UNSURE_SHARE = 0.02  # of validation images answered unsure by the calibrated tau
NOT_CONFIDENT = "no class confident enough"
UNLIKE_TRAINING = "unlike every image it was trained on"
UNIFORM = 1e-6  # a row whose probabilities differ by less is the distance check's uniform answer
SURE = 0.999  # a wrong answer above this probability is a broken promise (issue 12's target: none on real photos)


def like_examples(reject_class: str) -> str:
    """The reason of an image its reject class wins: "like the 'background' examples" (web.html builds the same)."""
    return f"like the '{reject_class}' examples"


LIKE_NEITHER = like_examples(NEITHER)


@dataclass(frozen=True)
class Verdict:
    """One image's answer under the rule: a class name or `unsure`, why (None when answered) and the score."""

    label: str
    reason: str | None
    score: float


@dataclass(frozen=True)
class UnsureRule:
    """When to answer `unsure`: below min_confidence, or when neither_class wins."""

    min_confidence: float = 0.0  # tau: the answered class's probability must reach it
    neither_class: str | None = None  # the class that stands for "none of these" (trained on negatives)
    distance: bool = False  # the run's model has the distance check: its uniform rows are unsure, UNLIKE_TRAINING
    chosen: str = "auto"  # how tau was chosen (--min-confidence): auto (calibrated), off, or a fixed probability

    def apply(self, probabilities, output: ClassOutput) -> list[Verdict]:
        """(N, C) class probabilities -> one Verdict per row."""
        probabilities = np.asarray(probabilities, np.float64).reshape(-1, len(output.class_names))
        picked = answered(probabilities, output, self.neither_class)
        confidence = probabilities[np.arange(len(picked)), picked]
        neither = self.neither_index(output)
        return [self.verdict(row, k, c, neither, output) for row, k, c in zip(probabilities, picked, confidence)]

    def verdict(self, row, k: int, confidence: float, neither: int | None, output: ClassOutput) -> Verdict:
        """One row's Verdict (k: the real class the model would answer, confidence: its probability)."""
        if self.distance and uniform_rows(row):
            return Verdict(UNSURE, UNLIKE_TRAINING, 1.0)
        if neither is not None and row[neither] >= row.max():
            return Verdict(UNSURE, like_examples(self.neither_class), float(row[neither]))
        if confidence < self.min_confidence:
            floor = 1.0 / len(output.class_names)
            score = (self.min_confidence - confidence) / max(self.min_confidence - floor, 1e-12)
            return Verdict(UNSURE, NOT_CONFIDENT, float(np.clip(score, 0.0, 1.0)))
        return Verdict(output.class_names[k], None, 0.0)

    def neither_index(self, output: ClassOutput) -> int | None:
        """Column of the neither class, or None if the rule or the model has none."""
        names = list(output.class_names)
        return names.index(self.neither_class) if self.neither_class in names else None

    def record(self) -> dict:
        """calibration.json's "unsure" entry (and labels.json's in exports)."""
        return {
            **asdict(self),
            "max_unsure_share": MAX_UNSURE_SHARE,
            "reasons": [like_examples(self.neither_class or NEITHER)]
            + ([] if self.chosen == "off" else [NOT_CONFIDENT])
            + ([UNLIKE_TRAINING] if self.distance else []),
            "score": "reject class wins: its probability; not confident: (tau - confidence) / (tau - 1/C); 0 when "
            "answered",
        }

    @classmethod
    def from_record(cls, record: dict) -> UnsureRule:
        """Back from a record() dict (extra keys are documentation)."""
        return cls(
            float(record.get("min_confidence", 0.0)),
            record.get("neither_class"),
            bool(record.get("distance")),
            str(record.get("chosen", "auto")),
        )


def answered(probabilities: np.ndarray, output: ClassOutput, neither_class: str | None = None) -> np.ndarray:
    """(N,) index of the real class each row would be answered with (the neither class left out)."""
    names = list(output.class_names)
    if neither_class in names:
        masked = probabilities.copy()
        masked[:, names.index(neither_class)] = -1.0
        return np.argmax(masked, axis=1)
    return output.predicted(probabilities)


def calibrate(
    probabilities,
    labels,
    output: ClassOutput,
    reject_class: str = NEITHER,
    distance: bool = False,
    choice: str | float = "auto",
) -> UnsureRule:
    """The rule for a run: neither_class the run's reject class if its classes hold it; tau as `choice`
    (--min-confidence) says: auto, the largest leaving <= MAX_UNSURE_SHARE of the validation images of real classes
    (labels: (N,) class indices) unsure, those the reject class wins or the distance check answers (distance: the
    model has one) counted in; off, none; a number, that probability. With the distance check tau is above 1/C, so
    that a client that knows only tau still answers its uniform rows unsure."""
    choice = parse_min_confidence(choice)
    neither_class = present(reject_class, output)
    if choice == "auto":
        tau = rule_for(probabilities, labels, output, MAX_UNSURE_SHARE, neither_class, distance).min_confidence
    else:
        tau = 0.0 if choice == "off" else float(choice)
    floor = np.nextafter(np.float32(1.0 / len(output.class_names)), np.float32(1.0)) + UNIFORM
    return UnsureRule(max(tau, float(floor)) if distance else tau, neither_class, distance, str(choice))


def rule_for(probabilities, labels, output: ClassOutput, max_share: float, neither_class, distance: bool):
    """calibrate's rule before the distance check's floor on tau."""
    probabilities = np.asarray(probabilities, np.float64).reshape(-1, len(output.class_names))
    real = np.asarray(labels) != (list(output.class_names).index(neither_class) if neither_class else -1)
    probabilities = probabilities[real]
    if not len(probabilities):
        return UnsureRule(0.0, neither_class)
    confidence = probabilities[np.arange(len(probabilities)), answered(probabilities, output, neither_class)]
    if neither_class:  # a real image that the reject class wins is unsure already, whatever tau is
        confidence[probabilities.argmax(axis=1) == list(output.class_names).index(neither_class)] = -1.0
    if distance:  # so is one the distance check answers
        confidence[uniform_rows(probabilities)] = -1.0
    allowed = int(np.floor(max_share * len(confidence)))  # images strictly below sorted[allowed]: at most this many
    return UnsureRule(max(float(np.sort(confidence)[allowed]), 0.0), neither_class)


def unsure_share(rule: UnsureRule, probabilities, labels, output: ClassOutput) -> float:
    """Share of the images of real classes (labels: (N,) class indices) that the rule answers unsure."""
    neither = rule.neither_index(output)
    real = np.asarray(labels) != (-1 if neither is None else neither)
    verdicts = rule.apply(np.asarray(probabilities)[real], output)
    return sum(v.label == UNSURE for v in verdicts) / max(len(verdicts), 1)


def uniform_rows(probabilities) -> np.ndarray:
    """Which rows (one row: a scalar) are the distance check's uniform answer: probabilities within UNIFORM."""
    return np.ptp(probabilities, axis=-1) < UNIFORM


def present(reject_class: str | None, output: ClassOutput) -> str | None:
    """reject_class when the model has that class, else None (a run without a reject class)."""
    return reject_class if reject_class in output.class_names else None


def default_rule(output: ClassOutput, reject_class: str = NEITHER) -> UnsureRule:
    """The rule of a run that has none stored: only its reject class, if it has one."""
    return UnsureRule(0.0, present(reject_class, output))


def load_rule(run_dir: Path, output: ClassOutput, reject_class: str = NEITHER) -> UnsureRule:
    """A run's stored rule (calibration.json "unsure"), or default_rule for runs made before it (reject_class: the
    run's recorded --reject-class)."""
    record = read_calibration(run_dir).get("unsure")
    return UnsureRule.from_record(record) if record else default_rule(output, reject_class)


def save_rule(run_dir: Path, rule: UnsureRule) -> None:
    """Store the rule in calibration.json, keeping every other key (temperature, ece_* ...)."""
    update_calibration(run_dir, unsure=rule.record())


def describe(rule: UnsureRule, share: float | None = None) -> str:
    """One line for logs and the `unsure` command."""
    confident = rule.min_confidence > 0 and rule.chosen != "off"
    parts = [f"below confidence {rule.min_confidence:.4f}"] if confident else []
    parts += [f"when {rule.neither_class!r} wins"] if rule.neither_class else []
    parts += ["when unlike every image it was trained on"] if rule.distance else []
    text = "unsure " + ", or ".join(parts) if parts else "never unsure (no threshold, no neither class)"
    text += " (--min-confidence off)" if rule.chosen == "off" else ""
    return text + (f" ({share:.1%} of validation unsure)" if share is not None else "")


def tradeoff_curve(
    probabilities,
    labels,
    output: ClassOutput,
    neither_label: int | None = None,
    chosen: float | None = None,
    reject_class: str | None = NEITHER,
) -> dict:
    """How the answers move as tau does (the run's reject class kept): for each candidate tau (0, then every
    distinct confidence of a real-class image, rising), the share of real-class images answered right (unsure is not
    right) and the share of the reject images (label neither_label) answered unsure; without such images, the
    share of the real-class images answered unsure; `chosen` (a run's tau) is one of the candidates. Returns
    {"tau", "right", "unsure" (arrays), "unsure_of", "chosen"}."""
    probabilities = np.asarray(probabilities, np.float64).reshape(-1, len(output.class_names))
    labels = np.asarray(labels)
    neither_class = present(reject_class, output)
    picked = answered(probabilities, output, neither_class)
    confidence = probabilities[np.arange(len(picked)), picked]
    if neither_class:  # the reject unit's wins are unsure whatever tau is
        confidence[probabilities.argmax(axis=1) == list(output.class_names).index(neither_class)] = -1.0
    real = labels != (-1 if neither_label is None else neither_label)
    if neither_class:
        real &= labels != list(output.class_names).index(neither_class)
    others = ~real if (~real).any() else real
    taus = np.unique(np.concatenate([[0.0], confidence[real & (confidence >= 0)], [] if chosen is None else [chosen]]))
    kept = confidence[None, :] >= taus[:, None]  # (T, N): answered, not unsure
    # a folder of reject-class images alone has no real image to be right on: NaN (no curve), not a warning
    right = (kept[:, real] & (picked[real] == labels[real])[None]).mean(axis=1) if real.any() else taus * np.nan
    return {
        "tau": taus,
        "right": right,
        "unsure": (~kept[:, others]).mean(axis=1),
        "unsure_of": (reject_class or NEITHER) if (~real).any() else "real classes",
        "chosen": chosen,
    }


def answer_counts(rule: UnsureRule, probabilities, labels, output: ClassOutput, names: list[str]) -> dict:
    """{class name: {"images", "right", "unsure", "wrong", "sure_wrong"}} of labelled images under the rule (names:
    the labels' class names; a reject-class image is right only when answered unsure; sure_wrong: wrong at
    p > 0.999)."""
    verdicts = rule.apply(probabilities, output)
    counts = {name: dict.fromkeys(("images", "right", "unsure", "wrong", "sure_wrong"), 0) for name in names}
    rows = np.asarray(probabilities).reshape(len(verdicts), -1)
    for label, verdict, row in zip(np.asarray(labels), verdicts, rows):
        truth = names[int(label)]
        kind = "unsure" if verdict.label == UNSURE else "right" if verdict.label == truth else "wrong"
        counts[truth]["images"] += 1
        counts[truth][kind] += 1
        counts[truth]["sure_wrong"] += kind == "wrong" and float(row.max()) > SURE
    return counts
