#!/usr/bin/env bash
# Re-record the serving benchmarks of bench/results/<date>-<machine>/ on this machine, as the README quotes them.
#
#   bash bench/tools/record_cpu.sh bench/results/2026-12-01-cpu2      (about 2 hours on 2 cores)
#
# Trains the Beauty `base` checkpoint first when artifacts/quality/beauty-base is missing (14-minute budget) and
# exports it; then the sweep, the batching comparison and the efficiency measurement (twice: the second run must
# land within the first one's spread). Every run writes JSON + Markdown (+ PNG) with its command, host and versions.
set -euo pipefail
out="${1:?usage: record_cpu.sh OUT_DIR}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
tr="$root/.venv/bin/tritonrec"
ckpt="$root/artifacts/quality/beauty-base"
export_dir="$root/artifacts/onnx/beauty-base"
mkdir -p "$out"
if [[ ! -f "$ckpt/checkpoint.json" ]]; then
    "$tr" train --dataset beauty --preset base --out "$ckpt" --quiet
fi
if [[ ! -f "$export_dir/model.onnx" ]]; then
    "$tr" export onnx --checkpoint "$ckpt" --dataset beauty --out "$export_dir"
fi
"$tr" bench sweep --export "$export_dir" --out "$out/sweep" --concurrency 1,4,8,16,32 --rates 50,100,200,400 \
    --repeats 3
"$tr" bench batching --export "$export_dir" --out "$out/batching" --settings no_batching,dynamic --repeats 3
"$tr" bench efficiency --export "$export_dir" --out "$out/efficiency" --repeats 3
"$tr" bench efficiency --export "$export_dir" --out "$out/efficiency-rerun" --repeats 3
