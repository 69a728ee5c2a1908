"""GET /v1/model/card: the served run's MODEL_CARD.md as Markdown, with no absolute path of the server's disk in it."""

from __future__ import annotations

import re
from pathlib import PurePosixPath, PureWindowsPath

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse

from ..runs.modelcard import model_card
from ..runs.store import MODEL_CARD_FILE, Run

# URLs of this server (`/v1/predict`, `/docs` ...) that the card names: they are not paths on disk
SERVER_URLS = ("/v1/", "/healthz", "/docs", "/openapi.json", "/static/")
STOPS = r"\s`'\"()<>\[\]{}|,;"  # what ends a bare path in Markdown prose
QUOTED_PATH = re.compile(r"`((?:/|[A-Za-z]:\\)[^`\n]*)`")  # `/data/my photos`: a path may hold spaces in backticks
BARE_PATH = re.compile(rf"(?<![\w/.:~-])(?:/|[A-Za-z]:\\)[^{STOPS}]+")  # RUN=/home/me/runs/x, '/tmp/x'


class MarkdownResponse(PlainTextResponse):
    """Text sent (and documented in OpenAPI) as text/markdown."""

    media_type = "text/markdown"


def add_card_route(app: FastAPI) -> None:
    """GET /v1/model/card: the served run's MODEL_CARD.md (made from the run's files if it has none yet)."""

    @app.get("/v1/model/card", response_class=MarkdownResponse, summary="The served model's card (Markdown)")
    async def card(request: Request) -> MarkdownResponse:
        return MarkdownResponse(public_card(request.app.state.served.run))


def public_card(run: Run) -> str:
    """The run's card with every absolute path replaced by its last name (the run's folder by the run's id): anyone
    who may call the server may read the card, and the server's folders are none of their business."""
    path = run.path / MODEL_CARD_FILE
    text = path.read_text() if path.exists() else model_card(run)
    for folder in sorted({str(run.path), str(run.path.resolve())}, key=len, reverse=True):
        text = text.replace(folder, run.path.name)  # first: where it has spaces, no pattern can tell where it ends
    return without_paths(text)


def without_paths(text: str) -> str:
    """Markdown with each absolute POSIX or Windows path (quoted in backticks or bare) cut to its last name."""
    text = QUOTED_PATH.sub(lambda m: f"`{shortened(m.group(1))}`", text)
    return BARE_PATH.sub(lambda m: shortened(m.group()), text)


def shortened(path: str) -> str:
    """A path on disk cut to its last name; a URL of this server kept."""
    return path if path.startswith(SERVER_URLS) else last_name(path)


def last_name(path: str) -> str:
    """'/home/me/runs/baseline-1/' -> 'baseline-1'; 'C:\\data\\photos' -> 'photos'; '/' -> '.'."""
    flavour = PureWindowsPath if re.match(r"[A-Za-z]:\\", path) else PurePosixPath
    return flavour(path).name or "."
