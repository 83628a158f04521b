#!/usr/bin/env bash
# The one prepared GPU-machine run (device tool): installs the carried wheels (.whl/), unpacks the shared
# data (.gpudata/shared.tgz → ../shared/data), then runs the GPU checks and benchmarks in priority order, each
# writing its JSON to $OUT as soon as it finishes (a cut-off run still returns what is done).
# BUDGET_S (default 540): the whole script's wall-clock allowance; the last step (a compare) gets what is left.
# STEPS (default "train tests inspect compare_neu"): which steps; compare_pill runs the pill compare instead;
# cli times `inspection inspect` itself on the NEU files x10; ort_gpu installs onnxruntime-gpu from parts staged
# by earlier calls (scripts/stage_ort_gpu.sh) so the inspection benchmark also times ONNX Runtime on the GPU;
# pill runs scripts/bench_pill.py (the anchor and both pill presets on the anchor's folds; PILL_FOLDS to cut it
# down) and neu the NEU accuracy benchmark: STEPS="pill neu" for issue 13.
set -u
export PYTHONUNBUFFERED=1
START=$(date +%s)
BUDGET_S=${BUDGET_S:-540}
OUT=${OUT:-$PWD/benchmarks/results}
WORK=/tmp/inspection-gpu
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
mkdir -p ../shared/data "$WORK" && tar -C ../shared/data -xzf .gpudata/shared.tgz || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
step() { echo "=== $(date +%T) +$(( $(date +%s) - START ))s $*"; }
python3 -c "from inspection.data.importers import import_neu; import_neu('../shared/data/neu-det', '$WORK/neu', copy=False)" || exit 1
STEPS=${STEPS:-train tests inspect compare_neu}
has() { [[ " $STEPS " == *" $1 "* ]]; }
step bench_train  # Lightning fit vs bare loop; keeps the Lightning model for the inspection benchmark
has train && python3 scripts/bench_train.py --out "$OUT" --keep "$WORK/pl" 2>&1 | grep -E "^(bare|lightning|wrote)|Error"
step gpu tests
has tests && python3 -m pytest -q -p no:cacheprovider -m gpu tests/unit/test_device_batches.py \
  tests/integration/test_torch_engine.py 2>&1 | tail -4
step "onnxruntime-gpu from the parts staged in /tmp/ortgpu (scripts/stage_ort_gpu.sh)"
if has ort_gpu; then
  sums=$PWD/.ortgpu/SHA256SUMS whl=/tmp/ortgpu/$(awk '{print $2}' .ortgpu/SHA256SUMS)
  cat /tmp/ortgpu/part.* > "$whl" && (cd /tmp/ortgpu && sha256sum -c "$sums") &&
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site-ort "$whl" &&
    export PYTHONPATH=/tmp/site-ort:$PYTHONPATH  # ahead of the machine's CPU onnxruntime
  python3 -c "import onnxruntime as o; print('onnxruntime', o.__version__, o.get_available_providers())"
fi
step bench_gpu_inspect
has inspect && python3 scripts/bench_gpu_inspect.py --checkpoint "$WORK/pl/model.pt" --manifest "$WORK/neu/manifest.csv" \
  --ort-limit 600 --out "$OUT" 2>&1 | grep --line-buffered -vE "INFO|Warning|warn|^ |^[{}]"  # per-variant lines as they come
step "inspect CLI, cold (interpreter and reader start included)"
if has cli; then
  for i in $(seq 10); do ls "$PWD"/../shared/data/neu-det/IMAGES/*.jpg; done > "$WORK/list.txt"
  for opts in "" "--readers processes --workers 8" "--readers processes --workers 8 --cpu-decode-share 0.4"; do
    echo "inspect $opts"
    /usr/bin/time -f "wall %e s" python3 -m inspection.cli.main inspect "$WORK/pl/model.pt" "$WORK/list.txt" \
      --out "$WORK/cli.csv" --overwrite --engine torch --device cuda --batch-size 256 --quiet $opts 2>&1 | grep -E "inspected|model:|wall|rror"
  done
fi
compare() {  # compare() DATA TRIALS: the full preset on the GPU with what is left of the budget
  local left=$(( BUDGET_S - ($(date +%s) - START) - 15 )) dir="$OUT/compare_$1_full_gpu"
  step "compare $1 full on the GPU, $2 search trials (${left}s left)"
  [ "$left" -gt 60 ] || return 0
  mkdir -p "$dir"
  /usr/bin/time -f "compare wall %e s" timeout "$left" python3 -m inspection.cli.main compare data="$1" compare=full \
    trainer=gpu compare.model_centric.n_trials="$2" paths.output_dir="$WORK/cmp" > "$dir/log.txt" 2>&1
  echo "compare rc $?"; grep -E "^\[|wall|Error" "$dir/log.txt" | tail -30
  cp "$WORK"/cmp/compare/$1_full/{report.md,report.json,compare.png,flipped.csv} "$dir/" 2>/dev/null
}
step "pill: anchor + pill_resnet18 + pill_segdec on the anchor's folds (issue 13), then NEU 3 seeds"
if has pill; then
  timeout $(( BUDGET_S - ($(date +%s) - START) - 20 )) python3 scripts/bench_pill.py --size 256 --epochs 60 \
    --folds "${PILL_FOLDS:-0,1,2,3,4}" 2>&1 | grep -vE "INFO|warn|Warning"
  cp benchmarks/results/accuracy_pill_256px_*.json "$OUT/" 2>/dev/null
fi
has neu && python3 scripts/bench_accuracy.py neu --out "$OUT" 2>&1 | grep -vE "INFO|warn|Warning" | tail -5
has compare_neu && compare neu 4
has compare_pill && compare mvtec_pill "${PILL_TRIALS:-3}"
step done
