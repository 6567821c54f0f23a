"""Checkpoint -> ONNX FP32/FP16 with parity records (real Beauty rows, OOV ids, empty histories)."""

import json

import numpy as np
import onnx
import pytest
import torch

from tritonrec.cli import main
from tritonrec.data.registry import prepare_dataset
from tritonrec.errors import ExportError
from tritonrec.export.checkpoint_export import export_checkpoint
from tritonrec.export.onnx_export import export_onnx
from tritonrec.export.parity import compare_scorers, parity_batches
from tritonrec.model.config import preset
from tritonrec.model.ranker import RankingModel
from tritonrec.scorers.eager import torch_scorer
from tritonrec.scorers.ort import onnx_scorer
from tritonrec.train.checkpoint import load_checkpoint, save_checkpoint

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def beauty_rows(beauty_slice_dir):
    return prepare_dataset("beauty", beauty_slice_dir)


@pytest.fixture(scope="module")
def checkpoint_dir(beauty_rows, tmp_path_factory):
    torch.manual_seed(0)
    model = RankingModel(beauty_rows.spec, preset("small"), beauty_rows.catalogue)
    return save_checkpoint(tmp_path_factory.mktemp("ckpt"), model)


def test_export_writes_fp32_and_fp16_with_passing_parity_records(beauty_rows, checkpoint_dir, tmp_path):
    checkpoint = load_checkpoint(checkpoint_dir)
    result = export_checkpoint(checkpoint, beauty_rows.test, tmp_path, parity_rows=64, gpu_graph=True)
    fp32, ragged, offsets, fp16 = result.parity
    assert fp32.passed and fp32.max_abs < 1e-4
    cases = {"real", "oov", "empty_history", "short_history", "full_history"}
    assert set(fp32.max_abs_by_case) == cases
    # the ragged graphs score only real candidates, histories trimmed to the batch's longest: same scores
    assert ragged.candidate == "onnx fp32 ragged" and ragged.passed and set(ragged.max_abs_by_case) == cases
    assert offsets.candidate == "onnx fp32 offsets" and offsets.passed and ragged.max_abs < 1e-4
    assert fp16.passed and fp16.candidate == "onnx fp16"
    assert [(a.precision, a.layout) for a in result.artifacts] == [
        ("fp32", "padded"),
        ("fp32", "ragged"),
        ("fp32", "offsets"),
        ("fp16", "padded"),
    ]
    assert (
        result.model_path == tmp_path / "model.onnx" and result.layout_path("ragged") == tmp_path / "model_ragged.onnx"
    )
    assert json.loads((tmp_path / "export.json").read_text()) == result.to_dict()
    graph = onnx.load(str(tmp_path / "model_fp16.onnx"), load_external_data=False).graph
    assert graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.INT64
    assert graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert any(init.data_type == onnx.TensorProto.FLOAT16 for init in graph.initializer)


def test_forced_external_data_keeps_weights_beside_the_graph(beauty_rows, checkpoint_dir, tmp_path):
    model = load_checkpoint(checkpoint_dir).model
    artifact = export_onnx(model, tmp_path / "model.onnx", external_data=True)
    data_file = tmp_path / "model.onnx.data"
    assert artifact.files() == [tmp_path / "model.onnx", data_file]
    assert data_file.stat().st_size > (tmp_path / "model.onnx").stat().st_size
    batch = parity_batches(beauty_rows.test, beauty_rows.spec.n_items, n_rows=8)["real"]
    np.testing.assert_allclose(onnx_scorer(artifact.path)(batch), torch_scorer(model)(batch), atol=1e-4, rtol=1e-4)


def test_a_record_past_tolerance_fails_loudly(beauty_rows):
    batches = parity_batches(beauty_rows.test, beauty_rows.spec.n_items, n_rows=4)
    record = compare_scorers(
        lambda b: np.zeros(b.candidates.shape),
        lambda b: np.full(b.candidates.shape, 0.5),
        batches,
        reference_name="zeros",
        candidate_name="halves",
        atol=0.1,
        rtol=0.0,
    )
    assert not record.passed and record.max_abs == pytest.approx(0.5)
    with pytest.raises(ExportError, match="halves differs from zeros beyond tolerance"):
        record.raise_if_failed()


def test_parity_batches_hold_oov_ids_and_empty_histories(beauty_rows):
    batches = parity_batches(beauty_rows.test, beauty_rows.spec.n_items, n_rows=32)
    n = beauty_rows.spec.n_items
    assert ((batches["oov"].candidates < 0) | (batches["oov"].candidates > n)).any()
    assert ((batches["oov"].histories < 0) | (batches["oov"].histories > n)).any()
    assert not batches["empty_history"].histories.any()


def test_export_cli_prints_the_parity_records(beauty_slice_dir, checkpoint_dir, tmp_path, capsys):
    args = ["export", "onnx", "--checkpoint", str(checkpoint_dir), "--dataset", "beauty"]
    assert main([*args, "--data-dir", str(beauty_slice_dir), "--out", str(tmp_path), "--no-fp16", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [r["candidate"] for r in report["parity"]] == ["onnx fp32", "onnx fp32 ragged"]
    assert (tmp_path / "model.onnx").is_file() and not (tmp_path / "model_fp16.onnx").exists()


def test_evaluate_scores_an_onnx_file_like_its_checkpoint(beauty_slice_dir, checkpoint_dir, tmp_path, capsys):
    data = ["--dataset", "beauty", "--data-dir", str(beauty_slice_dir), "--limit", "300", "--json"]
    assert main(["export", "onnx", "--checkpoint", str(checkpoint_dir), *data[:4], "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(checkpoint_dir), *data]) == 0
    eager = json.loads(capsys.readouterr().out)
    for name in ("model.onnx", "model_ragged.onnx", "model_fp16.onnx"):  # each in the layout its inputs name
        assert main(["evaluate", "--onnx", str(tmp_path / name), *data]) == 0
        onnx_metrics = json.loads(capsys.readouterr().out)
        assert onnx_metrics["n_users"] == eager["n_users"] == 300
        assert onnx_metrics["ndcg@10"] == pytest.approx(eager["ndcg@10"], abs=0.01)


def test_evaluating_an_onnx_file_without_its_export_report_is_an_export_error(beauty_slice_dir, tmp_path, capsys):
    (tmp_path / "model.onnx").write_bytes(b"")
    args = [
        "evaluate",
        "--onnx",
        str(tmp_path / "model.onnx"),
        "--dataset",
        "beauty",
        "--data-dir",
        str(beauty_slice_dir),
    ]
    assert main(args) == 1
    assert capsys.readouterr().err.startswith("ExportError:")
