#!/usr/bin/env bash
# The set-up for training on NVIDIA GPUs (Linux): scripts/setup.sh, then the GPU build of the backend in the same .venv.
#   bash scripts/setup-gpu.sh [--dry-run] [--backend tensorflow|jax] [EXTRAS]
# tensorflow (default): the base install's tensorflow-cpu is replaced by tensorflow[and-cuda] at the version
#   constraints.txt pins, which brings CUDA and cuDNN as pip wheels (the NVIDIA driver is the only system part).
#   Both wheels hold the same `tensorflow` package, so the CPU one goes first. setup.sh would put tensorflow-cpu back
#   when pyproject.toml or constraints.txt change: after such a pull, run this script again (it calls setup.sh).
# jax: keeps tensorflow-cpu (export and Grad-CAM run on it) and adds jax[cuda12]; train with KERAS_BACKEND=jax.
# --dry-run prints the commands it would run, and runs none. docs/gpu.md says what train then picks.
set -euo pipefail
cd "$(dirname "$0")/.."
dry=0 backend=tensorflow extras=
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry=1 ;;
    --backend) backend=${2:?--backend needs tensorflow or jax}; shift ;;
    -*) echo "setup-gpu.sh: unknown option $1 (use --dry-run, --backend tensorflow|jax)" >&2; exit 2 ;;
    *) extras=$1 ;;
  esac
  shift
done
case "$backend" in
  tensorflow | jax) ;;
  *) echo "setup-gpu.sh: --backend $backend: use tensorflow or jax" >&2; exit 2 ;;
esac

run() {  # run a command, or print it under --dry-run
  if [ "$dry" = 1 ]; then echo "$*"; else "$@"; fi
}

version=$(sed -n 's/^tensorflow[-_]cpu==//p' constraints.txt)
[ -n "$version" ] || { echo "setup-gpu.sh: constraints.txt pins no tensorflow-cpu: run bash scripts/lock.sh" >&2; exit 2; }
pip=(.venv/bin/python -m pip)
run bash scripts/setup.sh ${extras:+"$extras"}
case "$backend" in
  tensorflow)
    run "${pip[@]}" uninstall -q -y tensorflow-cpu
    run "${pip[@]}" install -q "tensorflow[and-cuda]==$version" -c constraints.txt ;;
  jax)
    run "${pip[@]}" install -q "jax[cuda12]" -c constraints.txt ;;
esac
run env KERAS_BACKEND="$backend" .venv/bin/python -c \
  "from horses_humans.training.devices import visible_devices; print('train would use', visible_devices())"
