#!/usr/bin/env bash
# Install NVIDIA Triton Model Analyzer (PyPI: triton-model-analyzer) into its own virtualenv
# .tools/model_analyzer/venv (git-ignored), for `tritonrec bench model-analyzer` and its integration test.
#
# It must stay out of the project's .venv: it pins tritonclient 2.73 with its perf_analyzer package, protobuf 6,
# numpy 2 and more, which conflict with constraints.txt (nvidia-pytriton needs numpy<2 and tritonclient~=2.50).
# 1.58.0 is the version that ran here (local launch mode with the bundled tritonserver 2.51 and perf_analyzer
# 2.50, CPU-only); every package is pinned by bench/tools/model-analyzer-constraints.txt. Idempotent: an installed
# model-analyzer of that version is kept.
# Usage: bash bench/tools/install_model_analyzer.sh   -> prints the path of the model-analyzer binary.
# `tritonrec bench model-analyzer` finds it there (or pass --model-analyzer-bin / set MODEL_ANALYZER).
set -euo pipefail

VERSION="1.58.0"
PYTHON="${PYTHON:-python3}"

root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="$root/.tools/model_analyzer/venv"
constraints="$root/bench/tools/model-analyzer-constraints.txt"
binary="$venv/bin/model-analyzer"

if [[ -x "$binary" ]] && [[ "$("$binary" --version 2> /dev/null)" == "$VERSION" ]]; then
    echo "$binary"
    exit 0
fi
rm -rf "$venv"
"$PYTHON" -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip
"$venv/bin/pip" install --quiet "triton-model-analyzer==$VERSION" -c "$constraints"
installed="$("$binary" --version)"
[[ "$installed" == "$VERSION" ]] || { echo "install_model_analyzer: got $installed, expected $VERSION" >&2; exit 1; }
echo "$binary"
