"""The JSON the API speaks (pydantic models; FastAPI turns them into the OpenAPI schema)."""

from __future__ import annotations

from pydantic import BaseModel


class FileResult(BaseModel):
    """One uploaded file's answer, or why it has none."""

    file: str
    label: str | None = None
    probabilities: dict[str, float] | None = None  # class name -> probability
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


class ModelInfo(BaseModel):
    """What is being served."""

    model: str
    recipe: str
    class_names: list[str]
    input_size: int
    threshold: float
    output: str
    metrics: dict  # the run's metrics.json (validation accuracy, best epoch, timings, ...)
    config: dict  # the run's config.json


class Health(BaseModel):
    status: str
    model: str
