#!/usr/bin/env bash
# The one command of a GPU session (bench/gpu/README.md): install what bench/gpu/prepare.sh put in .carry/, then
# `tritonrec bench gpu`: the ranker per precision in process (candidates/s, latency, quality vs FP32 on the
# Beauty test split), then ranker_gpu served by the bundled tritonserver under perf_analyzer at increasing
# concurrency, with GPU busy % and CPU per point; then the DLRM example (a team's model, from its spec) per
# precision: rows/s and quality vs FP32. Trains only that DLRM (one short epoch on the CPU). Writes gpu.json,
# gpu.md, server.log, run.log (and on a GPU gpu-tests.txt: the tests marked gpu) into $OUT (default
# reports/gpu-bench); sized to end within 9 minutes on an H200.
#
#   bash bench/gpu/run.sh                   # on the GPU machine (python3 there holds torch with CUDA)
#   bash bench/gpu/run.sh --device cpu      # here: small sizes, the same stages (what CI runs)
#   bash bench/gpu/run.sh --no-serve ...    # any other `tritonrec bench gpu` flag is passed on (and wins)
#
# Environment: PYTHON (default python3; CI passes .venv/bin/python), OUT, CARRY (default .carry), WORK (scratch,
# default /tmp/tritonrec-gpu), DLRM_ROWS (rows of the DLRM's data: default 500000 on a GPU, 0 = no spec stage, the
# CPU's default), DLRM_MINUTES (its training budget, default 0.5).
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT" || exit 1
PY="${PYTHON:-python3}"
OUT="${OUT:-$ROOT/reports/gpu-bench}"
CARRY="${CARRY:-$ROOT/.carry}"
WORK="${WORK:-/tmp/tritonrec-gpu}"
DEVICE=cuda
passed=()
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE="$2"; shift 2 ;;
    --device=*) DEVICE="${1#*=}"; shift ;;
    *) passed+=("$1"); shift ;;
  esac
done
mkdir -p "$OUT" "$WORK"
exec > >(tee "$OUT/run.log") 2>&1
export PYTHONUNBUFFERED=1
export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}"
started=$(date +%s)

flags=(--device "$DEVICE" --out "$OUT" --work-dir "$WORK/served")
if [ -d "$CARRY" ]; then
  echo "== installing what was carried ($CARRY): $(tr '\n' ' ' 2>/dev/null < "$CARRY/SOURCE")"
  "$PY" -m pip install -q --disable-pip-version-check --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$WORK/site" "$CARRY"/wheels/*.whl || { echo "installing the carried wheels failed"; exit 1; }
  export PYTHONPATH="$ROOT/src:$WORK/site${PYTHONPATH#"$ROOT/src"}"
  exports="$("$PY" -m tritonrec.bench.gpu.carry unpack "$CARRY" "$WORK")" || { echo "unpacking failed"; exit 1; }
  echo "$exports"
  eval "$exports"
  [ -f "$CARRY/checkpoint/checkpoint.json" ] && flags+=(--checkpoint "$CARRY/checkpoint")
fi
if [ "$DEVICE" = cpu ]; then  # what 2 CPU cores finish in about a minute; flags given on the line win
  # idle OpenMP threads sleep instead of spinning: on a shared 2-core machine spinning made torch ~8x slower here
  export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
  flags+=(--models base --batches 4,16 --precisions fp32,bf16 --executions eager --compile ''
          --quality-users 100 --served-precision fp32 --parity-users 32 --concurrency 2,8
          --instances 2 --max-batch-size 64 --requests 64
          --measurement-ms 1500 --deadline-s 300 --served-reserve-s 150 --min-time-s 0.1 --min-calls 3
          --spec-batches 1024,8192)
fi

# The spec stage: the DLRM example (examples/dlrm) as a team brings it, generated and trained here (its 55 MB of
# trained weights do not fit the carry), into a copy of its spec that points at $WORK. DLRM_ROWS=0 skips it.
DLRM_ROWS="${DLRM_ROWS:-$([ "$DEVICE" = cpu ] && echo 0 || echo 500000)}"
DLRM_MINUTES="${DLRM_MINUTES:-0.5}"
if [ "$DLRM_ROWS" -gt 0 ]; then
  D="$WORK/dlrm"
  mkdir -p "$D"
  echo "== the DLRM for the spec stage: $DLRM_ROWS rows, one epoch of at most $DLRM_MINUTES min on the CPU ($D)"
  sed -e "s|^weights = .*|weights = \"$D/weights.pt\"|" -e "s|^path = .*|path = \"$D/rows.parquet\"|" \
    -e "s|^python_path = .*|python_path = [\"$ROOT/examples/dlrm\"]|" examples/dlrm/spec.toml > "$D/spec.toml"
  if timeout 60 "$PY" examples/dlrm/generate.py --rows "$DLRM_ROWS" --out "$D/rows.parquet" \
    && timeout 120 "$PY" examples/dlrm/train.py --spec "$D/spec.toml" --epochs 1 --max-minutes "$DLRM_MINUTES"; then
    flags+=(--spec "$D/spec.toml")
  else
    echo "preparing the DLRM failed: the run goes on without the spec stage"
  fi
fi

echo "== environment"
"$PY" - <<'PY'
import importlib, platform
print("python", platform.python_version())
for name in ("torch", "numpy", "tritonclient", "grpc", "google.protobuf"):
    try:
        module = importlib.import_module(name)
        print(name, getattr(module, "__version__", "?"), module.__file__)
    except Exception as e:  # report and go on: the bench says what it cannot do
        print(name, "missing:", e)
import torch
print("cuda", torch.cuda.is_available(), torch.version.cuda, torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
PY
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
command -v perf_analyzer >/dev/null && echo "perf_analyzer: $(command -v perf_analyzer)"

if [ "$DEVICE" != cpu ]; then  # the tests marked gpu (CUDA scorer: graphs, precisions) before measuring anything
  echo "== pytest -m gpu (results in $OUT/gpu-tests.txt)"
  timeout 90 "$PY" -m pytest -q -m gpu -p no:cacheprovider tests/unit/test_torch_device.py tests/unit/test_ranker_gpu_model.py > "$OUT/gpu-tests.txt" 2>&1
  echo "pytest exit $?: $(tail -1 "$OUT/gpu-tests.txt")"
fi

echo "== tritonrec bench gpu ${flags[*]} ${passed[*]}"
"$PY" -m tritonrec bench gpu "${flags[@]}" "${passed[@]}"
rc=$?
echo "== exit $rc after $(($(date +%s) - started)) s; in $OUT:"
ls -la "$OUT"
exit $rc
