#!/usr/bin/env bash
# On the lent GPU (the device tool), in the repository root, `.kit` carried (scripts/device_kit.py build):
#   bash scripts/device_kit.sh bench            # benchmarks/run_gpu.py -> $OUT/results_gpu.json
#   bash scripts/device_kit.sh runs [OPTIONS]   # the run list -> $OUT/results.tgz (device_kit.py device)
#   bash scripts/device_kit.sh check            # the kit loads and the GPU trains: one epoch of one fold
#   bash scripts/device_kit.sh stage PART       # a corpus part (.kit-<corpus>-<i>, carried alone) -> $STAGE
set -euo pipefail
STAGE="${EESR_STAGE:-/tmp/eesr-stage}"  # outside the tree: kept between calls while the machine is held
what="$1"
shift
if [ "$what" = stage ]; then  # needs neither .kit nor Python: a staging call carries its part alone
  part="${1:?usage: $0 stage PART}"
  mkdir -p "$STAGE/staged"
  cp -r "$part/data" "$part/cache" "$STAGE/"
  cp "$part/PART.json" "$STAGE/staged/$(basename "$part").json"  # last: the part is whole once this is there
  echo "staged $part: $(find "$STAGE/data" -type f | wc -l) files under $STAGE/data"
  exit 0
fi
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .kit/whl/*.whl
if [ -d "$STAGE/staged" ]; then  # the staged parts join the kit's own corpus and vectors
  cp -r "$STAGE/data" "$STAGE/cache" "$STAGE/staged" .kit/
fi
export PYTHONPATH="/tmp/site:$PWD" EESR_DATA="$PWD/.kit/data" EESR_CACHE="$PWD/.kit/cache" PYTHONUNBUFFERED=1
EESR_GIT_REVISION="$(cat .kit/REVISION)"
export EESR_GIT_REVISION
OUT="${OUT:-$PWD/.kit/out}"
mkdir -p "$OUT"
case "$what" in
  check) python3 -m eesr_lib run --dataset emodb --folds 0 --epochs 1 --results /tmp/check --device cuda "$@" ;;
  bench) python3 benchmarks/run_gpu.py --out "$OUT" "$@" ;;
  runs) python3 scripts/device_kit.py device --out "$OUT" "$@" ;;
  *) echo "usage: $0 check|bench|runs|stage [OPTIONS]" >&2; exit 2 ;;
esac
