#!/usr/bin/env bash
# The DLRM example at full size, as a record: the guide's commands (docs/bring-your-own-model.md) on a million
# synthetic rows, then the INT8 study on the model's own rows and the INT8 winner served too. Every figure of the
# record comes from these commands; the outputs land in OUT:
#
#   bash examples/dlrm/study.sh bench/results/<date>-<machine>/dlrm-spec     # about 6 min on 2 cores
#
# generate.txt, train.txt (AUC and NDCG@10 beside the ceiling of the true click probabilities), export.json (parity),
# eager.json, precision.json/.md (quantize --spec), repo.txt, query.json, served-fp32.json (every evaluation row
# through the server, compared with eager), served-int8.json (the published INT8 file served, compared with it in
# process), server-*.log, and study.json/.md (examples/dlrm/summarize.py: the figures in one record).
# Environment: ROWS (1000000), EPOCHS (2), PORT (8001; HTTP PORT-1, metrics PORT+1).
set -euo pipefail
OUT="${1:?usage: bash examples/dlrm/study.sh OUT}"
# shellcheck source=examples/dlrm/common.sh
source "$(dirname "$0")/common.sh"

say "generate $ROWS rows"
.venv/bin/python examples/dlrm/generate.py --rows "$ROWS" --out "$A/rows.parquet" | tee "$OUT/generate.txt"
say "train $EPOCHS epochs"
.venv/bin/python examples/dlrm/train.py --spec "$SPEC" --epochs "$EPOCHS" | tee "$OUT/train.txt"
say "export"
$T export onnx --spec "$SPEC" --out "$A/onnx" --json > "$OUT/export.json"
$T evaluate --spec "$SPEC" --json > "$OUT/eager.json"
say "quantize --spec"
$T quantize --spec "$SPEC" --export "$A/onnx" --out "$A/int8" --publish-fallback --report-dir "$OUT" \
  > "$OUT/quantize.txt"
say "repo build (CPU and GPU variants), serve, query, evaluate through the server"
rm -rf "$A/repo" "$A/repo-int8"
$T repo build --spec "$SPEC" --export "$A/onnx" --out "$A/repo" --variants cpu,onnx,trt_fp16 > "$OUT/repo.txt"
serve "$A/repo" fp32
$T query --spec "$SPEC" --url "127.0.0.1:$PORT" --top-k 5 --json > "$OUT/query.json"
$T evaluate --spec "$SPEC" --url "127.0.0.1:$PORT" --compare --json > "$OUT/served-fp32.json"
stop
INT8=$(ls "$A"/int8/model_int8.onnx "$A"/int8/model_int8.xml 2> /dev/null | head -1 || true)
[ -n "$INT8" ] || { say "no INT8 file was published"; exit 1; }
RUNTIME=onnxruntime
[ "${INT8##*.}" = xml ] && RUNTIME=openvino
say "serve $INT8 ($RUNTIME)"
$T repo build --spec "$SPEC" --export "$A/int8" --out "$A/repo-int8" --cpu-precision int8 --cpu-runtime "$RUNTIME" \
  >> "$OUT/repo.txt"
serve "$A/repo-int8" int8
$T evaluate --spec "$SPEC" --url "127.0.0.1:$PORT" --onnx "$INT8" --compare --json > "$OUT/served-int8.json"
stop
.venv/bin/python examples/dlrm/summarize.py "$OUT" --spec "$SPEC" > /dev/null
say "done: $OUT (study.md)"
