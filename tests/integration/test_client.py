"""RankingClient / AsyncRankingClient against the real tritonserver: parity, top-K, deadlines, restarts,
overload with retries, bad input that never leaves the client, and a restricted API."""

import ast
import asyncio
import dataclasses
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from tritonrec.bench.serving.client_bench import FLOOR, ClientBenchSettings, run_client_bench
from tritonrec.cli import main
from tritonrec.client import AsyncRankingClient, ClientOptions, RankingClient, RetryPolicy, infer_inputs
from tritonrec.client.status import error_for
from tritonrec.data.splits import FeatureBatch
from tritonrec.errors import (
    InferenceTimeoutError,
    InvalidRequestError,
    PermissionDeniedError,
    ServerOverloadedError,
    ServerUnavailableError,
)
from tritonrec.measure.points import PaSettings
from tritonrec.repository import VARIANTS, Batching, build_repository
from tritonrec.scorers.ort import onnx_scorer
from tritonrec.serving.server import LocalTriton

pytestmark = pytest.mark.integration

# One request per execution and a queue of one: a burst of concurrent requests overflows it for sure.
TINY_QUEUE = dataclasses.replace(
    VARIANTS["ranker_cpu"],
    name="ranker_cpu_tiny_queue",
    batching=Batching(max_batch_size=1, preferred_batch_sizes=(), max_queue_delay_us=0, max_queue_size=1),
)


@pytest.fixture(scope="module")
def repo(data, export_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("client-repo")
    build_repository(out, data.spec, [VARIANTS["ranker_cpu"], TINY_QUEUE], export_dir=export_dir)
    return out


@pytest.fixture(scope="module")
def server(repo):
    with LocalTriton(repo, log_file=repo / "server.log", models=["ranker_cpu", TINY_QUEUE.name]) as running:
        yield running


@pytest.fixture(scope="module")
def local(export_dir):
    score = onnx_scorer(export_dir / "model.onnx")

    def one(history, candidates):
        padded = np.zeros((1, 50), np.int64)
        kept = history[history != 0][-50:]
        padded[0, 50 - kept.size :] = kept
        return score(FeatureBatch(padded, np.asarray(candidates, np.int64)[None, :]))[0]

    return one


def _user(data, i):
    return data.test.histories[i], data.test.candidates[i]


def test_rank_equals_in_process_scores_and_top_k_is_ordered(server, data, local):
    with RankingClient(server.grpc_url) as client:
        for i in range(5):
            history, candidates = _user(data, i)
            ranking = client.rank(history, candidates)
            np.testing.assert_allclose(ranking.scores, local(history, candidates), atol=1e-5)
            assert ranking.items.tolist() == candidates.tolist()
            best = client.rank(history, candidates, top_k=10)
            order = np.argsort(-ranking.scores, kind="stable")[:10]
            assert best.items.tolist() == candidates[order].tolist()
            assert np.all(np.diff(best.scores) <= 0)


def test_candidate_lists_longer_than_the_model_takes_are_split_and_merged(server, data, local):
    history = data.test.histories[0]
    candidates = np.arange(1, 5001, dtype=np.int64)  # the model takes at most 2048 per request
    with RankingClient(server.grpc_url) as client:
        ranking = client.rank(history, candidates)
        assert client.requests_sent == 3
    np.testing.assert_allclose(ranking.scores, local(history, candidates), atol=1e-5)


def test_async_client_matches_the_sync_client(server, data):
    users = [_user(data, i) for i in range(40)]

    async def main():
        async with AsyncRankingClient(server.grpc_url) as client:
            assert await client.is_server_ready() and await client.is_model_ready()
            one = await client.rank(*users[0], top_k=5)
            many = await client.rank_many([u[0] for u in users], [u[1] for u in users], concurrency=8)
            return one, many

    one, many = asyncio.run(main())
    with RankingClient(server.grpc_url) as client:
        expected = client.rank_many([u[0] for u in users], [u[1] for u in users])
        assert client.rank(*users[0], top_k=5).items.tolist() == one.items.tolist()
    for got, want in zip(many, expected, strict=True):
        np.testing.assert_allclose(got.scores, want.scores, atol=1e-6)


def test_bad_input_never_reaches_the_server(server, data):
    history, candidates = _user(data, 0)
    with RankingClient(server.grpc_url) as client:
        client.rank(history, candidates)
        before = client.statistics()
        sent = client.requests_sent
        for bad in ([1.5, 2.0], [[1, 2]], [3, -1]):
            with pytest.raises(InvalidRequestError):
                client.rank(bad, candidates)
        with pytest.raises(InvalidRequestError, match="candidates is empty"):
            client.rank(history, [])
        assert client.requests_sent == sent
        assert client.statistics() == before


def test_too_short_deadline_is_an_inference_timeout(server, data):
    with RankingClient(server.grpc_url) as client:
        client.rank(*_user(data, 0))  # connect and read the limits first
        with pytest.raises(InferenceTimeoutError):
            client.rank(*_user(data, 1), timeout_s=1e-4)
        assert client.rank(*_user(data, 1)).scores.shape == (100,)


def test_full_queue_is_a_retryable_overload_and_the_clients_retry_succeeds(server, data):
    raw_errors = []

    def flood():
        raw = grpcclient.InferenceServerClient(server.grpc_url)
        history, candidates = _user(data, 0)
        for _ in range(20):
            inputs = infer_inputs({"history": history[None, :], "candidates": candidates[None, :]})
            try:
                raw.infer(TINY_QUEUE.name, inputs)
            except InferenceServerException as e:
                raw_errors.append(error_for(e.status(), e.message(), context=TINY_QUEUE.name))

    threads = [threading.Thread(target=flood) for _ in range(6)]
    # no retry budget: this test is about the per-call policy riding out a short overload
    policy = RetryPolicy(max_attempts=30, initial_backoff_s=0.01)
    options = ClientOptions(timeout_s=30, retry=policy, retry_budget=None)
    with RankingClient(server.grpc_url, model=TINY_QUEUE.name, options=options) as client:
        client.limits()
        for t in threads:
            t.start()
        users = [_user(data, i) for i in range(60)]
        rankings = client.rank_many([u[0] for u in users], [u[1] for u in users], concurrency=8)
        for t in threads:
            t.join()
        assert len(rankings) == 60 and all(r.scores.shape == (100,) for r in rankings)
        assert client.retries > 0
    assert raw_errors and all(isinstance(e, ServerOverloadedError) and e.retryable for e in raw_errors)
    assert "Exceeds maximum queue size" in str(raw_errors[0])


def test_server_restart_gives_unavailable_within_the_deadline_then_the_same_client_recovers(repo, data):
    server = LocalTriton(repo, log_file=repo / "restart.log", models=["ranker_cpu"])
    # The retry window (10 attempts, waits up to 0.5 s) outlasts gRPC's reconnect backoff (capped at 1 s).
    options = ClientOptions(retry=RetryPolicy(max_attempts=10, initial_backoff_s=0.05, max_backoff_s=0.5))
    with server, RankingClient(server.grpc_url, options=options) as client:
        expected = client.rank(*_user(data, 0)).scores
        server.stop()
        started = time.monotonic()
        with pytest.raises(ServerUnavailableError):
            client.rank(*_user(data, 0), timeout_s=2.0)
        assert time.monotonic() - started < 2.5
        server.start()  # same ports
        np.testing.assert_allclose(client.rank(*_user(data, 0)).scores, expected, atol=1e-6)


def test_restricted_model_config_api_is_permission_denied_and_never_retried(repo, data):
    restricted = ["--grpc-restricted-protocol=model-config:admin-key=s3cret"]
    server = LocalTriton(repo, log_file=repo / "restricted.log", models=["ranker_cpu"], extra_args=restricted)
    with server:
        with RankingClient(server.grpc_url) as client:
            with pytest.raises(PermissionDeniedError, match="restricted"):
                client.rank(*_user(data, 0))
            assert client.retries == 0
        keyed = ClientOptions(headers={"triton-grpc-protocol-admin-key": "s3cret"})
        with RankingClient(server.grpc_url, options=keyed) as client:
            assert client.rank(*_user(data, 0)).scores.shape == (100,)


def test_query_command_prints_the_ranking(server, data, capsys):
    history, candidates = _user(data, 0)
    args = ["query", "--url", server.grpc_url, "--history", ",".join(map(str, history[history != 0]))]
    args += ["--candidates", ",".join(map(str, candidates[:20])), "--top-k", "3", "--json"]
    assert main(args) == 0
    answer = json.loads(capsys.readouterr().out)
    with RankingClient(server.grpc_url) as client:
        assert answer["items"] == client.rank(history, candidates[:20], top_k=3).items.tolist()
    assert main(["query", "--url", server.grpc_url, "--candidates", "1,-2"]) == 1
    assert capsys.readouterr().err.startswith("InvalidRequestError: candidates has 1 negative id(s)")


def test_client_package_imports_no_training_stack():
    code = (
        "import sys, tritonrec.client; "
        "print(sorted({'torch', 'onnx', 'onnxruntime', 'tritonrec.model'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("example", ["rank_sync.py", "rank_async.py"])
def test_client_examples_run_against_the_server(server, example):
    path = Path(__file__).resolve().parents[2] / "client" / "examples" / example
    done = subprocess.run([sys.executable, str(path), "--url", server.grpc_url], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert ("10. item" in done.stdout) if example == "rank_sync.py" else ("100 users ranked" in done.stdout)


def test_the_readme_client_snippet_runs_against_the_server(server):
    # README.md's five lines, as a backend service would paste them, against this server's port
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    snippet = readme.split("```python\n", 1)[1].split("```", 1)[0]
    assert "127.0.0.1:8001" in snippet and len(snippet.strip().splitlines()) <= 6
    code = snippet.replace("127.0.0.1:8001", server.grpc_url)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    pairs = ast.literal_eval(done.stdout.replace("np.int64", "").replace("np.float32", ""))
    assert len(pairs) == 10 and all(1 <= item <= 200 for item, _ in pairs)
    assert [s for _, s in pairs] == sorted((s for _, s in pairs), reverse=True)


def _self_signed(tmp_path, name):
    key, cert = tmp_path / f"{name}.key", tmp_path / f"{name}.crt"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-keyout", str(key), "-out", str(cert), "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return key, cert


def test_tls_client_verifies_the_server_certificate(repo, data, tmp_path):
    key, cert = _self_signed(tmp_path, "server")
    tls = ["--grpc-use-ssl=true", f"--grpc-server-cert={cert}", f"--grpc-server-key={key}"]
    server = LocalTriton(repo, log_file=tmp_path / "tls.log", models=["ranker_cpu"], extra_args=tls)
    with server:
        secure = ClientOptions(ssl=True, root_certificates=str(cert))
        with RankingClient(server.grpc_url, options=secure) as client:
            assert client.rank(*_user(data, 0)).scores.shape == (100,)
        plaintext = ClientOptions(timeout_s=1.0, retry=RetryPolicy(max_attempts=2))
        with RankingClient(server.grpc_url, options=plaintext) as client, pytest.raises(ServerUnavailableError):
            client.rank(*_user(data, 0))


@pytest.mark.parametrize("with_perf_analyzer", [False, True])
def test_client_bench_measures_every_tool_at_each_concurrency(export_dir, tmp_path, with_perf_analyzer, request):
    # The plumbing is under test, not the figures: accept any spread between perf_analyzer's windows.
    settings = ClientBenchSettings(
        concurrencies=(1, 4),
        requests=40,
        users=8,
        repeats=2,
        profile_concurrency=4,
        perf_analyzer=PaSettings(measurement_ms=1000, stability_pct=100_000),
    )
    pa = request.getfixturevalue("perf_analyzer") if with_perf_analyzer else None
    src = Path(__file__).resolve().parents[2] / "src"  # this tree again as the "before": the harness is under test
    report = run_client_bench(export_dir, tmp_path, settings, perf_analyzer=pa, command="test", baseline_src=src).record
    clients = ("sync_client", "async_client", FLOOR, "sync_client (before)", "async_client (before)")
    for tool in clients + (("perf_analyzer",) if with_perf_analyzer else ()):
        for c in ("1", "4"):
            entry = report["results"][tool][c]
            assert len(entry["runs"]) == 2 and all("error" not in r for r in entry["runs"]), entry["runs"]
            summary = entry["summary"]
            assert summary["requests_per_second"]["median"] > 0 and summary["cpu_ms_per_request"]["median"] > 0
            assert summary["p99_ms"]["median"] >= summary["p50_ms"]["median"] > 0
            if with_perf_analyzer and tool in clients:
                assert entry["vs_perf_analyzer"]["ratio"] > 0
    for tool in clients:
        shares = report["profiles"][tool]
        assert abs(sum(shares.values()) - 1.0) < 0.01 and shares["gRPC call and protobuf"] > 0
    assert "| 4 | async_client |" in (tmp_path / "client.md").read_text()


def test_mutual_tls_needs_the_client_certificate(repo, data, tmp_path):
    key, cert = _self_signed(tmp_path, "server")
    client_key, client_cert = _self_signed(tmp_path, "client")
    mutual = [
        "--grpc-use-ssl=true",
        "--grpc-use-ssl-mutual=true",
        f"--grpc-server-cert={cert}",
        f"--grpc-server-key={key}",
        f"--grpc-root-cert={client_cert}",  # the CA that signs client certificates (self-signed here)
    ]
    server = LocalTriton(repo, log_file=tmp_path / "mtls.log", models=["ranker_cpu"], extra_args=mutual)
    with server:
        with_cert = ClientOptions(
            ssl=True, root_certificates=str(cert), private_key=str(client_key), certificate_chain=str(client_cert)
        )
        with RankingClient(server.grpc_url, options=with_cert) as client:
            assert client.rank(*_user(data, 0)).scores.shape == (100,)
        without = ClientOptions(ssl=True, root_certificates=str(cert), timeout_s=1.0, retry=RetryPolicy(max_attempts=2))
        with RankingClient(server.grpc_url, options=without) as client, pytest.raises(ServerUnavailableError):
            client.rank(*_user(data, 0))


def test_round_robin_spreads_calls_over_every_server_address(repo, server, data):
    # What the chart's headless Service gives a client: one name, one address per pod. gRPC's ipv4: target
    # lists two real servers here; with round_robin both must serve, with pick_first only one.
    second = LocalTriton(repo, log_file=repo / "second.log", models=["ranker_cpu"])
    with second:
        target = f"ipv4:{server.grpc_url},{second.grpc_url}"

        def executions():
            counts = []
            for url in (server.grpc_url, second.grpc_url):
                with RankingClient(url) as c:
                    counts.append(c.statistics()["inference_count"])
            return np.asarray(counts)

        for policy, servers_used in (("round_robin", 2), ("pick_first", 1)):
            before = executions()
            with RankingClient(target, options=ClientOptions(load_balancing=policy)) as client:
                for i in range(20):
                    assert client.rank(*_user(data, i)).scores.shape == (100,)
            assert int(((executions() - before) > 0).sum()) == servers_used, policy
