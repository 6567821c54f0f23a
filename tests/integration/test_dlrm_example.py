"""The DLRM example as docs/bring-your-own-model.md writes it: generate, train, export, build, serve, query, evaluate,
then INT8 on its own rows: quantize, build, serve, evaluate; then compression through the spec's training hook.
(The guide's `select --spec` block is parsed by the CLI test; test_spec_select.py runs the command.)

The guide's command lines run as written, in a copy of `examples/dlrm`, at a smaller scale and on free ports:
`--rows 1000000` becomes `--rows 30000`, `--epochs 2` becomes `--epochs 1`, port 8001 a free port (and the server's
HTTP and metrics ports free ones too); nothing else changes. The served model's quality must then equal eager
PyTorch's on every evaluation row, and the Criteo sample (real rows) goes the same way through export.
"""

import json
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tritonrec.client import RankingClient

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "bring-your-own-model.md"
SCALE = {"--rows 1000000": "--rows 30000", "--epochs 2": "--epochs 1"}


def _guide_blocks() -> list[list[str]]:
    section = GUIDE.read_text().split("## The DLRM example", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    return [[line.strip() for line in block.splitlines() if line.strip()] for block in blocks]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _words(line: str, ports: dict[str, str]) -> list[str]:
    for written, smaller in {**SCALE, **ports}.items():
        line = line.replace(written, smaller)
    words = shlex.split(line)
    program = {".venv/bin/python": [sys.executable], ".venv/bin/tritonrec": [sys.executable, "-m", "tritonrec"]}
    return [*program[words[0]], *words[1:]]


def _ports() -> dict[str, str]:
    grpc = str(_free_port())
    return {"8001 &": f"{grpc} --http-port {_free_port()} --metrics-port {_free_port()}", "8001": grpc}


def _serve(line: str, cwd: Path, ports: dict[str, str]) -> subprocess.Popen:
    """Start the guide's ``serve ... &`` line; return once its dlrm_cpu is ready."""
    server = subprocess.Popen(_words(line.rstrip("& "), ports), cwd=cwd, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)  # fmt: skip
    with RankingClient(f"127.0.0.1:{ports['8001']}", model="dlrm_cpu") as client:
        deadline = time.monotonic() + 120
        while not client.is_model_ready() and time.monotonic() < deadline and server.poll() is None:
            time.sleep(0.2)
        if not client.is_model_ready():
            server.kill()
            raise AssertionError(f"the served model never became ready:\n{server.communicate()[0]}")
    return server


def _run(line: str, cwd: Path, ports: dict[str, str] | None = None) -> str:
    done = subprocess.run(_words(line, ports or {}), cwd=cwd, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"`{line}` failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    work = tmp_path_factory.mktemp("dlrm")
    shutil.copytree(ROOT / "examples" / "dlrm", work / "examples" / "dlrm")
    return work


def test_the_guide_takes_dlrm_from_nothing_to_a_served_scored_model(workdir):
    train, serve, *_ = _guide_blocks()
    assert len(serve) <= 5 and [w for w in SCALE if not any(w in line for line in train)] == []
    outputs = [_run(line, workdir) for line in train]
    assert (workdir / "artifacts" / "dlrm" / "weights.pt").is_file()
    trained = re.search(r"AUC ([\d.]+) \(ceiling ([\d.]+)\)", outputs[1])
    assert trained and 0.5 < float(trained.group(1)) <= float(trained.group(2)) < 1.0, outputs[1]
    ports = _ports()
    exported = _run(serve[0], workdir)
    assert re.search(r"onnx fp32 vs eager \(factory\): max abs \S+, max rel \S+ over [\d,]+ scores .* ok", exported)
    assert "dlrm_cpu: dlrm_cpu/config.pbtxt" in _run(serve[1], workdir)
    assert serve[2].endswith("&")
    server = _serve(serve[2], workdir, ports)
    try:
        ranked = _run(serve[3], workdir, ports)
        assert "dlrm_cpu: query 0 of the evaluation rows" in ranked and len(ranked.splitlines()) == 2 + 5
        served_line = _run(serve[4], workdir, ports)
        served = json.loads(_run(serve[4] + " --json", workdir, ports))
        eager = json.loads(_run(".venv/bin/tritonrec evaluate --spec examples/dlrm/spec.toml --json", workdir))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    assert "dlrm (triton, evaluate rows)" in served_line
    assert served["runtime"] == "triton" and served["n_rows"] == eager["n_rows"] > 4000
    for key in ("auc", "logloss", "ndcg@10", "hr@10", "mrr"):
        assert served[key] == pytest.approx(eager[key], abs=1e-4), key  # the JSON rounds to 4 decimals


def test_the_guide_serves_the_dlrm_int8_file_quantize_published(workdir):
    int8 = _guide_blocks()[2]
    if not (workdir / "artifacts" / "dlrm" / "onnx" / "model.onnx").is_file():
        pytest.skip("runs after the guide's first blocks (the export)")  # the module runs them in order
    assert len(int8) == 4 and int8[2].endswith("&")
    _run(int8[0], workdir)
    report = json.loads((workdir / "artifacts" / "dlrm" / "int8" / "precision.json").read_text())
    published = next(v for v in report["variants"] if v["name"] == report["published"])
    assert published["precision"] == "int8" and {v["name"] for v in report["variants"]} >= {"fp32", "openvino-int8"}
    assert "dlrm_cpu/1/model_int8." in _run(int8[1], workdir)
    ports = _ports()
    server = _serve(int8[2], workdir, ports)
    try:
        served = json.loads(_run(int8[3] + " --json", workdir, ports))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    assert served["n_rows"] == published["metrics"]["n_rows"]
    for key in ("auc", "logloss", "ndcg@10"):
        assert served[key] == pytest.approx(published[key], abs=1e-4), key  # the JSON rounds to 4 decimals


def test_the_guides_compression_trains_through_the_dlrm_hook_and_writes_specs_that_evaluate(workdir):
    compress = _guide_blocks()[4]
    if not (workdir / "artifacts" / "dlrm" / "weights.pt").is_file():
        pytest.skip("runs after the guide's first block (the trained model)")  # the module runs them in order
    assert [line.split()[2] for line in compress] == ["distill", "share", "prune"]
    for line in compress:
        _run(line, workdir)
    made = {}
    for name in ("distill-d8", "share-20k", "prune-0.5"):
        folder = workdir / "artifacts" / "dlrm" / name
        made[name] = json.loads((folder / "compress.json").read_text())
        evaluated = json.loads(_run(f".venv/bin/tritonrec evaluate --spec {folder}/spec.toml --json", workdir))
        assert evaluated["auc"] == pytest.approx(made[name]["compressed"]["quality"]["auc"], abs=1e-4)
    assert made["distill-d8"]["factory_kwargs"] == {"dim": 8}
    assert made["distill-d8"]["compressed"]["params"] < made["distill-d8"]["parent"]["params"]
    assert made["share-20k"]["compressed"]["params"] < made["share-20k"]["parent"]["params"]  # tables cut to 20,000
    assert made["prune-0.5"]["compressed"]["zero_params"] > 0 == made["prune-0.5"]["parent"]["zero_params"]


def test_the_criteo_sample_goes_through_the_same_spec(workdir):
    _run(".venv/bin/python examples/dlrm/criteo.py --out artifacts/dlrm/criteo.parquet", workdir)
    spec = (workdir / "examples" / "dlrm" / "spec.toml").read_text()
    criteo = workdir / "examples" / "dlrm" / "criteo.toml"
    criteo.write_text(spec.replace("rows.parquet", "criteo.parquet").replace("weights.pt", "criteo.pt"))
    out = _run(".venv/bin/python examples/dlrm/train.py --spec examples/dlrm/criteo.toml --epochs 2", workdir)
    assert "evaluation rows" in out
    printed = _run(
        ".venv/bin/tritonrec export onnx --spec examples/dlrm/criteo.toml --out artifacts/dlrm/criteo-onnx --json",
        workdir,
    )
    record = json.loads(printed)
    assert record["parity"][0]["passed"] and record["parity"][0]["max_abs"] < 1e-4
