"""The serving variants of the ranker as typed objects, turned into Triton ``ModelConfig`` protobufs.

Every variant serves the same request contract (see ``model_repository/README.md``): one request = one user,
``history`` int64 ``[1, L]`` (the user's most recent items, oldest first) and ``candidates`` int64 ``[1, N]``;
the answer is ``scores`` float32 ``[1, N]``. The batch dimension is Triton's (``max_batch_size`` > 0), so the
dynamic batcher stacks users; a request may also carry several users (``[B, L]`` with ``[B, N]``).

| variant | backend | where |
|---|---|---|
| ``ranker_cpu`` | Python backend running ONNX Runtime over the whole dynamic batch | CPU (local, CI, CPU nodes) |
| ``ranker_gpu`` | Python backend running the ``torch.export`` program on CUDA over the whole batch | GPU, no TensorRT |
| ``ranker_onnx`` | ``onnxruntime_onnx`` (optional TensorRT execution accelerator) | GPU (NGC image) |
| ``ranker_trt_fp16`` | ``tensorrt_plan``, FP16 engine built on the target GPU | GPU |
| ``ranker_trt_int8`` | ``tensorrt_plan``, INT8 engine from the calibrated QDQ ONNX (padded layout) | GPU |

Field references: https://github.com/triton-inference-server/common/blob/main/protobuf/model_config.proto
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

from google.protobuf import text_format
from google.protobuf.message import DecodeError
from tritonclient.grpc import model_config_pb2 as mc

from tritonrec.contract import (
    CANDIDATE_OFFSETS,
    CANDIDATES,
    DEFAULT_MAX_CANDIDATES,
    DEFAULT_MODEL,
    HISTORY,
    MAX_CANDIDATES_PARAM,
    MAX_HISTORY_PARAM,
    REAL_INDEX,
    SCORES,
)
from tritonrec.data.feature_spec import FeatureSpec
from tritonrec.errors import ConfigError

__all__ = [
    "DEFAULT_VARIANTS",
    "VARIANTS",
    "Batching",
    "Variant",
    "VariantKind",
    "VariantName",
    "VariantOverrides",
    "LAYOUT_FILES",
    "config_text",
    "cpu_artifact",
    "dynamic_batching_config",
    "cpu_layout",
    "graph_file_layout",
    "model_config",
    "parse_config_text",
]

WARMUP_CANDIDATES = 200
PRECISIONS = ("fp32", "bf16", "fp16", "int8")
CPU_RUNTIMES = ("onnxruntime", "openvino")


def cpu_layout(precision: str) -> str:
    """The layout ``ranker_cpu`` serves ``precision`` in: the ragged graph exists in FP32 only.

    ``tritonrec export onnx`` writes ``model_ragged.onnx`` in FP32; ``model_fp16.onnx`` and the INT8 file of
    ``tritonrec quantize`` are padded ``[B, N]`` graphs, so FP16 and INT8 are served in the padded layout.
    """
    return "ragged" if precision == "fp32" else "padded"


def cpu_artifact(precision: str, runtime: str = "onnxruntime", layout: str | None = None) -> str:
    """The file ``ranker_cpu`` loads for ``precision``, ``runtime`` and ``layout`` (None = :func:`cpu_layout`).

    FP32: the export's ``model_ragged.onnx`` (ragged) or ``model.onnx`` (padded); FP16: ``model_fp16.onnx``;
    INT8: the file ``tritonrec quantize`` writes (``model_int8.onnx``; ``model_int8.xml`` when OpenVINO won).
    OpenVINO compiles ONNX files too, so only INT8 has a file of its own per runtime.

    Raises:
        ConfigError: a precision, runtime or layout ``ranker_cpu`` has no file for (FP16 and INT8 are padded
            graphs only).
    """
    if runtime not in CPU_RUNTIMES:
        raise ConfigError(f"ranker_cpu runtime must be one of {', '.join(CPU_RUNTIMES)}, got {runtime!r}")
    files = {"fp32": "model.onnx", "fp16": "model_fp16.onnx", "int8": "model_int8.onnx"}
    if precision not in files:
        raise ConfigError(f"ranker_cpu precision must be one of {', '.join(files)}, got {precision!r}")
    layout = layout or cpu_layout(precision)
    if layout not in _LAYOUTS[VariantKind.PYTHON_ORT]:
        raise ConfigError(f"ranker_cpu layout must be one of {', '.join(_LAYOUTS[VariantKind.PYTHON_ORT])}")
    if layout == "ragged":
        if precision != "fp32":
            raise ConfigError(
                f"ranker_cpu has no {precision} ragged graph: the {precision} file is a padded graph "
                "(tritonrec quantize quantizes model.onnx), so it is served in the padded layout, not ragged"
            )
        return LAYOUT_FILES["ragged"]
    return "model_int8.xml" if precision == "int8" and runtime == "openvino" else files[precision]


class VariantName(enum.StrEnum):
    """The served models ``tritonrec repo build`` writes (folder and model name in the repository)."""

    CPU = DEFAULT_MODEL  # "ranker_cpu": Python backend + ONNX Runtime
    GPU = "ranker_gpu"  # Python backend + the torch.export program on CUDA
    ONNX = "ranker_onnx"
    TRT_FP16 = "ranker_trt_fp16"
    TRT_INT8 = "ranker_trt_int8"


class VariantKind(enum.Enum):
    """How a variant runs the model."""

    PYTHON_ORT = "python_ort"  # Python backend + ONNX Runtime (CPU)
    PYTHON_TORCH = "python_torch"  # Python backend + a torch.export program (CUDA; CPU in CI)
    ONNXRUNTIME = "onnxruntime"  # native onnxruntime_onnx backend (GPU)
    TENSORRT = "tensorrt"  # native tensorrt_plan backend (GPU)


PYTHON_KINDS = frozenset({VariantKind.PYTHON_ORT, VariantKind.PYTHON_TORCH})
"""The kinds served by Triton's Python backend (a ``model.py`` beside the artifact, ragged batching)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Batching:
    """Dynamic batching and queue bounds (``ModelDynamicBatching`` + ``ModelQueuePolicy``).

    Attributes:
        max_batch_size: most users one execution takes (``ModelConfig.max_batch_size``).
        preferred_batch_sizes: batch sizes the scheduler aims for (``preferred_batch_size``).
        max_queue_delay_us: how long a request may wait for others to join its batch.
        max_queue_size: requests queued beyond this are rejected at once (UNAVAILABLE), not delayed without bound.
        queue_timeout_us: a request still queued after this is rejected (UNAVAILABLE); 0 = no timeout (the
            default: clients bound their wait with their own deadline; see ``model_repository/README.md``).
        dynamic: ``False`` leaves ``dynamic_batching`` out of the config: Triton's default scheduler then runs
            every request on its own (the baseline ``tritonrec bench batching`` compares against).
    """

    max_batch_size: int = 64
    preferred_batch_sizes: tuple[int, ...] = (16, 32, 64)
    max_queue_delay_us: int = 2_000
    max_queue_size: int = 512
    queue_timeout_us: int = 0
    dynamic: bool = True

    def __post_init__(self) -> None:
        if self.max_batch_size < 1:
            raise ConfigError(f"max_batch_size must be >= 1, got {self.max_batch_size}")
        bad = [b for b in self.preferred_batch_sizes if not 1 <= b <= self.max_batch_size]
        if bad:
            raise ConfigError(f"preferred batch sizes {bad} are outside 1..max_batch_size ({self.max_batch_size})")
        for name in ("max_queue_delay_us", "max_queue_size", "queue_timeout_us"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Variant:
    """One served model: its name, how it runs, which artifact it loads and how it batches.

    Attributes:
        name: the Triton model name (folder in the repository).
        kind: backend family.
        artifact: file in the version folder (``default_model_filename``).
        precision: ``fp32``, ``bf16``, ``fp16`` or ``int8`` (``ranker_gpu`` runs it: autocast on its device;
            the others: documentation and reports).
        gpu: run on GPUs (``KIND_GPU``) instead of CPU (``KIND_CPU``).
        instances: model instances per device (``instance_group.count``).
        cpu_threads: ONNX Runtime intra-op threads per instance of the Python variant (0 = the cores the server may
            use, shared out between the instances).
        max_candidates: most candidates per user, written to the config's ``max_candidates`` parameter (clients
            split longer lists; the Python variant rejects more with INVALID_ARG; TensorRT profiles end there).
        trt_accelerator: ``ranker_onnx`` only: let ONNX Runtime hand subgraphs to TensorRT (FP16).
        cuda_graphs: ``ranker_gpu`` only: replay one CUDA graph per bucketed batch shape instead of eager launches.
        runtime: ``ranker_cpu`` only: ``onnxruntime`` or ``openvino`` (the config's ``runtime`` parameter).
        layout: how a batch reaches the graph (``tritonrec.export.ragged``): ``padded`` ``[B, N]`` (every user padded
            to the batch's longest list); ``ragged`` (``ranker_cpu``: the candidate grid with the positions of the
            real candidates, histories trimmed to the batch's longest); ``offsets`` (native GPU backends: Triton's
            ragged batching concatenates the candidates and passes ``candidate_offsets``).
        batching: dynamic batching and queue policy.
        cancel_check: ``ranker_cpu`` only: ask Triton whether each request was cancelled before scoring it
            (``request.is_cancelled()``, a round trip from the Python stub to the server per request; the config's
            ``cancel_check`` parameter). Off by default: it cost 6-7% of requests/s at 200 candidates
            (``bench/results/2026-12-08-epyc-2c/cancel-check``), and Triton's core already drops requests cancelled
            in the batcher's queue; ``tritonrec bench batching``'s ``dynamic_cancel_check`` measures it on.
    """

    name: str
    kind: VariantKind
    artifact: str
    precision: str
    gpu: bool
    instances: int = 1
    cpu_threads: int = 0
    max_candidates: int = DEFAULT_MAX_CANDIDATES
    trt_accelerator: bool = False
    cuda_graphs: bool = False
    runtime: str = "onnxruntime"
    layout: str = "padded"
    batching: Batching = dataclasses.field(default_factory=Batching)
    cancel_check: bool = False

    def __post_init__(self) -> None:
        allowed = _LAYOUTS[self.kind]
        if self.layout not in allowed:
            raise ConfigError(f"{self.name}: layout must be one of {', '.join(allowed)} for {self.kind.value}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"{self.name}: precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.kind is VariantKind.PYTHON_TORCH and self.precision == "int8":
            raise ConfigError(f"{self.name}: the PyTorch variant runs fp32, bf16 or fp16, not int8")
        if self.cuda_graphs and self.kind is not VariantKind.PYTHON_TORCH:
            raise ConfigError(f"{self.name}: CUDA graphs are an option of the PyTorch variant (ranker_gpu)")
        if self.instances < 1 or self.cpu_threads < 0 or self.max_candidates < 1:
            raise ConfigError(f"{self.name}: instances and max_candidates must be >= 1, cpu_threads >= 0")
        if self.trt_accelerator and self.kind is not VariantKind.ONNXRUNTIME:
            raise ConfigError(f"{self.name}: the TensorRT execution accelerator is an onnxruntime backend option")
        if self.runtime not in CPU_RUNTIMES or (
            self.runtime != "onnxruntime" and self.kind is not VariantKind.PYTHON_ORT
        ):
            raise ConfigError(f"{self.name}: runtime {self.runtime!r}: openvino is an option of the ranker_cpu variant")


_LAYOUTS = {
    VariantKind.PYTHON_ORT: ("ragged", "padded"),
    VariantKind.PYTHON_TORCH: ("padded",),
    VariantKind.ONNXRUNTIME: ("offsets", "padded"),
    VariantKind.TENSORRT: ("offsets", "padded"),
}
LAYOUT_FILES = {"padded": "model.onnx", "ragged": "model_ragged.onnx", "offsets": "model_offsets.onnx"}
"""The export's file of each layout (``tritonrec export onnx``; ``offsets`` with ``--gpu-graph``)."""


OLD_RAGGED_INPUT = "user_index"
"""The input of the ragged CPU graph before it scored on a candidate grid (exports made before 3e2c4d2)."""


def graph_file_layout(path: Path) -> str:
    """The layout a graph file was exported in, by its inputs (an ONNX file, or OpenVINO IR ``.xml``).

    ``real_index`` -> ``ragged``, ``candidate_offsets`` -> ``offsets``, otherwise ``padded``.

    Raises:
        ConfigError: the file cannot be read, or it is an earlier tritonrec's ragged graph (``user_index``).
    """
    try:
        if path.suffix == ".xml":  # OpenVINO IR: the inputs are its Parameter layers
            layers = ElementTree.parse(path).getroot().iter("layer")
            names = {layer.get("name", "") for layer in layers if layer.get("type") == "Parameter"}
        else:
            import onnx

            names = {i.name for i in onnx.load(str(path), load_external_data=False).graph.input}
    except (OSError, ValueError, ElementTree.ParseError, DecodeError) as e:
        raise ConfigError(f"cannot read the inputs of {path}: {e}") from e
    if OLD_RAGGED_INPUT in names:
        raise ConfigError(
            f"{path} is the ragged graph of an earlier tritonrec (it takes {OLD_RAGGED_INPUT}; the current one takes "
            f"{REAL_INDEX}): export again with `tritonrec export onnx`"
        )
    if REAL_INDEX in names:
        return "ragged"
    return "offsets" if CANDIDATE_OFFSETS in names else "padded"


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        # two instances: with one, Triton 2.51's dynamic batcher stalls ~0.5 s on some requests while it waits for
        # the busy instance (measured by `tritonrec bench batching`; see model_repository/README.md)
        Variant(
            name=VariantName.CPU,
            kind=VariantKind.PYTHON_ORT,
            artifact=LAYOUT_FILES["ragged"],
            precision="fp32",
            gpu=False,
            instances=2,
            layout="ragged",
        ),
        # two instances on the GPU: one packs and copies its batch while the other's kernels run; batches up to
        # 512 users (102,400 candidates at N=200) because the GPU needs large batches and the Python backend costs
        # per execution; FP32 until a GPU run has measured BF16/FP16 quality and speed (bench/gpu/README.md)
        Variant(
            name=VariantName.GPU,
            kind=VariantKind.PYTHON_TORCH,
            artifact="model.pt2",
            precision="fp32",
            gpu=True,
            instances=2,
            cuda_graphs=True,
            batching=Batching(
                max_batch_size=512,
                preferred_batch_sizes=(128, 256, 512),
                max_queue_delay_us=1_000,
                max_queue_size=4_096,
            ),
        ),
        # native GPU backends get Triton's ragged batching (INT8 TensorRT aside, below): the candidates of a batch
        # concatenated, their running totals as candidate_offsets, the scores scattered back by each request's
        # candidates shape
        Variant(
            name=VariantName.ONNX,
            kind=VariantKind.ONNXRUNTIME,
            artifact=LAYOUT_FILES["offsets"],
            precision="fp32",
            gpu=True,
            layout="offsets",
        ),
        Variant(
            name=VariantName.TRT_FP16,
            kind=VariantKind.TENSORRT,
            artifact="model.plan",
            precision="fp16",
            gpu=True,
            layout="offsets",
        ),
        # INT8 comes from the Q/DQ file of `tritonrec quantize`, a padded graph (there is no Q/DQ offsets graph):
        # its engine has the padded profile, so this variant batches equal shapes
        Variant(
            name=VariantName.TRT_INT8,
            kind=VariantKind.TENSORRT,
            artifact="model.plan",
            precision="int8",
            gpu=True,
            layout="padded",
        ),
    )
}
DEFAULT_VARIANTS = (VariantName.CPU,)


@dataclass(frozen=True, slots=True, kw_only=True)
class VariantOverrides:
    """Changes to the shipped variants asked for at build time (``tritonrec repo build`` flags); None = keep.

    Attributes:
        max_batch_size: users per execution; preferred batch sizes above it are dropped.
        max_queue_delay_us: the dynamic batcher's delay.
        instances: model instances per device.
        cpu_threads: CPU threads per instance of the Python variants (0 = cores / instances).
        ort_tensorrt: the TensorRT execution accelerator on ``ranker_onnx``.
        layout: ``padded`` serves the padded graph (``model.onnx``) on a variant that has the choice (the
            comparison ``tritonrec bench layout`` makes); None keeps the variant's.
        preferred_batch_sizes: the dynamic batcher's preferred sizes (None keeps them; ``()`` none).
        cpu_precision: ``ranker_cpu``'s file by precision (:func:`cpu_artifact`; ``int8`` = the winner of
            ``tritonrec quantize``). FP16 and INT8 are padded graphs: they switch ``ranker_cpu`` to the padded
            layout (:func:`cpu_layout`), and asking for them with ``layout="ragged"`` is refused.
        cpu_runtime: ``ranker_cpu``'s runtime (``onnxruntime`` or ``openvino``), in whichever layout it serves.
    """

    max_batch_size: int | None = None
    max_queue_delay_us: int | None = None
    instances: int | None = None
    cpu_threads: int | None = None
    ort_tensorrt: bool = False
    layout: str | None = None
    preferred_batch_sizes: tuple[int, ...] | None = None
    cpu_precision: str | None = None
    cpu_runtime: str | None = None

    def __post_init__(self) -> None:
        cpu_layout_asked = self.layout if self.layout in _LAYOUTS[VariantKind.PYTHON_ORT] else None
        # raises on bad values and on FP16/INT8 asked for in the ragged layout
        cpu_artifact(self.cpu_precision or "fp32", self.cpu_runtime or "onnxruntime", cpu_layout_asked)

    def _cpu_changes(self, variant: Variant) -> dict[str, object]:
        """``ranker_cpu``'s precision, runtime, layout and file after these overrides (empty: none of them)."""
        layout = self.layout if self.layout in _LAYOUTS[variant.kind] else None
        if not (layout or self.cpu_precision or self.cpu_runtime):
            return {}
        precision, runtime = self.cpu_precision or variant.precision, self.cpu_runtime or variant.runtime
        if layout is None:  # a precision asked for without a layout: the layout its file exists in
            layout = cpu_layout(precision) if self.cpu_precision else variant.layout
        try:
            artifact = cpu_artifact(precision, runtime, layout)
        except ConfigError as e:
            raise ConfigError(f"{variant.name}: {e}") from e
        return {"precision": precision, "runtime": runtime, "layout": layout, "artifact": artifact}

    def apply(self, variant: Variant) -> Variant:
        """``variant`` with these overrides (an override that does not apply to its kind is skipped)."""
        batching = variant.batching
        if self.max_batch_size is not None:
            sizes = tuple(b for b in batching.preferred_batch_sizes if b <= self.max_batch_size)
            batching = dataclasses.replace(batching, max_batch_size=self.max_batch_size, preferred_batch_sizes=sizes)
        if self.max_queue_delay_us is not None:
            batching = dataclasses.replace(batching, max_queue_delay_us=self.max_queue_delay_us)
        if self.preferred_batch_sizes is not None:
            batching = dataclasses.replace(batching, preferred_batch_sizes=self.preferred_batch_sizes)
        changes: dict[str, object] = {"batching": batching}
        if variant.kind is VariantKind.PYTHON_ORT:
            changes |= self._cpu_changes(variant)
        elif (
            self.layout is not None
            and self.layout in _LAYOUTS[variant.kind]
            and variant.kind is not VariantKind.TENSORRT
        ):
            changes["layout"] = self.layout
            changes["artifact"] = LAYOUT_FILES[self.layout]
        if self.instances is not None:
            changes["instances"] = self.instances
        if self.cpu_threads is not None and variant.kind in PYTHON_KINDS:
            changes["cpu_threads"] = self.cpu_threads
        if self.ort_tensorrt and variant.kind is VariantKind.ONNXRUNTIME:
            changes["trt_accelerator"] = True
        return dataclasses.replace(variant, **changes)  # type: ignore[arg-type]


def _io(name: str, dtype: int, *, ragged: bool, output: bool = False) -> mc.ModelInput | mc.ModelOutput:
    if output:
        return mc.ModelOutput(name=name, data_type=dtype, dims=[-1])
    return mc.ModelInput(name=name, data_type=dtype, dims=[-1], allow_ragged_batch=ragged)


def _warmup(spec: FeatureSpec) -> mc.ModelWarmup:
    """One user with a full history and 200 candidates, all ids 0 (padding: valid for every variant)."""
    return mc.ModelWarmup(
        name=f"one_user_{WARMUP_CANDIDATES}_candidates",
        batch_size=1,
        count=2,
        inputs={
            HISTORY: mc.ModelWarmup.Input(data_type=mc.TYPE_INT64, dims=[spec.history_len], zero_data=True),
            CANDIDATES: mc.ModelWarmup.Input(data_type=mc.TYPE_INT64, dims=[WARMUP_CANDIDATES], zero_data=True),
        },
    )


def _limits(config: mc.ModelConfig, variant: Variant, spec: FeatureSpec) -> None:
    """The request limits, stated once: clients, the engine-build script and the chart read them from here."""
    config.parameters[MAX_HISTORY_PARAM].string_value = str(spec.history_len)
    config.parameters[MAX_CANDIDATES_PARAM].string_value = str(variant.max_candidates)


def _backend_fields(config: mc.ModelConfig, variant: Variant) -> None:
    if variant.kind is VariantKind.PYTHON_ORT:
        config.backend = "python"  # runs model.py; the ONNX file is a parameter
        config.parameters["onnx_file"].string_value = variant.artifact
        config.parameters["layout"].string_value = variant.layout
        config.parameters["runtime"].string_value = variant.runtime
        config.parameters["intra_op_threads"].string_value = str(variant.cpu_threads)
        config.parameters["cancel_check"].string_value = "1" if variant.cancel_check else "0"
    elif variant.kind is VariantKind.PYTHON_TORCH:
        config.backend = "python"  # runs model.py; the torch.export program is a parameter
        config.parameters["program_file"].string_value = variant.artifact
        config.parameters["precision"].string_value = variant.precision
        config.parameters["cuda_graphs"].string_value = "1" if variant.cuda_graphs else "0"
        config.parameters["intra_op_threads"].string_value = str(variant.cpu_threads)
    elif variant.kind is VariantKind.ONNXRUNTIME:
        config.platform = "onnxruntime_onnx"
        config.backend = "onnxruntime"
        config.default_model_filename = variant.artifact
        if variant.trt_accelerator:
            accelerator = config.optimization.execution_accelerators.gpu_execution_accelerator.add(name="tensorrt")
            accelerator.parameters["precision_mode"] = "FP16"
            accelerator.parameters["max_workspace_size_bytes"] = str(2 * 1024**3)
            accelerator.parameters["trt_engine_cache_enable"] = "1"
    else:
        config.platform = "tensorrt_plan"
        config.backend = "tensorrt"
        config.default_model_filename = variant.artifact


def _ragged_batching(config: mc.ModelConfig) -> None:
    """Triton's ragged batching for a native backend: concatenated candidates in, scores scattered back out.

    ``candidates`` may differ in length between the requests of a batch; the backend gets them concatenated
    (``[M]``), plus ``candidate_offsets`` (``BATCH_ACCUMULATED_ELEMENT_COUNT``: the running total after each
    request), and returns ``scores`` ``[M]``, which Triton cuts back to each request's candidates shape
    (``BATCH_SCATTER_WITH_INPUT_SHAPE``). Histories stay ``[B, L]``: clients pad them to ``max_history``.
    """
    for tensor in config.input:
        if tensor.name == CANDIDATES:
            tensor.allow_ragged_batch = True
    config.batch_input.add(
        kind=mc.BatchInput.BATCH_ACCUMULATED_ELEMENT_COUNT,
        target_name=[CANDIDATE_OFFSETS],
        data_type=mc.TYPE_INT32,
        source_input=[CANDIDATES],
    )
    config.batch_output.add(
        target_name=[SCORES], kind=mc.BatchOutput.BATCH_SCATTER_WITH_INPUT_SHAPE, source_input=[CANDIDATES]
    )


def model_config(variant: Variant, spec: FeatureSpec) -> mc.ModelConfig:
    """Return the Triton ``ModelConfig`` of ``variant`` for a model with ``spec``."""
    ragged = variant.kind in PYTHON_KINDS  # only the Python models can batch requests of different L, N
    batching = variant.batching
    config = mc.ModelConfig(
        name=variant.name,
        max_batch_size=batching.max_batch_size,
        input=[_io(HISTORY, mc.TYPE_INT64, ragged=ragged), _io(CANDIDATES, mc.TYPE_INT64, ragged=ragged)],
        output=[_io(SCORES, mc.TYPE_FP32, ragged=False, output=True)],
        version_policy=mc.ModelVersionPolicy(latest=mc.ModelVersionPolicy.Latest(num_versions=1)),
        instance_group=[
            mc.ModelInstanceGroup(
                kind=mc.ModelInstanceGroup.KIND_GPU if variant.gpu else mc.ModelInstanceGroup.KIND_CPU,
                count=variant.instances,
            )
        ],
        model_warmup=[_warmup(spec)],
    )
    if batching.dynamic:
        config.dynamic_batching.CopyFrom(dynamic_batching_config(batching))
    if variant.layout == "offsets":
        _ragged_batching(config)
    _limits(config, variant, spec)
    _backend_fields(config, variant)
    return config


def dynamic_batching_config(batching: Batching) -> mc.ModelDynamicBatching:
    """``dynamic_batching`` of ``batching``: preferred sizes, the queue delay, and the bounded queue policy."""
    return mc.ModelDynamicBatching(
        preferred_batch_size=list(batching.preferred_batch_sizes),
        max_queue_delay_microseconds=batching.max_queue_delay_us,
        default_queue_policy=mc.ModelQueuePolicy(
            timeout_action=mc.ModelQueuePolicy.REJECT,
            default_timeout_microseconds=batching.queue_timeout_us,
            allow_timeout_override=True,
            max_queue_size=batching.max_queue_size,
        ),
    )


def config_text(config: mc.ModelConfig) -> str:
    """``config.pbtxt`` text of ``config`` (protobuf text format)."""
    header = "# Generated by `tritonrec repo build` from tritonrec.repository.variants; edit the variant, not this.\n"
    return header + str(text_format.MessageToString(config))


def parse_config_text(text: str) -> mc.ModelConfig:
    """Parse ``config.pbtxt`` text against Triton's ``ModelConfig`` schema (raises ``text_format.ParseError``)."""
    return text_format.Parse(text, mc.ModelConfig())
