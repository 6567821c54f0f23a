"""TensorRT without TensorRT: profiles, precision flags, pinned layers, metadata checks, repository placement, and
the builder's calls against a stand-in of the TensorRT Python API. The real build runs only where TensorRT and a
GPU exist (marked trt/gpu)."""

import json
import shutil
import sys
import types
from pathlib import Path

import onnx
import pytest

from tritonrec.cli import main
from tritonrec.data.feature_spec import FeatureSpec
from tritonrec.errors import ConfigError, ExportError, RepositoryError
from tritonrec.export.tensorrt_build import TrtBuild, build_engine
from tritonrec.export.tensorrt_plan import (
    EngineMetadata,
    ShapeProfile,
    TrtPrecision,
    layer_precisions,
    plan_problems,
    plan_source,
    sha256,
    trtexec_command,
)
from tritonrec.repository import VARIANTS, build_repository, parse_config_text

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SPEC = FeatureSpec(n_items=100, history_len=50)
PROFILE = ShapeProfile(history_len=50, max_batch=64, max_candidates=2048)


def committed(model):
    return parse_config_text((ROOT / "model_repository" / model / "config.pbtxt").read_text())


def test_profile_comes_from_the_variant_config_and_checks_its_order():
    profile = ShapeProfile.from_config(committed("ranker_trt_int8"))
    assert profile == PROFILE
    assert profile.shapes()["candidates"] == ((1, 1), (16, 200), (64, 2048))
    assert profile.shapes()["history"] == ((1, 50), (16, 50), (64, 50))
    with pytest.raises(ConfigError, match="batch"):
        ShapeProfile(history_len=50, max_batch=8, max_candidates=10, opt_batch=16)
    # ranker_trt_fp16 batches raggedly (candidate_offsets): the offsets graph's profile, M = B x N candidates
    offsets = ShapeProfile.from_config(committed("ranker_trt_fp16"))
    assert offsets.layout == "offsets" and offsets.shapes()["candidates"] == ((1,), (3200,), (131072,))
    assert offsets.shapes()["candidate_offsets"] == ((1,), (16,), (64,))
    assert "--maxShapes=history:64x50,candidates:131072,candidate_offsets:64" in offsets.trtexec_flags()
    assert plan_source(TrtPrecision.FP16, "offsets") == "model_offsets.onnx"
    with pytest.raises(ConfigError, match="no int8 graph in the offsets layout"):
        plan_source(TrtPrecision.INT8, "offsets")
    config = committed("ranker_trt_fp16")
    del config.parameters["max_history"]
    with pytest.raises(ConfigError, match="max_history"):
        ShapeProfile.from_config(config)


def test_trtexec_line_per_precision():
    layers = {"node_MatMul_124": "fp32"}
    fp16 = trtexec_command(Path("m.onnx"), Path("m.plan"), TrtPrecision.FP16, PROFILE, layers=layers)
    assert "--fp16" in fp16 and not any(a.startswith("--layerPrecisions") for a in fp16)
    strong = trtexec_command(Path("q.onnx"), Path("q.plan"), TrtPrecision.INT8, PROFILE, layers=layers)
    assert "--stronglyTyped" in strong and "--int8" not in strong and "--fp16" not in strong
    assert not any(a.startswith("--layerPrecisions") for a in strong), "types come from the Q/DQ graph"
    weak = trtexec_command(
        Path("q.onnx"), Path("q.plan"), TrtPrecision.INT8, PROFILE, strongly_typed=False, layers=layers,
        timing_cache=Path("cache.bin"),
    )  # fmt: skip
    assert {"--int8", "--fp16", "--layerPrecisions=node_MatMul_124:fp32", "--precisionConstraints=obey"} <= set(weak)
    assert "--timingCacheFile=cache.bin" in weak and weak[-1] == "--skipInference"
    best = trtexec_command(Path("q.onnx"), Path("q.plan"), TrtPrecision.BEST, PROFILE, layers={"n": "fp16"})
    assert "--best" in best and "--layerPrecisions=n:fp16" in best


def test_layer_precisions_follow_the_quantize_report(tmp_path):
    report = tmp_path / "quantize.json"
    report.write_text(json.dumps({"mixed": {"kept_fp": ["cross"], "excluded_nodes": ["a", "b"]}}))
    assert layer_precisions(report, TrtPrecision.INT8) == {"a": "fp32", "b": "fp32"}
    assert layer_precisions(report, TrtPrecision.BEST) == {"a": "fp16", "b": "fp16"}
    assert layer_precisions(report, TrtPrecision.FP16) == {}
    with pytest.raises(ExportError, match="tritonrec quantize"):
        layer_precisions(tmp_path / "missing.json", TrtPrecision.INT8)


def metadata(**changes):
    fields = dict(
        gpu="NVIDIA H100 80GB HBM3",
        compute_capability="9.0",
        tensorrt_version="10.5.0",
        precision=TrtPrecision.INT8,
        strongly_typed=True,
        onnx_sha256="abc",
        profile=PROFILE,
    )
    return EngineMetadata(**{**fields, **changes})


def test_metadata_round_trips_and_mismatches_are_named(tmp_path):
    meta = metadata()
    path = meta.write(tmp_path / "model.plan")
    assert path.name == "model.plan.json" and EngineMetadata.read(tmp_path / "model.plan") == meta
    assert plan_problems(meta, variant_precision="int8", wanted=PROFILE, gpu="NVIDIA H100 80GB HBM3") == []
    small = metadata(
        precision=TrtPrecision.FP16, profile=ShapeProfile(history_len=50, max_batch=8, max_candidates=2048, opt_batch=8)
    )
    problems = plan_problems(
        small, variant_precision="int8", wanted=PROFILE, compute_capability="8.9", tensorrt_version="10.5.0",
        onnx_sha256="def",
    )  # fmt: skip
    assert len(problems) == 4, problems
    assert any("precision fp16" in p for p in problems) and any("batch range 1..8" in p for p in problems)
    assert any("compute capability 9.0" in p for p in problems) and any("SHA-256" in p for p in problems)
    with pytest.raises(ConfigError, match="missing or unreadable"):
        EngineMetadata.read(tmp_path / "other.plan")
    offsets = metadata(profile=ShapeProfile(history_len=50, max_batch=64, max_candidates=2048, layout="offsets"))
    assert EngineMetadata.from_dict(offsets.to_dict()) == offsets
    (problem,) = plan_problems(offsets, variant_precision="int8", wanted=PROFILE)
    assert "plan built for the offsets graph, the config batches in the padded layout" in problem
    old = meta.to_dict()
    del old["profile"]["layout"]  # metadata written before layouts existed: padded
    assert EngineMetadata.from_dict(old) == meta


def export_with_plan(tmp_path, **meta_changes):
    export = tmp_path / "export"
    export.mkdir(parents=True)
    (export / "export.json").write_text(json.dumps({"feature_spec": SPEC.to_dict()}))
    (export / "model_qdq.onnx").write_bytes(b"qdq")
    (export / "model_trt_int8.plan").write_bytes(b"engine")
    metadata(onnx_sha256=sha256(export / "model_qdq.onnx"), **meta_changes).write(export / "model_trt_int8.plan")
    return export


def test_repository_places_a_fitting_plan_and_refuses_a_mismatched_one(tmp_path):
    export = export_with_plan(tmp_path)
    written = build_repository(tmp_path / "repo", SPEC, [VARIANTS["ranker_trt_int8"]], export_dir=export)
    plan = tmp_path / "repo" / "ranker_trt_int8" / "1" / "model.plan"
    assert plan in written["ranker_trt_int8"] and plan.read_bytes() == b"engine"
    assert EngineMetadata.read(plan).gpu == "NVIDIA H100 80GB HBM3"
    (export / "model_qdq.onnx").write_bytes(b"another quantization")
    with pytest.raises(RepositoryError, match="SHA-256"):
        build_repository(tmp_path / "repo2", SPEC, [VARIANTS["ranker_trt_int8"]], export_dir=export)
    narrow = export_with_plan(
        tmp_path / "narrow", profile=ShapeProfile(history_len=50, max_batch=64, max_candidates=200)
    )
    with pytest.raises(RepositoryError, match="candidates range 1..200 does not cover the config's 1..2048"):
        build_repository(tmp_path / "repo3", SPEC, [VARIANTS["ranker_trt_int8"]], export_dir=narrow)
    # no plan in the export: the engine is built on the target node from the ONNX file placed where the chart's
    # engine build reads it (<model>/1/<plan source>); without that file, the config alone
    shutil.rmtree(tmp_path / "repo")
    written = build_repository(tmp_path / "repo", SPEC, [VARIANTS["ranker_trt_fp16"]], export_dir=export)
    assert [p.name for p in written["ranker_trt_fp16"]] == ["config.pbtxt"]
    (export / "model_offsets.onnx").write_bytes(b"offsets graph")
    (export / "model_offsets.onnx.data").write_bytes(b"its weights")
    (export / "model_trt_int8.plan").unlink()
    variants = [VARIANTS["ranker_trt_fp16"], VARIANTS["ranker_trt_int8"]]
    written = build_repository(tmp_path / "repo", SPEC, variants, export_dir=export)
    assert [p.name for p in written["ranker_trt_fp16"]] == [
        "config.pbtxt",
        "model_offsets.onnx",
        "model_offsets.onnx.data",
    ]
    assert [p.name for p in written["ranker_trt_int8"]] == ["config.pbtxt", "model_qdq.onnx"]
    assert (tmp_path / "repo" / "ranker_trt_int8" / "1" / "model_qdq.onnx").read_bytes() == b"another quantization"
    assert not (tmp_path / "repo" / "ranker_trt_int8" / "1" / "model.plan").exists()


class _Flags:
    STRONGLY_TYPED = 0


class _Api:
    """What the stand-in TensorRT records: calls in order, and the network's layers."""

    calls: list = []
    layers: list = []


class _Network:
    @property
    def num_layers(self):
        return len(_Api.layers)

    def get_layer(self, i):
        return _Api.layers[i]


class _Parser:
    num_errors = 0

    def __init__(self, network, logger):
        pass

    def parse_from_file(self, path):
        _Api.calls.append(("parse", path))
        return True


class _Cache:
    def serialize(self):
        return b"cache"


class _Config:
    def set_memory_pool_limit(self, pool, size):
        pass

    def set_flag(self, flag):
        _Api.calls.append(("flag", flag))

    def add_optimization_profile(self, profile):
        _Api.calls.append(("profile", profile.shapes))

    def create_timing_cache(self, data):
        _Api.calls.append(("timing cache", data))
        return _Cache()

    def set_timing_cache(self, cache, ignore_mismatch):
        pass


class _Profile:
    def __init__(self):
        self.shapes = {}

    def set_shape(self, name, low, opt, high):
        self.shapes[name] = (low, opt, high)


class _Builder:
    def __init__(self, logger):
        self.logger = logger

    def create_network(self, flags):
        _Api.calls.append(("network flags", flags))
        return _Network()

    def create_builder_config(self):
        return _Config()

    def create_optimization_profile(self):
        return _Profile()

    def build_serialized_network(self, network, config):
        return b"serialized engine"


def stand_in_tensorrt(calls, *, strongly_supported=True):
    """The parts of the TensorRT 10 Python API build_engine uses, recording each call into ``calls``."""
    trt = types.ModuleType("tensorrt")
    trt.__version__ = "10.5.0"
    trt.float32, trt.float16 = "float32", "float16"
    trt.NetworkDefinitionCreationFlag = _Flags if strongly_supported else type("NoFlags", (), {})
    trt.BuilderFlag = types.SimpleNamespace(FP16="FP16", INT8="INT8", OBEY_PRECISION_CONSTRAINTS="OBEY")
    trt.MemoryPoolType = types.SimpleNamespace(WORKSPACE="WORKSPACE")
    trt.Logger = type("Logger", (), {"WARNING": 2, "__init__": lambda self, level: None})
    trt.OnnxParser, trt.Builder = _Parser, _Builder
    _Api.calls = calls
    _Api.layers = [
        types.SimpleNamespace(name="node_MatMul_124", precision=None),
        types.SimpleNamespace(name="x", precision=None),
    ]
    return trt, _Api.layers


@pytest.mark.parametrize("strongly_supported", [True, False])
def test_builder_calls_the_api_in_order_and_writes_plan_metadata_and_cache(tmp_path, monkeypatch, strongly_supported):
    calls = []
    trt, layers = stand_in_tensorrt(calls, strongly_supported=strongly_supported)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setattr("tritonrec.export.tensorrt_build.gpu_identity", lambda: ("NVIDIA L4", "8.9"))
    onnx = tmp_path / "model_qdq.onnx"
    onnx.write_bytes(b"qdq")
    (tmp_path / "cache.bin").write_bytes(b"old cache")
    build = TrtBuild(
        onnx=onnx, plan=tmp_path / "out" / "model_trt_int8.plan", precision=TrtPrecision.INT8, profile=PROFILE,
        layers={"node_MatMul_124": "fp32"}, timing_cache=tmp_path / "cache.bin",
    )  # fmt: skip
    meta = build_engine(build)
    assert build.plan.read_bytes() == b"serialized engine" and (tmp_path / "cache.bin").read_bytes() == b"cache"
    assert ("timing cache", b"old cache") in calls and ("parse", str(onnx)) in calls
    assert ("profile", {k: tuple(v) for k, v in PROFILE.shapes().items()}) in calls
    flags = [c[1] for c in calls if c[0] == "flag"]
    if strongly_supported:  # the Q/DQ graph decides: no precision flags, no pinned layers
        assert ("network flags", 1) in calls and flags == [] and layers[0].precision is None
        assert meta.strongly_typed and meta.layer_precisions == {}
    else:
        assert ("network flags", 0) in calls and flags == ["FP16", "INT8", "OBEY"]
        assert layers[0].precision == "float32" and layers[1].precision is None
        assert not meta.strongly_typed and meta.layer_precisions == {"node_MatMul_124": "fp32"}
    assert EngineMetadata.read(build.plan) == meta and meta.gpu == "NVIDIA L4" and meta.onnx_sha256 == sha256(onnx)


def graph_with_inputs(path, *names):
    """A tiny ONNX file whose inputs are ``names`` (all that `export trt` reads before TensorRT)."""
    from onnx import TensorProto, helper

    inputs = [helper.make_tensor_value_info(n, TensorProto.INT64, None) for n in names]
    node = helper.make_node("Cast", ["candidates"], ["scores"], to=TensorProto.FLOAT)
    output = helper.make_tensor_value_info("scores", TensorProto.FLOAT, None)
    onnx.save(helper.make_model(helper.make_graph([node], "g", inputs, [output])), str(path))
    return path


def test_export_trt_without_tensorrt_says_so_and_prints_the_trtexec_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import fails, as on these machines
    (tmp_path / "export.json").write_text(json.dumps({"feature_spec": SPEC.to_dict()}))
    offsets = graph_with_inputs(tmp_path / "model_offsets.onnx", "history", "candidates", "candidate_offsets")
    args = ["export", "trt", "--onnx", str(offsets), "--precision", "fp16", "--max-batch", "32"]
    assert main([*args, "--print-trtexec"]) == 0
    line = capsys.readouterr().out.split()
    assert line[0] == "trtexec" and "--fp16" in line
    assert "--maxShapes=history:32x50,candidates:65536,candidate_offsets:32" in line
    assert main(args) == 1
    assert capsys.readouterr().err.startswith("ExportError: TensorRT is not installed")
    qdq = graph_with_inputs(tmp_path / "model_qdq.onnx", "history", "candidates")
    assert main(["export", "trt", "--onnx", str(qdq), "--precision", "int8", "--print-trtexec"]) == 0
    assert "--maxShapes=history:64x50,candidates:64x2048" in capsys.readouterr().out.split()
    # a padded FP16 file would give a plan ranker_trt_fp16 (ragged batching) could never load
    padded = graph_with_inputs(tmp_path / "model.onnx", "history", "candidates")
    assert main(["export", "trt", "--onnx", str(padded), "--precision", "fp16", "--print-trtexec"]) == 1
    assert "build it from model_offsets.onnx" in capsys.readouterr().err


@pytest.mark.trt
@pytest.mark.gpu
def test_real_engine_build_on_a_gpu(tmp_path):
    pytest.importorskip("tensorrt", reason="TensorRT is not installed (it cannot be on these machines)")
    if shutil.which("nvidia-smi") is None:
        pytest.skip("no GPU: TensorRT engines are built on the GPU they run on")
    pytest.skip("needs an exported model on the GPU node: run `tritonrec export trt` there (export/README.md)")
