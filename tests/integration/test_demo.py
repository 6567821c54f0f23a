"""The README's main job, in its quick form: train on the bundled Beauty data, evaluate, write the summary."""

import json

import pytest

from tritonrec.cli import main

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_quick_demo_trains_evaluates_and_reuses_its_checkpoint(tmp_path, capsys):
    args = ["demo", "--quick", "--out", str(tmp_path / "reports"), "--checkpoint", str(tmp_path / "ckpt")]
    assert main(args) == 0
    summary = json.loads((tmp_path / "reports" / "summary.json").read_text())
    assert summary["preset"] == "small"
    assert summary["test"]["n_users"] == 22_363
    assert summary["ndcg@10_eager"] > summary["popularity_test"]["ndcg@10"] + 0.1
    assert "training preset 'small'" in capsys.readouterr().out
    # a second run reuses the checkpoint and reproduces the same test figures
    assert main(args) == 0
    again = json.loads((tmp_path / "reports" / "summary.json").read_text())
    assert "reusing" in capsys.readouterr().out
    assert again["ndcg@10_eager"] == summary["ndcg@10_eager"]
