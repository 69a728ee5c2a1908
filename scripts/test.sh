#!/usr/bin/env bash
# Set up (venv + install) and run the whole test suite: unit tests on synthetic images, integration on the real data.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/data_dir.sh
exec .venv/bin/python -m pytest -q "$@"
