"""A model defined only in a test file, served by the real tritonserver from its spec: scores equal to eager on every
evaluation row (sync and asyncio clients), bad requests answered with what was wrong, the server still up, and the
watchdog probing it with real rows of its data."""

import asyncio
import contextlib
import io
import json
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from tritonrec.cli import main
from tritonrec.client import AsyncRankingClient, ClientOptions, RankingClient
from tritonrec.errors import InvalidRequestError
from tritonrec.export.spec_export import export_spec
from tritonrec.pipeline.spec_steps import spec_quality_step, spec_repository_step, spec_rows
from tritonrec.repository import parse_config_text
from tritonrec.repository.spec_variants import SpecVariant, SpecVariantKind
from tritonrec.scorers.rows import module_rows_scorer, onnx_rows_scorer
from tritonrec.serving.health import Watchdog
from tritonrec.serving.server import LocalTriton
from tritonrec.spec import load_spec
from tritonrec.spec.module import load_module

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))  # the test-file model and its rows
from test_spec import SPEC_TOML, write_rows  # noqa: E402

pytestmark = pytest.mark.integration

UNIT = Path(__file__).resolve().parents[1] / "unit"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    work = tmp_path_factory.mktemp("spec-serving")
    write_rows(work / "rows.parquet", n_queries=60)
    (work / "spec.toml").write_text(SPEC_TOML.format(factory="make_bag_ranker", here=UNIT))
    spec = load_spec(work / "spec.toml")
    export_spec(spec, spec_rows(spec), work / "export", fp16=False)
    variants = [SpecVariant(kind=kind) for kind in SpecVariantKind]
    written = spec_repository_step(spec, work / "export", work / "repo", variants)
    with LocalTriton(work / "repo", models=["bag_ranker_cpu"], log_file=work / "server.log") as server:
        yield spec, server, work, written


def test_served_scores_equal_eager_on_every_evaluation_query(served):
    spec, server, _, _ = served
    rows = spec_rows(spec)
    eager = module_rows_scorer(load_module(spec), spec)
    with RankingClient(server.grpc_url, model="bag_ranker_cpu") as client:
        for start, stop in rows.queries():
            batch = rows.batch(start, stop)  # its own row count and token length
            np.testing.assert_allclose(client.score_rows(batch), eager(batch), atol=1e-5)
    served_quality = spec_quality_step(spec, url=server.grpc_url)
    eager_quality = spec_quality_step(spec)
    assert served_quality.runtime == "triton" and served_quality.metrics["n_rows"] == len(rows)
    for key in ("auc", "logloss", "ndcg@10", "mrr"):
        assert served_quality.metrics[key] == pytest.approx(eager_quality.metrics[key], abs=1e-5), key


def test_the_asyncio_client_scores_rows_too(served):
    spec, server, _, _ = served
    rows = spec_rows(spec)
    queries = list(rows.queries())[:8]

    async def run():
        async with AsyncRankingClient(server.grpc_url, model="bag_ranker_cpu") as client:
            return await asyncio.gather(*(client.score_rows(rows.batch(a, b)) for a, b in queries))

    eager = module_rows_scorer(load_module(spec), spec)
    for (start, stop), scores in zip(queries, asyncio.run(run()), strict=True):
        np.testing.assert_allclose(scores, eager(rows.batch(start, stop)), atol=1e-5)


def test_query_and_evaluate_commands_reach_the_served_spec_model(served):
    spec, server, work, _ = served
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert (
            main(["query", "--spec", str(work / "spec.toml"), "--url", server.grpc_url, "--top-k", "3", "--json"]) == 0
        )
    answer = json.loads(printed.getvalue())
    assert answer["model"] == "bag_ranker_cpu" and len(answer["scores"]) == 3
    assert answer["scores"] == sorted(answer["scores"], reverse=True)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert (
            main(["evaluate", "--spec", str(work / "spec.toml"), "--url", server.grpc_url, "--compare", "--json"]) == 0
        )
    served = json.loads(printed.getvalue())
    assert served["runtime"] == "triton" and served["compared_with"] == "eager" and served["max_abs_diff"] < 1e-5


def test_bad_requests_get_their_error_and_the_server_stays_up(served):
    spec, server, _, _ = served
    rows = spec_rows(spec)
    good = rows.batch(0, 5)
    with RankingClient(server.grpc_url, model="bag_ranker_cpu", options=ClientOptions(timeout_s=5)) as client:
        with pytest.raises(InvalidRequestError, match="input 'price' is int64, the model takes float32"):
            client.score_rows({**good, "price": np.arange(5)})
        with pytest.raises(InvalidRequestError, match=r"inputs missing \['title'\]"):
            client.score_rows({"price": good["price"]})
        with pytest.raises(InvalidRequestError, match=r"different row counts"):
            client.score_rows({**good, "price": good["price"][:3]})
        nan = good["price"].copy()
        nan[2] = np.nan
        with pytest.raises(InvalidRequestError, match="price holds 1 NaN or infinite value"):  # model.py, per request
            client.score_rows({**good, "price": nan})
        too_long = np.ones((5, 600), dtype=np.int64)
        with pytest.raises(InvalidRequestError, match="title has rows of length 600; this model takes at most 512"):
            client.score_rows({**good, "title": too_long})
        assert client.score_rows(good).shape == (5,)  # still up, still scoring
    raw = grpcclient.InferenceServerClient(server.grpc_url)
    wrong = grpcclient.InferInput("title", [5, 3], "FP32")  # the server itself checks dtypes
    wrong.set_data_from_numpy(np.ones((5, 3), dtype=np.float32))
    price = grpcclient.InferInput("price", [5, 1], "FP32")
    price.set_data_from_numpy(good["price"].reshape(-1, 1))
    with pytest.raises(InferenceServerException, match="INVALID_ARG|expected .*INT64"):
        raw.infer("bag_ranker_cpu", [wrong, price])


def test_the_gpu_configs_use_native_backends_only_and_parse_against_the_proto(served):
    _, _, work, written = served
    for name in ("bag_ranker_onnx", "bag_ranker_trt_fp16"):
        config = parse_config_text((work / "repo" / name / "config.pbtxt").read_text())
        assert config.backend in ("onnxruntime", "tensorrt") and config.platform in (
            "onnxruntime_onnx",
            "tensorrt_plan",
        )
        assert not any(p.name == "model.py" for p in written[name])  # no Python in the request path
        assert {i.name for i in config.input} == {"title", "price"} and config.max_batch_size == 4096
        assert config.model_warmup[0].batch_size > 0  # real rows of the spec's data
    cpu = parse_config_text((work / "repo" / "bag_ranker_cpu" / "config.pbtxt").read_text())
    assert cpu.backend == "python" and cpu.parameters["scalar_price"].string_value == "true"


def test_the_watchdog_probes_a_spec_model_with_its_rows_and_reloads_it(served):
    _, server, work, _ = served
    stubs = [
        p for p in psutil.Process(server.pid).children(recursive=True) if "bag_ranker_cpu" in " ".join(p.cmdline())
    ]
    assert stubs
    dog = Watchdog(server.grpc_url, ["bag_ranker_cpu"], interval_s=0.5, repository=work / "repo").start()
    try:
        for stub in stubs:
            os.kill(stub.pid, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while not dog.recoveries and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        dog.stop()
    (recovery,) = dog.recoveries
    assert recovery.model == "bag_ranker_cpu" and recovery.recovered_s is not None


def test_the_int8_file_quantize_publishes_serves_as_it_scores_in_process(served):
    spec, _, work, _ = served
    spec_path, int8 = str(work / "spec.toml"), work / "int8"
    with contextlib.redirect_stdout(io.StringIO()):
        assert (
            main(
                ["quantize", "--spec", spec_path, "--export", str(work / "export"), "--out", str(int8)]
                + ["--calibrators", "minmax", "--no-openvino", "--repeats", "1", "--batches", "16"]
                + ["--publish", "int8-ort-minmax", "--json"]
            )
            == 0
        )
        assert main(["repo", "build", "--spec", spec_path, "--export", str(int8), "--out", str(work / "repo-int8"),
                     "--cpu-precision", "int8"]) == 0  # fmt: skip
    rows = spec_rows(spec)
    in_process = onnx_rows_scorer(int8 / "model_int8.onnx", spec)
    with LocalTriton(work / "repo-int8", models=["bag_ranker_cpu"], log_file=work / "server-int8.log") as server:
        with RankingClient(server.grpc_url, model="bag_ranker_cpu") as client:
            for start, stop in rows.queries():
                batch = rows.batch(start, stop)
                np.testing.assert_allclose(client.score_rows(batch), in_process(batch), atol=1e-5)
        served_quality = spec_quality_step(spec, url=server.grpc_url)
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            args = ["evaluate", "--spec", spec_path, "--url", server.grpc_url, "--onnx", str(int8 / "model_int8.onnx")]
            assert main([*args, "--compare", "--json"]) == 0
        compared = json.loads(printed.getvalue())
        assert compared["compared_with"].endswith("model_int8.onnx") and compared["max_abs_diff"] < 1e-5
    int8_quality = spec_quality_step(spec, onnx=int8 / "model_int8.onnx")
    for key in ("auc", "logloss", "ndcg@10", "mrr"):
        assert served_quality.metrics[key] == pytest.approx(int8_quality.metrics[key], abs=1e-5), key


def test_a_clean_sigterm_of_serve_stops_the_watchdog_before_the_server(served):
    """The watchdog must not probe the models the server is unloading, nor try to reload them, nor report a
    recovery: a clean stop prints no WARNING or ERROR (issue 32)."""
    import socket
    import subprocess

    _, _, work, _ = served

    def free() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])

    grpc_port, http_port, metrics_port = free(), free(), free()
    command = [sys.executable, "-m", "tritonrec", "serve", "--repo", str(work / "repo"), "--models", "bag_ranker_cpu"]
    command += ["--grpc-port", str(grpc_port), "--http-port", str(http_port), "--metrics-port", str(metrics_port)]
    command += ["--probe-interval-s", "0.05", "--log-file", str(work / "serve-sigterm.log")]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        with RankingClient(f"127.0.0.1:{grpc_port}", model="bag_ranker_cpu") as client:
            deadline = time.monotonic() + 120
            while not client.is_model_ready() and time.monotonic() < deadline and process.poll() is None:
                time.sleep(0.1)
            assert client.is_model_ready(), "never ready"
        time.sleep(1.0)  # the watchdog probes every 50 ms meanwhile
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0 and "stopped (exit code 0)" in out, out
    assert "probing every model" in out
    for symptom in ("WARNING", "ERROR", "reload of", "reloaded"):
        assert symptom not in out, out
