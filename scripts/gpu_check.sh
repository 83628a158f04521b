#!/usr/bin/env bash
# The one prepared GPU-machine run (device tool): installs the carried wheels (.whl/), unpacks the shared
# data (.gpudata/shared.tgz → ../shared/data), then runs the GPU benchmarks and `gpu` tests in priority
# order, each writing its JSON to $OUT as soon as it finishes (a cut-off run still returns what is done).
set -u
export PYTHONUNBUFFERED=1
OUT=${OUT:-$PWD/benchmarks/results}
WORK=/tmp/inspection-gpu
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
mkdir -p ../shared/data "$WORK" && tar -C ../shared/data -xzf .gpudata/shared.tgz || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
step() { echo "=== $(date +%T) $*"; }
step bench_accuracy neu
python3 scripts/bench_accuracy.py neu --work "$WORK" --out "$OUT" 2>&1 | grep -E "^\{|wrote|Error"
step bench_train
python3 scripts/bench_train.py --out "$OUT" 2>&1 | grep -E "^(bare|lightning|wrote)|Error"
step bench_gpu_inspect
python3 scripts/bench_gpu_inspect.py --checkpoint "$WORK/neu_seed0/model.pt" --manifest "$WORK/neu/manifest.csv" \
  --ort-limit 600 --out "$OUT" 2>&1 | grep -vE "INFO|Warning|warn" | tail -30
step bench_accuracy pill
python3 scripts/bench_accuracy.py pill --work "$WORK" --out "$OUT" 2>&1 | grep -E "^\{|wrote|Error"
step gpu tests
python3 -m pytest -q -p no:cacheprovider -m gpu tests/integration/test_torch_engine.py 2>&1 | tail -4
step done
