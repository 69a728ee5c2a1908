# Sourced by the scripts: use $HORSES_HUMANS_DATA, else ../shared/data beside the checkout, else the per-user cache.
if [ -z "${HORSES_HUMANS_DATA:-}" ] && [ -d "$(dirname "${BASH_SOURCE[0]}")/../../shared/data/horse-or-human" ]; then
  HORSES_HUMANS_DATA="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../shared/data" && pwd)"
  export HORSES_HUMANS_DATA
fi
