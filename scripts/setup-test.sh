#!/usr/bin/env bash
# What the tests need, on top of the main job's set-up: the test extra (pytest, httpx, Playwright's Python package, the
# export, sweep and tracking libraries), ONNX Runtime Web (scripts/setup-web.sh), and for the browser tests Debian's
# Chromium when /usr/bin/chromium is missing (Playwright drives it; no Playwright browser download). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
bash scripts/setup-web.sh
source scripts/apt_install.sh
[ -x /usr/bin/chromium ] || apt_install chromium
