"""The bundled RankingModel as one spec among others: `tritonrec export spec` writes it, and the spec commands (export
with parity, evaluate in process and through the real tritonserver, repo build, query) give the bundled path's
figures on the same users."""

import contextlib
import io
import json

import pytest

from tritonrec.cli import main
from tritonrec.metrics import evaluate
from tritonrec.pipeline.spec_steps import RowsSplit, spec_quality_step, spec_rows
from tritonrec.scorers.eager import torch_scorer
from tritonrec.serving.server import LocalTriton
from tritonrec.spec import Layout, load_spec
from tritonrec.train.checkpoint import load_checkpoint

pytestmark = pytest.mark.integration

USERS = 300


def _run(argv: list[str]) -> str:
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(argv) == 0, argv
    return printed.getvalue()


@pytest.fixture(scope="module")
def bundled_spec(checkpoint_path, beauty_slice_dir, tmp_path_factory):
    work = tmp_path_factory.mktemp("bundled-spec")
    data = ["--dataset", "beauty", "--data-dir", str(beauty_slice_dir)]
    printed = _run(["export", "spec", "--checkpoint", str(checkpoint_path), *data, "--out", str(work / "spec"),
                    "--users", str(USERS), "--calibration-users", "40"])  # fmt: skip
    assert f"{USERS:,} test users evaluate, 40 validation users calibrate" in printed
    _run(["export", "onnx", "--spec", str(work / "spec" / "spec.toml"), "--out", str(work / "export"), "--no-fp16"])
    return work, load_spec(work / "spec" / "spec.toml")


def test_the_spec_scores_the_bundled_model_as_the_bundled_evaluation_does(bundled_spec, data, checkpoint_path):
    _, spec = bundled_spec
    assert spec.layout is Layout.QUERY_CANDIDATES and [i.name for i in spec.inputs] == ["history", "candidates"]
    rows = spec_rows(spec)
    assert rows.n_queries == USERS and spec_rows(spec, RowsSplit.CALIBRATE).n_queries == 40
    bundled = evaluate(torch_scorer(load_checkpoint(checkpoint_path).model), data.test.sample(USERS, 0))
    through_spec = spec_quality_step(spec).metrics
    for key in ("ndcg@5", "ndcg@10", "hr@5", "hr@10", "mrr"):
        assert through_spec[key] == pytest.approx(bundled[key], abs=1e-4), key
    assert through_spec["auc"] == pytest.approx(bundled["auc_global"], abs=1e-4)  # pooled over rows, as auc_global
    assert through_spec["gauc"] == pytest.approx(bundled["auc"], abs=1e-4)  # the mean within each user's candidates


def test_the_bundled_spec_served_by_triton_equals_eager(bundled_spec, tmp_path):
    work, spec = bundled_spec
    spec_file = str(work / "spec" / "spec.toml")
    _run(["repo", "build", "--spec", spec_file, "--export", str(work / "export"), "--out", str(tmp_path / "repo")])
    eager = spec_quality_step(spec).metrics
    with LocalTriton(tmp_path / "repo", models=["ranking_model_cpu"], log_file=tmp_path / "server.log") as server:
        served = json.loads(_run(["evaluate", "--spec", spec_file, "--url", server.grpc_url, "--compare", "--json"]))
        answer = json.loads(_run(["query", "--spec", spec_file, "--url", server.grpc_url, "--top-k", "5", "--json"]))
    assert served["max_abs_diff"] < 1e-5 and served["n_rows"] == eager["n_rows"]
    assert served["ndcg@10"] == pytest.approx(eager["ndcg@10"], abs=1e-4)
    assert answer["model"] == "ranking_model_cpu" and len(answer["scores"]) == 5
