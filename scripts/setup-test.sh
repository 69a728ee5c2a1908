#!/usr/bin/env bash
# What the tests need, on top of the main job's set-up: the test extra (pytest, httpx, Playwright's Python package, the
# export, sweep and tracking libraries), ONNX Runtime Web and TF.js (scripts/setup-web.sh), the TF.js converter's own
# venv (export/tfjs_env.py: TensorFlow 2.19, built once into the user's cache, ~1-4 min and 3 GB the first time, then
# nothing), and for the browser tests Debian's Chromium when /usr/bin/chromium is missing (Playwright drives it; no
# Playwright browser download). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
bash scripts/setup-web.sh
.venv/bin/python -m horses_humans.export.tfjs_env  # once; the tfjs tests and `export --format tfjs` then reuse it
source scripts/apt_install.sh
[ -x /usr/bin/chromium ] || apt_install chromium
