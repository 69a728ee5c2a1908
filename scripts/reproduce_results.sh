#!/usr/bin/env bash
# Regenerates docs/results.md (and README's results table): baseline (bf16 and float32) and augmented,
# 15 epochs each, seeds 0 1 2.
# Usage: bash scripts/reproduce_results.sh [SEEDS...]   (runs go to runs/results/, which git ignores)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/data_dir.sh
hh=.venv/bin/horses-humans
seeds=("${@:-0 1 2}")
runs=runs/results
for seed in ${seeds[@]}; do
  $hh train --recipe baseline --seed "$seed" --runs-dir "$runs"
  $hh train --recipe augmented --seed "$seed" --runs-dir "$runs"
  # the same baseline in float32, to show bfloat16 training costs no accuracy
  $hh train --recipe baseline --seed "$seed" --precision float32 --runs-dir "$runs"
done
.venv/bin/python scripts/write_results.py "$runs"
