"""Reliability against the real tritonserver: bad input, overload, kill -9, a dead backend, a corrupt model, a
rollout, a soak, keepalive, TLS and restricted APIs. Every load targets 127.0.0.1 and is bounded in time.

The figures recorded in bench/results/*-reliability/ come from `tritonrec bench reliability`, which runs the same
functions with longer settings; here each property is asserted on a short run.
"""

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import grpc
import numpy as np
import psutil
import pytest
from tritonclient.grpc import service_pb2

from tritonrec.bench.reliability import faults
from tritonrec.bench.reliability.fuzz import fuzz_endpoint
from tritonrec.bench.reliability.run import BOUNDED, CORRUPT, SERVED, kill9_scenario, reliability_variants
from tritonrec.client import ClientOptions, ModelLimits, RankingClient, RetryPolicy
from tritonrec.client.channel import open_stub
from tritonrec.client.wire import infer_request
from tritonrec.errors import PermissionDeniedError, ServerOverloadedError, TransportSecurityError
from tritonrec.measure.soak import soak
from tritonrec.measure.traffic import TrafficSpec, load_user_pool
from tritonrec.repository import VARIANTS, VariantName, build_repository
from tritonrec.serving.server import LocalTriton

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def repo(data, export_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("reliability-repo")
    build_repository(out, data.spec, reliability_variants(), export_dir=export_dir)
    (out / CORRUPT / "1" / VARIANTS[VariantName.CPU].artifact).write_bytes(b"not an ONNX model\x00\xff" * 64)
    (out / CORRUPT / "1" / (VARIANTS[VariantName.CPU].artifact + ".data")).unlink(missing_ok=True)
    return out


@pytest.fixture(scope="module")
def server(repo):
    with LocalTriton(repo, log_file=repo / "server.log", models=[SERVED, BOUNDED]) as running:
        yield running


@pytest.fixture(scope="module")
def users(data):
    return load_user_pool(TrafficSpec(), history_len=data.spec.history_len).sample(64)


def test_five_thousand_malformed_requests_get_clear_answers_and_the_server_stays_up(server, data):
    channel, stub = open_stub(server.grpc_url, ClientOptions())
    try:
        result = fuzz_endpoint(
            stub,
            SERVED,
            max_history=data.spec.history_len,
            max_candidates=2048,
            n_items=data.spec.n_items,
            cases_count=5000,
            server_alive=server.is_running,
        )
    finally:
        channel.close()
    assert result.cases >= 5000
    assert result.unexpected_count == 0, result.unexpected[:5]
    assert result.server_down == 0 and result.good_after_burst[0] == result.good_after_burst[1] >= 20
    kinds = {key.split(":")[0] for key in result.outcomes}
    assert {"dtype", "rank", "shape", "bytes", "missing_input", "extra_input", "model_name", "huge_message"} <= kinds
    assert result.outcomes["valid: scores"] > 0


def test_a_retry_budget_keeps_attempts_per_call_low_under_sustained_overload(server, users):
    result = faults.overload(server.grpc_url, BOUNDED, users, threads=24, duration_s=4.0)
    without, within = result["no_budget"], result["retry_budget"]
    assert without["outcomes"].get("ServerOverloadedError", 0) > 0  # the bounded queue refuses, explicitly
    assert set(without["outcomes"]) <= {"ok", "ServerOverloadedError"}
    assert without["attempts_per_call"] > 2.0  # every caller retries up to 5 times
    assert within["attempts_per_call"] <= 1.5 and within["retries_refused_by_budget"] > 0
    assert within["outcomes"].get("ok", 0) > 0


def test_kill_9_during_a_locust_run_leaves_no_request_unaccounted(repo, tmp_path):
    server = LocalTriton(repo, log_file=tmp_path / "kill9.log", models=[SERVED])
    with server:
        result = faults.kill9_during_locust(server, kill9_scenario(tmp_path / "kill9.toml", 12), tmp_path / "locust")
    assert result["requests_issued"] > 100 and result["unaccounted"] == 0
    assert result["failed_explicitly"] > 0  # calls while the server was down failed with an explicit error
    assert all("ServerUnavailableError" in message for message in result["failure_messages"])
    assert result["recovery_s"] is not None


def test_a_dead_backend_keeps_readiness_green_but_the_watchdog_finds_and_reloads_it(repo, users, tmp_path):
    server = LocalTriton(repo, log_file=tmp_path / "stub.log", models=[SERVED])
    with server:
        result = faults.stub_death(server, SERVED, users)
        with RankingClient(server.grpc_url) as client:
            assert client.rank(*users[0]).scores.shape == users[0][1].shape
    assert result["stubs_killed"] == 2  # ranker_cpu runs two instances, one stub each
    assert result["model_ready_during_outage"] is True  # what HTTP readiness probes see: nothing wrong
    assert result["outcomes_after_kill"].get("ModelNotReadyError", 0) > 0
    assert len(result["watchdog_reloads"]) == 1 and "not healthy" in result["watchdog_reloads"][0]["error"]
    assert result["recovered_after_s"] is not None


def test_a_corrupt_model_fails_to_load_clearly_while_the_other_keeps_serving(server, users):
    result = faults.corrupt_model_load(server, SERVED, CORRUPT, users)
    assert CORRUPT in result["load_error"] and "INVALID_PROTOBUF" in result["load_error"]
    assert set(result["good_model_outcomes"]) == {"ok"} and result["good_model_ready_after"]


def test_rollout_and_rollback_under_load_fail_no_request(server, users):
    result = faults.rollout(server, SERVED, users)
    assert result["failed"] == 0 and result["outcomes"]["ok"] > 0
    assert [s["ready_versions"] for s in result["steps"]] == [["2"], ["1"]]


def test_one_minute_soak_grows_no_memory_descriptors_or_threads(server, users):
    result = soak(server.grpc_url, SERVED, users, psutil.Process(server.pid), duration_s=60, warmup_s=15)
    assert set(result["outcomes"]) == {"ok"} and result["calls"] > 500
    for side in ("server", "client"):
        assert result[side]["rss_growth_pct"] < 5.0, result[side]
        # One more thread that stays (a pool growing to its working size; seen in 2 of 8 runs of this test, the
        # thread not identified) is tolerated: a per-call leak over the > 500 calls would add hundreds.
        assert result[side]["fds_growth"] <= 0 and result[side]["threads_growth"] <= 1, result[side]


def test_triton_drops_a_queued_request_past_the_timeout_the_client_sends(server, users):
    # One instance, one user per execution: 24 callers queue up; a 1 ms per-request timeout expires in the queue.
    channel, stub = open_stub(server.grpc_url, ClientOptions())
    history, candidates = users[0]
    codes = []
    lock = threading.Lock()

    def call():
        request = infer_request(BOUNDED, "", history[None, :], candidates[None, :], timeout_us=1000)
        for _ in range(10):
            try:
                stub.ModelInfer(request, timeout=10)
                code = "OK"
            except grpc.RpcError as e:
                code = e.details()
            with lock:
                codes.append(code)

    threads = [threading.Thread(target=call) for _ in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    channel.close()
    assert any("timeout expired" in c.lower() for c in codes), sorted(set(codes))


def _connectivity(url, options, idle_s):
    """States an idle channel went through after connecting (a GOAWAY drops it from READY)."""
    channel = grpc.insecure_channel(url, options.channel_options())
    grpc.channel_ready_future(channel).result(timeout=10)
    states = []
    channel.subscribe(lambda s: states.append(s.name), try_to_connect=False)
    time.sleep(idle_s)
    channel.close()
    return states


def test_idle_keepalive_pings_get_goaway_from_a_default_triton_but_not_from_ours(repo, tmp_path):
    pinging = ClientOptions(keepalive_time_ms=1000, keepalive_timeout_ms=500, keepalive_idle=True)
    # Triton's defaults (what KEEPALIVE_ARGS change): idle pings refused, at most one per 5 minutes
    defaults = ["--grpc-keepalive-permit-without-calls=0", "--grpc-http2-min-recv-ping-interval-without-data=300000"]
    with LocalTriton(repo, log_file=tmp_path / "ka1.log", models=[SERVED], extra_args=defaults) as strict:
        refused = _connectivity(strict.grpc_url, pinging, 6)
    allowing = ["--grpc-http2-min-recv-ping-interval-without-data=500"]  # KEEPALIVE_ARGS, scaled to 1 s pings
    with LocalTriton(repo, log_file=tmp_path / "ka2.log", models=[SERVED], extra_args=allowing) as ours:
        kept = _connectivity(ours.grpc_url, pinging, 6)
        # the shipped client does not ping while idle: nothing for any Triton to refuse
        assert ClientOptions().keepalive_idle is False
    assert "IDLE" in refused or "TRANSIENT_FAILURE" in refused, refused  # GOAWAY too_many_pings dropped it
    assert kept in ([], ["READY"]), kept


def _self_signed(tmp_path, name):
    key, cert = tmp_path / f"{name}.key", tmp_path / f"{name}.crt"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={name}",
         "-keyout", str(key), "-out", str(cert), "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return key, cert


def test_a_tls_handshake_failure_is_reported_at_once_and_never_retried(repo, users, tmp_path):
    key, cert = _self_signed(tmp_path, "server")
    _, other_ca = _self_signed(tmp_path, "stranger")
    tls = ["--grpc-use-ssl=true", f"--grpc-server-cert={cert}", f"--grpc-server-key={key}"]
    with LocalTriton(repo, log_file=tmp_path / "tls.log", models=[SERVED], extra_args=tls) as server:
        wrong_ca = ClientOptions(ssl=True, root_certificates=str(other_ca), timeout_s=10.0)
        with RankingClient(server.grpc_url, options=wrong_ca) as client:
            started = time.monotonic()
            with pytest.raises(TransportSecurityError, match="(?i)handshake|certificate"):
                client.rank(*users[0])
            assert client.retries == 0 and time.monotonic() - started < 5.0  # not retried until the deadline


def test_restricted_apis_are_closed_without_the_key_open_with_it_and_the_key_never_logged(repo, users, tmp_path):
    secret = "s3cret-admin-key-7f3a"
    restricted = [f"--grpc-restricted-protocol=model-repository,model-config:admin-key={secret}"]
    log = tmp_path / "restricted.log"
    with LocalTriton(repo, log_file=log, models=[SERVED], extra_args=restricted) as server:
        channel, stub = open_stub(server.grpc_url, ClientOptions())
        load = service_pb2.RepositoryModelLoadRequest(model_name=SERVED)
        with pytest.raises(grpc.RpcError) as refused:
            stub.RepositoryModelLoad(load, timeout=30)
        assert "restricted" in refused.value.details()
        stub.RepositoryModelLoad(load, timeout=120, metadata=(("triton-grpc-protocol-admin-key", secret),))
        channel.close()
        # the config API is restricted too: a client given the limits ranks without reading them
        with RankingClient(server.grpc_url) as reader, pytest.raises(PermissionDeniedError) as denied:
            reader.rank(*users[0])
        limits = ModelLimits(max_history=50, max_candidates=2048)
        with RankingClient(server.grpc_url, limits=limits) as client:
            assert client.rank(*users[0]).scores.shape == users[0][1].shape
    assert secret not in str(denied.value) and secret not in log.read_text()


def test_overloaded_rejections_are_counted_by_the_client_not_by_triton(server, users):
    # Triton counts no queue-full rejection (statistics API or metrics); the client and the load reports do.
    result = faults.overload(server.grpc_url, BOUNDED, users, threads=16, duration_s=2.0)
    assert result["no_budget"]["outcomes"].get(ServerOverloadedError.__name__, 0) > 0
    with RankingClient(server.grpc_url, model=BOUNDED, options=ClientOptions(retry=RetryPolicy(max_attempts=1))) as c:
        assert np.isfinite(c.rank(*users[0]).scores).all()


def test_the_charts_liveness_probe_fails_on_a_dead_backend_that_health_endpoints_miss(repo, tmp_path):
    probe = [sys.executable, str(ROOT / "helm" / "tritonrec" / "files" / "infer_probe.py")]
    with LocalTriton(repo, log_file=tmp_path / "probe.log", models=[SERVED]) as server:
        args = [*probe, "--url", server.http_url, "--models", SERVED, "--timeout-s", "3"]
        assert subprocess.run(args, capture_output=True, text=True).returncode == 0
        for pid in server.stub_pids(SERVED):
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.5)
        with urllib.request.urlopen(f"{server.http_url}/v2/health/live", timeout=5) as live:
            assert live.status == 200  # what the HTTP liveness check would have seen
        dead = subprocess.run(args, capture_output=True, text=True)
        assert dead.returncode == 1 and "not healthy" in dead.stderr
