#!/usr/bin/env bash
# ONNX Runtime Web for the browser build that `export --format web` writes: web/node_modules, pinned by
# web/package-lock.json (Debian's nodejs and npm first when npm is missing). Idempotent: npm runs only when the lock changed.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/apt_install.sh
command -v npm >/dev/null || apt_install nodejs npm
if [ ! -f web/node_modules/.package-lock.json ] || [ web/package-lock.json -nt web/node_modules/.package-lock.json ]; then
  npm ci --prefix web --ignore-scripts --no-audit --no-fund --loglevel=error
fi
