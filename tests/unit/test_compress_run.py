"""Compression runs end to end on a Beauty slice: lineage, checkpoints old and new, the CLI, distillation loss."""

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from tritonrec.cli import main
from tritonrec.compress.distill import distillation_objective
from tritonrec.compress.options import DistillOptions, FinetuneOptions, PruneOptions, QuantizeOptions, ShareOptions
from tritonrec.compress.run import compress_checkpoint
from tritonrec.data.registry import prepare_dataset
from tritonrec.errors import ConfigError
from tritonrec.export.checkpoint_export import FP32_TOLERANCE, export_checkpoint
from tritonrec.export.parity import compare_scorers, parity_batches
from tritonrec.model.config import EmbeddingStorage, ModelConfig, TableSharing, preset
from tritonrec.model.ranker import RankingModel
from tritonrec.model.tables import QREmbedding, QuantizedEmbedding
from tritonrec.scorers.ort import file_scorer
from tritonrec.train.checkpoint import FORMAT_VERSION, load_checkpoint, save_checkpoint
from tritonrec.train.loop import Loss, TrainResult, label_loss

pytestmark = pytest.mark.unit

SUMMARY_KEYS = {"method", "params", "bytes", "ndcg@10", "auc", "ndcg@10_delta", "auc_delta", "parent"}


@pytest.fixture(scope="module")
def data(beauty_slice_dir):
    return prepare_dataset("beauty", beauty_slice_dir)


@pytest.fixture(scope="module")
def parent_dir(data, tmp_path_factory):
    torch.manual_seed(0)
    model = RankingModel(data.spec, preset("small"), data.catalogue)
    return save_checkpoint(tmp_path_factory.mktemp("parent"), model, metrics={"test": {}})


def test_lineage_round_trips_through_a_checkpoint_and_chains(parent_dir, data, tmp_path):
    first = compress_checkpoint(
        parent_dir, data, PruneOptions(ratio=0.5, finetune=FinetuneOptions(max_epochs=0)), tmp_path / "p", eval_users=50
    )
    second = compress_checkpoint(tmp_path / "p", data, QuantizeOptions(storage="int8"), tmp_path / "q", eval_users=50)
    loaded = load_checkpoint(tmp_path / "q")
    assert loaded.lineage == second.lineage
    assert loaded.lineage.methods == ("prune", "quantize-embeddings") and loaded.lineage.root == str(parent_dir)
    assert loaded.lineage.parent_lineage == first.lineage
    assert loaded.lineage.arguments == {"storage": "int8", "block": 0, "compact_catalogue": True}
    assert loaded.lineage.metrics_before == first.lineage.metrics_after  # the same rows, scored the same way
    assert loaded.lineage.details["evaluated_users"] == 50
    assert json.loads((tmp_path / "q" / "checkpoint.json").read_text())["format_version"] == FORMAT_VERSION == 2


def test_an_identical_run_is_reused_and_a_different_one_is_not(parent_dir, data, tmp_path):
    options = QuantizeOptions(storage="int4")
    first = compress_checkpoint(parent_dir, data, options, tmp_path / "q", eval_users=40)
    again = compress_checkpoint(parent_dir, data, options, tmp_path / "q", eval_users=40, reuse=True)
    assert again.reused and again.lineage == first.lineage and again.checkpoint_bytes == first.checkpoint_bytes
    other = compress_checkpoint(parent_dir, data, options, tmp_path / "q", eval_users=41, reuse=True)
    assert not other.reused


def test_compress_cli_prints_the_summary_and_evaluate_and_export_take_the_result(
    parent_dir, beauty_slice_dir, tmp_path, capsys
):
    data_args = ["--dataset", "beauty", "--data-dir", str(beauty_slice_dir)]
    out = tmp_path / "shared"
    argv = ["compress", "share", "--checkpoint", str(parent_dir), *data_args, "--kind", "qr", "--ratio", "4"]
    assert main([*argv, "--out", str(out), "--finetune-epochs", "0", "--eval-users", "64", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert SUMMARY_KEYS <= set(summary) and summary["method"] == "share" and summary["parent"] == str(parent_dir)
    assert summary["params"] < summary["parent_params"]
    assert main(["evaluate", "--checkpoint", str(out), *data_args, "--limit", "64", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ndcg@10"] == summary["ndcg@10"]
    assert (
        main(["export", "onnx", "--checkpoint", str(out), *data_args, "--out", str(tmp_path / "onnx"), "--json"]) == 0
    )
    assert all(record["passed"] for record in json.loads(capsys.readouterr().out)["parity"])


def test_compress_distill_trains_the_student_of_a_json_file_named_by_its_stem(
    parent_dir, beauty_slice_dir, tmp_path, capsys
):
    student_file = Path(__file__).parents[2] / "bench" / "students" / "small-d16.json"
    data_args = ["--dataset", "beauty", "--data-dir", str(beauty_slice_dir), "--eval-users", "64"]
    argv = ["compress", "distill", "--teacher", str(parent_dir), *data_args, "--out", str(tmp_path / "student")]
    argv += ["--student-config", str(student_file), "--epochs", "1", "--max-minutes", "0.5", "--json"]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["method"] == "distill" and summary["arguments"]["student_name"] == "small-d16"
    assert summary["params"] < summary["parent_params"]  # the teacher here is `small`; the student is narrower
    student = load_checkpoint(tmp_path / "student")
    assert student.config == ModelConfig.from_dict(json.loads(student_file.read_text()))
    assert student.lineage.methods == ("distill",)


def _quantized_initializers(path):
    graph = onnx.load(str(path)).graph
    return sorted(tuple(t.dims) for t in graph.initializer if t.data_type == onnx.TensorProto.UINT8)


def test_a_pruned_qr_shared_int8_checkpoint_exports_a_ragged_graph_that_scores_as_the_padded_one(data, tmp_path):
    torch.manual_seed(0)  # base: a history block and two heads, so every pruned width is in the graph
    base = save_checkpoint(tmp_path / "base", RankingModel(data.spec, preset("base"), data.catalogue), metrics={})
    no_finetune = FinetuneOptions(max_epochs=0)
    compress_checkpoint(base, data, PruneOptions(ratio=0.5, finetune=no_finetune), tmp_path / "p", eval_users=32)
    compress_checkpoint(tmp_path / "p", data, ShareOptions(kind="qr", ratio=4, finetune=no_finetune), tmp_path / "s",
                        eval_users=32)  # fmt: skip
    compress_checkpoint(tmp_path / "s", data, QuantizeOptions(storage="int8"), tmp_path / "q", eval_users=32)
    checkpoint = load_checkpoint(tmp_path / "q")
    config, parent = checkpoint.model.config, load_checkpoint(base).model.config
    assert checkpoint.lineage.methods == ("prune", "share", "quantize-embeddings")
    assert config.n_heads == 2 and 0 < config.attention_qk_dim < parent.embedding_dim // 2
    assert 0 < config.attention_v_dim < parent.embedding_dim // 2 and config.mlp_hidden < parent.mlp_hidden
    assert config.layer_ffn_hidden < parent.layer_ffn_hidden and config.layer_cross_ranks < parent.layer_cross_ranks
    assert config.item_sharing is TableSharing.QR and config.embedding_storage is EmbeddingStorage.INT8
    table = checkpoint.model.items.item
    assert isinstance(table, QREmbedding) and isinstance(table.quotient, QuantizedEmbedding)

    result = export_checkpoint(checkpoint, data.test, tmp_path / "onnx", fp16=False, gpu_graph=True, parity_rows=64)
    assert [(a.precision, a.layout) for a in result.artifacts] == [("fp32", "padded"), ("fp32", "ragged"),
                                                                   ("fp32", "offsets")]  # fmt: skip
    assert [r.candidate for r in result.parity] == ["onnx fp32", "onnx fp32 ragged", "onnx fp32 offsets"]
    assert all(r.passed and r.max_abs < FP32_TOLERANCE[0] for r in result.parity), [r.to_dict() for r in result.parity]
    padded, ragged = result.model_path, result.layout_path("ragged")
    assert ragged is not None
    # the ragged graph reads the same compressed tables: the same uint8 codes (QR quotient + remainder, side tables)
    assert _quantized_initializers(ragged) == _quantized_initializers(padded) != []
    # and scores as the padded graph does, to export's FP32 tolerance, on real, OOV, empty, short and full histories
    batches = parity_batches(data.test, checkpoint.spec.n_items, n_rows=64)
    ragged_vs_padded = compare_scorers(
        file_scorer(padded), file_scorer(ragged), batches, reference_name="padded", candidate_name="ragged",
        atol=FP32_TOLERANCE[0], rtol=FP32_TOLERANCE[1],
    )  # fmt: skip
    assert ragged_vs_padded.passed and ragged_vs_padded.max_abs < FP32_TOLERANCE[0], ragged_vs_padded.to_dict()
    print("ragged vs padded:", json.dumps(ragged_vs_padded.to_dict()))  # the figures, with -s
    print("vs eager:", json.dumps({r.candidate: r.max_abs for r in result.parity}))
    # eager score_offsets on the compressed model: each candidate as its padded row
    batch = batches["real"]
    h, c = torch.from_numpy(batch.histories[:8]), torch.from_numpy(batch.candidates[:8])
    model = checkpoint.model.eval()
    with torch.no_grad():
        encoded, mask = model.encode_history(h)
        users = torch.arange(8).repeat_interleave(c.shape[1])
        offsets = model.score_offsets(encoded, mask, c.reshape(-1), users)
        np.testing.assert_allclose(offsets.reshape(c.shape).numpy(), model(h, c).numpy(), atol=1e-5, rtol=1e-5)


def test_bad_compression_arguments_are_config_errors(parent_dir, beauty_slice_dir, tmp_path, capsys):
    data_args = ["--dataset", "beauty", "--data-dir", str(beauty_slice_dir), "--out", "/nonexistent/never"]
    data_args += ["--eval-users", "16"]
    assert main(["compress", "prune", "--checkpoint", str(parent_dir), *data_args, "--ratio", "1.5"]) == 1
    assert "ConfigError: the pruning ratio" in capsys.readouterr().err
    assert (
        main(["compress", "share", "--checkpoint", str(parent_dir), *data_args, "--kind", "qr", "--ratio", "500"]) == 1
    )
    assert "ConfigError: no quotient-remainder split" in capsys.readouterr().err
    typo = tmp_path / "typo-student.json"
    typo.write_text(json.dumps({"embedding_dim": 16, "n_head": 1}))
    argv = ["compress", "distill", "--teacher", str(parent_dir), *data_args, "--student-config", str(typo)]
    assert main(argv) == 1
    assert "ConfigError: student file" in capsys.readouterr().err


def test_the_distillation_loss_mixes_labels_and_teacher_scores(tiny_spec_and_catalogue):
    spec, catalogue = tiny_spec_and_catalogue
    torch.manual_seed(0)
    teacher = RankingModel(spec, preset("small"), catalogue).eval()
    histories, candidates = torch.randint(0, 301, (4, 12)), torch.randint(1, 301, (4, 6))
    labels = torch.zeros(4, 6)
    labels[:, 0] = 1
    with torch.no_grad():
        same = teacher(histories, candidates)
    hard = label_loss(same, labels, Loss.SAMPLED_SOFTMAX)
    # the student scores exactly as the teacher: the teacher term vanishes, only (1 - w) of the label loss is left
    objective = distillation_objective(teacher, Loss.SAMPLED_SOFTMAX, 2.0, 0.25)
    torch.testing.assert_close(objective(same, labels, histories, candidates), 0.75 * hard)
    assert distillation_objective(teacher, Loss.BCE, 1.0, 0.0)(same, labels, histories, candidates) == label_loss(
        same, labels, Loss.BCE
    )
    other = torch.zeros_like(same)
    assert objective(other, labels, histories, candidates) > 0.75 * label_loss(other, labels, Loss.SAMPLED_SOFTMAX)
    with pytest.raises(ConfigError):
        DistillOptions.for_preset("small", weight=1.5)


@pytest.mark.parametrize("improves", [False, True])
def test_fine_tuning_is_kept_only_when_it_validates_better(parent_dir, data, tmp_path, monkeypatch, improves):
    def fake_training(model, train_set, valid_set, config, *, progress, objective):
        assert objective is not None  # the parent teaches (teacher_weight > 0)
        with torch.no_grad():
            model.mlp.net[-1].bias.add_(5.0)  # a change the result must keep or undo
        return TrainResult(best_epoch=1, best_valid={"ndcg@10": 1.0 if improves else -1.0}, epochs=[{"epoch": 1}])

    monkeypatch.setattr("tritonrec.compress.run.train_model", fake_training)
    options = PruneOptions(ratio=0.5, finetune=FinetuneOptions(max_epochs=1, teacher_weight=1.0))
    result = compress_checkpoint(parent_dir, data, options, tmp_path / "p", eval_users=32)
    pruned = load_checkpoint(tmp_path / "p").model
    finetune = result.lineage.details["finetune"]
    assert finetune["best_epoch"] == (1 if improves else 0) and "ndcg@10" in finetune["valid_before"]
    plain = compress_checkpoint(
        parent_dir, data, PruneOptions(ratio=0.5, finetune=FinetuneOptions(max_epochs=0)), tmp_path / "n", eval_users=32
    )
    shift = pruned.mlp.net[-1].bias - load_checkpoint(tmp_path / "n").model.mlp.net[-1].bias
    torch.testing.assert_close(shift, torch.full_like(shift, 5.0 if improves else 0.0))
    assert plain.lineage.details["finetune"] == {"epochs": []}
