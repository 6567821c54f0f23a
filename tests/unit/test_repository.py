"""Repository configs through Triton's protobuf schema, and the pure parts of the ranker_cpu Python model."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from tritonclient.grpc import model_config_pb2 as mc

from tritonrec.data.feature_spec import FeatureSpec
from tritonrec.errors import ConfigError, RepositoryError
from tritonrec.repository import (
    CONFIG_FILE,
    VARIANTS,
    Batching,
    VariantOverrides,
    build_repository,
    config_text,
    cpu_artifact,
    model_config,
    parse_config_text,
    resolve_variants,
)
from tritonrec.repository.ranker_cpu_model import check_request, pack_requests, split_scores

pytestmark = pytest.mark.unit

SPEC = FeatureSpec(n_items=100, history_len=50)
COMMITTED = Path(__file__).resolve().parents[2] / "model_repository"


# users per execution and preferred batches: 64 for the CPU and native GPU backends; ranker_gpu batches larger
BATCHES = {"ranker_gpu": (512, [128, 256, 512])}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_every_variant_config_parses_back_to_the_same_proto(name):
    config = model_config(VARIANTS[name], SPEC)
    parsed = parse_config_text(config_text(config))
    assert parsed == config
    max_batch, preferred = BATCHES.get(name, (64, [16, 32, 64]))
    assert parsed.max_batch_size == max_batch
    assert [i.name for i in parsed.input] == ["history", "candidates"]
    assert all(i.data_type == mc.TYPE_INT64 and list(i.dims) == [-1] for i in parsed.input)
    assert parsed.output[0].name == "scores" and parsed.output[0].data_type == mc.TYPE_FP32
    assert parsed.version_policy.latest.num_versions == 1
    batching = parsed.dynamic_batching
    assert list(batching.preferred_batch_size) == preferred and batching.max_queue_delay_microseconds > 0
    assert batching.default_queue_policy.max_queue_size > 0
    assert batching.default_queue_policy.timeout_action == mc.ModelQueuePolicy.REJECT
    warmup = parsed.model_warmup[0]
    assert list(warmup.inputs["history"].dims) == [50] and warmup.inputs["candidates"].zero_data


def test_backends_and_devices_match_the_design_table():
    configs = {name: model_config(v, SPEC) for name, v in VARIANTS.items()}
    kind = mc.ModelInstanceGroup
    assert configs["ranker_cpu"].backend == "python"
    assert configs["ranker_cpu"].instance_group[0].kind == kind.KIND_CPU
    assert all(i.allow_ragged_batch for i in configs["ranker_cpu"].input)
    assert configs["ranker_cpu"].parameters["max_history"].string_value == "50"
    gpu = configs["ranker_gpu"]
    assert gpu.backend == "python" and gpu.instance_group[0].kind == kind.KIND_GPU
    assert all(i.allow_ragged_batch for i in gpu.input)  # the Python model packs requests of any L and N
    assert {k: v.string_value for k, v in gpu.parameters.items()} == {
        "max_history": "50",
        "max_candidates": "2048",
        "program_file": "model.pt2",
        "precision": "fp32",
        "cuda_graphs": "1",
        "intra_op_threads": "0",
    }
    assert configs["ranker_onnx"].platform == "onnxruntime_onnx"
    for name in ("ranker_trt_fp16", "ranker_trt_int8"):
        assert configs[name].platform == "tensorrt_plan" and configs[name].default_model_filename == "model.plan"
    for name in ("ranker_onnx", "ranker_trt_fp16", "ranker_trt_int8"):
        assert configs[name].instance_group[0].kind == kind.KIND_GPU
        assert not any(i.allow_ragged_batch for i in configs[name].input)  # native backends batch equal shapes


def test_tensorrt_accelerator_is_an_onnx_variant_option():
    onnx = dataclasses.replace(VARIANTS["ranker_onnx"], trt_accelerator=True)
    accelerators = model_config(onnx, SPEC).optimization.execution_accelerators.gpu_execution_accelerator
    assert accelerators[0].name == "tensorrt" and accelerators[0].parameters["precision_mode"] == "FP16"
    with pytest.raises(ConfigError, match="onnxruntime backend option"):
        dataclasses.replace(VARIANTS["ranker_cpu"], trt_accelerator=True)


def test_precision_and_cuda_graphs_fit_the_variant_kind():
    gpu = VARIANTS["ranker_gpu"]
    bf16 = dataclasses.replace(gpu, precision="bf16", cuda_graphs=False)
    assert model_config(bf16, SPEC).parameters["precision"].string_value == "bf16"
    assert model_config(bf16, SPEC).parameters["cuda_graphs"].string_value == "0"
    with pytest.raises(ConfigError, match="runs fp32, bf16 or fp16, not int8"):
        dataclasses.replace(gpu, precision="int8")
    with pytest.raises(ConfigError, match="precision must be one of"):
        dataclasses.replace(gpu, precision="fp8")
    with pytest.raises(ConfigError, match="CUDA graphs are an option of the PyTorch variant"):
        dataclasses.replace(VARIANTS["ranker_cpu"], cuda_graphs=True)


def test_batching_rejects_preferred_sizes_above_the_maximum():
    with pytest.raises(ConfigError, match="outside 1..max_batch_size"):
        Batching(max_batch_size=8, preferred_batch_sizes=(4, 16))


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_committed_configs_are_what_the_builder_writes(name):
    committed = parse_config_text((COMMITTED / name / CONFIG_FILE).read_text())
    generated = model_config(VARIANTS[name], SPEC)
    assert generated.parameters["max_history"].string_value == "50"  # the limits, stated once, in every variant
    assert generated.parameters["max_candidates"].string_value == "2048"
    assert committed == generated, "regenerate with `tritonrec repo build --configs-only`"


def test_unknown_variant_and_missing_export_are_repository_errors(tmp_path):
    with pytest.raises(RepositoryError, match="unknown variant"):
        resolve_variants(["ranker_tpu"])
    with pytest.raises(RepositoryError, match="run `tritonrec export onnx` first"):
        build_repository(tmp_path / "repo", SPEC, resolve_variants(["ranker_cpu"]), export_dir=tmp_path)
    with pytest.raises(RepositoryError, match="needs model.pt2 .* run `tritonrec export torch` first"):
        build_repository(tmp_path / "repo", SPEC, resolve_variants(["ranker_gpu"]), export_dir=tmp_path)


def test_build_copies_graph_external_data_and_python_model(tmp_path):
    export = tmp_path / "export"
    export.mkdir()
    (export / "model.onnx").write_bytes(b"graph")
    (export / "model.onnx.data").write_bytes(b"weights")
    written = build_repository(
        tmp_path / "repo", SPEC, resolve_variants(["ranker_cpu", "ranker_trt_fp16"]), export_dir=export
    )
    version = tmp_path / "repo" / "ranker_cpu" / "1"
    assert sorted(p.name for p in version.iterdir()) == ["model.onnx", "model.onnx.data", "model.py"]
    assert "class TritonPythonModel" in (version / "model.py").read_text()
    assert written["ranker_trt_fp16"] == [tmp_path / "repo" / "ranker_trt_fp16" / CONFIG_FILE]  # engine built on GPU


def test_build_copies_the_program_and_the_torch_python_model(tmp_path):
    export = tmp_path / "export"
    export.mkdir()
    (export / "model.pt2").write_bytes(b"program")
    build_repository(tmp_path / "repo", SPEC, resolve_variants(["ranker_gpu"]), export_dir=export)
    version = tmp_path / "repo" / "ranker_gpu" / "1"
    assert sorted(p.name for p in version.iterdir()) == ["model.pt2", "model.py"]
    model_py = (version / "model.py").read_text()
    assert "class TritonPythonModel" in model_py and "torch.export" in model_py
    assert "import tritonrec" not in model_py and "from tritonrec" not in model_py  # runs without the package


def _ids(*rows):
    return np.array(rows, dtype=np.int64)


def test_check_request_names_each_problem():
    limits = {"max_history": 3, "max_candidates": 4}
    assert check_request(_ids([1, 2]), _ids([5, 6]), **limits) is None
    assert check_request(np.zeros((1, 0), np.int64), _ids([5]), **limits) is None  # a new user: empty history
    assert "2 user row(s) but candidates has 1" in check_request(_ids([1], [2]), _ids([5]), **limits)
    assert "at most 3" in check_request(_ids([1, 2, 3, 4]), _ids([5]), **limits)
    assert "candidates is empty" in check_request(_ids([1]), np.zeros((1, 0), np.int64), **limits)
    assert "at most 4 per request" in check_request(_ids([1]), _ids([1, 2, 3, 4, 5]), **limits)
    assert "history has 1 negative id(s), first -7 at [0, 1]" in check_request(_ids([1, -7]), _ids([5]), **limits)
    assert "candidates has 2 negative" in check_request(_ids([1]), _ids([-1, 3, -2]), **limits)


def test_pack_right_aligns_histories_and_split_restores_each_request():
    pairs = [
        (_ids([1, 2]), _ids([5, 6, 7])),
        (np.zeros((1, 0), np.int64), _ids([8])),
        (_ids([3], [4]), _ids([9], [10])),
    ]
    histories, candidates = pack_requests(pairs, history_len=4)
    assert histories.tolist() == [[0, 0, 1, 2], [0, 0, 0, 0], [0, 0, 0, 3], [0, 0, 0, 4]]
    assert candidates.tolist() == [[5, 6, 7], [8, 0, 0], [9, 0, 0], [10, 0, 0]]
    scores = (candidates * 10).astype(np.float32)
    parts = split_scores(scores, pairs)
    assert [p.tolist() for p in parts] == [[[50, 60, 70]], [[80]], [[90], [100]]]


def test_cpu_precision_and_runtime_choose_ranker_cpus_file(tmp_path):
    export = tmp_path / "export"
    export.mkdir()
    (export / "model_int8.xml").write_bytes(b"ir")
    (export / "model_int8.bin").write_bytes(b"weights")
    cpu = VariantOverrides(cpu_precision="int8", cpu_runtime="openvino").apply(VARIANTS["ranker_cpu"])
    assert (cpu.artifact, cpu.precision, cpu.runtime) == ("model_int8.xml", "int8", "openvino")
    build_repository(tmp_path / "repo", SPEC, [cpu], export_dir=export)
    version = tmp_path / "repo" / "ranker_cpu" / "1"
    assert sorted(p.name for p in version.iterdir()) == ["model.py", "model_int8.bin", "model_int8.xml"]
    config = parse_config_text((tmp_path / "repo" / "ranker_cpu" / CONFIG_FILE).read_text())
    assert config.parameters["onnx_file"].string_value == "model_int8.xml"
    assert config.parameters["runtime"].string_value == "openvino"
    assert cpu_artifact("int8") == "model_int8.onnx" and cpu_artifact("fp16", "openvino") == "model_fp16.onnx"
    with pytest.raises(RepositoryError, match="run `tritonrec quantize` first"):
        build_repository(
            tmp_path / "r2",
            SPEC,
            [VariantOverrides(cpu_precision="int8").apply(VARIANTS["ranker_cpu"])],
            export_dir=export,
        )
    with pytest.raises(ConfigError, match="openvino is an option of the ranker_cpu variant"):
        dataclasses.replace(VARIANTS["ranker_onnx"], runtime="openvino")
    with pytest.raises(ConfigError, match="precision"):
        VariantOverrides(cpu_precision="int4")
    assert VariantOverrides(cpu_precision="int8").apply(VARIANTS["ranker_gpu"]).artifact == "model.pt2"
