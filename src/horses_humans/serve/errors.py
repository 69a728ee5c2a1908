"""One line from a pydantic validation error: what `serve` prints for bad settings and the API answers with 422."""

from __future__ import annotations


def validation_problems(exc) -> str:
    """'loc: msg; loc: msg' of a pydantic ValidationError or FastAPI RequestValidationError (anything with
    .errors())."""
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
