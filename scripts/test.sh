#!/usr/bin/env bash
# Set up (venv + install) and run the whole test suite: unit tests on synthetic images, integration on the real data.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/data_dir.sh
export TF_CPP_MIN_LOG_LEVEL=2 TF_ENABLE_ONEDNN_OPTS=1
exec .venv/bin/python -m pytest -q "$@"
