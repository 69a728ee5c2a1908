#!/usr/bin/env bash
# Regenerates constraints.txt, the lock every set-up installs with (pip install -c constraints.txt): the exact version
# of every package, transitively, that the package with ALL its extras installs into a fresh temporary venv.
#   bash scripts/lock.sh             keep the current pins where they still fit; new packages get their newest version
#   bash scripts/lock.sh --upgrade   resolve everything afresh (newest versions)
#   bash scripts/lock.sh PKG...      also lock packages a branch is about to add (pip requirement strings)
# Then run `bash scripts/test.sh`: the lock should hold the versions the tests passed with. A few minutes (TensorFlow).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
pins=(-c constraints.txt)
if [ "${1:-}" = --upgrade ]; then
  pins=()
  shift
fi
[ ${#pins[@]} = 0 ] || [ -f constraints.txt ] || { echo "error: constraints.txt is missing: run bash scripts/lock.sh --upgrade" >&2; exit 2; }
extras=$("$PYTHON" -c 'import tomllib; print(",".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]))')
venv=$(mktemp -d)
trap 'rm -rf "$venv"' EXIT
"$PYTHON" -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
if ! "$venv/bin/python" -m pip install -q -e ".[$extras]" "$@" "${pins[@]}"; then
  echo "error: a pin in constraints.txt conflicts with pyproject.toml: run bash scripts/lock.sh --upgrade" >&2
  exit 2
fi
frozen=$("$venv/bin/python" -m pip freeze --exclude-editable)
tf=$(sed -n 's/^tensorflow[-_]cpu==//Ip' <<<"$frozen")
{
  echo "# The lock: every package, transitively, at the version the tests passed with. scripts/setup.sh installs with"
  echo "# it as constraints (-c), so extras not asked for are not installed. Regenerate: bash scripts/lock.sh [--upgrade]."
  echo "# Made with Python $("$venv/bin/python" -c 'import platform; print(platform.python_version(), platform.machine())') by pip freeze; only name==version lines."
  echo "$frozen"
  # pyproject asks for tensorflow instead of tensorflow-cpu off x86_64: the same version there.
  [ -z "$tf" ] || grep -qi '^tensorflow==' <<<"$frozen" || echo "tensorflow==$tf"
} > constraints.txt.tmp
mv constraints.txt.tmp constraints.txt
echo "wrote constraints.txt ($(grep -c '==' constraints.txt) pins)"
