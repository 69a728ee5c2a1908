#!/usr/bin/env bash
# The main job, set-up included: get the data (or use a local copy), check it, train the reference
# baseline CNN (15 epochs), evaluate it on the validation set, and print the results table.
# Its set-up installs only the package's own dependencies, pinned by constraints.txt: no test tools, apt, npm or browser.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/data_dir.sh
hh=.venv/bin/horses-humans
if [ -z "${HORSES_HUMANS_DATA:-}" ]; then
  $hh data download            # official zips, sha256-verified, into the per-user cache
fi
$hh data check
runs=${HORSES_HUMANS_RUNS:-runs/main}
$hh train --recipe "${RECIPE:-baseline}" --seed "${SEED:-0}" --runs-dir "$runs" "$@"
run=$(ls -td "$runs"/*/ | head -n 1)
$hh evaluate "$run"
$hh runs --runs-dir "$runs"
