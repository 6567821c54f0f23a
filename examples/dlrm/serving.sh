#!/usr/bin/env bash
# How well the served DLRM uses the machine, as a record: `tritonrec bench efficiency --spec` (dlrm_cpu served over
# gRPC against its own ONNX Runtime sessions in process, on the batch sizes Triton formed) and `tritonrec bench
# batching --spec` (the batcher settings of dlrm_cpu side by side), both on requests drawn from the model's
# evaluation queries. Trains and exports first when artifacts/dlrm has no export:
#
#   bash examples/dlrm/serving.sh bench/results/<date>-<machine>/dlrm-serving     # about 18 min on 2 cores
#
# OUT gets efficiency/ (efficiency.json/.md) and batching/ (batching.json/.md). Environment: ROWS (1000000),
# EPOCHS (2), SKEW (1.0), REPEATS (3).
set -euo pipefail
OUT="${1:?usage: bash examples/dlrm/serving.sh OUT}"
SKEW="${SKEW:-1.0}"
REPEATS="${REPEATS:-3}"
# shellcheck source=examples/dlrm/common.sh
source "$(dirname "$0")/common.sh"

[ -f "$A/onnx/model.onnx" ] || train_and_export
PA=(--perf-analyzer .tools/perf_analyzer/perf_analyzer)
say "bench efficiency --spec: served dlrm_cpu against its sessions in process"
$T bench efficiency --spec "$SPEC" --export "$A/onnx" --query-skew "$SKEW" --concurrency 4,8,16,32 \
  --repeats "$REPEATS" "${PA[@]}" --out "$OUT/efficiency" > "$OUT/efficiency.txt"
say "bench batching --spec: the batcher settings side by side"
$T bench batching --spec "$SPEC" --export "$A/onnx" --query-skew "$SKEW" --concurrency 16 \
  --repeats "$REPEATS" "${PA[@]}" --out "$OUT/batching" > "$OUT/batching.txt"
say "done: $OUT (efficiency/efficiency.md, batching/batching.md)"
