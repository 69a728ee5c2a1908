"""Server settings from the environment (HORSES_HUMANS_SERVE_*), overridable by `horses-humans serve` options."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServeSettings(BaseSettings):
    """Which run to serve, where to listen, and the limits every upload is held to."""

    model_config = SettingsConfigDict(env_prefix="HORSES_HUMANS_SERVE_", frozen=True)

    run: Path | None = None  # None: the best run in runs_dir (highest validation accuracy of its served checkpoint)
    checkpoint: Literal["best", "last"] = "best"  # which saved epoch is served (runs.DEFAULT_CHECKPOINT)
    runs_dir: Path | None = None  # None: $HORSES_HUMANS_RUNS, else ./runs
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    max_file_bytes: int = Field(10 * 1024 * 1024, gt=0)  # per uploaded file
    max_pixels: int = Field(40_000_000, gt=0)  # width x height per image, checked before decoding
    max_files: int = Field(32, gt=0)  # per request
    max_batch: int = Field(32, gt=0)  # images per model call when requests arrive together
    max_decodes: int = Field(4, gt=0)  # images decoded at once: bounds memory (a 40M-pixel image is ~120 MB decoded)

    @property
    def max_request_bytes(self) -> int:
        """The whole multipart body: every file at its limit, plus room for the part headers."""
        return self.max_files * (self.max_file_bytes + 16 * 1024)
