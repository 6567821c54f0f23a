"""Compressed checkpoints on the real Triton server, and the compression benchmark end to end on a Beauty slice."""

import json

import numpy as np
import pytest

from tritonrec.bench.models.compression import DatasetPlan, SpeedSettings, VariantPlan, run_compression_bench
from tritonrec.cli import main
from tritonrec.client import RankingClient
from tritonrec.compress.options import FinetuneOptions, PruneOptions, QuantizeOptions, ShareOptions
from tritonrec.compress.run import compress_checkpoint
from tritonrec.data.registry import DatasetName
from tritonrec.measure.loadgen import PointSettings
from tritonrec.metrics import score_eval_set
from tritonrec.model.config import Preset
from tritonrec.scorers.eager import torch_scorer
from tritonrec.scorers.ort import file_scorer
from tritonrec.scorers.triton import triton_scorer
from tritonrec.serving.server import LocalTriton
from tritonrec.train.checkpoint import load_checkpoint
from tritonrec.train.loop import TrainConfig
from tritonrec.train.run import train_and_save

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NO_FINETUNE = FinetuneOptions(max_epochs=0)


@pytest.fixture(scope="module")
def parent_dir(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("parent")
    train_and_save(data, Preset.SMALL, TrainConfig(max_epochs=1, max_minutes=0.3), out, progress=False)
    return out


def test_a_pruned_shared_int4_model_is_built_into_a_repository_and_serves_the_scores_of_eager(
    data, parent_dir, beauty_slice_dir, tmp_path
):
    compress_checkpoint(parent_dir, data, PruneOptions(ratio=0.5, finetune=NO_FINETUNE), tmp_path / "p", eval_users=64)
    compress_checkpoint(tmp_path / "p", data, ShareOptions(kind="qr", ratio=4, finetune=NO_FINETUNE), tmp_path / "s",
                        eval_users=64)  # fmt: skip
    compress_checkpoint(tmp_path / "s", data, QuantizeOptions(storage="int4"), tmp_path / "q", eval_users=64)
    checkpoint = load_checkpoint(tmp_path / "q")
    assert checkpoint.lineage.methods == ("prune", "share", "quantize-embeddings")
    repo = tmp_path / "repo"
    argv = ["repo", "build", "--checkpoint", str(tmp_path / "q"), "--dataset", "beauty"]
    assert main([*argv, "--data-dir", str(beauty_slice_dir), "--out", str(repo)]) == 0
    rows = data.test.head(200)
    eager = score_eval_set(torch_scorer(checkpoint.model), rows)
    served_graph = repo / "ranker_cpu" / "1" / "model_ragged.onnx"  # ranker_cpu serves the ragged graph
    local = score_eval_set(file_scorer(served_graph), rows)
    with LocalTriton(repo, log_file=tmp_path / "server.log") as server, RankingClient(server.grpc_url) as client:
        served = score_eval_set(triton_scorer(client, concurrency=8), rows)
    np.testing.assert_allclose(served, local, atol=1e-5, rtol=0)
    np.testing.assert_allclose(served, eager, atol=1e-4, rtol=1e-4)


def test_the_compression_bench_measures_every_model_and_judges_the_goals(data, parent_dir, beauty_slice_dir, tmp_path):
    hashed, qr = (ShareOptions(kind=kind, ratio=4, finetune=NO_FINETUNE) for kind in ("hash", "qr"))
    plan = DatasetPlan(
        label="beauty", dataset=DatasetName.BEAUTY, data_dir=beauty_slice_dir, parent=parent_dir,
        preset=Preset.SMALL, train=TrainConfig(), eval_users=128,
        variants=(
            VariantPlan(name="int8", parent="parent", options=QuantizeOptions(storage="int8")),
            VariantPlan(name="hash-4", parent="parent", options=hashed),
            VariantPlan(name="qr-4", parent="parent", options=qr),
        ),
    )  # fmt: skip
    point = PointSettings(warmup_s=0.5, window_s=0.5, stable_windows=2, max_windows=3)
    settings = SpeedSettings(repeats=2, repeat_s=0.2, requests=128, concurrency=4, point=point, threads=1)
    report = run_compression_bench([plan], tmp_path / "work", tmp_path / "out", settings, command="test")
    record = json.loads((tmp_path / "out" / "compression.json").read_text())
    section = record["plans"]["beauty"]
    entries = [section["parent"], *section["variants"]]
    assert [e["name"] for e in entries] == ["parent", "int8", "hash-4", "qr-4"]
    for entry in entries:
        speed = entry["in_process"]
        assert speed["min"] <= speed["candidates_per_second"] <= speed["max"] and len(speed["rounds"]) == 2
        assert entry["served"]["candidates_per_second"] > 0 and entry["served"]["errors"] == 0
        assert entry["export"]["onnx_bytes"] > 0 and entry["export"]["parity_max_abs"] < 1e-4
        assert set(entry["export"]["parity"]) == {"onnx fp32", "onnx fp32 ragged"} and speed["layout"] == "ragged"
    qr4 = section["variants"][-1]
    assert qr4["methods"] == ["share"] and qr4["details"]["collisions"]["colliding_ids"] == 0
    expected = qr4["metrics"]["auc"] - section["parent"]["metrics"]["auc"]
    assert qr4["delta_vs_root"]["auc"] == pytest.approx(expected, abs=2e-5)  # both rounded to 5 decimals
    kernels = section["lookup_kernels"]
    assert [(k["storage"], k["block"]) for k in kernels] == [("int8", 32), ("int4", 32), ("int4", 32)]  # small: D=32
    for run in kernels:
        assert set(run["kernels"]) == {"fp32 Gather", "Gather + dequantize", "GatherBlockQuantized"}
        assert all(k["matches_its_table"] for k in run["kernels"].values())
        assert run["kernels"]["Gather + dequantize"]["ops"] == sorted(run["kernels"]["Gather + dequantize"]["ops"])
        assert "GatherBlockQuantized" in run["kernels"]["GatherBlockQuantized"]["ops"]
    goals = {g["key"]: g for g in record["goals"]}
    for absent in ("distilled", "int4", "synthetic_8x"):  # not in this plan: never "met"
        assert goals[absent]["met"] is None and goals[absent]["figures"] == "not measured"
    assert goals["int8"]["met"] in (True, False) and "AUC drop" in goals["int8"]["figures"]
    assert "ratio 4" in goals["qr_vs_hash"]["figures"]
    assert "| qr-4 | parent | share |" in report.markdown and "Hashing trick vs quotient-remainder" in report.markdown
