#!/usr/bin/env bash
# Serving configuration of the DLRM example, as a record: NVIDIA Triton Model Analyzer's brute search on dlrm_cpu and
# `tritonrec bench tune --spec`'s coordinate search, on the same requests drawn from the model's evaluation queries,
# with the same p99 target; Model Analyzer's best joins tune's side-by-side confirmation (shipped, tuned, model
# analyzer; repeated shuffled rounds with their spread). Trains and exports first when artifacts/dlrm has no export:
#
#   bash bench/tools/install_model_analyzer.sh                                  # once: its own venv, about 1 min
#   bash examples/dlrm/tune.sh bench/results/<date>-<machine>/dlrm-tune       # about 40 min on 2 cores
#
# OUT gets model-analyzer/ (model_analyzer.json/.md/.png, Model Analyzer's own files in ma/) and tune/ (tune.json/.md/
# .png). Environment: ROWS (1000000), EPOCHS (2), P99_MS (50), SKEW (1.0).
set -euo pipefail
OUT="${1:?usage: bash examples/dlrm/tune.sh OUT}"
P99_MS="${P99_MS:-50}"
SKEW="${SKEW:-1.0}"
# shellcheck source=examples/dlrm/common.sh
source "$(dirname "$0")/common.sh"

[ -f "$A/onnx/model.onnx" ] || train_and_export
PA=(--perf-analyzer .tools/perf_analyzer/perf_analyzer)
say "Model Analyzer's search on dlrm_cpu"
$T bench model-analyzer --spec "$SPEC" --export "$A/onnx" --p99-ms "$P99_MS" --query-skew "$SKEW" "${PA[@]}" \
  --out "$OUT/model-analyzer" > "$OUT/model-analyzer.txt"
say "bench tune --spec, Model Analyzer's best in its confirmation"
$T bench tune --spec "$SPEC" --export "$A/onnx" --p99-ms "$P99_MS" --query-skew "$SKEW" "${PA[@]}" \
  --model-analyzer "$OUT/model-analyzer" --out "$OUT/tune" > "$OUT/tune.txt"
say "done: $OUT (model-analyzer/model_analyzer.md, tune/tune.md)"
