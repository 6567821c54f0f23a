"""ranker_gpu's model.py on the real tritonserver, on the CPU path (KIND_CPU): the same file the GPU serves, the same
request contract as ranker_cpu, scores equal to the eager model; BF16 through the precision parameter."""

import dataclasses
import threading

import numpy as np
import pytest
import torch
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from tritonrec.client import RankingClient, infer_inputs
from tritonrec.data.splits import FeatureBatch
from tritonrec.export.torch_export import export_program
from tritonrec.metrics import ranking_metrics, score_eval_set
from tritonrec.model.config import preset
from tritonrec.model.ranker import RankingModel
from tritonrec.repository import VARIANTS, Batching, build_repository
from tritonrec.scorers.eager import torch_scorer
from tritonrec.scorers.torch_device import DeviceSettings, device_scorer
from tritonrec.scorers.triton import triton_scorer
from tritonrec.serving.server import LocalTriton

pytestmark = pytest.mark.integration

# The shipped variant with the GPU switched off: one instance on the CPU, no CUDA graphs. A second model serves
# BF16 and holds requests up to 0.5 s until 16 are queued, so a burst of 16 runs as one execute().
FP32 = dataclasses.replace(VARIANTS["ranker_gpu"], gpu=False, cuda_graphs=False, instances=1)
BF16 = dataclasses.replace(
    FP32,
    name="ranker_gpu_bf16",
    precision="bf16",
    batching=Batching(max_batch_size=64, preferred_batch_sizes=(16,), max_queue_delay_us=500_000),
)
N_USERS = 200


@pytest.fixture(scope="module")
def model(data):
    torch.manual_seed(0)
    return RankingModel(data.spec, preset("small"), data.catalogue).eval()


@pytest.fixture(scope="module")
def server(data, model, tmp_path_factory):
    export = tmp_path_factory.mktemp("program")
    export_program(model, export, rows=data.test)
    repo = tmp_path_factory.mktemp("repo")
    build_repository(repo, data.spec, [FP32, BF16], export_dir=export)
    with LocalTriton(repo, log_file=repo / "server.log", models=[FP32.name, BF16.name]) as running:
        yield running


def _infer(server, history, candidates, model=FP32.name):
    raw = grpcclient.InferenceServerClient(server.grpc_url)
    return raw.infer(model, infer_inputs({"history": history, "candidates": candidates})).as_numpy("scores")


def test_served_fp32_scores_equal_the_eager_model(data, model, server):
    test = data.test.head(N_USERS)
    with RankingClient(server.grpc_url, model=FP32.name) as client:
        served = score_eval_set(triton_scorer(client, concurrency=8), test)
        stats = client.statistics()
    eager = score_eval_set(torch_scorer(model), test)
    np.testing.assert_allclose(served, eager, atol=1e-5, rtol=0)
    assert ranking_metrics(served, test.labels)["ndcg@10"] == ranking_metrics(eager, test.labels)["ndcg@10"]
    assert stats["execution_count"] < stats["inference_count"]  # the dynamic batcher joined users


def test_served_bf16_equals_in_process_bf16_autocast(data, model, server):
    test = data.test.head(64)
    with RankingClient(server.grpc_url, model=BF16.name) as client:
        served = score_eval_set(triton_scorer(client, concurrency=16), test)
    local = score_eval_set(device_scorer(model, DeviceSettings(device="cpu", precision="bf16", cast="autocast")), test)
    fp32 = score_eval_set(torch_scorer(model), test)
    np.testing.assert_allclose(served, local, atol=1e-3, rtol=0)
    assert 0 < np.abs(served - fp32).max() < 0.05  # really BF16, and close to FP32


BAD = {
    "negative ids": (np.array([[4, -1]]), np.ones((1, 5)), "history has 1 negative id(s), first -1 at [0, 1]"),
    "empty candidates": (np.ones((1, 3)), np.zeros((1, 0)), "candidates is empty"),
    "too many candidates": (np.ones((1, 3)), np.ones((1, 3000)), "at most 2048 per request"),
    "history too long": (np.ones((1, 80)), np.ones((1, 5)), "this model reads at most 50"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_request_gets_invalid_argument_from_model_py(server, case):
    history, candidates, message = BAD[case]
    with pytest.raises(InferenceServerException) as caught:
        _infer(server, history.astype(np.int64), candidates.astype(np.int64))
    assert caught.value.status() == "StatusCode.INVALID_ARGUMENT", caught.value
    assert message in caught.value.message(), caught.value.message()


def test_ragged_batch_with_one_bad_request_fails_alone_and_the_rest_match_eager(data, model, server):
    stats = grpcclient.InferenceServerClient(server.grpc_url)

    def executions():
        return int(stats.get_inference_statistics(BF16.name).model_stats[0].execution_count)

    rng = np.random.default_rng(0)
    sent = {}
    for i in range(16):  # histories of 0..50 items, 1..300 candidates: one execute() must pack them
        length = int(rng.integers(0, data.spec.history_len + 1))
        history = rng.integers(1, data.spec.n_items + 1, (1, length))
        if i == 7:
            history = np.array([[3, -5]])
        sent[i] = (history.astype(np.int64), rng.integers(1, data.spec.n_items + 1, (1, int(rng.integers(1, 300)))))
    results: dict[int, object] = {}
    ready = threading.Barrier(len(sent))

    def send(i):
        raw = grpcclient.InferenceServerClient(server.grpc_url)  # connected before the barrier: the 16 requests
        inputs = infer_inputs({"history": sent[i][0], "candidates": sent[i][1]})  # then leave within a few ms
        raw.is_server_live()
        ready.wait(timeout=60)
        try:
            results[i] = raw.infer(BF16.name, inputs).as_numpy("scores")
        except InferenceServerException as e:
            results[i] = e

    before = executions()
    threads = [threading.Thread(target=send, args=(i,)) for i in sent]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert executions() - before == 1
    assert {i for i, r in results.items() if isinstance(r, InferenceServerException)} == {7}
    assert results[7].status() == "StatusCode.INVALID_ARGUMENT"
    scorer = device_scorer(model, DeviceSettings(device="cpu", precision="bf16", cast="autocast"))
    for i in set(sent) - {7}:
        history, candidates = sent[i]
        padded = np.zeros((1, data.spec.history_len), np.int64)
        padded[0, data.spec.history_len - history.shape[1] :] = history
        expected = scorer(FeatureBatch(padded, candidates))
        np.testing.assert_allclose(results[i], expected, atol=1e-3, err_msg=f"request {i}")
