"""bench/gpu/run.sh end to end on the CPU (--device cpu): the same stages the GPU machine runs, small sizes, the real
tritonserver serving ranker_gpu's model.py (KIND_CPU), driven by the project's load generator."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def test_run_script_measures_in_process_quality_and_served_on_the_cpu(tmp_path):
    out = tmp_path / "out"
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "OUT": str(out),
        "WORK": str(tmp_path / "work"),
        "CARRY": str(tmp_path / "nothing-carried"),  # the dev environment has everything installed
        "DLRM_ROWS": "4000",  # the spec stage on the DLRM example, as on the GPU machine, smaller
    }
    flags = ["--device", "cpu", "--concurrency", "4", "--perf-analyzer", "none"]
    done = subprocess.run(
        ["bash", str(ROOT / "bench" / "gpu" / "run.sh"), *flags],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    record = json.loads((out / "gpu.json").read_text())
    assert record["device"]["device"] == "cpu" and record["models"]["base"]["trained"] is False

    rows = {row["label"]: row for row in record["in_process"]}
    assert set(rows) == {"fp32 eager", "bf16 weights eager"}
    for row in rows.values():
        assert [p["users"] for p in row["points"]] == [4, 16]
        assert all(p["candidates_per_second"] > 0 and p["candidates"] == 200 for p in row["points"])

    fp32, bf16 = record["quality"]
    assert fp32["label"] == "fp32 eager" and fp32["delta_ndcg@10"] == 0 and fp32["users"] == 100
    assert bf16["precision"] == "bf16" and 0 < bf16["max_abs_score_diff"] < 0.1

    served = record["served"]
    assert "error" not in served, served.get("server_log_tail")
    assert served["variant"] == {**served["variant"], "name": "ranker_gpu", "kind_gpu": False, "precision": "fp32"}
    assert served["export"]["passed"] and served["parity"]["passed"] and served["parity"]["max_abs_diff"] < 1e-4
    (point,) = served["points"]
    assert point["generator"] == "tritonrec loadgen" and point["concurrency"] == 4
    assert point["requests_per_second"] > 0 and point["errors"] == 0 and point["executions"] > 0
    assert point["server_cpu_cores"] > 0 and point["gpu"] == {"samples": 0}

    # the DLRM example, generated and trained by the script into a copy of its spec, timed and judged per precision
    spec = record["spec"]
    assert "error" not in spec, spec
    assert spec["model"] == {**spec["model"], "name": "dlrm", "spec": str(tmp_path / "work" / "dlrm" / "spec.toml")}
    assert spec["model"]["evaluation_rows"] > 500 and spec["model"]["parameters"] > 10_000_000  # the tables dominate
    assert [e["label"] for e in spec["precisions"]] == ["fp32 eager", "bf16 weights eager"]
    for entry in spec["precisions"]:
        assert [p["rows"] for p in entry["points"]] == [1024, 8192]
        assert all(p["rows_per_second"] > 0 for p in entry["points"])
    assert 0 < spec["precisions"][1]["quality"]["max_abs_score_diff"] < 0.5

    markdown = (out / "gpu.md").read_text()
    assert "## A team's model: `dlrm` (factory," in markdown
    assert "## Served: `ranker_gpu` on tritonserver (fp32, KIND_CPU" in markdown
    assert "| base | fp32 eager |" in markdown
    assert (out / "server.log").is_file() and "== exit 0" in (out / "run.log").read_text()
