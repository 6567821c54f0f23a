"""The installs users make, in fresh virtualenvs, running the commands they run against the real server.

- ``tritonrec[client]`` (a backend service): ``tritonrec query`` ranks, and against a closed port says
  ``ServerUnavailableError: ...`` with exit code 1; the client library ranks like the full install.
- ``tritonrec[bench]`` (a load-generator machine): ``tritonrec bench sweep --url`` measures the server.

Neither install may pull torch or onnx. Both need PyPI (as CI has); they build the package from this checkout.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tritonrec.client import RankingClient
from tritonrec.repository import VARIANTS, VariantName, build_repository
from tritonrec.serving.server import LocalTriton, free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "onnx", "onnxscript", "nvidia-pytriton")


@pytest.fixture(scope="module")
def server(data, export_dir, tmp_path_factory):
    repo = tmp_path_factory.mktemp("install-repo")
    build_repository(repo, data.spec, [VARIANTS[VariantName.CPU]], export_dir=export_dir)
    with LocalTriton(repo, log_file=repo / "server.log", models=[VariantName.CPU.value]) as running:
        yield running


def _fresh_venv(where: Path, extra: str) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True)
    pip = [str(where / "bin" / "pip"), "install", "--quiet", "-c", str(ROOT / "constraints.txt")]
    done = subprocess.run([*pip, f"{ROOT}[{extra}]"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    listed = subprocess.run([str(where / "bin" / "pip"), "list", "--format=json"], capture_output=True, text=True)
    installed = {p["name"].lower() for p in json.loads(listed.stdout)}
    assert not installed & set(HEAVY), f"[{extra}] pulled {sorted(installed & set(HEAVY))}"
    assert "tritonclient" in installed
    return where / "bin"


def _user(data, i):
    history, candidates = data.test.histories[i], data.test.candidates[i]
    return history[history != 0], candidates


def test_client_install_runs_query_against_the_server_and_a_closed_port(server, data, tmp_path):
    bin_dir = _fresh_venv(tmp_path / "client-venv", "client")
    history, candidates = _user(data, 0)
    query = [str(bin_dir / "tritonrec"), "query", "--url", server.grpc_url, "--json"]
    query += ["--history", ",".join(map(str, history)), "--candidates", ",".join(map(str, candidates[:20]))]
    done = subprocess.run(query, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    with RankingClient(server.grpc_url) as client:
        expected = client.rank(history, candidates[:20], top_k=20)
    answer = json.loads(done.stdout)
    assert answer["items"] == expected.items.tolist()
    np.testing.assert_allclose(answer["scores"], expected.scores, atol=1e-6)

    closed = f"127.0.0.1:{free_port()}"
    refused = subprocess.run(
        [str(bin_dir / "tritonrec"), "query", "--url", closed, "--candidates", "4,5,6", "--timeout-s", "1"],
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 1
    assert refused.stderr.startswith("ServerUnavailableError: ") and "Traceback" not in refused.stderr

    script = (
        "import json; from tritonrec.client import RankingClient\n"
        f"with RankingClient({server.grpc_url!r}) as c: r = c.rank({history.tolist()}, {candidates.tolist()})\n"
        "print(json.dumps(r.scores.tolist()))"
    )
    out = subprocess.run([str(bin_dir / "python"), "-c", script], capture_output=True, text=True, check=True)
    with RankingClient(server.grpc_url) as client:
        np.testing.assert_allclose(json.loads(out.stdout), client.rank(history, candidates).scores, atol=1e-6)


def test_bench_install_sweeps_a_running_server(server, tmp_path):
    bin_dir = _fresh_venv(tmp_path / "bench-venv", "bench")
    out = tmp_path / "sweep"
    sweep = [str(bin_dir / "tritonrec"), "bench", "sweep", "--url", server.grpc_url, "--out", str(out)]
    sweep += ["--concurrency", "2", "--requests", "32", "--candidates", "8"]
    sweep += ["--warmup-s", "0.5", "--window-s", "1", "--max-windows", "2", "--repeats", "1"]
    done = subprocess.run(sweep, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads((out / "sweep.json").read_text())
    run = record["points"][0]["tritonrec"]["runs"][0]
    assert run["ok"] > 0 and run["errors"] == 0
    with RankingClient(server.grpc_url) as client:
        assert record["versions"]["tritonserver"] == client.server_version() != ""
    assert record["versions"]["torch"] is None and record["versions"]["locust"]
    assert (out / "sweep.png").stat().st_size > 0 and "# Sweep" in done.stdout
