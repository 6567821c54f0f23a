"""The CLI's error contract: `TypeName: message` on stderr and a non-zero exit, never a traceback."""

import json
import subprocess
import sys

import pytest

from tritonrec.cli import main
from tritonrec.model.config import preset
from tritonrec.model.ranker import RankingModel
from tritonrec.train.checkpoint import save_checkpoint

pytestmark = pytest.mark.unit


def test_unknown_preset_is_refused_with_the_known_ones_before_any_work(capsys, tmp_path):
    with pytest.raises(SystemExit) as done:
        main(["train", "--dataset", "beauty", "--preset", "huge", "--out", str(tmp_path)])
    assert done.value.code == 2
    assert "invalid choice: 'huge' (choose from 'small', 'base', 'large')" in capsys.readouterr().err


def test_missing_data_file_is_a_data_error(capsys, tmp_path):
    code = main(["train", "--dataset", "beauty", "--data-dir", str(tmp_path), "--preset", "small", "--out", "x"])
    assert code == 1
    assert capsys.readouterr().err.startswith("DataError: data file not found")


def test_garbled_data_file_is_a_data_error(capsys, tmp_path):
    (tmp_path / "Beauty.txt").write_text("1 2 3\n2 4 five\n")
    (tmp_path / "Beauty_item2attributes.json").write_text("{}")
    (tmp_path / "rees46-2019-Oct-head.csv").write_text("this,is,not\nthe,rees46,header\n")
    code = main(["train", "--dataset", "rees46", "--data-dir", str(tmp_path), "--preset", "small", "--out", "x"])
    assert code == 1
    assert capsys.readouterr().err.startswith("DataError:")
    code = main(["train", "--dataset", "beauty", "--data-dir", str(tmp_path), "--preset", "small", "--out", "x"])
    assert code == 1
    assert "Beauty.txt:2: malformed line" in capsys.readouterr().err


def test_checkpoint_of_another_format_version_is_a_checkpoint_error(capsys, tmp_path, tiny_spec_and_catalogue):
    spec, catalogue = tiny_spec_and_catalogue
    save_checkpoint(tmp_path, RankingModel(spec, preset("small"), catalogue))
    meta = json.loads((tmp_path / "checkpoint.json").read_text())
    meta["format_version"] = 99
    (tmp_path / "checkpoint.json").write_text(json.dumps(meta))
    assert main(["evaluate", "--checkpoint", str(tmp_path), "--dataset", "beauty", "--json"]) == 1
    assert capsys.readouterr().err.startswith("CheckpointError:")


def test_checkpoint_for_other_data_is_refused(capsys, tmp_path, tiny_spec_and_catalogue):
    spec, catalogue = tiny_spec_and_catalogue
    save_checkpoint(tmp_path, RankingModel(spec, preset("small"), catalogue))
    assert main(["evaluate", "--checkpoint", str(tmp_path), "--dataset", "rees46", "--json"]) == 1
    assert "was trained on 300 items" in capsys.readouterr().err


def test_data_synth_writes_a_dataset_with_its_ground_truth_auc(tmp_path):
    out = tmp_path / "synth"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tritonrec.cli.main",
            "data",
            "synth",
            "--out",
            str(out),
            "--n-items",
            "2000",
            "--n-users",
            "1500",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    summary = json.loads(result.stdout)
    assert 0.5 < summary["oracle_test_auc"] < 1.0
    assert (out / "meta.json").is_file()


def test_bad_arguments_exit_with_usage_not_a_traceback():
    result = subprocess.run(
        [sys.executable, "-m", "tritonrec.cli.main", "train", "--dataset", "imdb"], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "invalid choice" in result.stderr and "Traceback" not in result.stderr


def test_export_torch_then_repo_build_writes_a_servable_ranker_gpu(capsys, tmp_path, beauty_slice_dir):
    from tritonrec.data.registry import prepare_dataset

    data = prepare_dataset("beauty", beauty_slice_dir)
    checkpoint = save_checkpoint(tmp_path / "ckpt", RankingModel(data.spec, preset("small"), data.catalogue))
    source = ["--checkpoint", str(checkpoint), "--dataset", "beauty", "--data-dir", str(beauty_slice_dir)]
    assert main(["export", "torch", *source, "--out", str(tmp_path / "program")]) == 0
    assert "torch.export fp32 vs eager fp32" in capsys.readouterr().out
    repo = tmp_path / "repo"
    assert (
        main(["repo", "build", "--export", str(tmp_path / "program"), "--variants", "ranker_gpu", "--out", str(repo)])
        == 0
    )
    assert sorted(p.name for p in (repo / "ranker_gpu" / "1").iterdir()) == ["model.pt2", "model.py"]
    assert 'key: "max_history"' in (repo / "ranker_gpu" / "config.pbtxt").read_text()
