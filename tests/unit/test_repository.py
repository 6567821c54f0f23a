"""Repository configs through Triton's protobuf schema, and the pure parts of the ranker_cpu Python model."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from tritonclient.grpc import model_config_pb2 as mc

from tritonrec.backends.ranker_cpu_model import (
    cgroup_cpu_limit,
    check_layout,
    check_request,
    pack_ragged,
    pack_requests,
    serving_cpus,
    split_ragged,
    split_scores,
)
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
    graph_file_layout,
    model_config,
    parse_config_text,
    resolve_variants,
)

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
    cpu = configs["ranker_cpu"].parameters
    assert cpu["layout"].string_value == "ragged" and cpu["onnx_file"].string_value == "model_ragged.onnx"
    for name in ("ranker_onnx", "ranker_trt_fp16", "ranker_trt_int8"):
        assert configs[name].instance_group[0].kind == kind.KIND_GPU
    # INT8 TensorRT is built from the Q/DQ file of `tritonrec quantize`, a padded graph: equal shapes batched
    int8 = configs["ranker_trt_int8"]
    assert not any(i.allow_ragged_batch for i in int8.input) and not int8.batch_input and not int8.batch_output
    for name in ("ranker_onnx", "ranker_trt_fp16"):
        config = configs[name]
        # Triton's ragged batching: candidates concatenated, their running totals in, scores scattered back out
        ragged = {i.name: i.allow_ragged_batch for i in config.input}
        assert ragged == {"history": False, "candidates": True}  # clients pad histories to max_history
        (offsets,) = config.batch_input
        assert offsets.kind == mc.BatchInput.BATCH_ACCUMULATED_ELEMENT_COUNT
        assert list(offsets.target_name) == ["candidate_offsets"] and list(offsets.source_input) == ["candidates"]
        (scatter,) = config.batch_output
        assert scatter.kind == mc.BatchOutput.BATCH_SCATTER_WITH_INPUT_SHAPE and list(scatter.target_name) == ["scores"]
    assert configs["ranker_onnx"].default_model_filename == "model_offsets.onnx"


def test_the_padded_layout_stays_available_as_an_override():
    padded = VariantOverrides(layout="padded").apply(VARIANTS["ranker_cpu"])
    assert padded.layout == "padded" and padded.artifact == "model.onnx"
    assert model_config(padded, SPEC).parameters["layout"].string_value == "padded"
    with pytest.raises(ConfigError, match="layout"):
        dataclasses.replace(VARIANTS["ranker_cpu"], layout="offsets")


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
    (export / "model_ragged.onnx").write_bytes(b"graph")
    (export / "model_ragged.onnx.data").write_bytes(b"weights")
    written = build_repository(
        tmp_path / "repo", SPEC, resolve_variants(["ranker_cpu", "ranker_trt_fp16"]), export_dir=export
    )
    version = tmp_path / "repo" / "ranker_cpu" / "1"
    assert sorted(p.name for p in version.iterdir()) == ["model.py", "model_ragged.onnx", "model_ragged.onnx.data"]
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
    assert cpu.layout == "padded"  # the INT8 file is a padded graph: ranker_cpu serves it padded, explicitly
    build_repository(tmp_path / "repo", SPEC, [cpu], export_dir=export)
    version = tmp_path / "repo" / "ranker_cpu" / "1"
    assert sorted(p.name for p in version.iterdir()) == ["model.py", "model_int8.bin", "model_int8.xml"]
    config = parse_config_text((tmp_path / "repo" / "ranker_cpu" / CONFIG_FILE).read_text())
    assert config.parameters["onnx_file"].string_value == "model_int8.xml"
    assert config.parameters["runtime"].string_value == "openvino"
    assert config.parameters["layout"].string_value == "padded"
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


def test_cpu_precision_runtime_and_layout_combine_or_are_refused():
    cpu = VARIANTS["ranker_cpu"]
    assert cpu_artifact("fp32") == "model_ragged.onnx" and cpu_artifact("fp32", "openvino", "padded") == "model.onnx"
    # OpenVINO alone keeps the ragged default: it compiles the ragged graph
    ov = VariantOverrides(cpu_runtime="openvino").apply(cpu)
    assert (ov.artifact, ov.layout, ov.runtime, ov.precision) == ("model_ragged.onnx", "ragged", "openvino", "fp32")
    fp16 = VariantOverrides(cpu_precision="fp16").apply(cpu)
    assert (fp16.artifact, fp16.layout) == ("model_fp16.onnx", "padded")
    # a tuned layout first, then the precision flag: the flag wins, INT8 exists only as a padded graph
    tuned = VariantOverrides(layout="ragged", instances=3).apply(cpu)
    int8 = VariantOverrides(cpu_precision="int8").apply(tuned)
    assert (int8.artifact, int8.layout, int8.instances) == ("model_int8.onnx", "padded", 3)
    padded = VariantOverrides(layout="padded", cpu_runtime="openvino").apply(cpu)
    assert (padded.artifact, padded.layout, padded.runtime) == ("model.onnx", "padded", "openvino")
    with pytest.raises(ConfigError, match="no int8 ragged graph"):
        VariantOverrides(layout="ragged", cpu_precision="int8")
    with pytest.raises(ConfigError, match="ranker_cpu: .*no int8 ragged graph"):
        VariantOverrides(layout="ragged").apply(int8)  # an INT8 variant cannot be switched to the ragged graph
    onnx = VariantOverrides(layout="padded", cpu_precision="int8").apply(VARIANTS["ranker_onnx"])
    assert (onnx.artifact, onnx.layout) == ("model.onnx", "padded")  # GPU variants ignore the CPU flags


def test_ranker_cpu_refuses_a_layout_its_graph_was_not_exported_in():
    check_layout("ragged", {"history", "candidates", "real_index"}, "model_ragged.onnx")
    check_layout("padded", {"history", "candidates"}, "model_int8.onnx")
    with pytest.raises(ValueError, match="model_int8.onnx is a padded graph"):
        check_layout("ragged", {"history", "candidates"}, "model_int8.onnx")
    with pytest.raises(ValueError, match="is a ragged graph"):
        check_layout("padded", {"history", "candidates", "real_index"}, "model_ragged.onnx")
    with pytest.raises(ValueError, match="layout must be one of"):
        check_layout("offsets", {"history", "candidates"}, "model.onnx")
    with pytest.raises(ValueError, match="earlier tritonrec .* export it again"):
        check_layout("ragged", {"history", "candidates", "user_index"}, "model_ragged.onnx")


def test_an_earlier_exports_ragged_graph_is_refused_with_what_to_do(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    inputs = [helper.make_tensor_value_info(n, TensorProto.INT64, [None]) for n in ("candidates", "user_index")]
    out = helper.make_tensor_value_info("scores", TensorProto.INT64, [None])
    graph = helper.make_graph([helper.make_node("Identity", ["candidates"], ["scores"])], "old", inputs, [out])
    onnx.save(helper.make_model(graph), tmp_path / "model_ragged.onnx")
    with pytest.raises(ConfigError, match="earlier tritonrec .*user_index.*tritonrec export onnx"):
        graph_file_layout(tmp_path / "model_ragged.onnx")


def test_ragged_packing_names_the_real_candidates_of_the_grid_and_trims_histories_to_the_longest():
    pairs = [
        (np.array([[0, 0, 5]], np.int64), np.array([[7, 8]], np.int64)),
        (np.array([[3, 4]], np.int64), np.array([[9, 10, 11]], np.int64)),
        (np.zeros((1, 0), np.int64), np.array([[12]], np.int64)),
    ]
    history, candidates, real = pack_ragged(pairs)
    assert history.tolist() == [[0, 5], [3, 4], [0, 0]]  # the longest real history is 2 items
    assert candidates.tolist() == [[7, 8, 0], [9, 10, 11], [12, 0, 0]]
    assert real.tolist() == [0, 1, 3, 4, 5, 6] and candidates.reshape(-1)[real].tolist() == [7, 8, 9, 10, 11, 12]
    two_rows = [(np.array([[1], [2]], np.int64), np.array([[5, 6], [7, 8]], np.int64))]  # one request, two users
    _, grid, real = pack_ragged([*two_rows, (np.array([[3]], np.int64), np.array([[9, 10, 11]], np.int64))])
    assert grid.reshape(-1)[real].tolist() == [5, 6, 7, 8, 9, 10, 11]
    parts = split_ragged(np.arange(6, dtype=np.float32), pairs)
    assert [p.tolist() for p in parts] == [[[0.0, 1.0]], [[2.0, 3.0, 4.0]], [[5.0]]]
    empty, _, _ = pack_ragged([(np.zeros((1, 0), np.int64), np.array([[1]], np.int64))])
    assert empty.shape == (1, 1)  # at least one (padding) column


def test_threads_follow_the_cgroup_cpu_quota_not_the_nodes_cores(tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")  # a Kubernetes limit of 1.5 CPUs
    assert cgroup_cpu_limit(tmp_path) == 1.5
    assert serving_cpus(tmp_path) == 1
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_limit(tmp_path) is None and serving_cpus(tmp_path) >= 1
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("300000\n")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cgroup_cpu_limit(v1) == 3.0


def _graph(path, *inputs):
    """A tiny ONNX file with these inputs (repo build reads only its inputs and export.json beside it)."""
    import onnx
    from onnx import TensorProto, helper

    values = [helper.make_tensor_value_info(n, TensorProto.INT64, None) for n in inputs]
    node = helper.make_node("Cast", ["candidates"], ["scores"], to=TensorProto.FLOAT)
    output = helper.make_tensor_value_info("scores", TensorProto.FLOAT, None)
    onnx.save(helper.make_model(helper.make_graph([node], "g", values, [output])), str(path))
    return path


def test_repo_build_combines_tuned_selection_and_cpu_precision_or_refuses(tmp_path, capsys):
    import json

    from tritonrec.cli import main

    export = tmp_path / "quantized"
    export.mkdir()
    (export / "export.json").write_text(json.dumps({"feature_spec": SPEC.to_dict()}))
    _graph(export / "model.onnx", "history", "candidates")
    int8 = _graph(export / "model_int8.onnx", "history", "candidates")  # tritonrec quantize: a padded graph
    tuned = tmp_path / "tune.json"
    tuned.write_text(json.dumps({"chosen_overrides": {"layout": "ragged", "instances": 3, "max_batch_size": 32}}))

    def config(repo):
        return parse_config_text((repo / "ranker_cpu" / CONFIG_FILE).read_text())

    # --tuned (ragged) + --cpu-precision int8 --cpu-runtime openvino: the flag wins and says so
    args = ["repo", "build", "--export", str(export), "--configs-only", "--tuned", str(tuned)]
    assert main([*args, "--cpu-precision", "int8", "--cpu-runtime", "openvino", "--out", str(tmp_path / "r1")]) == 0
    assert "in the padded layout, not the ragged layout" in capsys.readouterr().out
    built = config(tmp_path / "r1")
    params = {k: v.string_value for k, v in built.parameters.items()}
    assert (params["layout"], params["onnx_file"], params["runtime"]) == ("padded", "model_int8.xml", "openvino")
    assert built.instance_group[0].count == 3 and built.max_batch_size == 32
    # --tuned alone keeps the ragged default
    assert main([*args, "--out", str(tmp_path / "r2")]) == 0
    params = {k: v.string_value for k, v in config(tmp_path / "r2").parameters.items()}
    assert (params["layout"], params["onnx_file"]) == ("ragged", "model_ragged.onnx")
    capsys.readouterr()

    # --from-selection: the pick's graph decides the layout; the tuned settings apply; precision flags are refused
    selection = tmp_path / "select.json"
    row = {"name": "base/triton/int8", "runtime": "triton", "precision": "int8", "artifact": str(int8)}
    selection.write_text(json.dumps({"chosen_row": row}))
    picked = ["repo", "build", "--from-selection", str(selection), "--configs-only", "--tuned", str(tuned)]
    assert main([*picked, "--out", str(tmp_path / "r3")]) == 0
    assert "the selected graph was exported in that layout" in capsys.readouterr().out
    built = config(tmp_path / "r3")
    params = {k: v.string_value for k, v in built.parameters.items()}
    assert (params["layout"], params["onnx_file"]) == ("padded", "model_int8.onnx")
    assert built.instance_group[0].count == 3
    assert main([*picked, "--cpu-precision", "int8", "--out", str(tmp_path / "r4")]) == 1
    assert "drop --cpu-precision/--cpu-runtime" in capsys.readouterr().err
