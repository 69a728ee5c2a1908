#!/usr/bin/env bash
# The Python set-up every script starts with: .venv (created if missing) with the package installed into it, editable,
# at the versions in constraints.txt, the lock the tests passed with (-c: only what is asked for gets installed).
#   bash scripts/setup.sh               what train, evaluate, predict and serve need (the main job)
#   bash scripts/setup.sh export,sweep  plus those extras ([project.optional-dependencies] in pyproject.toml)
# No apt, no npm, no browser: scripts/setup-test.sh adds what the tests need, scripts/setup-web.sh the web export's files.
# Idempotent and quick: pip runs only while .venv/.setup-stamp[-EXTRAS] is missing or older than pyproject.toml or
# constraints.txt (delete it to force a reinstall).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
extras=${1:-}
stamp=.venv/.setup-stamp${extras:+-${extras//,/-}}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
if [ "$stamp" -nt pyproject.toml ] && [ "$stamp" -nt constraints.txt ]; then
  exit 0
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".${extras:+[$extras]}" -c constraints.txt
touch "$stamp"
