"""The real Model Navigator (its own venv, `bash bench/tools/install_model_navigator.sh`) on a small checkpoint:
a tiny run (few samples, short profiling) whose result fields are read from what Navigator wrote (its own
status.yaml), and whose pick scores with our metrics. Skips where the venv is absent (CI does not install it)."""

from pathlib import Path

import numpy as np
import pytest
import yaml

from tritonrec.model.config import preset
from tritonrec.model.ranker import RankingModel
from tritonrec.select.navigator import NavigatorSettings, default_navigator_python, navigator_quality, run_navigator
from tritonrec.train.checkpoint import save_checkpoint

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SKIP_REASON = "model-navigator not installed: bash bench/tools/install_model_navigator.sh"


@pytest.fixture(scope="module")
def navigator_python() -> Path:
    python = default_navigator_python()
    if not python.is_file():
        pytest.skip(SKIP_REASON)
    return python


@pytest.fixture(scope="module")
def navigator_run(navigator_python, data, beauty_slice_dir, tmp_path_factory):
    import torch

    torch.manual_seed(0)
    checkpoint = save_checkpoint(
        tmp_path_factory.mktemp("ckpt"), RankingModel(data.spec, preset("small"), data.catalogue).eval()
    )
    settings = NavigatorSettings(
        formats=("onnx", "torchscript"),
        samples=3,
        sample_batch_sizes=(1, 4),
        sample_candidates=(20, 10),
        batch_sizes=(1, 4),
        window_size=5,
        stabilization_windows=1,
        min_trials=1,
        max_trials=3,
        stability_percentage=1000.0,  # a shared CI-size CPU: any window counts; figures are not the point here
        profile_candidates=20,
    )
    out = tmp_path_factory.mktemp("navigator")
    result = run_navigator(
        checkpoint,
        dataset="beauty",
        data_dir=beauty_slice_dir,
        out_dir=out,
        settings=settings,
        python=navigator_python,
        timeout_s=900,
    )
    return result, out


def test_navigator_runs_and_its_fields_come_from_navigators_status_file(navigator_run):
    result, out = navigator_run
    assert result.failure is None, result.failure
    assert result.ran and result.navigator_version == "0.14.0"
    assert result.status_file is not None and result.status_file.is_file()
    status = yaml.safe_load(result.status_file.read_text())
    assert status["model_navigator_version"] == result.navigator_version
    assert {f.key for f in result.formats} == set(status["models_status"])
    for fmt in result.formats:
        own = status["models_status"][fmt.key]
        assert dict(fmt.commands) == own.get("status", {})
        for runner in fmt.runners:
            own_runner = own["runners_status"][runner.runner]
            assert {k: v for k, v in runner.commands.items()} == own_runner["status"]
            rows = (own_runner.get("result", {}).get("Performance") or {}).get("profiling_results") or []
            assert [p.throughput_per_second for p in runner.profile] == [r["throughput"] for r in rows]
            assert [p.p50_latency_ms for p in runner.profile] == [r["p50_latency"] for r in rows]
    onnx = next(f for f in result.formats if f.key == "onnx")
    assert onnx.status == "OK" and onnx.runners[0].profiled
    assert [p.batch_size for p in onnx.runners[0].profile] == [1, 4]
    assert (out / "navigator-worker.log").is_file() and result.log_path == out / "navigator-worker.log"


def test_navigators_pick_is_saved_and_scores_with_our_metrics(navigator_run, data):
    result, out = navigator_run
    picked = result.picked
    assert picked is not None and picked.format in ("onnx", "torchscript") and picked.throughput_per_second
    assert result.picked_artifact is not None and result.picked_artifact.is_file()
    assert result.picked_artifact.parent == out / "picked"
    quality = navigator_quality(result, data, limit=200)
    assert quality.format == picked.format and quality.metrics["n_users"] == 200
    assert np.isfinite(quality.metrics["ndcg@10"]) and 0.0 <= quality.metrics["auc"] <= 1.0


# -- a team's model: Navigator on a spec's module, as `select --spec --navigator` runs it --------------------------

UNIT = Path(__file__).resolve().parents[1] / "unit"


def test_navigator_optimizes_a_specs_module_and_its_pick_is_judged_on_the_specs_rows(navigator_python, tmp_path):
    import sys

    from tritonrec.metrics import score_rows, spec_quality
    from tritonrec.pipeline.spec_steps import spec_rows
    from tritonrec.scorers.rows import spec_scorer
    from tritonrec.select.peers import SpecNavigatorPeer
    from tritonrec.select.selection import Constraints
    from tritonrec.spec import load_spec

    sys.path.insert(0, str(UNIT))
    from test_spec import SPEC_TOML, write_rows

    # Navigator's venv imports the model's module: bag_model imports torch only (the test files import pytest)
    write_rows(tmp_path / "rows.parquet", n_queries=60)
    spec_text = SPEC_TOML.format(factory="make_bag_ranker", here=UNIT).replace("test_spec:", "bag_model:")
    (tmp_path / "spec.toml").write_text(spec_text)
    spec = load_spec(tmp_path / "spec.toml")
    rows = spec_rows(spec)
    settings = NavigatorSettings(formats=("onnx", "torchscript"), samples=3, sample_batch_sizes=(1, 4),
                                 batch_sizes=(1, 16), window_size=5, stabilization_windows=1, min_trials=1,
                                 max_trials=3, stability_percentage=1000.0)  # fmt: skip
    reference = spec_quality(spec, score_rows(spec_scorer(spec, "eager"), rows), rows)
    peer = SpecNavigatorPeer(spec=spec, rows=rows, out_dir=tmp_path / "navigator", constraints=Constraints(p99_ms=50),
                             settings=settings, python=navigator_python, timeout_s=900)  # fmt: skip
    entry = peer([], "base/triton/fp32", reference)
    assert entry["ran"] and entry["failure"] is None, entry
    record = (tmp_path / "navigator" / "navigator.json").read_text()
    assert '"title"' in record and '"price"' in record  # its samples were the spec's inputs
    picked = entry["picked"]
    assert picked["format"] in ("onnx", "torchscript") and picked["rows_per_second"]
    assert picked["candidates_per_row"] == 1  # the rows layout: Navigator's rows are candidates
    # its pick is the spec's model: our metrics on it equal the eager module's (unless its runner autocasts)
    tolerance = 1e-4 if entry["quality"]["autocast"] is None else 0.02
    assert entry["quality"]["auc"] == pytest.approx(reference["auc"], abs=tolerance)
    assert entry["delta"] is not None and "tritonrec's pick: base/triton/fp32." in entry["summary"]
