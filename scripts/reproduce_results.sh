#!/usr/bin/env bash
# Regenerates docs/results.md (and the copy of its table in docs/models.md) by running the experiments listed in
# docs/results.toml:
#   baseline, bfloat16 (where the CPU has it) and float32 training: seeds 0-5 (six, since the two precisions are compared)
#   augmented with the reference, mild and flip presets, and mobilenet_v2: seeds 0-2
# Runs go to runs/results/ (git ignores runs/); finished runs are found again by their config, so a re-run trains only
# what is missing. About 35 minutes on the 2-core CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/data_dir.sh
source scripts/shared_weights.sh
hh=.venv/bin/horses-humans
# mobilenet_v2 takes the ImageNet weights from the Keras cache: put the exact shared file there when it is available
[ "$MOBILENET_WEIGHTS" = imagenet ] || $hh weights install "$MOBILENET_WEIGHTS" --backbone mobilenet_v2
$hh experiment reproduce --experiments docs/results.toml --seeds 3 --runs-dir runs/results --out docs/results.md
.venv/bin/python scripts/readme_tables.py
