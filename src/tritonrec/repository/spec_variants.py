"""A spec's serving variants as Triton ``ModelConfig`` protobufs, and the repository they make.

Rows layout: a request is one query's N candidate rows; Triton's ``max_batch_size`` counts rows, and its dynamic
batcher stacks the rows of several requests. Query + candidates layout: a request is a query (query inputs
``[1, *dims]``, item inputs ``[1, N, *dims]``, the answer ``[1, N]``); ``max_batch_size`` counts queries; the CPU
variant pads the candidates of the queries it batches, the native backends batch requests of equal N. Three
variants, named ``<spec name>_<kind>``:

| kind | backend | where |
|---|---|---|
| ``cpu`` | Python backend (``backends/rows_cpu_model.py``), ONNX Runtime or OpenVINO over the whole batch | CPU |
| ``onnx`` | native ``onnxruntime_onnx``: no Python in the request path | GPU (NGC image) |
| ``trt_fp16`` | native ``tensorrt_plan``, FP16 engine built on the target GPU from ``model.onnx`` | GPU |

A scalar input (``shape = []``) per row or per query travels as ``[N, 1]`` (Triton's dims cannot be empty): the
native backends reshape it to the graph's ``[N]``, the Python model squeezes it. The rows layout's score output is
``[N, 1]`` the same way. Every
variant warms up on real rows of the spec's data (one query's rows, written as ``warmup/<input>`` raw files).
Field references: https://github.com/triton-inference-server/common/blob/main/protobuf/model_config.proto
"""

from __future__ import annotations

import enum
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tritonclient.grpc import model_config_pb2 as mc

from tritonrec.backends import MODEL_FILES_DIR
from tritonrec.contract import DEFAULT_MAX_CANDIDATES
from tritonrec.errors import ConfigError, RepositoryError
from tritonrec.repository.build import CONFIG_FILE, VERSION
from tritonrec.repository.variants import Batching, config_text, dynamic_batching_config
from tritonrec.spec.model_spec import DTYPES, InputSpec, Layout, ModelSpec, Role
from tritonrec.spec.rows import SpecRows

__all__ = ["SpecVariant", "SpecVariantKind", "build_spec_repository", "spec_model_config", "trt_shapes"]

TRT_SHAPE_KEYS = ("trt_min_shapes", "trt_opt_shapes", "trt_max_shapes")
"""Config parameters holding a spec engine's profile (trtexec syntax), read by ``export/build_trt_engines.sh``."""

ROWS_BATCHING = Batching(max_batch_size=4096, preferred_batch_sizes=(), max_queue_delay_us=2_000)
"""Rows per execution: a few queries of hundreds of candidates; no preferred sizes (requests differ in rows)."""
QUERY_BATCHING = Batching(max_batch_size=64, preferred_batch_sizes=(), max_queue_delay_us=2_000)
"""Queries per execution in the query + candidates layout."""


def default_batching(spec: ModelSpec) -> Batching:
    """:data:`ROWS_BATCHING` or :data:`QUERY_BATCHING`, by the spec's layout."""
    return QUERY_BATCHING if spec.layout is Layout.QUERY_CANDIDATES else ROWS_BATCHING


class SpecVariantKind(enum.StrEnum):
    """How a spec's variant runs the model."""

    CPU = "cpu"
    ONNX = "onnx"
    TRT_FP16 = "trt_fp16"

    @property
    def gpu(self) -> bool:
        """Whether it runs on GPUs."""
        return self is not SpecVariantKind.CPU


@dataclass(frozen=True, slots=True, kw_only=True)
class SpecVariant:
    """One served variant of a spec's model.

    Attributes:
        kind: :class:`SpecVariantKind`.
        precision: ``fp32``, ``fp16`` or ``int8``: the CPU variant's file, ``model.onnx``, ``model_fp16.onnx`` or the
            winner ``tritonrec quantize --spec`` wrote (``model_int8.onnx``, or ``model_int8.xml`` for OpenVINO).
        runtime: the CPU variant's ``onnxruntime`` or ``openvino``.
        instances: model instances per device (default: 2 on CPU, 1 on GPU).
        cpu_threads: intra-op threads per CPU instance (0 = the cores shared out between instances).
        max_len: the longest a dynamic per-row dim may be (the CPU variant refuses more; TensorRT profiles end there).
        max_candidates: the most candidates of one query (query + candidates layout).
        batching: rows (queries) per execution, queue delay and bounds (default: :func:`default_batching`).
        served_name: the model's name in the repository (default ``<spec name>_<kind>``), for several CPU variants
            of one spec side by side (``tritonrec select --spec``).
        file: the CPU variant's graph in the export folder, instead of the precision's default name (a variant
            ``tritonrec quantize --spec`` kept under ``variants/``, as ``select --spec`` serves each).
    """

    kind: SpecVariantKind
    precision: str = "fp32"
    runtime: str = "onnxruntime"
    instances: int = 0
    cpu_threads: int = 0
    max_len: int = 512
    max_candidates: int = DEFAULT_MAX_CANDIDATES
    batching: Batching | None = None
    served_name: str | None = None
    file: str | None = None

    def __post_init__(self) -> None:
        if self.precision not in ("fp32", "fp16", "int8"):
            raise ConfigError(f"a spec variant's precision is fp32, fp16 or int8, got {self.precision!r}")
        if self.precision == "int8" and self.kind.gpu:
            raise ConfigError(f"{self.kind.value}: INT8 is served by the cpu variant only so far")
        if self.runtime not in ("onnxruntime", "openvino") or (self.runtime != "onnxruntime" and self.kind.gpu):
            raise ConfigError(f"runtime {self.runtime!r}: openvino is an option of the cpu variant")
        if self.instances < 0 or self.cpu_threads < 0 or self.max_len < 1 or self.max_candidates < 1:
            raise ConfigError("instances and cpu_threads must be >= 0, max_len and max_candidates >= 1")
        if self.file is not None and self.kind.gpu:
            raise ConfigError(f"{self.kind.value}: a graph file of its own is an option of the cpu variant")

    def batching_of(self, spec: ModelSpec) -> Batching:
        """The variant's batching, or the layout's default."""
        return self.batching or default_batching(spec)

    @property
    def instance_count(self) -> int:
        """Model instances per device: ``instances``, else 2 on the CPU and 1 on a GPU."""
        return self.instances or (1 if self.kind.gpu else 2)

    def name(self, spec: ModelSpec) -> str:
        """The served model's name: ``served_name``, else ``<spec name>_<kind>``."""
        return self.served_name or f"{spec.name}_{self.kind.value}"

    @property
    def artifact(self) -> str:
        """The file in the version folder."""
        if self.kind is SpecVariantKind.TRT_FP16:
            return "model.plan"
        if self.file is not None:
            return self.file
        if self.precision == "int8":
            return "model_int8.xml" if self.runtime == "openvino" else "model_int8.onnx"
        return "model_fp16.onnx" if self.precision == "fp16" else "model.onnx"


def _candidates_axis(spec: ModelSpec, item: InputSpec) -> bool:
    """Whether ``item`` has a candidates axis before its per-row dims (an item input of the query layout)."""
    return spec.layout is Layout.QUERY_CANDIDATES and item.role is Role.ITEM


def _io(spec: ModelSpec, variant: SpecVariant) -> tuple[list[mc.ModelInput], list[mc.ModelOutput]]:
    native = variant.kind.gpu
    inputs = []
    for item in spec.inputs:
        per_candidate = _candidates_axis(spec, item)
        dims = [-1, *item.dims] if per_candidate else item.dims or [1]
        tensor = mc.ModelInput(name=item.name, data_type=getattr(mc, DTYPES[item.dtype]), dims=dims)
        if not item.shape and native and not per_candidate:
            tensor.reshape.CopyFrom(mc.ModelTensorReshape(shape=[]))
        tensor.allow_ragged_batch = (item.dynamic or per_candidate) and not native  # the Python model pads them
        inputs.append(tensor)
    query_layout = spec.layout is Layout.QUERY_CANDIDATES
    output = mc.ModelOutput(name=spec.output.name, data_type=mc.TYPE_FP32, dims=[-1] if query_layout else [1])
    if native and not query_layout:
        output.reshape.CopyFrom(mc.ModelTensorReshape(shape=[]))
    return inputs, [output]


def _warmup(spec: ModelSpec, rows: SpecRows) -> mc.ModelWarmup:
    start, stop = next(rows.queries())
    batch = rows.batch(start, stop)
    first = next(iter(batch.values())).shape[0]  # the query's rows, or 1 query
    warm = mc.ModelWarmup(name="one_query_of_real_rows", batch_size=first, count=2)
    for item in spec.inputs:
        values = batch[item.name]
        dims = list(values.shape[1:]) or [1]
        warm.inputs[item.name].CopyFrom(
            mc.ModelWarmup.Input(data_type=getattr(mc, DTYPES[item.dtype]), dims=dims, input_data_file=item.name)
        )
    return warm


def spec_model_config(spec: ModelSpec, variant: SpecVariant, warmup: SpecRows | None = None) -> mc.ModelConfig:
    """The ``ModelConfig`` of ``variant`` (warm-up on the first query of ``warmup`` when given)."""
    inputs, outputs = _io(spec, variant)
    instances = variant.instance_count
    batching = variant.batching_of(spec)
    config = mc.ModelConfig(
        name=variant.name(spec),
        max_batch_size=batching.max_batch_size,
        input=inputs,
        output=outputs,
        version_policy=mc.ModelVersionPolicy(latest=mc.ModelVersionPolicy.Latest(num_versions=1)),
        instance_group=[
            mc.ModelInstanceGroup(
                kind=mc.ModelInstanceGroup.KIND_GPU if variant.kind.gpu else mc.ModelInstanceGroup.KIND_CPU,
                count=instances,
            )
        ],
    )
    if warmup is not None and len(warmup):
        config.model_warmup.append(_warmup(spec, warmup))
    if batching.dynamic:
        config.dynamic_batching.CopyFrom(dynamic_batching_config(batching))
    params = config.parameters
    params["spec"].string_value = spec.name
    if variant.kind is SpecVariantKind.CPU:
        config.backend = "python"
        params["onnx_file"].string_value = variant.artifact
        params["runtime"].string_value = variant.runtime
        params["output_name"].string_value = spec.output.name
        params["intra_op_threads"].string_value = str(variant.cpu_threads)
        if spec.layout is Layout.QUERY_CANDIDATES:
            params["layout"].string_value = spec.layout.value
            params["max_candidates"].string_value = str(variant.max_candidates)
        for item in spec.inputs:
            if _candidates_axis(spec, item):
                params[f"candidates_{item.name}"].string_value = "true"
            params[f"pad_{item.name}"].string_value = repr(item.pad)
            if item.dynamic:
                params[f"max_len_{item.name}"].string_value = str(variant.max_len)
            if not item.shape and not _candidates_axis(spec, item):  # [N, 1] on the wire, [N] in the graph
                params[f"scalar_{item.name}"].string_value = "true"
            if item.allow_nan:
                params[f"allow_nan_{item.name}"].string_value = "true"
    elif variant.kind is SpecVariantKind.ONNX:
        config.platform, config.backend, config.default_model_filename = "onnxruntime_onnx", "onnxruntime", "model.onnx"
    else:
        config.platform, config.backend, config.default_model_filename = "tensorrt_plan", "tensorrt", "model.plan"
        for key, shapes in trt_shapes(spec, variant, warmup).items():
            params[key].string_value = shapes
    return config


def trt_shapes(spec: ModelSpec, variant: SpecVariant, warmup: SpecRows | None = None) -> dict[str, str]:
    """The TensorRT optimisation profile of the spec's graph, as trtexec's ``--min/opt/maxShapes`` values.

    Rows run from 1 to ``max_batch_size``, tuned for the rows of a few queries (256, or fewer when the limit is
    lower); a dynamic dim from 1 to ``max_len``, tuned for the longest row of the warm-up query (real data), else 32.
    In the query + candidates layout the first axis is queries (tuned for 16) and an item input's candidates run
    from 1 to ``max_candidates``, tuned for the warm-up query's. A scalar input is the graph's ``[N]``.
    ``build_trt_engines.sh`` reads them from the config (``trt_min_shapes``, ``trt_opt_shapes``,
    ``trt_max_shapes``), so the engine's shapes are stated once.
    """
    most = variant.batching_of(spec).max_batch_size
    query_layout = spec.layout is Layout.QUERY_CANDIDATES
    batch = (1, min(16 if query_layout else 256, most), most)  # min, opt, max
    seen: dict[str, tuple[int, ...]] = {}  # the warm-up query's shapes, without the first axis
    if warmup is not None and len(warmup):
        seen = {k: v.shape[1:] for k, v in warmup.batch(*next(warmup.queries())).items()}

    def dims(item: InputSpec, point: int) -> tuple[int, ...]:
        shape: list[int | str] = ["__candidates__", *item.shape] if _candidates_axis(spec, item) else list(item.shape)
        out = []
        for axis, d in enumerate(shape):
            if isinstance(d, int):
                out.append(d)
                continue
            most_of = variant.max_candidates if d == "__candidates__" else variant.max_len
            real = seen[item.name][axis] if item.name in seen else (200 if d == "__candidates__" else 32)
            out.append((1, min(max(real, 1), most_of), most_of)[point])
        return tuple(out)

    return {
        key: ",".join(f"{i.name}:" + "x".join(str(d) for d in (batch[point], *dims(i, point))) for i in spec.inputs)
        for point, key in enumerate(TRT_SHAPE_KEYS)
    }


def _write_warmup(folder: Path, spec: ModelSpec, rows: SpecRows) -> list[Path]:
    start, stop = next(rows.queries())
    batch = rows.batch(start, stop)
    (folder / "warmup").mkdir(parents=True, exist_ok=True)
    written = []
    for item in spec.inputs:
        path = folder / "warmup" / item.name
        path.write_bytes(
            np.ascontiguousarray(batch[item.name]).astype(np.dtype(item.dtype).newbyteorder("<")).tobytes()
        )
        written.append(path)
    return written


def build_spec_repository(
    out: Path, spec: ModelSpec, variants: list[SpecVariant], *, export_dir: Path, warmup: SpecRows | None = None
) -> dict[str, list[Path]]:
    """Write each variant's ``config.pbtxt``, warm-up rows and artifacts into the repository ``out``.

    The CPU variant gets its ONNX file and ``model.py``; ``onnx`` its ``model.onnx``; ``trt_fp16`` the ONNX file its
    engine is built from on the target GPU (``export/build_trt_engines.sh``), since a plan is tied to its GPU.

    Raises:
        RepositoryError: an artifact is missing from the export (found before anything is written).
    """
    sources = {}
    for variant in variants:  # every artifact found before anything is written
        source = export_dir / ("model.onnx" if variant.kind is SpecVariantKind.TRT_FP16 else variant.artifact)
        if not source.is_file():
            made_by = "quantize --spec" if variant.precision == "int8" else "export onnx --spec"
            raise RepositoryError(
                f"{variant.name(spec)} needs {source.name} in {export_dir}: run `tritonrec {made_by}` first"
            )
        sources[variant.name(spec)] = source
    written: dict[str, list[Path]] = {}
    for variant in variants:
        name = variant.name(spec)
        folder = out / name
        if (folder / VERSION).exists():
            shutil.rmtree(folder / VERSION)
        version = folder / VERSION
        version.mkdir(parents=True, exist_ok=True)
        config = folder / CONFIG_FILE
        config.write_text(config_text(spec_model_config(spec, variant, warmup)))
        files = [config, *(_write_warmup(folder, spec, warmup) if warmup is not None and len(warmup) else [])]
        source = sources[name]
        for part in (source, source.with_name(source.name + ".data"), source.with_suffix(".bin")):
            if part.is_file():
                files.append(Path(shutil.copy2(part, version / part.name)))
        if variant.kind is SpecVariantKind.CPU:
            files.append(Path(shutil.copy2(MODEL_FILES_DIR / "rows_cpu_model.py", version / "model.py")))
        written[name] = files
    return written
