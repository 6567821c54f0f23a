#!/usr/bin/env bash
# Choosing what to ship for the DLRM example, as a record: `tritonrec select --spec` on the model's own evaluation
# rows, the FP32 export and the quantized graphs `quantize --spec` kept (the embedding tables in INT8 with the MLPs in
# FP32, row-wise INT8 tables, everything in INT8, OpenVINO's INT8), run RUNS times to show the pick is stable.
# Makes the study's artifacts first when artifacts/dlrm has no quantized variants:
#
#   bash examples/dlrm/select.sh bench/results/<date>-<machine>/dlrm-select     # about 50 min on 2 cores
#
# OUT gets run-1/ .. run-RUNS/ (select.json/.md/.html and plots each) and stability.json/.md
# (bench/tools/select_stability.py: every run's pick and the served throughputs side by side).
# Environment: ROWS (1000000), EPOCHS (2), RUNS (3), P99_MS (50), NAVIGATOR (0; 1 adds --navigator: Model Navigator on
# the DLRM module beside the selection, its venv from bench/tools/install_model_navigator.sh).
set -euo pipefail
OUT="${1:?usage: bash examples/dlrm/select.sh OUT}"
RUNS="${RUNS:-3}"
P99_MS="${P99_MS:-50}"
# shellcheck source=examples/dlrm/common.sh
source "$(dirname "$0")/common.sh"

if [ ! -f "$A/int8/variants/int8_mixed.onnx" ]; then
  train_and_export
  say "quantize --spec"
  $T quantize --spec "$SPEC" --export "$A/onnx" --out "$A/int8" --publish-fallback > "$OUT/quantize.txt"
fi
GRAPHS=()
for graph in int8_mixed.onnx int8_tables.onnx int8_ort_minmax.onnx openvino_int8.xml; do
  [ -f "$A/int8/variants/$graph" ] && GRAPHS+=(--graph "$A/int8/variants/$graph")
done
PA=()
[ -x .tools/perf_analyzer/perf_analyzer ] && PA=(--perf-analyzer .tools/perf_analyzer/perf_analyzer)
PEERS=()
[ "${NAVIGATOR:-0}" = 1 ] && PEERS=(--navigator)
for run in $(seq "$RUNS"); do
  say "select --spec, run $run of $RUNS"
  $T select --spec "$SPEC" --export "$A/onnx" "${GRAPHS[@]}" --p99-ms "$P99_MS" "${PA[@]}" "${PEERS[@]}" --out "$OUT/run-$run" \
    > "$OUT/run-$run.txt"
done
.venv/bin/python bench/tools/select_stability.py "$OUT" $(for run in $(seq "$RUNS"); do echo "$OUT/run-$run"; done) \
  > /dev/null || say "the runs picked different candidates (stability.md says which)"
say "done: $OUT (run-*/select.md, stability.md)"
