#!/usr/bin/env bash
# Load tests on the DLRM example, as a record: the served FP32 model driven with requests built from its own
# evaluation queries, by our generator and NVIDIA's perf_analyzer on the same requests (bench sweep --spec), and by
# locust from a scenario that names the spec. Trains and exports first when artifacts/dlrm has no repository:
#
#   bash examples/dlrm/load.sh bench/results/<date>-<machine>/dlrm-load     # about 12 min on 2 cores (with training)
#
# OUT gets sweep/ (sweep.json/.md/.png), locust/ (locust.json/.md, CSV, HTML) and server-load.log.
# Environment: ROWS (1000000), EPOCHS (2), PORT (8001), CONCURRENCY (1,4,16), REPEATS (3), SKEW (1.0).
set -euo pipefail
OUT="${1:?usage: bash examples/dlrm/load.sh OUT}"
CONCURRENCY="${CONCURRENCY:-1,4,16}"
REPEATS="${REPEATS:-3}"
SKEW="${SKEW:-1.0}"
# shellcheck source=examples/dlrm/common.sh
source "$(dirname "$0")/common.sh"

if [ ! -f "$A/repo/dlrm_cpu/config.pbtxt" ]; then
  train_and_export
  rm -rf "$A/repo"
  $T repo build --spec "$SPEC" --export "$A/onnx" --out "$A/repo"
fi
say "serve"
serve "$A/repo" load
trap stop EXIT
say "sweep: our generator and perf_analyzer on the same requests, concurrency $CONCURRENCY, $REPEATS repeats"
$T bench sweep --url "127.0.0.1:$PORT" --metrics-url "http://127.0.0.1:$((PORT + 1))/metrics" --spec "$SPEC" \
  --model dlrm_cpu --concurrency "$CONCURRENCY" --repeats "$REPEATS" --query-skew "$SKEW" --out "$OUT/sweep" \
  > "$OUT/sweep.txt"
say "locust from examples/dlrm/locust.toml"
$T bench locust --url "127.0.0.1:$PORT" --scenario examples/dlrm/locust.toml --out "$OUT/locust" > "$OUT/locust.txt"
say "done: $OUT (sweep/sweep.md, locust/locust.md)"
