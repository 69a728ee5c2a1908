#!/usr/bin/env bash
# Regenerates docs/results.md (and README's results table): baseline and augmented, 15 epochs, seeds 0 1 2.
# Usage: bash scripts/reproduce_results.sh [SEEDS...]   (runs go to runs/results/, which git ignores)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/data_dir.sh
hh=.venv/bin/horses-humans
seeds=("${@:-0 1 2}")
runs=runs/results
for recipe in baseline augmented; do
  for seed in ${seeds[@]}; do
    $hh train --recipe "$recipe" --seed "$seed" --runs-dir "$runs"
  done
done
.venv/bin/python scripts/write_results.py "$runs"
