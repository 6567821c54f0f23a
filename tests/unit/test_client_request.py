"""The client's checks, request layout, status table and retry policy (no server)."""

import random

import grpc
import numpy as np
import pytest
from google.protobuf import json_format

from tritonrec.client import STATUS_ERRORS, ModelLimits, RetryPolicy, error_for
from tritonrec.client.request import candidate_chunks, prepare_user, top_k
from tritonrec.data.feature_spec import FeatureSpec
from tritonrec.errors import (
    ClientError,
    InferenceTimeoutError,
    InvalidRequestError,
    ModelNotReadyError,
    PermissionDeniedError,
    ServerOverloadedError,
    ServerUnavailableError,
)
from tritonrec.repository import VARIANTS, model_config

pytestmark = pytest.mark.unit

LIMITS = ModelLimits(max_history=4, max_candidates=3)


def test_status_table_covers_every_grpc_status_but_ok():
    assert set(STATUS_ERRORS) == set(grpc.StatusCode) - {grpc.StatusCode.OK}
    assert all(issubclass(cls, ClientError) for cls in STATUS_ERRORS.values())


@pytest.mark.parametrize(
    ("status", "message", "expected", "retryable"),
    [
        (
            "StatusCode.UNAVAILABLE",
            "failed to connect to all addresses; Connection refused",
            ServerUnavailableError,
            True,
        ),
        ("StatusCode.UNAVAILABLE", "Exceeds maximum queue size", ServerOverloadedError, True),
        ("StatusCode.UNAVAILABLE", "Request timeout expired", ServerOverloadedError, True),
        ("StatusCode.UNAVAILABLE", "This protocol is restricted, expecting header 'x'", PermissionDeniedError, False),
        (
            "StatusCode.UNAVAILABLE",
            "Request for unknown model: 'm' has no available versions",
            ModelNotReadyError,
            False,
        ),
        ("StatusCode.RESOURCE_EXHAUSTED", "queue full", ServerOverloadedError, True),
        ("StatusCode.RESOURCE_EXHAUSTED", "Received message larger than max (9 vs. 4)", InvalidRequestError, False),
        ("StatusCode.INVALID_ARGUMENT", "history has 1 negative id(s)", InvalidRequestError, False),
        ("StatusCode.DEADLINE_EXCEEDED", "Deadline Exceeded", InferenceTimeoutError, False),
        ("StatusCode.INTERNAL", "Stub process 'ranker_cpu_0_0' is not healthy.", ModelNotReadyError, False),
        ("StatusCode.INTERNAL", "onnxruntime failed", ClientError, False),
        (None, "no status", ClientError, False),
    ],
)
def test_error_for_tells_apart_what_triton_reports_with_one_code(status, message, expected, retryable):
    error = error_for(status, message, context="ranker_cpu")
    assert type(error) is expected
    assert error.retryable is retryable
    assert str(error) == f"ranker_cpu: {message}"


def test_prepare_user_drops_padding_keeps_the_most_recent_items():
    history, candidates = prepare_user([0, 0, 1, 2, 3, 4, 5], np.array([7, 8], np.int32), LIMITS)
    assert history.tolist() == [[2, 3, 4, 5]] and history.dtype == np.int64
    assert candidates.tolist() == [7, 8] and candidates.dtype == np.int64
    assert prepare_user([], [1], LIMITS)[0].shape == (1, 0)  # a new user
    padded, _ = prepare_user([9], [1], ModelLimits(max_history=4, max_candidates=3, pad_history=True))
    assert padded.tolist() == [[0, 0, 0, 9]]


@pytest.mark.parametrize(
    ("history", "candidates", "message"),
    [
        ([[1, 2]], [1], "history must be a 1-D sequence"),
        ([1.0, 2.0], [1], "history must hold integer item ids, got dtype float64"),
        ([1], [True, False], "candidates must hold integer item ids, got dtype bool"),
        ([1, -3], [1], "history has 1 negative id(s), first -3 at position 1"),
        ([1], [5, -1, -2], "candidates has 2 negative id(s), first -1 at position 1"),
        ([1], [], "candidates is empty"),
        ("abc", [1], "1-D sequence"),
    ],
)
def test_bad_input_is_refused_before_sending(history, candidates, message):
    with pytest.raises(InvalidRequestError, match=message.replace("(", r"\(").replace(")", r"\)")):
        prepare_user(history, candidates, LIMITS)


def test_long_candidate_lists_are_split_into_request_sized_chunks():
    chunks = candidate_chunks(np.arange(1, 8, dtype=np.int64), 3)
    assert [c.tolist() for c in chunks] == [[[1, 2, 3]], [[4, 5, 6]], [[7]]]


def test_top_k_orders_by_score_and_keeps_input_order_on_ties():
    items = np.array([10, 11, 12, 13], np.int64)
    scores = np.array([0.5, 2.0, 0.5, 1.0], np.float32)
    best = top_k(items, scores, 3)
    assert best.items.tolist() == [11, 13, 10] and best.scores.tolist() == [2.0, 1.0, 0.5]
    assert top_k(items, scores, None).items.tolist() == [10, 11, 12, 13]
    with pytest.raises(InvalidRequestError, match="top_k must be >= 1"):
        top_k(items, scores, 0)


def test_limits_are_read_from_the_generated_configs():
    spec = FeatureSpec(n_items=10, history_len=30)
    as_json = {
        name: json_format.MessageToDict(model_config(v, spec), preserving_proto_field_name=True)
        for name, v in VARIANTS.items()
    }
    assert ModelLimits.from_config(as_json["ranker_cpu"]) == ModelLimits(max_history=30, max_candidates=2048)
    assert ModelLimits.from_config(as_json["ranker_trt_fp16"]) == ModelLimits(
        max_history=30, max_candidates=2048, pad_history=True
    )


def test_backoff_is_jittered_and_bounded():
    policy = RetryPolicy(initial_backoff_s=0.1, max_backoff_s=0.3, multiplier=2.0)
    rng = random.Random(0)
    waits = [[policy.backoff_s(attempt, rng) for _ in range(200)] for attempt in range(4)]
    assert all(0 <= w <= 0.1 for w in waits[0]) and max(waits[0]) > 0.05
    assert all(0 <= w <= 0.3 for w in waits[3]) and max(waits[3]) > 0.2
    assert len(set(waits[1])) == 200  # jitter: no two clients wait the same


def test_load_balancing_policy_reaches_the_channel_and_is_checked():
    from tritonrec.client import ClientOptions
    from tritonrec.errors import ConfigError

    args = dict(ClientOptions(load_balancing="round_robin").channel_options())
    assert args["grpc.lb_policy_name"] == "round_robin"
    assert dict(ClientOptions().channel_options())["grpc.lb_policy_name"] == "pick_first"
    with pytest.raises(ConfigError, match="load_balancing"):
        ClientOptions(load_balancing="random")
