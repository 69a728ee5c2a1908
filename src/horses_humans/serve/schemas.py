"""The JSON the API speaks (pydantic models; FastAPI turns them into the OpenAPI schema)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from ..models.outputs import NONE, TEMPERATURE, TEMPERATURE_BIAS, VECTOR


class FileResult(BaseModel):
    """One uploaded file's answer, or why it has none."""

    file: str
    label: str | None = None
    probability: float | None = None  # the probability of `label` (not of a fixed class)
    probabilities: dict[str, float] | None = None  # every class name -> its probability, in class_names order
    unsure_reason: str | None = None  # why label is "unsure" (None when a class is answered)
    unsure_score: float | None = None  # in [0, 1]: how sure the rule is that the answer is unsure (0 when answered)
    model: str | None = None  # the run directory's name
    gradcam: str | None = None  # data:image/png;base64 overlay, when asked for with ?gradcam=true
    error: str | None = None
    status: int = 200  # what this file alone would have answered (4xx for a bad file)


class PredictResponse(BaseModel):
    """Answers in upload order; a bad file among good ones has its error here and does not fail the request."""

    model: str
    results: list[FileResult]


class ErrorResponse(BaseModel):
    """Every 4xx: what is wrong and how to fix it; per-file reasons when files were uploaded."""

    error: str
    results: list[FileResult] | None = None


class Calibration(BaseModel):
    """How the model's own probabilities are mapped before they are answered: softmax((scale * log p) / T + bias)."""

    method: Literal[NONE, TEMPERATURE, TEMPERATURE_BIAS, VECTOR]  # which terms are in use (`calibrate --method`)
    temperature: float = 1.0  # T: above 1 softens the probabilities, below 1 sharpens them
    class_scale: list[float] | None = None  # vector only: per class (class_names order), multiplies log p; None: all 1
    class_bias: list[float] | None = None  # per class (class_names order), added last; None: all 0


class UnsureInfo(BaseModel):
    """The rule that answers "unsure" instead of a class (calibration.json's "unsure")."""

    min_confidence: float  # tau: the answered class's calibrated probability must reach it (0: no threshold)
    neither_class: str | None  # the reject class: when it wins the answer is "unsure" (None: the run has none)
    max_unsure_share: float  # the share of validation images tau was fitted to leave unsure at most
    reasons: list[str]  # the unsure_reason texts a prediction may carry
    distance: bool = False  # train --distance-unsure: the model answers unsure on images unlike every training image
    chosen: str = "auto"  # how tau was chosen (--min-confidence): auto (fitted on validation), off, or a probability
    score: str  # how unsure_score is computed, in words


class ModelInfo(BaseModel):
    """What is being served, and how its answers read."""

    model: str
    recipe: str
    class_names: list[str]
    input_size: int
    resize: str  # how an upload is brought to input_size x input_size: squash, crop (centred square) or pad
    output_kind: str  # "sigmoid" (two classes: one unit, P(class_names[1])) or "softmax" (one unit per class)
    threshold: float | None  # sigmoid only: P(class_names[1]) at or above it means class_names[1]; None for softmax
    output: str  # how to read the output, in words
    calibration: Calibration  # how the answered probabilities are made from the model's
    unsure: UnsureInfo  # when the answer is "unsure" rather than a class
    metrics: dict  # the run's metrics.json (validation accuracy, best epoch, timings, ...)
    config: dict  # the run's config.json
    checkpoint: dict | None = None  # the served checkpoint: {name, file, epoch, val_accuracy, val_loss}
    runtime: str  # what runs the model: "keras", or RUNTIME:EXPORT (e.g. "onnx:web", "tflite:tflite")
    answered_by: str  # in words: "run NAME, checkpoint model-best.keras, runtime onnx:web"
    model_card: str = "/v1/model/card"  # the run's MODEL_CARD.md (Markdown): uses, data, results, limitations


class Health(BaseModel):
    status: str
    model: str
