"""Client pieces that decide how failures are handled: the retry budget, the wire request, the error table,
rank_many's error order; and ranker_cpu's model.py answering per request (with a stand-in for Triton's
``pb_utils`` and a failing session: a fault that cannot be caused for real in ONNX Runtime on demand)."""

import asyncio
import sys
import time
import types

import numpy as np
import pytest

from tritonrec.client import AsyncRankingClient, ClientOptions, RetryBudget
from tritonrec.client.budget import RetryAccount
from tritonrec.client.request import ModelLimits, Ranking
from tritonrec.client.status import error_for
from tritonrec.client.wire import infer_request, scores_of
from tritonrec.errors import InvalidRequestError, ServerOverloadedError, ServerUnavailableError, TransportSecurityError

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_retry_budget_allows_a_share_of_calls_plus_a_reserve_over_its_window():
    clock = Clock()
    account = RetryAccount(RetryBudget(ratio=0.2, min_per_s=1.0, window_s=10), clock=clock)
    for _ in range(100):
        account.record_call()
    allowed = sum(account.try_retry() for _ in range(100))
    assert allowed == 30  # 0.2 x 100 calls + 1/s x 10 s
    assert account.refused == 70
    clock.now += 11  # the window has passed: calls and retries forgotten, only the reserve is left
    assert sum(account.try_retry() for _ in range(50)) == 10
    assert RetryAccount(None).try_retry()  # no budget: every retry allowed


def test_overload_retries_need_the_budget_but_retries_of_a_down_server_do_not():
    options = ClientOptions(retry_budget=RetryBudget(ratio=0.0, min_per_s=0.0))
    client = AsyncRankingClient("127.0.0.1:1", options=options)
    deadline = time.monotonic() + 60
    assert client._retry_wait(ServerUnavailableError("down"), 0, deadline) >= 0  # allowed: costs the server nothing
    with pytest.raises(ServerOverloadedError):
        client._retry_wait(ServerOverloadedError("queue full"), 0, deadline)
    assert client.retries_refused == 1


def test_wire_request_carries_raw_int64_and_the_per_request_timeout():
    history, candidates = np.array([[3, 4]], np.int64), np.array([[7, 8, 9]], np.int64)
    request = infer_request("ranker_cpu", "", history, candidates, timeout_us=2500)
    assert [i.name for i in request.inputs] == ["history", "candidates"]
    assert list(request.inputs[1].shape) == [1, 3] and request.inputs[1].datatype == "INT64"
    assert np.frombuffer(request.raw_input_contents[1], "<i8").tolist() == [7, 8, 9]
    assert request.parameters["timeout"].int64_param == 2500
    assert "timeout" not in infer_request("m", "", history, candidates).parameters


def test_scores_are_read_from_the_raw_output_bytes():
    from tritonclient.grpc import service_pb2

    response = service_pb2.ModelInferResponse()
    out = response.outputs.add(name="scores", datatype="FP32", shape=[1, 3])
    assert out.name == "scores"
    response.raw_output_contents.append(np.array([0.5, -1.0, 2.0], "<f4").tobytes())
    np.testing.assert_array_equal(scores_of(response, "m"), [[0.5, -1.0, 2.0]])


def test_tls_handshake_failures_are_their_own_error_and_never_retried():
    error = error_for(
        "UNAVAILABLE",
        "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:1: Ssl handshake failed: "
        "SSL_ERROR_SSL: error:1000007d:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED",
        context="m",
    )
    assert isinstance(error, TransportSecurityError) and not error.retryable
    refused = error_for("UNAVAILABLE", "failed to connect to all addresses; Connection refused", context="m")
    assert isinstance(refused, ServerUnavailableError) and refused.retryable


def test_async_rank_many_raises_the_first_failure_in_input_order():
    class Scripted(AsyncRankingClient):
        async def rank(self, history, candidates, **_):
            delay, error = history
            await asyncio.sleep(delay)
            if error:
                raise error
            return Ranking(np.asarray(candidates), np.zeros(len(candidates), np.float32))

    late = InvalidRequestError("user 0: fails last")
    early = ServerOverloadedError("user 2: fails first")
    client = Scripted("127.0.0.1:1", limits=ModelLimits(max_history=2, max_candidates=4))
    users = [((0.05, late), [1]), ((0.0, None), [2]), ((0.0, early), [3])]
    with pytest.raises(InvalidRequestError, match="fails last"):
        asyncio.run(client.rank_many([u[0] for u in users], [u[1] for u in users]))


# -- ranker_cpu's model.py with a stand-in pb_utils ---------------------------------------------------------------


class _Error:
    INVALID_ARG, INTERNAL, UNAVAILABLE, CANCELLED = "INVALID_ARG", "INTERNAL", "UNAVAILABLE", "CANCELLED"

    def __init__(self, message, code):
        self.message, self.code = message, code


class _Tensor:
    def __init__(self, name, array):
        self.name, self.array = name, array

    def as_numpy(self):
        return self.array


class _Response:
    def __init__(self, output_tensors, error=None):
        self.output_tensors, self.error = output_tensors, error


class _Request:
    def __init__(self, history, candidates, cancelled=False):
        self.tensors = {"history": _Tensor("history", history), "candidates": _Tensor("candidates", candidates)}
        self.cancelled = cancelled

    def is_cancelled(self):
        return self.cancelled


@pytest.fixture
def model_py(monkeypatch):
    stand_in = types.SimpleNamespace(
        TritonError=_Error,
        InferenceResponse=_Response,
        Tensor=_Tensor,
        get_input_tensor_by_name=lambda request, name: request.tensors[name],
    )
    from tritonrec.backends import ranker_cpu_model

    monkeypatch.setattr(ranker_cpu_model, "pb_utils", stand_in)
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", stand_in)
    return ranker_cpu_model


class _PoisonSession:
    """Fails any run whose batch holds the candidate id 666 (what a model failing on some input looks like)."""

    def run(self, outputs, feeds):
        if (feeds["candidates"] == 666).any():
            raise RuntimeError("kernel failed")
        scores = feeds["candidates"].astype(np.float32) / 10
        return [scores.reshape(-1)[feeds["real_index"]] if "real_index" in feeds else scores]


def _model(model_py, layout="padded"):
    model = model_py.TritonPythonModel()
    model.max_history, model.max_candidates, model.output_name = 4, 8, "scores"
    model.session, model.layout, model.cancel_check = _PoisonSession(), layout, True
    return model


@pytest.mark.parametrize("layout", ["padded", "ragged"])
def test_a_failing_batch_is_scored_request_by_request_so_only_the_bad_one_fails(model_py, layout):
    requests = [
        _Request(np.array([[1, 2]], np.int64), np.array([[10, 20]], np.int64)),
        _Request(np.array([[1]], np.int64), np.array([[666, 5]], np.int64)),
        _Request(np.zeros((1, 0), np.int64), np.array([[30]], np.int64)),
    ]
    responses = _model(model_py, layout).execute(requests)
    assert responses[0].error is None and responses[0].output_tensors[0].array.tolist() == [[1.0, 2.0]]
    assert responses[1].error.code == "INTERNAL" and "kernel failed" in responses[1].error.message
    assert responses[2].error is None and responses[2].output_tensors[0].array.tolist() == [[3.0]]


def test_a_cancelled_request_is_answered_cancelled_and_not_scored(model_py):
    requests = [
        _Request(np.array([[1]], np.int64), np.array([[666]], np.int64), cancelled=True),
        _Request(np.array([[1]], np.int64), np.array([[40]], np.int64)),
    ]
    responses = _model(model_py).execute(requests)
    assert responses[0].error.code == "CANCELLED"
    assert responses[1].error is None and responses[1].output_tensors[0].array.tolist() == [[4.0]]


def test_without_the_cancel_check_no_request_asks_the_server_and_each_is_scored(model_py):
    class _NoAsking(_Request):
        def is_cancelled(self):
            raise AssertionError("is_cancelled() was called: a round trip the config turned off")

    model = _model(model_py)
    model.cancel_check = False
    responses = model.execute([_NoAsking(np.array([[1]], np.int64), np.array([[40]], np.int64), cancelled=True)])
    assert responses[0].error is None and responses[0].output_tensors[0].array.tolist() == [[4.0]]


def test_the_cancel_check_is_a_config_parameter_of_ranker_cpu_off_by_default():
    from tritonrec.bench.serving.batching import batching_variants
    from tritonrec.data.feature_spec import FeatureSpec
    from tritonrec.repository import VARIANTS, VariantName, model_config

    shipped, checked = batching_variants(("dynamic", "dynamic_cancel_check"))
    assert not VARIANTS[VariantName.CPU].cancel_check and not shipped.cancel_check and checked.cancel_check
    spec = FeatureSpec(n_items=10, history_len=30)
    for variant, value in ((shipped, "0"), (checked, "1")):
        assert model_config(variant, spec).parameters["cancel_check"].string_value == value
