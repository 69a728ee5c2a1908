"""Server settings from the environment (HORSES_HUMANS_SERVE_*), overridable by `horses-humans serve` options."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ..config import DEFAULT_MAX_PIXELS

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


class ServeSettings(BaseSettings):
    """Which run to serve, where to listen, who may call it, and the limits every connection and upload is held to."""

    model_config = SettingsConfigDict(env_prefix="HORSES_HUMANS_SERVE_", frozen=True)

    run: Path | None = None  # None: the best run in runs_dir (highest validation accuracy of its served checkpoint)
    checkpoint: Literal["best", "last"] = "best"  # which saved epoch is served (runs.DEFAULT_CHECKPOINT)
    # what answers: the run's fastest parity-checked export of that checkpoint (ONNX Runtime / LiteRT), else Keras
    # (auto); or one named. Grad-CAM always uses the Keras model, loaded on its first request when an export answers.
    runtime: Literal["auto", "keras", "onnx", "tflite"] = "auto"
    runs_dir: Path | None = None  # None: $HORSES_HUMANS_RUNS, else ./runs
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    api_key: SecretStr | None = None  # required on /v1/* when set: `Authorization: Bearer KEY` or `X-API-Key: KEY`
    allowed_hosts: tuple[str, ...] = ()  # Host headers answered (env: a JSON list); () = no check, see served_hosts
    max_file_bytes: int = Field(10 * 1024 * 1024, gt=0)  # per uploaded file
    max_body_bytes: int = Field(
        32 * 1024 * 1024, gt=0
    )  # per request (spooled to disk while parsed): /tmp holds at most max_queue x this
    max_pixels: int = Field(DEFAULT_MAX_PIXELS, gt=0)  # width x height per image, checked before decoding
    max_files: int = Field(32, gt=0)  # per request
    max_batch: int = Field(32, gt=0)  # images per model call when requests arrive together
    # images decoded at once: a decode holds at most ~9 bytes per pixel (RGB and 16-bit grey ~4, transparent ~9:
    # bench/bench_decode_memory.py), so 4 decodes of 40M-pixel images stay under ~1.4 GB
    max_decodes: int = Field(4, gt=0)
    max_queue: int = Field(48, gt=0)  # predict requests in flight at most; more are answered 503 with Retry-After
    target_latency: float = Field(
        0.1, ge=0
    )  # seconds: fewer requests are let in at once while they take longer (0: off)
    max_connections: int = Field(256, gt=0)  # open connections; more get 503 (uvicorn's limit_concurrency)
    header_timeout: float = Field(10.0, gt=0)  # seconds for a request's headers to arrive (slow clients cut off)
    body_timeout: float = Field(30.0, gt=0)  # seconds for a whole request body to arrive, else 408
    keep_alive_timeout: int = Field(5, gt=0)  # seconds an idle keep-alive connection stays open

    @field_validator("api_key")
    @classmethod
    def usable_key(cls, key: SecretStr | None) -> SecretStr | None:
        """Refuse a key no client can send: empty (an unset shell variable gives one, and an empty `X-API-Key:`
        header would match it) or with spaces around it (HTTP strips them from the header, so it could never match)."""
        if key is None:
            return None
        text = key.get_secret_value()
        if not text.strip():
            raise ValueError(
                "the API key is empty; give a non-empty --api-key KEY, or unset HORSES_HUMANS_SERVE_API_KEY to serve "
                "without one"
            )
        if text != text.strip():
            raise ValueError("the API key starts or ends with white space, which no client can send; remove it")
        return key

    @property
    def max_request_bytes(self) -> int:
        """The whole multipart body: every file at its limit plus room for the part headers, at most max_body_bytes."""
        return min(self.max_body_bytes, self.max_files * (self.max_file_bytes + 16 * 1024))

    @property
    def loopback(self) -> bool:
        """Whether the server listens on this machine only."""
        return is_loopback(self.host)

    def served_hosts(self) -> tuple[str, ...]:
        """The Host names `serve` answers: the allowed hosts, else on loopback only the loopback names (a foreign name
        on a loopback server is a DNS-rebinding page), else any."""
        if self.allowed_hosts or not self.loopback:
            return self.allowed_hosts
        return tuple(dict.fromkeys((*LOOPBACK_NAMES, self.host.strip("[]").lower())))


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
