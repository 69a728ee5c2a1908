#!/usr/bin/env bash
# Calibration of a validation split without mistakes (issue 23): a MobileNetV2 (alpha 0.35) trained 2 epochs on the
# first 48 + 48 official training renders of horses and humans (by file name; a quarter held for validation) is right
# on all 24 validation images yet answers at about 0.79. Each seed's run is evaluated with the model's own
# probabilities (calibrate --method none) and with the rule of succession's temperature (calibrate), on its
# validation split and on the first 64 + 64 official validation renders, which it never saw.
#   bash scripts/succession_check.sh            seeds 0 1 2; about 4 minutes on the 2-core CPU
#   HH="python -m horses_humans.cli.main" bash scripts/succession_check.sh    another way to run the command
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/data_dir.sh
source scripts/shared_weights.sh
[ -n "${HH:-}" ] || [ -x .venv/bin/horses-humans ] || bash scripts/setup.sh
read -r -a hh <<<"${HH:-.venv/bin/horses-humans}"
official=${HORSES_HUMANS_DATA:?set HORSES_HUMANS_DATA to the official data set folder}
work=runs/succession
rm -rf "$work" && mkdir -p "$work"
for class in horses humans; do
  mkdir -p "$work/data/$class" "$work/heldout/$class"
  find "$official/horse-or-human/$class" -name '*.png' | sort | head -48 | xargs cp -t "$work/data/$class"
  find "$official/validation-horse-or-human/$class" -name '*.png' | sort | head -64 | xargs cp -t "$work/heldout/$class"
done
for seed in 0 1 2; do
  run=$("${hh[@]}" -q train --recipe mobilenet_v2 --weights "$MOBILENET_WEIGHTS" --data-dir "$work/data" --epochs 2 \
    --val-split 0.25 --seed "$seed" --runs-dir "$work/runs")
  for how in none auto; do
    "${hh[@]}" calibrate "$run" $([ "$how" = none ] && echo --method none)
    for where in --split=validation "--data=$work/heldout"; do
      echo "seed $seed, calibration $how, ${where#--}: $("${hh[@]}" evaluate "$run" "$where" | grep -E '^(accuracy|ece)' | tr -s ' ' | paste -sd ' ')"
    done
  done
done
