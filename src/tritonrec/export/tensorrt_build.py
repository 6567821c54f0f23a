"""Build a TensorRT engine from the exported ONNX file with the TensorRT Python API (``tritonrec export trt``).

Written against the documented TensorRT 10 Python API; TensorRT cannot be installed on the machines this project
is developed on, so this module has only run against a stand-in of the API in the unit tests (what it calls, in
which order), and its real build is covered by tests marked ``trt``/``gpu`` that skip without TensorRT and a GPU.
Everything decided before the API is called (shapes, precision, pinned layers, the trtexec equivalent, metadata)
lives in :mod:`tritonrec.export.tensorrt_plan` and is unit-tested.

Steps: ONNX parser -> network (strongly typed for ``int8`` where ``NetworkDefinitionCreationFlag.STRONGLY_TYPED``
exists) -> one optimisation profile over the batch and candidate axes -> precision flags (``FP16``; ``INT8`` +
``FP16`` when not strongly typed; ``best`` = both, TensorRT picks per layer) -> the sensitive groups' layers pinned
(``layer.precision`` + ``OBEY_PRECISION_CONSTRAINTS``; not allowed in strongly typed networks, where the Q/DQ graph
already keeps them in FP32) -> timing cache loaded and saved -> serialized plan + ``<plan>.json``.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tritonrec.errors import ExportError
from tritonrec.export.tensorrt_plan import EngineMetadata, Profile, TrtPrecision, sha256

__all__ = ["TrtBuild", "build_engine", "gpu_identity"]

logger = logging.getLogger(__name__)

_WORKSPACE_BYTES = 4 * 1024**3


@dataclass(frozen=True, slots=True, kw_only=True)
class TrtBuild:
    """One engine build.

    Attributes:
        onnx: the ONNX file (FP32 for ``fp16``; the Q/DQ ``model_qdq.onnx`` for ``int8``/``best``).
        plan: the plan file to write (``<plan>.json`` beside it).
        precision: the engine precision.
        profile: the optimisation profile (the bundled model's, or a spec's).
        layers: ONNX node names pinned to ``fp32``/``fp16`` (weakly typed builds only).
        timing_cache: a timing cache file to read (if present) and write back.
        strongly_typed: build ``int8`` as a strongly typed network where TensorRT supports it.
    """

    onnx: Path
    plan: Path
    precision: TrtPrecision
    profile: Profile
    layers: dict[str, str]
    timing_cache: Path | None = None
    strongly_typed: bool = True


def gpu_identity() -> tuple[str, str]:
    """``(GPU name, compute capability)`` of GPU 0 from ``nvidia-smi``.

    Raises:
        ExportError: no nvidia-smi or no GPU.
    """
    smi = shutil.which("nvidia-smi")
    if smi is None:
        raise ExportError("no nvidia-smi: a TensorRT engine is built on the GPU it will run on")
    done = subprocess.run(
        [smi, "--query-gpu=name,compute_cap", "--format=csv,noheader", "-i", "0"], capture_output=True, text=True
    )
    name, _, capability = done.stdout.strip().rpartition(", ")
    if done.returncode != 0 or not name:
        raise ExportError(f"nvidia-smi found no GPU: {done.stderr.strip() or done.stdout.strip()}")
    return name.strip(), capability.strip()


def _network(trt: Any, builder: Any, build: TrtBuild) -> tuple[Any, bool]:
    supported = hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED")
    strongly = build.strongly_typed and build.precision is TrtPrecision.INT8 and supported
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) if strongly else 0
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, builder.logger)
    if not parser.parse_from_file(str(build.onnx)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ExportError(f"TensorRT's ONNX parser rejected {build.onnx}: {errors}")
    return network, strongly


def _pin_layers(trt: Any, network: Any, layers: dict[str, str]) -> int:
    """Pin the layers the parser named after the given ONNX nodes; returns how many were pinned."""
    kinds = {"fp32": trt.float32, "fp16": trt.float16}
    pinned = 0
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        node = next((n for n in layers if layer.name == n or layer.name.startswith(f"{n}_")), None)
        if node is not None:
            layer.precision = kinds[layers[node]]
            pinned += 1
    return pinned


def _config(trt: Any, builder: Any, network: Any, build: TrtBuild, strongly: bool) -> tuple[Any, Any]:
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, _WORKSPACE_BYTES)
    if not strongly:  # strongly typed networks take their precision from the graph, never from flags
        if build.precision in (TrtPrecision.FP16, TrtPrecision.INT8, TrtPrecision.BEST):
            config.set_flag(trt.BuilderFlag.FP16)
        if build.precision in (TrtPrecision.INT8, TrtPrecision.BEST):
            config.set_flag(trt.BuilderFlag.INT8)
        if build.layers and _pin_layers(trt, network, build.layers):
            config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
    profile = builder.create_optimization_profile()
    for name, (low, opt, high) in build.profile.shapes().items():
        profile.set_shape(name, low, opt, high)
    config.add_optimization_profile(profile)
    cached = build.timing_cache.read_bytes() if build.timing_cache and build.timing_cache.is_file() else b""
    cache = config.create_timing_cache(cached)
    config.set_timing_cache(cache, False)
    return config, cache


def build_engine(build: TrtBuild) -> EngineMetadata:
    """Build the plan ``build`` describes and write it with its metadata.

    Raises:
        ExportError: TensorRT is not installed, there is no GPU, the parser rejected the file, or the build failed.
    """
    try:
        import tensorrt as trt
    except ImportError as e:
        raise ExportError(
            f"TensorRT is not installed ({e}): build on a GPU node with TensorRT (the NGC TensorRT image), or run the "
            "trtexec line `tritonrec export trt --print-trtexec` prints"
        ) from e
    gpu, capability = gpu_identity()
    builder = trt.Builder(trt.Logger(trt.Logger.WARNING))
    network, strongly = _network(trt, builder, build)
    config, cache = _config(trt, builder, network, build, strongly)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ExportError(f"TensorRT could not build an engine from {build.onnx} (see its log above)")
    build.plan.parent.mkdir(parents=True, exist_ok=True)
    build.plan.write_bytes(bytes(serialized))
    if build.timing_cache is not None:
        build.timing_cache.write_bytes(bytes(cache.serialize()))
    metadata = EngineMetadata(
        gpu=gpu,
        compute_capability=capability,
        tensorrt_version=str(trt.__version__),
        precision=build.precision,
        strongly_typed=strongly,
        onnx_sha256=sha256(build.onnx),
        profile=build.profile,
        layer_precisions={} if strongly else dict(build.layers),
    )
    metadata.write(build.plan)
    logger.info("wrote %s (%s, %s, TensorRT %s)", build.plan, build.precision.value, gpu, trt.__version__)
    return metadata
