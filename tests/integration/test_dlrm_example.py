"""The DLRM example as docs/bring-your-own-model.md writes it: generate, train, export, evaluate.

The guide's four command lines run as written, in a copy of `examples/dlrm`, at a smaller scale: `--rows 1000000`
becomes `--rows 30000` and `--epochs 2` becomes `--epochs 1` (the only changes). Then the exported file's quality
must equal eager PyTorch's on every evaluation row, and the Criteo sample (real rows) goes the same way.
"""

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "bring-your-own-model.md"
SCALE = {"--rows 1000000": "--rows 30000", "--epochs 2": "--epochs 1"}


def _guide_lines() -> list[str]:
    section = GUIDE.read_text().split("## The DLRM example", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line.strip() for line in block.splitlines() if line.strip()]


def _run(line: str, cwd: Path) -> str:
    for written, smaller in SCALE.items():
        line = line.replace(written, smaller)
    words = shlex.split(line)
    program = {".venv/bin/python": [sys.executable], ".venv/bin/tritonrec": [sys.executable, "-m", "tritonrec"]}
    done = subprocess.run([*program[words[0]], *words[1:]], cwd=cwd, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"`{line}` failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    work = tmp_path_factory.mktemp("dlrm")
    shutil.copytree(ROOT / "examples" / "dlrm", work / "examples" / "dlrm")
    return work


def test_the_guide_takes_dlrm_from_nothing_to_an_evaluated_export(workdir):
    lines = _guide_lines()
    assert len(lines) <= 5 and [w for w in SCALE if not any(w in line for line in lines)] == []
    outputs = [_run(line, workdir) for line in lines]
    assert (workdir / "artifacts" / "dlrm" / "weights.pt").is_file()
    trained = re.search(r"AUC ([\d.]+) \(ceiling ([\d.]+)\)", outputs[1])
    assert trained and 0.5 < float(trained.group(1)) <= float(trained.group(2)) < 1.0, outputs[1]
    assert re.search(r"onnx fp32 vs eager \(factory\): max abs \S+, max rel \S+ over [\d,]+ scores .* ok", outputs[2])
    spec, onnx = "examples/dlrm/spec.toml", "artifacts/dlrm/onnx/model.onnx"
    exported = json.loads(_run(f".venv/bin/tritonrec evaluate --spec {spec} --onnx {onnx} --json", workdir))
    eager = json.loads(_run(f".venv/bin/tritonrec evaluate --spec {spec} --json", workdir))
    assert exported["n_rows"] == eager["n_rows"] > 4000
    for key in ("auc", "logloss", "ndcg@10", "hr@10", "mrr"):
        assert exported[key] == pytest.approx(eager[key], abs=1e-4), key  # the JSON rounds to 4 decimals


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
