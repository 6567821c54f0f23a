#!/usr/bin/env bash
# Compression that trains, on the DLRM example, as a record: the spec's training hook (examples/dlrm/train.py's fit)
# makes a distilled student (embedding dim 8), shared tables (every table hashed into at most 20,000 rows) and a
# magnitude-pruned model (half the Linear weights); each is exported through its own spec, and with SELECT=1
# `tritonrec select --spec` measures them beside the FP32 model. Trains and exports first when artifacts/dlrm has no
# export:
#
#   bash examples/dlrm/compress.sh bench/results/<date>-<machine>/dlrm-compress     # about 12 min on 2 cores
#
# OUT gets distill-d8/, share-20k/, prune-0.5/ (compress.json/.md each), export-*.json and, with SELECT=1, select/.
# Environment: ROWS (1000000), EPOCHS (2), SELECT (0), P99_MS (50).
set -euo pipefail
OUT="${1:?usage: bash examples/dlrm/compress.sh OUT}"
SELECT="${SELECT:-0}"
P99_MS="${P99_MS:-50}"
# shellcheck source=examples/dlrm/common.sh
source "$(dirname "$0")/common.sh"

[ -f "$A/onnx/model.onnx" ] || train_and_export
GRAPHS=()
for job in "distill-d8 distill --student-kwargs {\"dim\":8}" "share-20k share --student-kwargs {\"max_rows\":20000}" \
  "prune-0.5 prune --ratio 0.5"; do
  read -r name method args <<< "$job"
  say "compress $method ($name)"
  # shellcheck disable=SC2086  # args holds the method's flag and its value
  $T compress "$method" --spec "$SPEC" $args --out "$A/$name" > "$OUT/$name.txt"
  mkdir -p "$OUT/$name"
  cp "$A/$name/compress.json" "$A/$name/compress.md" "$OUT/$name/"
  $T export onnx --spec "$A/$name/spec.toml" --out "$A/$name/onnx" --no-fp16 --json > "$OUT/export-$name.json"
  GRAPHS+=(--graph "$name=$A/$name/onnx/model.onnx")
done
if [ "$SELECT" = 1 ]; then
  PA=()
  [ -x .tools/perf_analyzer/perf_analyzer ] && PA=(--perf-analyzer .tools/perf_analyzer/perf_analyzer)
  say "select --spec with the compressed models"
  $T select --spec "$SPEC" --export "$A/onnx" "${GRAPHS[@]}" --p99-ms "$P99_MS" "${PA[@]}" --out "$OUT/select" \
    > "$OUT/select.txt"
fi
say "done: $OUT"
