#!/usr/bin/env bash
# Re-record the CPU benchmarks of bench/results/<date>-<machine>/ on this machine, as the READMEs quote them.
#
#   bash bench/tools/record_cpu.sh bench/results/<date>-<machine>     (the folder: python -c "from pathlib import Path;
#       from tritonrec.records import results_folder; print(results_folder(Path('bench/results')))")
#   STAGES="select client" bash bench/tools/record_cpu.sh bench/results/<date>-<machine>   (only those stages)
#
# Stages, in order (STAGES picks some; default: all but sweep). Minutes are for 2 cores, measured 2026-12-02:
#   batching     dynamic vs no batching at N=8 and N=200, our generator and perf_analyzer, 3 repeats
#   efficiency   like-for-like serving efficiency, then the same command again (must land within the spread)
#   model-analyzer  NVIDIA Model Analyzer's brute search on ranker_cpu (needs `make tools-model-analyzer`)
#   tune         our search, then shipped vs tuned vs other layout (vs Model Analyzer's best) side by side
#   client       asyncio/sync clients vs perf_analyzer and locust, small and base presets
#   select       tritonrec select on base (+ INT8 and compressed models when given), with Model Navigator
#   harness      the bench harness on select's served scenario (base FP32, concurrency 4, 100 req/s), to compare
#   sweep        closed/open-loop sweep, 5 concurrencies x 4 rates x 3 repeats (about an hour)
#
# Trains the Beauty `base` (and `small`) checkpoints first when missing and exports them. Every run writes JSON +
# Markdown (+ PNG) with its command, host, CPU flags and tool versions.
# Env: STAGES; MODEL_ANALYZER (its binary, default .tools/model_analyzer/venv/bin/model-analyzer); BASELINE_SRC (the
# client before the rewrite, for `bench client --baseline-src`); SELECT_ARGS (more `tritonrec select` arguments,
# e.g. "--int8 artifacts/quantize/model_int8.onnx --model prune-0.5=artifacts/compression/beauty/prune-0.5").
set -euo pipefail
out="${1:?usage: record_cpu.sh OUT_DIR}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
tr="$root/.venv/bin/tritonrec"
stages="${STAGES:-batching efficiency model-analyzer tune client select harness}"
ma_bin="${MODEL_ANALYZER:-$root/.tools/model_analyzer/venv/bin/model-analyzer}"
mkdir -p "$out"

checkpoint() {  # preset -> trains and exports artifacts/{quality,onnx}/beauty-<preset> when missing
    local ckpt="$root/artifacts/quality/beauty-$1" export_dir="$root/artifacts/onnx/beauty-$1"
    [[ -f "$ckpt/checkpoint.json" ]] || "$tr" train --dataset beauty --preset "$1" --out "$ckpt" --quiet
    [[ -f "$export_dir/model_ragged.onnx" ]] ||
        "$tr" export onnx --checkpoint "$ckpt" --dataset beauty --out "$export_dir" >/dev/null
}
has() { [[ " $stages " == *" $1 "* ]]; }
checkpoint base
base="$root/artifacts/onnx/beauty-base"

if has batching; then
    "$tr" bench batching --export "$base" --out "$out/batching" --settings no_batching,dynamic --repeats 3
fi
if has efficiency; then
    "$tr" bench efficiency --export "$base" --out "$out/efficiency" --repeats 3
    "$tr" bench efficiency --export "$base" --out "$out/efficiency-rerun" --repeats 3
fi
if has model-analyzer; then
    "$tr" bench model-analyzer --export "$base" --out "$out/model-analyzer" --p99-ms 100 \
        --model-analyzer-bin "$ma_bin" || echo "model-analyzer failed: see $out/model-analyzer" >&2
fi
if has tune; then
    ma=()
    # only a Model Analyzer run that finished (a failed one leaves its report, with the reason, and no best config)
    grep -qs '"status": "ok"' "$out/model-analyzer/model_analyzer.json" && ma=(--model-analyzer "$out/model-analyzer")
    "$tr" bench tune --export "$base" --out "$out/tune" --p99-ms 100 --confirm-repeats 3 "${ma[@]}"
fi
if has client; then
    checkpoint small
    baseline=()
    [[ -n "${BASELINE_SRC:-}" ]] && baseline=(--baseline-src "$BASELINE_SRC")
    for preset in small base; do
        "$tr" bench client --export "$root/artifacts/onnx/beauty-$preset" --out "$out/client-$preset" \
            --repeats 3 "${baseline[@]}"
    done
fi
if has select; then
    # shellcheck disable=SC2086  # SELECT_ARGS is a list of arguments
    "$tr" select --checkpoint "$root/artifacts/quality/beauty-base" --export "$base" --dataset beauty \
        --out "$out/select" --navigator ${SELECT_ARGS:-}
fi
if has harness; then
    "$tr" bench sweep --export "$base" --out "$out/sweep-c4" --concurrency 4 --rates 100 --repeats 3
fi
if has sweep; then
    "$tr" bench sweep --export "$base" --out "$out/sweep" --concurrency 1,4,8,16,32 --rates 50,100,200,400 \
        --repeats 3
fi
