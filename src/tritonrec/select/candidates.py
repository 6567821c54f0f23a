"""The candidates of ``tritonrec select``: models x runtimes x precisions, and why one cannot run here.

A candidate is one way to deploy one model: the runtime that executes it, the precision it computes in, the
artifact that runtime loads. ``plan`` lists every combination that makes sense for a ranking model; a
combination that cannot run on this machine (no GPU for TensorRT, no bf16 instructions, no quantized file)
stays in the list with the reason, so the report shows what was not measured and why.

Runtimes:

- ``pytorch-eager``: the checkpoint in PyTorch, in process (bf16 by CPU autocast where the CPU has bf16 units);
- ``torch-compile``: the same under ``torch.compile`` (Inductor, C++ on the CPU; needs a C compiler);
- ``onnxruntime``: the exported graph in an ONNX Runtime CPU session, in process (FP32 ragged graph, FP16 padded
  graph, INT8 from ``tritonrec quantize``);
- ``openvino``: the same ONNX graph compiled by OpenVINO for the CPU, in process;
- ``triton``: the graph served by ``ranker_cpu`` (Triton's Python backend running ONNX Runtime) over gRPC, the
  way users get scores; measured in process like the others and served through the bench harness;
- ``tensorrt`` / ``torch-cuda``: the GPU paths (``bench/gpu/``); listed, measured only on a GPU.
"""

from __future__ import annotations

import enum
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tritonrec.records import host_facts

__all__ = ["NO_OPENVINO", "Candidate", "ModelArtifacts", "Precision", "Runtime", "gpu_skip", "int8_onnx_skip", "plan"]


class Runtime(enum.StrEnum):
    """What executes the model."""

    EAGER = "pytorch-eager"
    COMPILE = "torch-compile"
    ONNXRUNTIME = "onnxruntime"
    OPENVINO = "openvino"
    TRITON = "triton"
    TRITON_OPENVINO = "triton-openvino"
    TENSORRT = "tensorrt"
    TORCH_CUDA = "torch-cuda"

    @property
    def served(self) -> bool:
        """Measured through a Triton server (as well as in process)."""
        return self in (Runtime.TRITON, Runtime.TRITON_OPENVINO)

    @property
    def rows_runtime(self) -> str:
        """What scores a spec's rows in process (``scorers.rows.spec_scorer``): ``eager`` or its graph's runtime."""
        return "eager" if self is Runtime.EAGER else self.cpu_runtime

    @property
    def cpu_runtime(self) -> str:
        """What executes the graph inside ``ranker_cpu`` (or in process): ``onnxruntime`` or ``openvino``."""
        return "openvino" if self in (Runtime.OPENVINO, Runtime.TRITON_OPENVINO) else "onnxruntime"


class Precision(enum.StrEnum):
    """What the model computes in."""

    FP32 = "fp32"
    BF16 = "bf16"
    FP16 = "fp16"
    INT8 = "int8"


@dataclass(frozen=True, slots=True)
class ModelArtifacts:
    """One model and the files its candidates load.

    Attributes:
        name: ``base`` or the compressed checkpoint's name.
        checkpoint: its checkpoint folder (eager and compiled runtimes).
        export_dir: its ``tritonrec export onnx`` folder (``model_ragged.onnx``, ``model_fp16.onnx``, ...).
        int8: its INT8 graphs from ``tritonrec quantize``: an ONNX file (ONNX Runtime) and/or an OpenVINO IR
            ``.xml`` (empty: not quantized).
        lineage: how it was made from its parent (compression method and options), for the report.
    """

    name: str
    checkpoint: Path
    export_dir: Path
    int8: tuple[Path, ...] = ()

    def int8_file(self, suffix: str) -> Path | None:
        """Its INT8 graph with this suffix (``.onnx`` or ``.xml``), if one was given."""
        return next((p for p in self.int8 if p.suffix == suffix), None)

    lineage: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Candidate:
    """One deployment option.

    Attributes:
        model: the :class:`ModelArtifacts` it deploys.
        runtime: what executes it.
        precision: what it computes in.
        artifact: the file the runtime loads (the checkpoint folder for PyTorch runtimes).
        skip: why it cannot be measured here (None: it can).
    """

    model: ModelArtifacts
    runtime: Runtime
    precision: Precision
    artifact: Path
    skip: str | None = None

    @property
    def name(self) -> str:
        """``model/runtime/precision``, unique within a plan."""
        return f"{self.model.name}/{self.runtime.value}/{self.precision.value}"


_NO_GPU = "needs an NVIDIA GPU and none is visible here; bench/gpu/run.sh measures it on one"
_GPU_ELSEWHERE = "GPU paths are measured by `tritonrec bench gpu` (bench/gpu/run.sh), not yet by select"
NO_OPENVINO = "OpenVINO is not installed (pip install '.[quantize]')"


def gpu_skip(gpu: bool) -> str:
    """Why a GPU candidate is not measured by select: no GPU here, or GPU paths measured elsewhere."""
    return _GPU_ELSEWHERE if gpu else _NO_GPU


_BATCH_DEPENDENT_OPS = ("DynamicQuantizeLinear", "DynamicQuantizeMatMul", "DynamicQuantizeLSTM")


def batch_dependent_ops(path: Path) -> list[str]:
    """The ops of an ONNX graph that make a user's scores depend on the other users of its batch.

    Dynamic activation quantization computes its scale from the whole batch tensor, so the same request scores
    differently depending on who Triton batched it with: its served quality is not reproducible.
    """
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return sorted({n.op_type for n in graph.node if n.op_type in _BATCH_DEPENDENT_OPS})


def int8_onnx_skip(path: Path | None, missing: str) -> str | None:
    """Why the INT8 graph ``path`` cannot be a candidate (``missing`` when None), or None when it can."""
    if path is None:
        return missing
    ops = batch_dependent_ops(path)
    if ops:
        return (
            f"{path.name} quantizes activations per batch ({', '.join(ops)}): a user's scores would change with "
            "who is batched with them; pass a statically calibrated INT8 graph"
        )
    return None


def _ov_skip(openvino: bool, ir: Path | None, missing: str) -> str | None:
    if not openvino:
        return NO_OPENVINO
    return None if ir else missing


def _model_candidates(
    m: ModelArtifacts, flags: set[str], *, openvino: bool, compiler: bool, gpu: bool
) -> list[Candidate]:
    ragged, fp16 = m.export_dir / "model_ragged.onnx", m.export_dir / "model_fp16.onnx"
    no_int8 = f"no INT8 ONNX graph of {m.name}: run `tritonrec quantize` on its export and pass --int8"
    no_ov_int8 = f"no INT8 OpenVINO IR of {m.name}: pass the .xml `tritonrec quantize` wrote with --int8"
    int8_onnx, int8_ir = m.int8_file(".onnx"), m.int8_file(".xml")
    ir_skip = _ov_skip(openvino, int8_ir, no_ov_int8)
    onnx_skip = int8_onnx_skip(int8_onnx, no_int8)
    no_bf16 = "the CPU has no bf16 instructions (avx512_bf16 / amx_bf16)"
    no_openvino = _ov_skip(False, None, "")
    out = [
        Candidate(m, Runtime.EAGER, Precision.FP32, m.checkpoint),
        Candidate(
            m,
            Runtime.EAGER,
            Precision.BF16,
            m.checkpoint,
            None if flags & {"avx512_bf16", "amx_bf16"} else no_bf16,
        ),
        Candidate(m, Runtime.COMPILE, Precision.FP32, m.checkpoint, None if compiler else "no C compiler for Inductor"),
        Candidate(m, Runtime.ONNXRUNTIME, Precision.FP32, ragged),
        Candidate(m, Runtime.ONNXRUNTIME, Precision.FP16, fp16, None if fp16.is_file() else "exported without FP16"),
        Candidate(m, Runtime.ONNXRUNTIME, Precision.INT8, int8_onnx or ragged, onnx_skip),
        Candidate(m, Runtime.OPENVINO, Precision.FP32, ragged, None if openvino else no_openvino),
        Candidate(m, Runtime.OPENVINO, Precision.INT8, int8_ir or ragged, ir_skip),
        Candidate(m, Runtime.TRITON, Precision.FP32, ragged),
        Candidate(m, Runtime.TRITON, Precision.INT8, int8_onnx or ragged, onnx_skip),
        Candidate(m, Runtime.TRITON_OPENVINO, Precision.FP32, ragged, None if openvino else no_openvino),
        Candidate(m, Runtime.TRITON_OPENVINO, Precision.INT8, int8_ir or ragged, ir_skip),
    ]
    no_gpu = gpu_skip(gpu)
    offsets = m.export_dir / "model_offsets.onnx"
    out += [
        Candidate(m, Runtime.TENSORRT, Precision.FP16, offsets, no_gpu),
        Candidate(m, Runtime.TENSORRT, Precision.INT8, offsets, no_gpu),
        Candidate(m, Runtime.TORCH_CUDA, Precision.FP16, m.checkpoint, no_gpu),
    ]
    return out


def plan(
    models: Sequence[ModelArtifacts],
    *,
    runtimes: Sequence[Runtime] | None = None,
    precisions: Sequence[Precision] | None = None,
) -> list[Candidate]:
    """Every candidate of ``models`` (only the runtimes and precisions given, when given), in a stable order."""
    import importlib.util

    host = host_facts()
    flags, gpu = set(host.isa), host.gpu != "none"
    openvino = importlib.util.find_spec("openvino") is not None
    compiler = any(shutil.which(cc) for cc in ("cc", "gcc", "clang"))
    out = []
    for m in models:
        for c in _model_candidates(m, flags, openvino=openvino, compiler=compiler, gpu=gpu):
            if (runtimes is None or c.runtime in runtimes) and (precisions is None or c.precision in precisions):
                out.append(c)
    return out
