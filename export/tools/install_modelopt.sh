#!/usr/bin/env bash
# Install NVIDIA ModelOpt's ONNX post-training quantization into its own virtualenv .tools/modelopt/ (git-ignored),
# for `tritonrec quantize` (calibrator `modelopt`) and the tests that run it.
#
# Why a virtualenv of its own: `nvidia-modelopt[onnx]==0.47.0` requires onnxruntime-gpu~=1.24.2, onnx~=1.21.0,
# numpy 2 and cupy-cuda12x, and pulls a CUDA build of torch (several GB); the project pins onnx 1.23.2,
# onnxruntime 1.32.0 and numpy 1.26 (constraints.txt). What works on a CPU machine: the CPU torch 2.13.0, ModelOpt
# itself, and its ONNX dependencies with the CPU onnxruntime in place of onnxruntime-gpu and without cupy (CUDA
# only); calibration then runs on ONNX Runtime's CPU provider (`calibration_eps=["cpu"]`). Every package is pinned
# by export/tools/modelopt-constraints.txt. tritonrec talks to it through a subprocess
# (src/tritonrec/quantize/modelopt_worker.py, which imports only numpy and modelopt).
# Idempotent: an installed ModelOpt of that version is kept.
set -euo pipefail

VERSION="0.47.0"
PYTHON="${PYTHON:-python3}"

root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="$root/.tools/modelopt"
constraints="$root/export/tools/modelopt-constraints.txt"

installed() { "$venv/bin/python" -c 'import modelopt; print(modelopt.__version__)' 2> /dev/null || true; }
if [[ -x "$venv/bin/python" && "$(installed)" == "$VERSION" ]]; then
    echo "install_modelopt: $venv has nvidia-modelopt $VERSION already"
    exit 0
fi
rm -rf "$venv"
"$PYTHON" -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip
"$venv/bin/pip" install --quiet torch==2.13.0 -c "$constraints"
"$venv/bin/pip" install --quiet "nvidia-modelopt==$VERSION" -c "$constraints"
# The [onnx] extra by hand: CPU onnxruntime instead of onnxruntime-gpu, no cupy-cuda12x.
"$venv/bin/pip" install --quiet onnx onnxruntime onnx-graphsurgeon onnxconverter-common onnxscript onnxslim \
    polygraphy ml_dtypes lief cppimport -c "$constraints"
[[ "$(installed)" == "$VERSION" ]] || { echo "install_modelopt: modelopt does not import from $venv" >&2; exit 1; }
echo "install_modelopt: installed nvidia-modelopt $VERSION into $venv"
