#!/usr/bin/env bash
# The own-data example of docs/own-data.md ("A measured three-class run"): real photos in three class folders
# (layout 3), a MobileNetV2 (alpha 0.35, ImageNet weights from ../shared/weights) trained on them with a stratified
# validation split.
# The photos are ../shared/real-photos-dev (for internal evaluation only: copied under runs/, which git ignores, never
# into the repository), with neither/ renamed other/: here it is a class like any other.
#   bash scripts/own_data_example.sh            seeds 0 1 2, --val-split 0.25; about 2 minutes on the 2-core CPU
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/shared_weights.sh
hh=.venv/bin/horses-humans
photos=${PHOTOS:-../shared/real-photos-dev}
data=runs/own-data/photos
runs=runs/own-data/runs
rm -rf "$data" && mkdir -p "$data"
cp -r "$photos/horses" "$photos/humans" "$data/"
cp -r "$photos/neither" "$data/other"
$hh data check --data-dir "$data"
for seed in 0 1 2; do
  $hh train --recipe mobilenet_v2 --weights "$MOBILENET_WEIGHTS" --data-dir "$data" --val-split 0.25 --seed "$seed" \
    --runs-dir "$runs"
done
for run in $(ls -d "$runs"/*/ | sort); do
  $hh evaluate "$run"
done
$hh runs --runs-dir "$runs"
