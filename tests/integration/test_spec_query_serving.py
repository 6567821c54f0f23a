"""A query + candidates model defined only in a test file, served by the real tritonserver from its spec: query
inputs once per request, item inputs per candidate, the CPU variant batching queries of different candidate and
history counts; served scores equal to eager on every evaluation row, through the `query` and `evaluate` commands
too, and bad requests answered with what was wrong while the server stays up."""

import contextlib
import io
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from tritonrec.cli import main
from tritonrec.client import ClientOptions, RankingClient
from tritonrec.errors import InvalidRequestError
from tritonrec.export.spec_export import export_spec
from tritonrec.pipeline.spec_steps import spec_quality_step, spec_repository_step, spec_rows
from tritonrec.repository.spec_variants import SpecVariant, SpecVariantKind
from tritonrec.scorers.rows import module_rows_scorer
from tritonrec.serving.server import LocalTriton
from tritonrec.spec import load_spec
from tritonrec.spec.module import load_module

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))  # the test-file model and its rows
from test_spec_query_layout import QUERY_SPEC_TOML, write_query_rows  # noqa: E402

pytestmark = pytest.mark.integration

UNIT = Path(__file__).resolve().parents[1] / "unit"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    work = tmp_path_factory.mktemp("spec-query-serving")
    write_query_rows(work / "rows.parquet", n_queries=60)
    (work / "spec.toml").write_text(QUERY_SPEC_TOML.format(factory="make_history_ranker", here=UNIT))
    spec = load_spec(work / "spec.toml")
    export_spec(spec, spec_rows(spec), work / "export", fp16=False)
    spec_repository_step(
        spec, work / "export", work / "repo", [SpecVariant(kind=SpecVariantKind.CPU, max_candidates=64)]
    )
    with LocalTriton(work / "repo", models=["history_ranker_cpu"], log_file=work / "server.log") as server:
        yield spec, server, work


def test_served_scores_equal_eager_on_every_evaluation_query_batched_together(served):
    spec, server, _ = served
    rows = spec_rows(spec)
    eager = module_rows_scorer(load_module(spec), spec)
    queries = list(rows.queries())
    with RankingClient(server.grpc_url, model="history_ranker_cpu") as client:
        with ThreadPoolExecutor(8) as pool:  # in flight together: the dynamic batcher joins queries of unequal N
            answers = list(pool.map(lambda q: client.score_rows(rows.batch(*q)), queries))
    for (start, stop), scores in zip(queries, answers, strict=True):
        assert scores.shape == (stop - start,)
        np.testing.assert_allclose(scores, np.asarray(eager(rows.batch(start, stop))).reshape(-1), atol=1e-5)
    served_quality, eager_quality = spec_quality_step(spec, url=server.grpc_url), spec_quality_step(spec)
    assert served_quality.metrics["n_rows"] == len(rows)
    for key in ("auc", "logloss", "ndcg@10", "mrr"):
        assert served_quality.metrics[key] == pytest.approx(eager_quality.metrics[key], abs=1e-5), key


def test_query_and_evaluate_commands_reach_the_served_query_layout_model(served):
    _, server, work = served
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert (
            main(["query", "--spec", str(work / "spec.toml"), "--url", server.grpc_url, "--top-k", "2", "--json"]) == 0
        )
    answer = json.loads(printed.getvalue())
    assert answer["model"] == "history_ranker_cpu" and len(answer["scores"]) == 2
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert (
            main(["evaluate", "--spec", str(work / "spec.toml"), "--url", server.grpc_url, "--compare", "--json"]) == 0
        )
    compared = json.loads(printed.getvalue())
    assert compared["runtime"] == "triton" and compared["max_abs_diff"] < 1e-5


def test_bad_query_layout_requests_get_their_error_and_the_server_stays_up(served):
    spec, server, _ = served
    rows = spec_rows(spec)
    good = rows.batch(*next(rows.queries()))
    n = good["item"].shape[1]
    with RankingClient(server.grpc_url, model="history_ranker_cpu", options=ClientOptions(timeout_s=5)) as client:
        with pytest.raises(InvalidRequestError, match="different candidate counts"):
            client.score_rows({**good, "price": good["price"][:, : n - 1]})
        with pytest.raises(
            InvalidRequestError, match="item holds 65 candidates per query; this model takes at most 64"
        ):
            client.score_rows({**good, "item": np.ones((1, 65), np.int64), "price": np.ones((1, 65), np.float32)})
        with pytest.raises(InvalidRequestError, match="input 'age' is int64, the model takes float32"):
            client.score_rows({**good, "age": np.array([30])})
        with pytest.raises(InvalidRequestError, match=r"input 'item' has rows of shape \[3, 1\]"):
            client.score_rows({**good, "item": np.ones((1, 3, 1), np.int64)})
        np.testing.assert_allclose(
            client.score_rows(good),
            np.asarray(module_rows_scorer(load_module(spec), spec)(good)).reshape(-1),
            atol=1e-5,
        )
