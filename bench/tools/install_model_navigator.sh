#!/usr/bin/env bash
# Install NVIDIA Triton Model Navigator (the peer `tritonrec select` is compared with) into its OWN virtualenv,
# .tools/navigator-venv (git-ignored), never into the project's venv:
#
# - triton-model-navigator 0.14.0 requires `tensorrt>=10.5` (a metapackage that cannot install on these machines),
#   `onnxruntime-gpu`, `nvidia-modelopt[onnx]`, `numpy<2` and `packaging~=24.1`; a plain `pip install` fails.
#   So Navigator goes in with --no-deps and the dependencies a CPU run needs are installed by hand (the list
#   below is its own Requires-Dist less tensorrt, onnxruntime-gpu -> onnxruntime, and modelopt).
# - torch==2.13.0 goes in FIRST: it is the CPU build on this machine's disk. An unpinned torch (or any package
#   that asks for one) pulls a CUDA build of several GB.
# - tritonrec itself is NOT installed here: `tritonrec.select.navigator.run_navigator` puts the caller's own
#   source on the worker's PYTHONPATH, so the worker always runs the same model code as the caller.
#
# Usage: bash bench/tools/install_model_navigator.sh   -> prints the venv's python on its last line.
# Env: PYTHON (interpreter for the venv, default python3), NAVIGATOR_VENV (default <repo>/.tools/navigator-venv).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
VENV="${NAVIGATOR_VENV:-$ROOT/.tools/navigator-venv}"
PY="${PYTHON:-python3}"
NAVIGATOR_VERSION="0.14.0"

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
VPY="$VENV/bin/python"
"$VPY" -m pip install --quiet --upgrade "pip>=24"
# 1. The CPU torch, before anything can ask for a CUDA one.
"$VPY" -m pip install --quiet "torch==2.13.0"
# 2. Navigator itself, without its GPU-only requirements.
"$VPY" -m pip install --quiet --no-deps "triton-model-navigator==$NAVIGATOR_VERSION"
# 3. Its requirements that a CPU run uses (Requires-Dist of 0.14.0 less tensorrt, onnxruntime-gpu, nvidia-modelopt);
#    torch stays pinned so nothing replaces the CPU build.
"$VPY" -m pip install --quiet \
  "torch==2.13.0" \
  "numpy<2" \
  "onnxruntime>=1.20,<2" \
  "onnx>=1.16,<2" \
  "onnxscript" \
  "onnx_graphsurgeon~=0.5" \
  "polygraphy>=0.49.0" \
  "dacite~=1.8" \
  "fire>=0.4.0" \
  "jsonlines>=3.1.0" \
  "loguru>=0.7.2" \
  "mpmath~=1.3" \
  "packaging~=24.1" \
  "psutil>=5.7" \
  "py-cpuinfo>=8.0" \
  "pynvml~=11.5" \
  "python-slugify~=8.0" \
  "pyyaml~=6.0" \
  "tabulate>=0.8" \
  "tritonclient[grpc]~=2.47" \
  "wrapt>=1.16" \
  "pyee>=11.1.0" \
  "rich>=13.7.1"
# 4. What a spec's module imports beyond torch: the DLRM example's (and the tests' models') modules import pyarrow
#    (the project's pin, the last release for numpy<2). A team's module that imports more needs it here too:
#    .tools/navigator-venv/bin/python -m pip install <package>.
"$VPY" -m pip install --quiet "pyarrow==21.0.0"
# What is still unmet is expected (the GPU-only packages); print it for the record, do not fail on it.
"$VPY" -m pip check || true
# The import that the worker needs must work, with torch support on.
"$VPY" - <<'PYEOF'
import model_navigator as nav
import torch

if not nav.is_torch_available():
    raise SystemExit("model_navigator does not see torch")
print(f"model_navigator {nav.__version__}, torch {torch.__version__}, TensorRT available: {nav.is_trt_available()}")
PYEOF
echo "$VPY"
