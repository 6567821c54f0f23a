#!/usr/bin/env bash
# Build one TensorRT engine (<repo>/<model>/1/model.plan) from an ONNX file, on the GPU it will run on.
#
# An engine is tied to the GPU model and the TensorRT version, so it is built on the target node (by hand, or by
# the Helm chart's init container or Job, which ship this exact file), never copied from another machine. A stamp
# beside the plan records what it was built for; a later run with the same GPU, compute capability, TensorRT
# version and ONNX file skips the build.
#
#   build_trt_engines.sh --repo DIR --model NAME --precision fp16|int8 --onnx FILE [--force]
#
# Run it inside the TensorRT image that matches the Triton image (tritonserver 24.10-py3 <-> tensorrt 24.10-py3):
#   docker run --rm --gpus all -v $PWD/repo:/models -v $PWD/export:/opt/tritonrec nvcr.io/nvidia/tensorrt:24.10-py3 \
#     /opt/tritonrec/build_trt_engines.sh --repo /models --model ranker_trt_fp16 --precision fp16 \
#     --onnx /models/ranker_onnx/1/model.onnx
#
# Optimisation profile (environment, defaults = the model repository's contract): inputs history [B, L] and
# candidates [B, N], int64 (TensorRT 10 accepts int64 network inputs), B from 1 to TRITONREC_MAX_BATCH (64),
# L fixed at TRITONREC_HISTORY_LENGTH (50: GPU clients pad the history), N from 1 to TRITONREC_MAX_CANDIDATES
# (2048); tuned for TRITONREC_OPT_BATCH (16) x TRITONREC_OPT_CANDIDATES (200). TRITONREC_TRTEXEC_EXTRA_ARGS adds
# trtexec flags. int8 expects the calibrated QDQ ONNX (explicit quantization); fp16 layers are allowed for both.
#
# Exit status: 0 built or skipped, 1 build failed, 2 bad arguments or missing input.
set -euo pipefail

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
}

repo="" model="" precision="" onnx="" force=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --repo) repo="${2:?--repo needs a value}"; shift 2 ;;
        --model) model="${2:?--model needs a value}"; shift 2 ;;
        --precision) precision="${2:?--precision needs a value}"; shift 2 ;;
        --onnx) onnx="${2:?--onnx needs a value}"; shift 2 ;;
        --force) force=1; shift ;;
        -h | --help) usage ;;
        *) echo "build_trt_engines: unknown argument '$1'" >&2; usage ;;
    esac
done
[[ -n "$repo" && -n "$model" && -n "$precision" && -n "$onnx" ]] || usage
case "$precision" in
    fp16) precision_flags=(--fp16) ;;
    int8) precision_flags=(--int8 --fp16) ;;
    *) echo "build_trt_engines: --precision must be fp16 or int8, not '$precision'" >&2; exit 2 ;;
esac
[[ -f "$repo/$model/config.pbtxt" ]] || {
    echo "build_trt_engines: $repo/$model/config.pbtxt not found: is --repo a tritonrec model repository?" >&2
    exit 2
}
[[ -f "$onnx" ]] || { echo "build_trt_engines: ONNX file $onnx not found" >&2; exit 2; }

max_batch="${TRITONREC_MAX_BATCH:-64}"
opt_batch="${TRITONREC_OPT_BATCH:-16}"
history_len="${TRITONREC_HISTORY_LENGTH:-50}"
opt_candidates="${TRITONREC_OPT_CANDIDATES:-200}"
max_candidates="${TRITONREC_MAX_CANDIDATES:-2048}"
read -r -a extra_args <<< "${TRITONREC_TRTEXEC_EXTRA_ARGS:-}"

gpu="$(nvidia-smi --query-gpu=name,compute_cap --format=csv,noheader -i 0 | tr -s ' ')"
# The NGC TensorRT image sets TRT_VERSION; otherwise ask trtexec (it prints "[TensorRT v100500]").
trt_version="${TRT_VERSION:-$(trtexec --help 2>&1 | grep -o 'TensorRT v[0-9]*' | head -n 1 || true)}"
[[ -n "$gpu" && -n "$trt_version" ]] || { echo "build_trt_engines: cannot read the GPU or TensorRT version" >&2; exit 2; }
onnx_sha="$(sha256sum "$onnx" | cut -d ' ' -f 1)"

version_dir="$repo/$model/1"
plan="$version_dir/model.plan"
stamp="$version_dir/model.plan.stamp"
wanted="gpu=$gpu
tensorrt=$trt_version
precision=$precision
onnx_sha256=$onnx_sha
shapes=${max_batch}x${history_len},${max_batch}x${max_candidates}/${opt_batch}x${opt_candidates}"

mkdir -p "$version_dir"
# Several pods may share one volume: one builder at a time per model; the others wait, then see the stamp.
exec 9> "$version_dir/.build.lock"
flock 9

if [[ "$force" -eq 0 && -f "$plan" && -f "$stamp" && "$(cat "$stamp")" == "$wanted" ]]; then
    echo "build_trt_engines: $plan is up to date ($gpu, $trt_version, $precision); skipped"
    exit 0
fi

echo "build_trt_engines: building $plan from $onnx ($precision) on $gpu with $trt_version"
tmp_plan="$version_dir/.model.plan.$$"
trap 'rm -f "$tmp_plan"' EXIT
if ! trtexec \
    --onnx="$onnx" \
    --saveEngine="$tmp_plan" \
    "${precision_flags[@]}" \
    --minShapes="history:1x${history_len},candidates:1x1" \
    --optShapes="history:${opt_batch}x${history_len},candidates:${opt_batch}x${opt_candidates}" \
    --maxShapes="history:${max_batch}x${history_len},candidates:${max_batch}x${max_candidates}" \
    --skipInference \
    "${extra_args[@]}"; then
    echo "build_trt_engines: trtexec failed for $model; $plan left as it was" >&2
    exit 1
fi
# Plan and stamp replace the old ones only once the build succeeded (rename is atomic on one filesystem).
mv -f "$tmp_plan" "$plan"
printf '%s\n' "$wanted" > "$stamp.tmp"
mv -f "$stamp.tmp" "$stamp"
echo "build_trt_engines: wrote $plan"
