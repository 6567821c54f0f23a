"""tritonrec.quantize on a small exported ranker: layer groups, calibration rows, the INT8 forms, speed, OpenVINO."""

import dataclasses

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from tritonrec.data.registry import prepare_dataset
from tritonrec.errors import ConfigError
from tritonrec.export.checkpoint_export import export_checkpoint
from tritonrec.model.config import preset
from tritonrec.model.ranker import RankingModel
from tritonrec.quantize.calibration import calibration_set
from tritonrec.quantize.groups import LayerGroup, graph_nodes, nodes_by_group, parse_groups
from tritonrec.quantize.ort_quant import Calibrator, OrtForm, OrtRecipe, needs_reduce_range, quantize_ort
from tritonrec.quantize.precisions import CalibratorName, parse_calibrators
from tritonrec.quantize.speed import SpeedConfig, SpeedModel, is_int8_kernel, measure_speed, profile_ops, speed_batch
from tritonrec.scorers.ort import onnx_scorer
from tritonrec.train.checkpoint import load_checkpoint, save_checkpoint

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def data(beauty_slice_dir):
    return prepare_dataset("beauty", beauty_slice_dir)


@pytest.fixture(scope="module")
def export_dir(data, tmp_path_factory):
    torch.manual_seed(0)
    config = dataclasses.replace(preset("small"), history_layers=1, mlp_hidden=(32, 16))  # every layer group
    model = RankingModel(data.spec, config, data.catalogue)
    checkpoint = load_checkpoint(save_checkpoint(tmp_path_factory.mktemp("ckpt"), model))
    out = tmp_path_factory.mktemp("export")
    export_checkpoint(checkpoint, data.test, out, fp16=False, parity_rows=32)
    return out


@pytest.fixture(scope="module")
def rows(data):
    return calibration_set(data.train, users=96, candidates=20, batch_users=32)


def test_every_node_lands_in_the_group_of_its_module(export_dir):
    nodes = graph_nodes(onnx.load(str(export_dir / "model.onnx")))
    groups = nodes_by_group(nodes)
    matmuls = {g: [n for n in groups[g] if n.op_type == "MatMul"] for g in LayerGroup}
    assert all(matmuls[g] for g in LayerGroup), {g: len(v) for g, v in matmuls.items()}
    assert all(n.scopes[0].startswith("cross") for n in matmuls[LayerGroup.CROSS])
    assert all(n.scopes[0] == "target_attention" for n in groups[LayerGroup.TARGET_ATTENTION])
    # the MLP's last linear (one output) is the head, the hidden linears stay in the MLP group
    head_weights = {n.scopes[-2] for n in matmuls[LayerGroup.HEAD]}
    assert head_weights == {"mlp.net.4"} and all("mlp.net.4" not in n.scopes for n in groups[LayerGroup.MLP])
    embedding_gathers = [n for n in groups[LayerGroup.EMBEDDINGS] if n.op_type == "Gather"]
    assert embedding_gathers and sum(len(v) for v in groups.values()) == len(nodes)


def test_group_names_are_parsed_or_refused():
    assert parse_groups("mlp, cross") == (LayerGroup.CROSS, LayerGroup.MLP)
    with pytest.raises(ConfigError, match="unknown layer group"):
        parse_groups("cross,attention")
    assert parse_calibrators("modelopt-max,minmax") == (CalibratorName.MINMAX, CalibratorName.MODELOPT_MAX)
    with pytest.raises(ConfigError, match="at least one ONNX Runtime calibrator"):
        parse_calibrators("modelopt-max")


def test_calibration_rows_are_real_training_examples(data, rows):
    train = data.train
    assert len(rows) == 96 and rows.candidates.shape == (96, 20) and len(rows.batches()) == 3
    matches = [np.flatnonzero((train.histories == h).all(axis=1) & (train.targets == c[0])) for h, c in zip(
        rows.histories, rows.candidates, strict=True)]  # fmt: skip
    assert all(len(m) > 0 for m in matches), "every row is a training history with its own next item first"
    assert (rows.histories != 0).any(axis=1).mean() > 0.5, "not padding-only rows"
    with pytest.raises(ConfigError):
        calibration_set(data.train, users=0)


def _zero_points_and_axes(path):
    model = onnx.load(str(path))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    dq = [n for n in model.graph.node if n.op_type == "DequantizeLinear"]
    zero_points = [inits[n.input[2]] for n in dq if len(n.input) > 2 and n.input[2] in inits]
    per_channel = [n for n in dq if n.input[0] in inits and inits[n.input[1]].size > 1]
    return model, dq, zero_points, per_channel


def test_qdq_s8s8_is_symmetric_int8_with_per_channel_weights(export_dir, rows, tmp_path, data):
    path = quantize_ort(export_dir / "model.onnx", tmp_path / "qdq.onnx", OrtRecipe(), rows)
    model, dq, zero_points, per_channel = _zero_points_and_axes(path)
    assert dq and zero_points and all(z.dtype == np.int8 and not z.any() for z in zero_points)
    assert per_channel, "weights carry one scale per output channel"
    batch = speed_batch(data.test, data.spec.n_items, 16, 30)
    reference, quantized = onnx_scorer(export_dir / "model.onnx")(batch), onnx_scorer(path)(batch)
    assert np.corrcoef(reference.ravel(), quantized.ravel())[0, 1] > 0.99
    assert not np.array_equal(reference, quantized)


def test_excluded_nodes_stay_in_float(export_dir, rows, tmp_path):
    groups = nodes_by_group(graph_nodes(onnx.load(str(export_dir / "model.onnx"))))
    cross = tuple(n.name for n in groups[LayerGroup.CROSS] if n.op_type == "MatMul")
    path = quantize_ort(export_dir / "model.onnx", tmp_path / "mixed.onnx", OrtRecipe(exclude_nodes=cross), rows)
    graph = onnx.load(str(path)).graph
    producers = {o: n.op_type for n in graph.node for o in n.output}
    kept = [n for n in graph.node if n.name in cross]
    assert len(kept) == len(cross) and all(producers.get(i) != "DequantizeLinear" for n in kept for i in n.input)
    quantized = [n for n in graph.node if n.op_type == "MatMul" and n.name not in cross]
    assert any(producers.get(i) == "DequantizeLinear" for n in quantized for i in n.input)


def test_cpu_forms_run_integer_kernels(export_dir, rows, tmp_path, data):
    batch = speed_batch(data.test, data.spec.n_items, 8, 20)
    qop = quantize_ort(export_dir / "model.onnx", tmp_path / "qop.onnx", OrtRecipe(form=OrtForm.QOP_U8S8), rows)
    dynamic = quantize_ort(export_dir / "model.onnx", tmp_path / "dyn.onnx", OrtRecipe(form=OrtForm.DYNAMIC), None)
    qop_profile = profile_ops(SpeedModel(qop), batch, runs=1)
    dynamic_profile = profile_ops(SpeedModel(dynamic), batch, runs=1)
    fp32_profile = profile_ops(SpeedModel(export_dir / "model.onnx"), batch, runs=1)
    assert qop_profile.int8_ops and all(is_int8_kernel(op) for op in qop_profile.int8_ops)
    assert any("Integer" in op or op.startswith("DynamicQuantize") for op in dynamic_profile.int8_ops)
    assert not fp32_profile.int8_ops and fp32_profile.float_matmuls > qop_profile.float_matmuls
    assert fp32_profile.ms_per_op and all(v >= 0 for v in fp32_profile.ms_per_op.values())


def test_recipes_and_reduce_range_follow_the_isa():
    assert needs_reduce_range(("avx2", "fma")) and not needs_reduce_range(("avx2", "avx512_vnni"))
    assert not needs_reduce_range(("avx2", "avx_vnni")) and not is_int8_kernel("MatMul")
    with pytest.raises(ConfigError, match="reduce_range"):
        OrtRecipe(form=OrtForm.QDQ_S8S8, reduce_range=True)
    with pytest.raises(ConfigError, match="calibrated"):
        quantize_ort(__file__, __file__, OrtRecipe(calibrator=Calibrator.ENTROPY), None)  # type: ignore[arg-type]


def test_speed_is_measured_for_every_variant_and_batch(export_dir, data):
    config = SpeedConfig(batches=(1, 4), candidates=10, repeats=2, min_time_s=0.0)
    figures = measure_speed({"a": SpeedModel(export_dir / "model.onnx")}, data.test, data.spec.n_items, config)
    assert set(figures["a"]) == {1, 4} and all(s.n == 2 and s.min > 0 for s in figures["a"].values())
    with pytest.raises(ConfigError):
        SpeedConfig(batches=())


def test_openvino_int8_scores_like_fp32_and_runs_int8_layers(export_dir, rows, tmp_path, data):
    pytest.importorskip("nncf")
    from tritonrec.backends.ranker_cpu_model import open_session
    from tritonrec.quantize.openvino_ptq import ir_files, quantize_openvino
    from tritonrec.scorers.ort import session_scorer

    xml = quantize_openvino(export_dir / "model.onnx", tmp_path / "ov" / "model.xml", rows)
    assert all(p.is_file() for p in ir_files(xml))
    batch = speed_batch(data.test, data.spec.n_items, 16, 30)
    ov_fp32 = session_scorer(open_session(export_dir / "model.onnx", 1, "openvino"))(batch)
    np.testing.assert_allclose(ov_fp32, onnx_scorer(export_dir / "model.onnx")(batch), atol=1e-4, rtol=1e-4)
    ov_int8 = session_scorer(open_session(xml, 1, "openvino"))(batch)
    assert np.corrcoef(ov_fp32.ravel(), ov_int8.ravel())[0, 1] > 0.99
    profile = profile_ops(SpeedModel(xml, "openvino"), batch)
    assert any(k.startswith("i8:FullyConnected") or k.startswith("u8:FullyConnected") for k in profile.int8_ops)
    with pytest.raises(ValueError, match="runtime"):
        open_session(xml, 1, "tensorflow")


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_ranker_cpu_runtimes_serve_the_ragged_and_the_padded_graph(export_dir, data, runtime):
    if runtime == "openvino":
        pytest.importorskip("openvino")
    from tritonrec.backends.ranker_cpu_model import check_layout, open_session
    from tritonrec.repository import graph_file_layout
    from tritonrec.scorers.ort import session_scorer

    batch = speed_batch(data.test, data.spec.n_items, 8, 20)
    reference = onnx_scorer(export_dir / "model.onnx")(batch)
    for name, layout in (("model_ragged.onnx", "ragged"), ("model.onnx", "padded")):
        assert graph_file_layout(export_dir / name) == layout
        session = open_session(export_dir / name, 1, runtime)
        check_layout(layout, {i.name for i in session.get_inputs()}, name)  # what ranker_cpu checks at load
        np.testing.assert_allclose(session_scorer(session)(batch), reference, atol=1e-4, rtol=1e-4)
