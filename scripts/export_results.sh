#!/usr/bin/env bash
# Regenerates docs/export-results.md (docs/export.md, the hand-written guide, quotes it): the export trade-off table
# of the reference baseline CNN (15 epochs, seed 0) and of mobilenet_v2 (224 px, seed 0, the ImageNet weights from
# ../shared/weights when there). Each model is trained into runs/export/ unless a finished run is already there, then
# exported in every format (`horses-humans export RUN --all`), then the exports' single-image latency is measured
# again, interleaved, against Keras (bench/bench_export.py).
# About 10 minutes on the 2-core CPU (3 more when it has to train).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh export  # the exporters and their runtimes
bash scripts/setup-web.sh     # ONNX Runtime Web for the web build
source scripts/data_dir.sh
source scripts/shared_weights.sh
hh=.venv/bin/horses-humans
runs=runs/export

latest_run() { ls -td "$runs/$1"-*/ 2>/dev/null | while read -r d; do [ -f "$d/model.keras" ] && { echo "${d%/}"; break; }; done; }
[ -n "$(latest_run baseline)" ] || $hh train --recipe baseline --seed 0 --runs-dir "$runs"
[ -n "$(latest_run mobilenet_v2)" ] || $hh train --recipe mobilenet_v2 --weights "$MOBILENET_WEIGHTS" --seed 0 --runs-dir "$runs"

out=docs/export-results.md
status=0
{
  echo "# Exports: size, accuracy, agreement with Keras, latency"
  echo
  echo "Made by \`bash scripts/export_results.sh\` on $(date -u +%Y-%m-%d) ($(nproc) CPU cores: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1))."
  echo "Each table is \`horses-humans export RUN --all\` for one model; every export was run by its own runtime on the"
  echo "256 validation images and checked against the Keras model before it was written (see export.md)."
  for recipe in baseline mobilenet_v2; do
    echo
    echo "## $recipe"
    echo
    $hh export "$(latest_run "$recipe")" --all || status=1
  done
  echo
  echo "## Latency against Keras, interleaved"
  echo
  echo "\`python bench/bench_export.py RUN --rounds 5 --calls 100\` for each run above: every runtime takes its turn in each"
  echo "round, so a noisy neighbour slows all alike; p50 of single-image calls, median over the rounds."
  for recipe in baseline mobilenet_v2; do
    echo
    .venv/bin/python bench/bench_export.py "$(latest_run "$recipe")" --rounds 5 --calls 100
  done
} > "$out.tmp"
mv "$out.tmp" "$out"
echo "wrote $out"
exit $status
