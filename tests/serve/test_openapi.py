"""The OpenAPI document says what the server sends: the card's media type, the middleware's 401, 503, 408 and 413, the
API key's security schemes; and Schemathesis, with every check, finds no 5xx and no answer that breaks it."""

import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from horses_humans.serve.app import create_app
from horses_humans.serve.settings import ServeSettings

from ..live_server import serving

KEY = "openapi-key"
SCHEMATHESIS_CONFIG = Path(__file__).with_name("schemathesis.toml")


def document(run, **settings) -> dict:
    """/openapi.json of a server with these settings."""
    with TestClient(create_app(ServeSettings(run=run, **settings))) as client:
        return client.get("/openapi.json").json()


def test_the_card_is_documented_as_markdown_and_sent_as_markdown(baseline_run):
    with TestClient(create_app(ServeSettings(run=baseline_run))) as client:
        documented = client.get("/openapi.json").json()["paths"]["/v1/model/card"]["get"]["responses"]["200"]
        sent = client.get("/v1/model/card").headers["content-type"]
    assert list(documented["content"]) == ["text/markdown"] and sent.startswith("text/markdown")


def test_a_keyed_server_documents_its_key_and_every_refusal(baseline_run):
    doc = document(baseline_run, api_key=KEY)
    schemes = doc["components"]["securitySchemes"]
    assert schemes["APIKeyHeader"] == {**schemes["APIKeyHeader"], "type": "apiKey", "in": "header", "name": "X-API-Key"}
    assert schemes["HTTPBearer"]["scheme"] == "bearer"
    for path in ("/v1/predict", "/v1/model", "/v1/model/card"):
        operation = next(iter(doc["paths"][path].values()))
        assert operation["security"] == [{"APIKeyHeader": []}, {"HTTPBearer": []}], path
        assert "WWW-Authenticate" in operation["responses"]["401"]["headers"], path
    predict = doc["paths"]["/v1/predict"]["post"]["responses"]
    assert {"408", "413", "503"} <= set(predict) and "Retry-After" in predict["503"]["headers"]
    assert (
        "security" not in doc["paths"]["/healthz"]["get"] and "401" not in doc["paths"]["/healthz"]["get"]["responses"]
    )


def test_a_server_without_a_key_documents_no_key(baseline_run):
    doc = document(baseline_run)
    assert "securitySchemes" not in doc.get("components", {})
    assert all("401" not in op["responses"] for ops in doc["paths"].values() for op in ops.values())
    assert "503" in doc["paths"]["/v1/predict"]["post"]["responses"]


@pytest.mark.slow
@pytest.mark.parametrize("key", [KEY, None], ids=["with-key", "without-key"])
def test_schemathesis_finds_no_server_error_and_no_schema_violation(baseline_run, key, tmp_path):
    """Every Schemathesis check (status codes, content types, headers, response schemas, auth, methods) on a few
    hundred generated requests to a live server; it exits 0 only when no check failed."""
    with serving(ServeSettings(run=baseline_run, api_key=key, max_files=4)) as port:
        result = subprocess.run(
            [
                *(sys.executable, "-m", "schemathesis.cli", "--config-file", str(SCHEMATHESIS_CONFIG), "run"),
                *(f"http://127.0.0.1:{port}/openapi.json", "--checks", "all", "--max-examples", "60"),
                *("--seed", "1", "--workers", "1", "--request-timeout", "30"),
                *(["--header", f"X-API-Key: {key}"] if key else []),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,  # where it keeps its .schemathesis cache
        )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "Tested: 4" in result.stdout, result.stdout[-2000:]  # every operation was run, none skipped
