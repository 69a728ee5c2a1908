#!/usr/bin/env bash
# Regenerates docs/results.md (and README's results table). Runs go to runs/results/ (git ignores runs/).
#   baseline, bfloat16 and float32 training: seeds 0-5 (six, since the two precisions are compared)
#   augmented with the reference, mild and flip presets, and mobilenet_v2: seeds 0-2
# 15 epochs for the CNNs, 6 for mobilenet_v2's head at 224 px. About 35 minutes on the 2-core CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/data_dir.sh
source scripts/shared_weights.sh
hh=.venv/bin/horses-humans
runs=runs/results
for seed in 0 1 2 3 4 5; do
  $hh train --recipe baseline --seed "$seed" --runs-dir "$runs"
  $hh train --recipe baseline --seed "$seed" --precision float32 --runs-dir "$runs"
done
for seed in 0 1 2; do
  for preset in reference mild flip; do
    $hh train --recipe augmented --augmentation "$preset" --seed "$seed" --runs-dir "$runs"
  done
  $hh train --recipe mobilenet_v2 --weights "$MOBILENET_WEIGHTS" --seed "$seed" --runs-dir "$runs"
done
.venv/bin/python scripts/write_results.py "$runs"
