# Shared by examples/dlrm/study.sh, load.sh and select.sh (sourced after OUT is set): where things are, the defaults, and the
# bundled tritonserver serving the spec's model.
ROWS="${ROWS:-1000000}"
EPOCHS="${EPOCHS:-2}"
PORT="${PORT:-8001}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
T=.venv/bin/tritonrec
SPEC=examples/dlrm/spec.toml
A=artifacts/dlrm
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
export PYTHONUNBUFFERED=1
say() { echo "== $(date -u +%H:%M:%S) $*"; }

train_and_export() {  # the guide's first commands: a million synthetic rows, the trained DLRM, its ONNX export
  say "generate $ROWS rows, train $EPOCHS epochs, export"
  .venv/bin/python examples/dlrm/generate.py --rows "$ROWS" --out "$A/rows.parquet"
  .venv/bin/python examples/dlrm/train.py --spec "$SPEC" --epochs "$EPOCHS"
  $T export onnx --spec "$SPEC" --out "$A/onnx"
}

serve() {  # serve REPO NAME: the bundled tritonserver on the CPU, until the spec's model is ready
  $T serve --repo "$1" --models dlrm_cpu --grpc-port "$PORT" --http-port $((PORT - 1)) --metrics-port $((PORT + 1)) \
    --log-file "$OUT/server-$2.log" > "$OUT/serve-$2.txt" 2>&1 &
  SERVER=$!
  for _ in $(seq 600); do
    curl -sf "localhost:$((PORT - 1))/v2/models/dlrm_cpu/ready" > /dev/null && return 0
    kill -0 "$SERVER" 2> /dev/null || { cat "$OUT/serve-$2.txt"; return 1; }
    sleep 0.5
  done
  return 1
}
stop() { kill -TERM "$SERVER" && wait "$SERVER" || true; }
