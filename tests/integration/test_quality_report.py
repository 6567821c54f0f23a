import json

import pytest

from tritonrec.bench.models.quality import run_quality_report
from tritonrec.model.config import Preset

pytestmark = pytest.mark.integration


def test_quality_report_records_model_baseline_and_ground_truth(tmp_path):
    report = run_quality_report(
        ["synthetic"],
        [Preset.SMALL],
        tmp_path / "results",
        max_minutes=0.1,
        checkpoints_dir=tmp_path / "ckpt",
        command="pytest",
    )
    saved = json.loads((tmp_path / "results" / "quality.json").read_text())
    assert saved == json.loads(json.dumps(report.record))
    assert saved["versions"]["tritonrec"] and saved["host"]["cpu_count"] >= 1 and "isa" in saved["host"]
    run = saved["runs"][0]
    assert run["dataset"] == "synthetic" and run["preset"] == "small"
    assert 0.5 < run["oracle_test"]["auc"] <= 1.0
    assert set(run["parameter_counts"]) == {"small", "base", "large"}
    markdown = (tmp_path / "results" / "quality.md").read_text()
    assert markdown == report.markdown
    assert "synthetic / small (ground truth)" in markdown
    assert (tmp_path / "ckpt" / "synthetic-small" / "checkpoint.json").is_file()
