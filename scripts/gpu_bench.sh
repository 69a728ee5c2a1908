#!/usr/bin/env bash
# The GPU measurements of issue 22 (item 5) in one go, each beside the same on this machine's CPU, written to one
# folder: run it once on a GPU machine after `bash scripts/setup-gpu.sh`, then copy summary.md into docs/gpu.md.
#   bash scripts/gpu_bench.sh [--tiny] [--out DIR] [--data-dir DIR] [--weights FILE]
# Steps, each under its own time limit (a step that fails or runs out is recorded in status.txt and the next runs):
#   devices      what TensorFlow sees (and nvidia-smi -L where there is one)
#   training     bench/bench_training.py: baseline epoch, reference tf.data pipeline vs ours, float32 and mixed precision
#   transfer     bench/bench_transfer.py: MobileNetV2 head, backbone per batch vs the feature cache
#   fine-tune    horses-humans train --recipe mobilenet_v2 --fine-tune-from 100: seconds per epoch (metrics.json)
#   predict      bench/bench_predict.py --corpus phone on a 1-epoch baseline run: images/s against the decode limit
# Each step runs twice: on the GPU (as installed) and on the CPU (CUDA_VISIBLE_DEVICES=-1), about 8 minutes in all on
# a 16-core machine with one GPU. --tiny: a few rounds, epochs and files and random backbone weights, one pass, for
# the CPU test that keeps this script working (tests/test_gpu_bench.py); give it a small --data-dir.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/data_dir.sh
python=${PYTHON:-.venv/bin/python}
out= tiny=0 data_dir=${HORSES_HUMANS_DATA:-} weights=../shared/weights/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5
while [ $# -gt 0 ]; do
  case "$1" in
    --tiny) tiny=1 ;;
    --out) out=${2:?--out needs a folder}; shift ;;
    --data-dir) data_dir=${2:?--data-dir needs a folder}; shift ;;
    --weights) weights=${2:?--weights needs a file (or none)}; shift ;;
    *) echo "gpu_bench.sh: unknown option $1 (use --tiny, --out DIR, --data-dir DIR, --weights FILE)" >&2; exit 2 ;;
  esac
  shift
done
[ -n "$data_dir" ] && [ -d "$data_dir" ] || {
  echo "gpu_bench.sh: no data set at '${data_dir}': give --data-dir DIR (or set HORSES_HUMANS_DATA)" >&2; exit 2; }
[ "$weights" = none ] || [ -f "$weights" ] || {
  echo "gpu_bench.sh: no MobileNetV2 weights at $weights: give --weights FILE (or --weights none)" >&2; exit 2; }
out=${out:-gpu-results/$(date -u +%Y%m%d-%H%M%S)}
mkdir -p "$out"
out=$(cd "$out" && pwd)
export HORSES_HUMANS_DATA=$data_dir

# how big each step is: full (about 8 minutes for both passes) or tiny (the CPU test)
if [ "$tiny" = 1 ]; then
  passes=(device) rounds=2 epochs=1 files=4 unique=2 naive=2 limit=300 weights=none
else
  passes=(device cpu) rounds=6 epochs=5 files=160 unique=16 naive=64 limit=240
fi

deadline=$((SECONDS + 560))  # the whole script stays under 10 minutes: a step gets what is left, at most $limit s
step() {  # step NAME PASS COMMAND...: run under the time limit, output to NAME-PASS.txt, status line to status.txt
  local name=$1 pass=$2 rc=0 left=$((deadline - SECONDS))
  shift 2
  [ "$left" -lt "$limit" ] || left=$limit
  if [ "$left" -lt 10 ]; then
    echo "$name $pass: SKIPPED (out of time)" | tee -a "$out/status.txt"
    return
  fi
  echo "== $name ($pass, at most $left s)"
  if [ "$pass" = cpu ]; then
    CUDA_VISIBLE_DEVICES=-1 timeout "$left" "$@" >"$out/$name-$pass.txt" 2>&1 || rc=$?
  else
    timeout "$left" "$@" >"$out/$name-$pass.txt" 2>&1 || rc=$?
  fi
  local verdict=ok
  [ "$rc" = 0 ] || verdict="FAILED (exit $rc$([ "$rc" = 124 ] && echo ", over $left s"); see $name-$pass.txt)"
  echo "$name $pass: $verdict" | tee -a "$out/status.txt"
}

devices='from horses_humans.training.devices import visible_devices; print("train would use", visible_devices())'
for pass in "${passes[@]}"; do
  runs=$out/runs-$pass
  step devices "$pass" env KERAS_BACKEND=tensorflow "$python" -c "$devices"
  step training "$pass" "$python" bench/bench_training.py --rounds "$rounds" --json "$out/training-$pass.json"
  step transfer "$pass" "$python" bench/bench_transfer.py --weights "$weights" --epochs "$epochs"
  step fine-tune "$pass" "$python" -m horses_humans.cli.main train --recipe mobilenet_v2 --weights "$weights" \
    --epochs 1 --fine-tune-from 100 --fine-tune-epochs "$epochs" --runs-dir "$runs" --name fine-tune \
    --cache-dir "$out/cache"
  step baseline "$pass" "$python" -m horses_humans.cli.main train --recipe baseline --epochs 1 --runs-dir "$runs" \
    --name baseline --cache-dir "$out/cache"
  step predict "$pass" "$python" bench/bench_predict.py "$runs/baseline" --corpus phone --files "$files" \
    --unique "$unique" --naive-files "$naive" --repeat 1
done
command -v nvidia-smi >/dev/null && nvidia-smi -L >"$out/nvidia-smi.txt" 2>&1 || true
"$python" scripts/gpu_summary.py "$out" | tee "$out/summary.md"
