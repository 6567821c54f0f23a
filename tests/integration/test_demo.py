"""The README's main job, in its quick form: train on Beauty, export, serve on the real Triton, score over gRPC."""

import json

import pytest

from tritonrec.cli import main

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_quick_demo_serves_the_model_on_triton_with_the_same_quality_and_reuses_its_checkpoint(tmp_path, capsys):
    args = ["demo", "--quick", "--out", str(tmp_path / "reports"), "--checkpoint", str(tmp_path / "ckpt")]
    assert main(args) == 0
    summary = json.loads((tmp_path / "reports" / "summary.json").read_text())
    assert summary["preset"] == "small"
    assert summary["test"]["n_users"] == 22_363
    assert summary["ndcg@10_eager"] > summary["popularity_test"]["ndcg@10"] + 0.1
    assert summary["ndcg@10_triton"] == summary["ndcg@10_eager"]
    assert summary["auc_triton"] == summary["auc_eager"]
    assert summary["max_abs_diff"] < 1e-4 and summary["max_abs_diff_vs_onnx"] < 1e-5
    assert summary["grpc_requests"] == 22_363 == summary["triton_inferences"]
    assert summary["triton_executions"] < summary["grpc_requests"]  # dynamic batching joined requests
    assert (tmp_path / "reports" / "model_repository" / "ranker_cpu" / "config.pbtxt").is_file()
    # the same model as a spec, through the spec path, gives the same figures
    spec = summary["spec"]
    assert spec["ndcg@10_triton"] == summary["ndcg@10_eager"] and spec["gauc_triton"] == summary["auc_eager"]
    assert spec["test_triton"]["auc"] == summary["test"]["auc_global"] and spec["max_abs_diff"] < 1e-4
    assert spec["test_triton"]["n_queries"] == 22_363 and all(r["passed"] for r in spec["export_parity"])
    assert (tmp_path / "reports" / "model_repository" / "ranking_model_cpu" / "config.pbtxt").is_file()
    out = capsys.readouterr().out
    assert "training preset 'small'" in out and "[5/7] serving on the real tritonserver" in out
    assert "The same model as a spec" in out
    # step 6: a short sweep of the same server, its report beside the summary
    assert "[6/7] short load sweep" in out and "Sweep: best" in out
    assert summary["sweep_best_requests_per_second"] > 0 and summary["sweep_best_concurrency"] in (1, 8)
    sweep = json.loads((tmp_path / "reports" / "sweep" / "sweep.json").read_text())
    assert [p["level"] for p in sweep["points"]] == [1, 8]
    assert all(run["errors"] == 0 for p in sweep["points"] for run in p["tritonrec"]["runs"])
    assert (tmp_path / "reports" / "sweep" / "sweep.png").is_file()
    # step 7: a short selection over eager, ONNX Runtime and Triton x FP32/FP16, and its pick
    selection = json.loads((tmp_path / "reports" / "select" / "select.json").read_text())
    rows = {r["name"]: r for r in selection["candidates"]}
    measured = {n for n, r in rows.items() if r["measured"]}
    assert {"base/pytorch-eager/fp32", "base/onnxruntime/fp32", "base/onnxruntime/fp16", "base/triton/fp32"} <= measured
    assert summary["selection_chosen"] == selection["chosen"] and rows[selection["chosen"]]["served"]
    assert f"Pick (p99 <= 50 ms, AUC drop <= 0.0008, NDCG@10 drop <= 0.005): {selection['chosen']}" in out
    # a second run reuses the checkpoint and reproduces the same test figures
    assert main(args) == 0
    again = json.loads((tmp_path / "reports" / "summary.json").read_text())
    assert "reusing" in capsys.readouterr().out
    assert again["ndcg@10_eager"] == summary["ndcg@10_eager"]
    assert again["ndcg@10_triton"] == summary["ndcg@10_triton"]
