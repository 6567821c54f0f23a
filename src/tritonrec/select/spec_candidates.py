"""The candidates of ``tritonrec select --spec``: a team's model x runtimes x precisions, and its quantized graphs.

The same :class:`~tritonrec.select.candidates.Candidate` s as the bundled model's, planned from a model spec:

- ``base``: the spec's model eager in PyTorch (when the spec names a module), its ``export onnx --spec`` graph in ONNX
  Runtime and OpenVINO in process, and served by ``<name>_cpu`` on each (FP32, and FP16 where exported);
- one model per graph given (``--graph [NAME=]FILE``: the INT8 variants ``tritonrec quantize --spec`` kept, the export
  of a compressed model): its file in ONNX Runtime or OpenVINO (an ``.xml``) in process and served, named NAME or by
  its file's stem;
- the GPU paths (TensorRT FP16 of ``export trt --spec``, eager on CUDA), listed with why they are not measured here.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from pathlib import Path

from tritonrec.errors import ConfigError
from tritonrec.records import host_facts
from tritonrec.select.candidates import (
    NO_OPENVINO,
    Candidate,
    ModelArtifacts,
    Precision,
    Runtime,
    gpu_skip,
    int8_onnx_skip,
)
from tritonrec.spec.model_spec import ModelSpec

__all__ = ["eager_artifact", "graph_precision", "named_graphs", "spec_plan"]


def eager_artifact(spec: ModelSpec) -> Path | None:
    """The file the spec's module is loaded from (weights, TorchScript, program); None: the spec names an ONNX file."""
    model = spec.model
    if model.onnx is not None:
        return None
    return model.weights or model.torchscript or model.program or spec.path


_INT8_OPS = {
    "QuantizeLinear",
    "DequantizeLinear",
    "QLinearMatMul",
    "QLinearConv",
    "QGemm",
    "MatMulInteger",
    "ConvInteger",
    "MatMulIntegerToFloat",
    "DynamicQuantizeLinear",
    "DynamicQuantizeMatMul",
}


def graph_precision(path: Path) -> Precision:
    """What a graph computes in, read from the file: INT8 (quantize ops or 8-bit weights), FP16 weights, or FP32.

    An ONNX graph is read without its external data; an OpenVINO IR ``.xml`` by its ``FakeQuantize`` layers and
    element types (OpenVINO stores FP32 models with FP16 weights by default, so only i8/u8 and ``FakeQuantize`` count
    as INT8, and an IR without them is FP32).
    """
    if path.suffix == ".xml":
        text = path.read_text(errors="replace")
        quantized = "FakeQuantize" in text or 'element_type="i8"' in text or 'element_type="u8"' in text
        return Precision.INT8 if quantized else Precision.FP32
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    eight_bit = {onnx.TensorProto.INT8, onnx.TensorProto.UINT8, onnx.TensorProto.INT4, onnx.TensorProto.UINT4}
    if any(n.op_type in _INT8_OPS for n in graph.node) or any(t.data_type in eight_bit for t in graph.initializer):
        return Precision.INT8
    if any(t.data_type == onnx.TensorProto.FLOAT16 for t in graph.initializer):
        return Precision.FP16
    return Precision.FP32


def _base(spec: ModelSpec, m: ModelArtifacts, *, openvino: bool, gpu: bool) -> list[Candidate]:
    fp32, fp16 = m.export_dir / "model.onnx", m.export_dir / "model_fp16.onnx"
    no_fp16 = "exported without FP16 (`tritonrec export onnx --spec` writes model_fp16.onnx)"
    no_module = "the spec names an ONNX file: there is no PyTorch module to run eager"
    ov = None if openvino else NO_OPENVINO
    no_gpu = gpu_skip(gpu)
    return [
        Candidate(m, Runtime.EAGER, Precision.FP32, m.checkpoint, None if eager_artifact(spec) else no_module),
        Candidate(m, Runtime.ONNXRUNTIME, Precision.FP32, fp32),
        Candidate(m, Runtime.ONNXRUNTIME, Precision.FP16, fp16, None if fp16.is_file() else no_fp16),
        Candidate(m, Runtime.OPENVINO, Precision.FP32, fp32, ov),
        Candidate(m, Runtime.TRITON, Precision.FP32, fp32),
        Candidate(m, Runtime.TRITON, Precision.FP16, fp16, None if fp16.is_file() else no_fp16),
        Candidate(m, Runtime.TRITON_OPENVINO, Precision.FP32, fp32, ov),
        Candidate(m, Runtime.TENSORRT, Precision.FP16, fp32, no_gpu),
        Candidate(m, Runtime.TORCH_CUDA, Precision.FP32, m.checkpoint, no_gpu),
    ]


def _graph(m: ModelArtifacts, path: Path, *, openvino: bool) -> list[Candidate]:
    precision = graph_precision(path)
    if path.suffix == ".xml":
        skip = None if openvino else NO_OPENVINO
        return [
            Candidate(m, Runtime.OPENVINO, precision, path, skip),
            Candidate(m, Runtime.TRITON_OPENVINO, precision, path, skip),
        ]
    skip = int8_onnx_skip(path, "") if precision is Precision.INT8 else None
    return [
        Candidate(m, Runtime.ONNXRUNTIME, precision, path, skip),
        Candidate(m, Runtime.TRITON, precision, path, skip),
    ]


def named_graphs(values: Sequence[str]) -> dict[str, Path]:
    """``--graph`` values, ``FILE`` or ``NAME=FILE``, as candidate model names (a file's stem by default) -> files.

    Raises:
        ConfigError: a file is missing or not ``.onnx`` / ``.xml``, or two graphs would have one name (or ``base``).
    """
    out: dict[str, Path] = {}
    for value in values:
        name, sep, file = value.partition("=")
        path = Path(file if sep else value)
        name = name if sep else path.stem
        if path.suffix not in (".onnx", ".xml") or not path.is_file():
            raise ConfigError(f"--graph wants an existing .onnx or .xml file (FILE or NAME=FILE), got {value!r}")
        if not name or name == "base" or name in out or "/" in name:
            raise ConfigError(
                f"--graph {value!r}: each graph needs a name of its own other than 'base' (NAME=FILE names it)"
            )
        out[name] = path
    return out


def spec_plan(
    spec: ModelSpec,
    export_dir: Path,
    graphs: Mapping[str, Path] | None = None,
    *,
    runtimes: Sequence[Runtime] | None = None,
    precisions: Sequence[Precision] | None = None,
) -> list[Candidate]:
    """Every candidate of the spec's model and of ``graphs`` (name -> file; only the runtimes and precisions given).

    Raises:
        ConfigError: the export has no ``model.onnx``.
    """
    if not (export_dir / "model.onnx").is_file():
        raise ConfigError(f"{export_dir} has no model.onnx: run `tritonrec export onnx --spec SPEC --out {export_dir}`")
    host = host_facts()
    openvino = importlib.util.find_spec("openvino") is not None
    eager = eager_artifact(spec) or export_dir / "model.onnx"
    base = ModelArtifacts("base", eager, export_dir, lineage={"spec": str(spec.path)})
    out = _base(spec, base, openvino=openvino, gpu=host.gpu != "none")
    for name, path in (graphs or {}).items():
        m = ModelArtifacts(name, path, path.parent, lineage={"graph": str(path)})
        out += _graph(m, path, openvino=openvino)
    return [
        c
        for c in out
        if (runtimes is None or c.runtime in runtimes) and (precisions is None or c.precision in precisions)
    ]
