#!/usr/bin/env bash
# Regenerates docs/results.md (and README's results table): baseline (bfloat16 and float32), augmented and
# mobilenet_v2, each with seeds 0 1 2 (15 epochs for the CNNs, 6 for mobilenet_v2's head at 224 px).
# Usage: bash scripts/reproduce_results.sh [SEEDS...]   (runs go to runs/results/, which git ignores)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/data_dir.sh
hh=.venv/bin/horses-humans
seeds=("${@:-0 1 2}")
runs=runs/results
# MobileNetV2 ImageNet weights: the copy beside the checkout if there is one, else the Keras cache / download
weights=imagenet
shared=../shared/weights/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5
[ -f "$shared" ] && weights=$shared
for seed in ${seeds[@]}; do
  $hh train --recipe baseline --seed "$seed" --runs-dir "$runs"
  $hh train --recipe augmented --seed "$seed" --runs-dir "$runs"
  # which part of the augmentation hurts on this validation set (docs/findings.md)
  $hh train --recipe augmented --augmentation mild --seed "$seed" --runs-dir "$runs"
  $hh train --recipe augmented --augmentation flip --seed "$seed" --runs-dir "$runs"
  # the same baseline in float32, to show what bfloat16 training does to accuracy
  $hh train --recipe baseline --seed "$seed" --precision float32 --runs-dir "$runs"
  $hh train --recipe mobilenet_v2 --weights "$weights" --seed "$seed" --runs-dir "$runs"
done
.venv/bin/python scripts/write_results.py "$runs"
