#!/usr/bin/env bash
# On the lent GPU (the device tool), in the repository root, `.kit` carried (scripts/device_kit.py build):
#   bash scripts/device_kit.sh bench            # benchmarks/run_gpu.py -> $OUT/results_gpu.json
#   bash scripts/device_kit.sh runs [OPTIONS]   # the budget run list -> $OUT/results.tgz (device_kit.py device)
#   bash scripts/device_kit.sh check            # the kit loads and the GPU trains: one epoch of one fold
set -euo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .kit/whl/*.whl
export PYTHONPATH="/tmp/site:$PWD" EESR_DATA="$PWD/.kit/data" EESR_CACHE="$PWD/.kit/cache" PYTHONUNBUFFERED=1
EESR_GIT_REVISION="$(cat .kit/REVISION)"
export EESR_GIT_REVISION
OUT="${OUT:-$PWD/.kit/out}"
mkdir -p "$OUT"
what="$1"
shift
case "$what" in
  check) python3 -m eesr_lib run --dataset emodb --folds 0 --epochs 1 --results /tmp/check --device cuda "$@" ;;
  bench) python3 benchmarks/run_gpu.py --out "$OUT" "$@" ;;
  runs) python3 scripts/device_kit.py device --out "$OUT" "$@" ;;
  *) echo "usage: $0 check|bench|runs [OPTIONS]" >&2; exit 2 ;;
esac
