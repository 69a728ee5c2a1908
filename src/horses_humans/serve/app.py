"""create_app(settings): the FastAPI app. The model is loaded and warmed up in the lifespan, never at import."""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from ..config import resolve_runs_dir
from ..inference.predictor import Predictor
from ..inference.resultfiles import ModelStamp, model_stamp
from ..runs.store import Run, best_run, load_run
from .card import add_card_route
from .errors import validation_problems
from .limits import BodyLimit, InFlightLimit
from .openapi import describe_middleware
from .routes import STATIC, router
from .security import ApiKey, HostCheck
from .settings import ServeSettings
from .worker import ModelWorker

log = logging.getLogger("horses_humans.serve")
SHARED_STATIC = Path(__file__).parent.parent / "static"


@dataclass
class Served:
    """What the routes need: the run, its predictor, the model thread, the limits, the Grad-CAM layer."""

    settings: ServeSettings
    run: Run
    predictor: Predictor
    worker: ModelWorker
    layer: str | None
    decode_slots: asyncio.Semaphore
    stamp: ModelStamp  # which run, checkpoint file and runtime answer: logged at start-up, shown on /v1/model

    def explaining_model(self):
        """The Keras model Grad-CAM needs (called in the model thread; loaded once when an export answers)."""
        return self.predictor.model

    @property
    def model_id(self) -> str:
        return self.run.path.name


def resolve_run(settings: ServeSettings) -> Run:
    """The run named in the settings, else the best finished run in the runs directory, set to the settings'
    checkpoint."""
    if settings.run:
        return load_run(settings.run, settings.checkpoint)
    return best_run(resolve_runs_dir(settings.runs_dir), settings.checkpoint)


def gradcam_layer(run: Run) -> str | None:
    """The recipe's last convolutional layer (None for an unknown recipe: no Grad-CAM, predictions still work)."""
    from ..models.recipes import RECIPES, last_conv_layer

    return last_conv_layer(run.config) if run.config.recipe in RECIPES else None


def create_app(settings: ServeSettings | None = None) -> FastAPI:
    """The app: routes, body limit, JSON errors; the lifespan loads the model once."""
    settings = settings or ServeSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        run = resolve_run(settings)
        predictor = Predictor.from_run(run, runtime=settings.runtime, warn=log.warning)
        stamp = model_stamp(run, runtime=settings.runtime, warn=lambda line: None)  # from_run said the warnings
        worker = await ModelWorker(predictor, settings.max_batch).start()
        app.state.served = Served(
            settings, run, predictor, worker, gradcam_layer(run), asyncio.Semaphore(settings.max_decodes), stamp
        )
        log.info("serving %s: %s (%s)", run.path, stamp.describe(), predictor.source)
        try:
            yield
        finally:
            await worker.stop()

    app = FastAPI(
        title="horses-humans",
        summary="Is it a horse or a human? Upload photos, get labels.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )  # /docs is served from this package: no CDN, works offline
    add_limits(app, settings)
    app.include_router(router)
    add_card_route(app)
    add_docs_route(app)
    # page.css and cards.js: the look and upload UI the page shares with the browser build (`export --format web`)
    app.mount("/static", StaticFiles(directory=SHARED_STATIC), name="static")
    add_error_handlers(app)
    describe_middleware(app, settings)
    return app


def add_limits(app: FastAPI, settings: ServeSettings) -> None:
    """Middleware, outermost first: Host check, API key, body size, arrival time and budget, requests in flight."""
    # BodyLimit outside InFlightLimit: a body it drains before a 503 is read from the server itself, so it never
    # takes a place in flight
    app.add_middleware(InFlightLimit, max_requests=settings.max_queue, target_seconds=settings.target_latency)
    app.add_middleware(
        BodyLimit,
        max_bytes=settings.max_request_bytes,
        seconds=settings.body_timeout,
        max_total_bytes=settings.max_queue * settings.max_request_bytes,  # what max_queue bodies held before
    )
    if settings.api_key is not None:
        app.add_middleware(ApiKey, key=settings.api_key.get_secret_value())
    if settings.allowed_hosts:
        app.add_middleware(HostCheck, hosts=settings.allowed_hosts)


def add_docs_route(app: FastAPI) -> None:
    """GET /docs: the endpoints read from /openapi.json by a small local page (no installed package ships Swagger
    UI's files, and the default page loads them from a CDN)."""

    @app.get("/docs", include_in_schema=False)
    async def docs() -> FileResponse:
        return FileResponse(STATIC / "docs.html")


def add_error_handlers(app: FastAPI) -> None:
    """Every error is JSON {"error": ...}: 4xx naming the problem; a 5xx only for a bug, logged."""

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = validation_problems(exc)
        hint = (
            " (send multipart/form-data with one or more `files` fields)" if request.url.path == "/v1/predict" else ""
        )
        return JSONResponse({"error": f"invalid request: {problems}{hint}"}, status_code=422)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s", request.url.path)
        return JSONResponse({"error": f"internal error ({type(exc).__name__}); please report it"}, status_code=500)
