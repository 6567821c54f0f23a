"""The real tritonserver (nvidia-pytriton wheel) serving ranker_cpu: parity, batching and bad input over gRPC."""

import dataclasses
import json
import threading

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from tritonrec.bench.serving.request_contracts import ContractSettings, run_contract_bench
from tritonrec.client import RankingClient, infer_inputs
from tritonrec.metrics import ranking_metrics, score_eval_set
from tritonrec.repository import VARIANTS, Batching, build_repository
from tritonrec.scorers.ort import onnx_scorer
from tritonrec.scorers.triton import triton_scorer
from tritonrec.serving.server import LocalTriton

pytestmark = pytest.mark.integration

# A second ranker_cpu that holds requests for up to 0.5 s until 16 are queued, so a burst of 16 runs as one batch.
PROBE = dataclasses.replace(
    VARIANTS["ranker_cpu"],
    name="ranker_cpu_probe",
    instances=1,  # one execute() must see all 16
    batching=Batching(max_batch_size=64, preferred_batch_sizes=(16,), max_queue_delay_us=500_000),
)
N_USERS = 400


@pytest.fixture(scope="module")
def server(data, export_dir, tmp_path_factory):
    repo = tmp_path_factory.mktemp("repo")
    build_repository(repo, data.spec, [VARIANTS["ranker_cpu"], PROBE], export_dir=export_dir)
    assert (repo / "ranker_cpu" / "1" / "model_ragged.onnx.data").is_file()  # the external weights travel too
    with LocalTriton(repo, log_file=repo / "server.log", models=["ranker_cpu", PROBE.name]) as running:
        yield running


@pytest.fixture
def client(server):
    with RankingClient(server.grpc_url) as c:
        yield c


def _infer(server, history, candidates, *, model="ranker_cpu", dtype="INT64"):
    raw = grpcclient.InferenceServerClient(server.grpc_url)
    inputs = infer_inputs({"history": history, "candidates": candidates}, dtype)
    return raw.infer(model, inputs).as_numpy("scores")


def test_scores_over_grpc_equal_in_process_onnx_and_ndcg_matches(data, export_dir, client):
    test = data.test.head(N_USERS)
    local = score_eval_set(onnx_scorer(export_dir / "model.onnx"), test)
    served = score_eval_set(triton_scorer(client, concurrency=8), test)
    np.testing.assert_allclose(served, local, atol=1e-5, rtol=0)
    assert ranking_metrics(served, test.labels)["ndcg@10"] == ranking_metrics(local, test.labels)["ndcg@10"]
    assert client.requests_sent == N_USERS


def test_dynamic_batching_runs_fewer_executions_than_requests(data, client):
    before = client.statistics()
    test = data.test.head(256)
    client.rank_many(list(test.histories), list(test.candidates), concurrency=16)
    after = client.statistics()
    inferences = after["inference_count"] - before["inference_count"]
    executions = after["execution_count"] - before["execution_count"]
    assert inferences == 256
    assert executions < inferences / 2, (executions, inferences)


def _good_request(data):
    return data.test.histories[0][None, :], data.test.candidates[0][None, :]


def _assert_still_serving(server, data, client):
    history, candidates = _good_request(data)
    expected = client.rank(history[0], candidates[0]).scores
    np.testing.assert_allclose(_infer(server, history, candidates)[0], expected, atol=1e-6)


BAD_REQUESTS = {
    "wrong dtype": (np.ones((1, 3), np.float32), np.ones((1, 5), np.float32), "FP32", "expects 'INT64'"),
    "wrong rank": (np.ones((1, 2, 3), np.int64), np.ones((1, 5), np.int64), "INT64", "unexpected shape"),
    "negative ids": (np.array([[4, -1]], np.int64), np.ones((1, 5), np.int64), "INT64", "negative id"),
    "empty candidates": (np.ones((1, 3), np.int64), np.zeros((1, 0), np.int64), "INT64", "candidates is empty"),
    "too many candidates": (np.ones((1, 3), np.int64), np.ones((1, 3000), np.int64), "INT64", "at most 2048"),
    "history too long": (np.ones((1, 80), np.int64), np.ones((1, 5), np.int64), "INT64", "at most 50"),
    "batch over max_batch_size": (
        np.ones((65, 3), np.int64),
        np.ones((65, 5), np.int64),
        "INT64",
        "batch-size must be <= 64",
    ),
    "row count mismatch": (np.ones((2, 3), np.int64), np.ones((1, 5), np.int64), "INT64", "batch size does not match"),
}


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_bad_request_gets_invalid_argument_naming_the_problem_and_server_keeps_serving(server, data, client, case):
    history, candidates, dtype, message = BAD_REQUESTS[case]
    with pytest.raises(InferenceServerException) as caught:
        _infer(server, history, candidates, dtype=dtype)
    assert caught.value.status() == "StatusCode.INVALID_ARGUMENT", caught.value
    assert message in caught.value.message(), caught.value.message()
    _assert_still_serving(server, data, client)


def test_unknown_huge_ids_score_as_the_oov_item(server, data):
    oov = data.spec.n_items + 1
    history = np.array([[3, 7, 10**15]], np.int64)
    huge = _infer(server, history, np.array([[10**15, 2**62, oov, 5]], np.int64))[0]
    same = _infer(server, np.array([[3, 7, oov]], np.int64), np.array([[oov, oov, oov, 5]], np.int64))[0]
    np.testing.assert_allclose(huge, same, atol=1e-6)
    assert np.isfinite(huge).all()


def test_one_bad_request_in_a_dynamic_batch_fails_alone(server, data):
    stats = grpcclient.InferenceServerClient(server.grpc_url)

    def executions():
        return int(stats.get_inference_statistics(PROBE.name).model_stats[0].execution_count)

    before = executions()
    results: dict[int, object] = {}
    threads = []
    for i in range(16):
        history = data.test.histories[i][None, :].copy()
        if i == 7:
            history[0, -1] = -5
        candidates = data.test.candidates[i][None, :]

        def send(i=i, history=history, candidates=candidates):
            try:
                results[i] = _infer(server, history, candidates, model=PROBE.name)
            except InferenceServerException as e:
                results[i] = e

        threads.append(threading.Thread(target=send))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert executions() - before == 1  # all 16 ran in one execute()
    failed = {i for i, r in results.items() if isinstance(r, InferenceServerException)}
    assert failed == {7}
    assert results[7].status() == "StatusCode.INVALID_ARGUMENT" and "negative id" in results[7].message()
    assert all(results[i].shape == (1, data.test.candidates.shape[1]) for i in results if i != 7)


def test_contract_bench_measures_both_contracts_through_the_real_server(export_dir, tmp_path):
    settings = ContractSettings(users=32, users_per_call=8, in_process_s=0.2, triton_requests=24, concurrency=4)
    report = run_contract_bench(export_dir, tmp_path, settings, command="test").record
    assert report["request_bytes"]["per_row"] > 10 * report["request_bytes"]["per_request"]
    for contract in ("per_request", "per_row"):
        assert report["triton"][contract]["errors"] == 0
        assert report["triton"][contract]["candidates_per_second"] > 0
        assert report["in_process_onnxruntime"][contract]["session_runs"] > 0
    assert "| per_row |" in (tmp_path / "contract.md").read_text()
    assert json.loads((tmp_path / "contract.json").read_text())["settings"]["n_candidates"] == 200
