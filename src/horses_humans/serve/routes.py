"""The endpoints: upload page, predict, model card, health."""

from __future__ import annotations

import asyncio
import io
import re
from pathlib import Path

import numpy as np
from fastapi import APIRouter, File, Query, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from ..analysis.htmlpage import png_data_uri
from ..config import HorsesHumansError
from ..data.images import ImageError, ImageTooLarge, NotAnImage, load_pixels
from ..inference.predictor import Prediction
from .schemas import Calibration, ErrorResponse, FileResult, Health, ModelInfo, PredictResponse, UnsureInfo

STATIC = Path(__file__).parent / "static"
ERRORS = {code: {"model": ErrorResponse} for code in (400, 413, 415, 422)}
router = APIRouter()


class EmptyFile(NotAnImage):
    """An upload with no bytes at all."""


@router.get("/", include_in_schema=False)
async def index() -> FileResponse:
    """The upload page (plain HTML + JS, no build step)."""
    return FileResponse(STATIC / "index.html")


@router.get("/healthz", response_model=Health)
async def healthz(request: Request) -> Health:
    """Liveness: the model is loaded and warmed up (the app accepts no request before that)."""
    return Health(status="ok", model=request.app.state.served.model_id)


@router.get("/v1/model", response_model=ModelInfo)
async def model_info(request: Request) -> ModelInfo:
    """Recipe, class names, output kind and how to read it, calibration and unsure rule, input size and the run's
    validation metrics."""
    served = request.app.state.served
    run, output = served.run, served.predictor.output
    record = output.record()
    return ModelInfo(
        model=served.model_id,
        recipe=run.config.recipe,
        class_names=list(output.class_names),
        input_size=run.image_size,
        resize=run.resize,
        output_kind=output.kind,
        threshold=record.get("threshold"),
        output=record["output"],
        calibration=Calibration(method=output.calibration_method, **output.calibration_record()),
        unsure=UnsureInfo(**served.predictor.unsure.record()),
        metrics=run.metrics,
        config=run.config.to_dict(),
        checkpoint={"name": run.checkpoint, **run.checkpoint_record()},
        runtime=served.stamp.runtime,
        answered_by=served.stamp.describe(),
    )


@router.post("/v1/predict", response_model=PredictResponse, responses=ERRORS)
async def predict(
    request: Request,
    files: list[UploadFile] = File(..., description="one or more images (repeat the field)"),
    gradcam: bool = Query(False, description="add each image's Grad-CAM overlay as a PNG data URL"),
):
    """Label and class probabilities per uploaded image, in upload order."""
    served = request.app.state.served
    if len(files) > served.settings.max_files:
        return error_response(
            413,
            f"{len(files)} files in one request; the limit is {served.settings.max_files} "
            "(HORSES_HUMANS_SERVE_MAX_FILES)",
        )
    results = await asyncio.gather(*(predict_upload(served, upload, gradcam) for upload in files))
    if all(r.error for r in results):
        return error_response(common_status(results), summary(results), results)
    return PredictResponse(model=served.model_id, results=results)


async def predict_upload(served, upload: UploadFile, gradcam: bool) -> FileResult:
    """One upload -> its result; a bad file becomes an error with its own 4xx status, never an exception."""
    name = safe_name(upload.filename)
    try:
        data = await read_limited(upload, served.settings.max_file_bytes, name)
        async with served.decode_slots:
            pixels = await run_in_threadpool(
                load_pixels,
                data,
                served.predictor.image_size,
                name,
                served.settings.max_pixels,
                resize=served.predictor.resize,
            )
    except ImageTooLarge as exc:
        return FileResult(file=name, error=str(exc), status=413)
    except EmptyFile as exc:
        return FileResult(file=name, error=str(exc), status=400)
    except NotAnImage as exc:
        return FileResult(file=name, error=str(exc), status=415)
    except ImageError as exc:
        return FileResult(file=name, error=str(exc), status=422)
    result = answer(served, await served.worker.predict(name, pixels))
    if gradcam and served.layer and result.probabilities:
        explained = int(
            served.predictor.output.predicted(np.asarray([list(result.probabilities.values())]))[0]
        )  # as the threshold answers
        result.gradcam = await served.worker.run(gradcam_data_url, served, pixels, explained)
    return result


def answer(served, prediction: Prediction) -> FileResult:
    """The Predictor's answer for one image (label or "unsure", why and how surely, the label's probability, every
    class's) in the API's schema; a model that answered no number (NaN) is the server's fault: 500."""
    if prediction.error is not None:
        return FileResult(file=prediction.file, error=prediction.error, status=500)
    return FileResult(
        file=prediction.file,
        label=prediction.label,
        probability=prediction.probability,
        probabilities=prediction.probabilities,
        unsure_reason=prediction.unsure_reason,
        unsure_score=prediction.unsure_score,
        model=served.model_id,
    )


async def read_limited(upload: UploadFile, max_bytes: int, name: str) -> bytes:
    """The upload's bytes; too big or empty is refused before any decoding."""
    data = await upload.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ImageTooLarge(
            f"{name}: over the limit of {max_bytes:,} bytes (HORSES_HUMANS_SERVE_MAX_FILE_BYTES); send a smaller file"
        )
    if not data:
        raise EmptyFile(f"{name}: the file is empty; choose an image file")
    return data


def gradcam_data_url(served, pixels, class_index: int) -> str | None:
    """Grad-CAM overlay of one image for one class as a PNG data URL (runs in the model thread)."""
    from PIL import Image

    from ..analysis import explain, plots

    try:
        heatmap = explain.gradcam(served.explaining_model(), pixels, served.layer, class_index)
    except HorsesHumansError:
        return None
    buffer = io.BytesIO()
    Image.fromarray(plots.overlay(pixels, heatmap)).save(buffer, "PNG")
    return png_data_uri(buffer.getvalue())


def safe_name(filename: str | None) -> str:
    """The upload's base name, printable and short (it is echoed back in JSON and shown on the page)."""
    name = re.sub(r"[\x00-\x1f\x7f]", "?", (filename or "upload").replace("\\", "/").rsplit("/", 1)[-1])
    return (name or "upload")[:200]


def common_status(results: list[FileResult]) -> int:
    """The files' shared 4xx status, or 400 when they failed in different ways."""
    statuses = {r.status for r in results}
    return statuses.pop() if len(statuses) == 1 else 400


def summary(results: list[FileResult]) -> str:
    """One line naming what went wrong."""
    if len(results) == 1:
        return results[0].error
    return (
        f"none of the {len(results)} files could be predicted: "
        + "; ".join(r.error for r in results[:3])
        + (" ..." if len(results) > 3 else "")
    )


def error_response(status: int, message: str, results: list[FileResult] | None = None) -> JSONResponse:
    """A 4xx with the ErrorResponse body."""
    return JSONResponse(ErrorResponse(error=message, results=results).model_dump(exclude_none=True), status_code=status)
