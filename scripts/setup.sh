#!/usr/bin/env bash
# Create .venv (if missing), install the package with its test extras, Chromium for the browser tests, and
# ONNX Runtime Web (web/node_modules, pinned by web/package-lock.json) for the page `export --format web` writes. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test]"
apt_install() {
  if [ "$(id -u)" = 0 ]; then
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
  else
    sudo apt-get update -q && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
  fi
}
# The browser tests drive Debian's Chromium through Playwright (no Playwright browser download).
[ -x /usr/bin/chromium ] || apt_install chromium
# The browser build copies ONNX Runtime Web's WebAssembly files from web/node_modules (reinstalled when the lock changes).
command -v npm >/dev/null || apt_install nodejs npm
if [ ! -f web/node_modules/.package-lock.json ] || [ web/package-lock.json -nt web/node_modules/.package-lock.json ]; then
  npm ci --prefix web --ignore-scripts --no-audit --no-fund --loglevel=error
fi
