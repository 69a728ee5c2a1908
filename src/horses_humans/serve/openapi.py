"""The OpenAPI document as the server answers: the routes' own responses, plus what the middleware answers before a
route runs (401 without the key, 503 when busy, 408 and 413 for a body, 400 for a foreign Host) and the key's
security schemes. FastAPI sees only the routes, so these are added to the document it builds."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.security import APIKeyHeader, HTTPBearer

from .limits import QUEUED_PATHS
from .security import KEY_HEADER, KEY_PREFIX
from .settings import ServeSettings

ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}
KEY_SCHEMES = {
    "APIKeyHeader": APIKeyHeader(name=KEY_HEADER, description="the key `serve` was given with --api-key"),
    "HTTPBearer": HTTPBearer(description="the same key as `Authorization: Bearer KEY`"),
}


def describe_middleware(app: FastAPI, settings: ServeSettings) -> None:
    """Make app.openapi() (and so /openapi.json and /docs) include the middleware's answers, built once."""
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            app.openapi_schema = with_middleware(build(), settings)
        return app.openapi_schema

    app.openapi = openapi


def with_middleware(schema: dict, settings: ServeSettings) -> dict:
    """The document with each operation's middleware responses and, when a key is set, its security schemes."""
    if settings.api_key is not None:
        components = schema.setdefault("components", {})
        components["securitySchemes"] = {
            name: scheme.model.model_dump(mode="json", by_alias=True, exclude_none=True)
            for name, scheme in KEY_SCHEMES.items()
        }
    count_uploads(schema, settings.max_files)
    for path, operations in schema["paths"].items():
        for operation in operations.values():
            operation["responses"].update(middleware_responses(path, settings))
            if settings.api_key is not None and path.startswith(KEY_PREFIX):
                operation["security"] = [{name: []} for name in KEY_SCHEMES]
    return schema


def count_uploads(schema: dict, max_files: int) -> None:
    """Say how many files a multipart body's file lists hold, as the server counts them: at least one (none is the
    missing field: 422), at most max_files (413)."""
    for operations in schema["paths"].values():
        for operation in operations.values():
            body = operation.get("requestBody", {}).get("content", {}).get("multipart/form-data", {})
            ref = body.get("schema", {}).get("$ref", "")
            fields = schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]["properties"] if ref else {}
            for field in fields.values():
                if field.get("type") == "array":
                    field.update(minItems=1, maxItems=max_files)


def middleware_responses(path: str, settings: ServeSettings) -> dict[str, dict]:
    """{status: response} the middleware may send for a request to this path."""
    responses = {}
    if settings.allowed_hosts:
        responses["400"] = error("the Host header names a host this server does not answer")
    if settings.api_key is not None and path.startswith(KEY_PREFIX):
        responses["401"] = error("no API key, or a wrong one", {"WWW-Authenticate": "Bearer"})
    if path in QUEUED_PATHS:
        responses["408"] = error("the request body did not arrive within the body timeout")
        responses["413"] = error("the request body is over the size limit, or too many files")
        responses["503"] = error("server busy: retry after Retry-After seconds", {"Retry-After": "1"})
    return responses


def error(description: str, headers: dict[str, str] | None = None) -> dict:
    """One documented error response: the ErrorResponse JSON, with these headers (name -> example)."""
    response = {"description": description, "content": ERROR}
    if headers:
        response["headers"] = {
            name: {"schema": {"type": "string"}, "example": example} for name, example in headers.items()
        }
    return response
