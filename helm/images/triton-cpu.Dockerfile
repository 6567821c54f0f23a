# Triton for CPU-only nodes (ci/cpu-only-values.yaml): the NGC image plus ONNX Runtime for the Python-backend
# model ranker_cpu (model_repository/ranker_cpu: its model.py runs ONNX Runtime over the whole dynamic batch).
#   docker build -f helm/images/triton-cpu.Dockerfile -t registry.example.com/tritonrec-triton-cpu:24.10-py3-ort .
# The NGC 24.10 image runs the Python backend on its system Python (Ubuntu 22.04: 3.10); the ONNX Runtime pin
# below is a release with 3.10 wheels. Not built or run in this repository's CI (no container runtime there).
ARG TRITON_TAG=24.10-py3
FROM nvcr.io/nvidia/tritonserver:${TRITON_TAG}
ARG ONNXRUNTIME_VERSION=1.20.1
RUN pip install --no-cache-dir "onnxruntime==${ONNXRUNTIME_VERSION}" "numpy<2"
