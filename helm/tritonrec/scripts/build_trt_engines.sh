#!/usr/bin/env bash
# Build one TensorRT engine (a plan in <repo>/<model>/1/) from an ONNX file, on the GPU it will run on.
#
# An engine is tied to the GPU model and the TensorRT version, so it is built on the target node (by hand, or by
# the Helm chart's init container or Job, which ship this exact file), never copied from another machine. A stamp
# beside the plan records what it was built for; a later run with the same GPU, TensorRT version, ONNX file and
# shapes skips the build.
#
#   build_trt_engines.sh --repo DIR --model NAME --precision fp16|int8 --onnx FILE [--force] [--replace-other-gpu]
#
# Run it inside the TensorRT image that matches the Triton image (tritonserver 24.10-py3 <-> tensorrt 24.10-py3):
#   docker run --rm --gpus all -v $PWD/repo:/models -v $PWD/export:/opt/tritonrec nvcr.io/nvidia/tensorrt:24.10-py3 \
#     /opt/tritonrec/build_trt_engines.sh --repo /models --model ranker_trt_fp16 --precision fp16 \
#     --onnx /models/ranker_trt_fp16/1/model_offsets.onnx
#
# Limits come from the model's own <repo>/<model>/config.pbtxt, where `tritonrec repo build` states them once:
# `max_batch_size` (largest batch B) and the parameters `max_history` (history length L: GPU clients pad the
# history to it) and `max_candidates` (most candidates N). When the config batches candidates raggedly (a
# `batch_input` named candidate_offsets: the offsets graph model_offsets.onnx of `tritonrec export onnx --gpu-graph`),
# the optimisation profile is history [B, L] int64, candidates [M] int64 (the batch's candidates concatenated,
# M up to B x N) and candidate_offsets [B] int32; otherwise history [B, L] and candidates [B, N]. B runs from 1
# to max_batch_size, L is fixed, N up to max_candidates; tuned for TRITONREC_OPT_BATCH (16) x
# TRITONREC_OPT_CANDIDATES (200). TensorRT 10 accepts int64 network inputs. A team's own model (`tritonrec repo build
# --spec`) states its whole profile instead, in trtexec syntax: the parameters `trt_min_shapes`, `trt_opt_shapes` and
# `trt_max_shapes` (rows from 1 to max_batch_size, each dynamic dim from 1 to its limit); when there, they are the shapes.
# TRITONREC_TRTEXEC_EXTRA_ARGS adds trtexec flags. int8 expects the calibrated QDQ ONNX (explicit quantization);
# fp16 layers are allowed for both.
#
# Plan file: when the config maps compute capabilities to files (`cc_model_filenames { key: "8.9" value:
# "model_cc89.plan" }`, what Triton loads on a GPU of that capability), the file mapped to this GPU's capability;
# otherwise `default_model_filename` (model.plan). GPUs of different types sharing one repository volume must
# not overwrite each other's plan: when the stamp says the plan was built on another GPU, the script refuses
# (exit 3) unless --replace-other-gpu (the node pool changed GPU type) or --force (rebuild in any case).
#
# Exit status: 0 built or skipped, 1 build failed, 2 bad arguments or missing input, 3 the plan belongs to
# another GPU type.
set -euo pipefail

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
}

fail() {
    echo "build_trt_engines: $1" >&2
    exit "${2:-2}"
}

repo="" model="" precision="" onnx="" force=0 replace_other_gpu=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --repo) repo="${2:?--repo needs a value}"; shift 2 ;;
        --model) model="${2:?--model needs a value}"; shift 2 ;;
        --precision) precision="${2:?--precision needs a value}"; shift 2 ;;
        --onnx) onnx="${2:?--onnx needs a value}"; shift 2 ;;
        --force) force=1; shift ;;
        --replace-other-gpu) replace_other_gpu=1; shift ;;
        -h | --help) usage ;;
        *) echo "build_trt_engines: unknown argument '$1'" >&2; usage ;;
    esac
done
[[ -n "$repo" && -n "$model" && -n "$precision" && -n "$onnx" ]] || usage
case "$precision" in
    fp16) precision_flags=(--fp16) ;;
    int8) precision_flags=(--int8 --fp16) ;;
    *) fail "--precision must be fp16 or int8, not '$precision'" ;;
esac
config="$repo/$model/config.pbtxt"
[[ -f "$config" ]] || fail "$config not found: is --repo a tritonrec model repository?"
[[ -f "$onnx" ]] || fail "ONNX file $onnx not found"

# The config on one line without comments (protobuf text format: fields in any order, blocks over lines).
flat="$(sed 's/#.*$//' "$config" | tr '\n\t' '  ' | tr -s ' ')"
config_int() {  # a top-level integer field, e.g. max_batch_size: 64
    { grep -oE "(^|[ {])$1 *: *[0-9]+" <<< "$flat" || true; } | head -n 1 | grep -oE '[0-9]+$' || true
}
config_parameter() {  # parameters { key: "NAME" value { string_value: "VALUE" } }
    { grep -oE "key *: *\"$1\" *value *:? *\{ *string_value *: *\"[^\"]*\"" <<< "$flat" || true; } | head -n 1 |
        sed -E 's/.*string_value *: *"([^"]*)"$/\1/'
}
positive_limit() {  # name value: the value, or exit 2 naming what is missing
    [[ "$2" =~ ^[0-9]+$ && "$2" -gt 0 ]] ||
        fail "$config has no positive $1 (found '${2}'): the engine's shapes come from the model config; regenerate it with \`tritonrec repo build\`"
    echo "$2"
}
max_batch="$(positive_limit max_batch_size "$(config_int max_batch_size)")"
min_shapes="$(config_parameter trt_min_shapes)"
opt_shapes="$(config_parameter trt_opt_shapes)"
max_shapes="$(config_parameter trt_max_shapes)"
if [[ -n "$min_shapes$opt_shapes$max_shapes" ]]; then  # a spec's model: the profile as the config states it
    [[ -n "$min_shapes" && -n "$opt_shapes" && -n "$max_shapes" ]] ||
        fail "$config states only some of trt_min_shapes, trt_opt_shapes, trt_max_shapes: regenerate it with \`tritonrec repo build --spec\`"
    shape_stamp="$min_shapes/$opt_shapes/$max_shapes"
else
    history_len="$(positive_limit 'parameters entry "max_history"' "$(config_parameter max_history)")"
    max_candidates="$(positive_limit 'parameters entry "max_candidates"' "$(config_parameter max_candidates)")"
    opt_batch="${TRITONREC_OPT_BATCH:-16}"
    opt_candidates="${TRITONREC_OPT_CANDIDATES:-200}"
    [[ "$opt_batch" =~ ^[0-9]+$ && "$opt_batch" -ge 1 && "$opt_batch" -le "$max_batch" ]] ||
        fail "TRITONREC_OPT_BATCH ($opt_batch) must be between 1 and max_batch_size ($max_batch)"
    [[ "$opt_candidates" =~ ^[0-9]+$ && "$opt_candidates" -ge 1 && "$opt_candidates" -le "$max_candidates" ]] ||
        fail "TRITONREC_OPT_CANDIDATES ($opt_candidates) must be between 1 and max_candidates ($max_candidates)"
    shape_stamp="${max_batch}x${history_len},${max_batch}x${max_candidates}/${opt_batch}x${opt_candidates}"
fi
read -r -a extra_args <<< "${TRITONREC_TRTEXEC_EXTRA_ARGS:-}"

gpu="$(nvidia-smi --query-gpu=name,compute_cap --format=csv,noheader -i 0 | tr -s ' ')"
# The NGC TensorRT image sets TRT_VERSION; otherwise ask trtexec (it prints "[TensorRT v100500]").
trt_version="${TRT_VERSION:-$(trtexec --help 2>&1 | grep -o 'TensorRT v[0-9]*' | head -n 1 || true)}"
[[ -n "$gpu" && -n "$trt_version" ]] || fail "cannot read the GPU or TensorRT version"
compute_capability="${gpu##*, }"
onnx_sha="$(sha256sum "$onnx" | cut -d ' ' -f 1)"

# Which file Triton loads on this GPU: cc_model_filenames[capability], else default_model_filename.
mapped_capabilities="$({ grep -oE 'cc_model_filenames *:? *\{ *key *: *"[^"]*"' <<< "$flat" || true; } |
    sed -E 's/.*"([^"]*)"$/\1/' | tr '\n' ' ')"
plan_name="$({ grep -oE "cc_model_filenames *:? *\{ *key *: *\"${compute_capability//./\\.}\" *value *: *\"[^\"]+\"" \
    <<< "$flat" || true; } | head -n 1 | sed -E 's/.*"([^"]+)"$/\1/')"
if [[ -z "$plan_name" && -n "${mapped_capabilities// /}" ]]; then
    fail "$config maps compute capabilities ${mapped_capabilities% } to plans (cc_model_filenames) but not this GPU's $compute_capability ($gpu): add it, or schedule these pods on a listed GPU"
fi
if [[ -z "$plan_name" ]]; then
    plan_name="$({ grep -oE 'default_model_filename *: *"[^"]+"' <<< "$flat" || true; } | sed -E 's/.*"([^"]+)"$/\1/')"
fi
plan_name="${plan_name:-model.plan}"
[[ "$plan_name" != */* ]] || fail "plan file name '$plan_name' in $config must be a file name, not a path"

version_dir="$repo/$model/1"
plan="$version_dir/$plan_name"
stamp="$plan.stamp"
wanted="gpu=$gpu
tensorrt=$trt_version
precision=$precision
onnx_sha256=$onnx_sha
shapes=$shape_stamp"

mkdir -p "$version_dir"
# Several pods may share one volume: one builder at a time per model; the others wait, then see the stamp.
exec 9> "$version_dir/.build.lock"
flock 9

if [[ "$force" -eq 0 && -f "$plan" && -f "$stamp" && "$(cat "$stamp")" == "$wanted" ]]; then
    echo "build_trt_engines: $plan is up to date ($gpu, $trt_version, $precision); skipped"
    exit 0
fi
stored_gpu="$(sed -n 's/^gpu=//p' "$stamp" 2> /dev/null || true)"
if [[ -f "$plan" && -n "$stored_gpu" && "$stored_gpu" != "$gpu" && "$force" -eq 0 && "$replace_other_gpu" -eq 0 ]]; then
    fail "$plan was built on $stored_gpu and this GPU is $gpu: GPUs of different types share this repository, and rebuilding would break the other type's pods. Map each compute capability to its own plan (cc_model_filenames in $config), give each GPU type its own repository, or pin one GPU product; pass --replace-other-gpu when the node pool really changed GPU type" 3
fi

if [[ -n "$min_shapes" ]]; then
    :  # stated by the config (a spec's model)
elif grep -q '"candidate_offsets"' "$config"; then  # Triton's ragged batching: the flat graph
    min_shapes="history:1x${history_len},candidates:1,candidate_offsets:1"
    opt_shapes="history:${opt_batch}x${history_len},candidates:$((opt_batch * opt_candidates)),candidate_offsets:${opt_batch}"
    max_shapes="history:${max_batch}x${history_len},candidates:$((max_batch * max_candidates)),candidate_offsets:${max_batch}"
else
    min_shapes="history:1x${history_len},candidates:1x1"
    opt_shapes="history:${opt_batch}x${history_len},candidates:${opt_batch}x${opt_candidates}"
    max_shapes="history:${max_batch}x${history_len},candidates:${max_batch}x${max_candidates}"
fi

echo "build_trt_engines: building $plan from $onnx ($precision) on $gpu with $trt_version"
tmp_plan="$version_dir/.$plan_name.$$"
trap 'rm -f "$tmp_plan"' EXIT
if ! trtexec \
    --onnx="$onnx" \
    --saveEngine="$tmp_plan" \
    "${precision_flags[@]}" \
    --minShapes="$min_shapes" \
    --optShapes="$opt_shapes" \
    --maxShapes="$max_shapes" \
    --skipInference \
    "${extra_args[@]}"; then
    fail "trtexec failed for $model; $plan left as it was" 1
fi
# Plan and stamp replace the old ones only once the build succeeded (rename is atomic on one filesystem).
mv -f "$tmp_plan" "$plan"
printf '%s\n' "$wanted" > "$stamp.tmp"
mv -f "$stamp.tmp" "$stamp"
echo "build_trt_engines: wrote $plan"
