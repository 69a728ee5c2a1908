#!/usr/bin/env bash
# Set up (scripts/setup-test.sh: venv + install with the test extra, ONNX Runtime Web, Chromium) and run the whole
# test suite: unit tests on synthetic images, integration on the real data, the browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-test.sh
source scripts/data_dir.sh
.venv/bin/ruff check src tests bench scripts  # lint, then format: both configured in pyproject.toml, zero findings
.venv/bin/ruff format --check src tests bench scripts
exec .venv/bin/python -m pytest -q "$@"
