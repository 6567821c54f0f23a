"""The spec stage of `bench gpu` on the CPU: the test-file bag ranker (a model defined outside src/, loaded from its
spec) timed per precision, judged against FP32 by the spec's metrics, and the stage's refusals."""

import json

import numpy as np
import pytest
from test_spec import spec_file  # noqa: F401 - the bag ranker's spec and rows, a fixture
from test_spec_query_layout import query_spec_file  # noqa: F401 - a query + candidates spec, a fixture

from tritonrec.bench.gpu.inprocess_stage import TimingRule
from tritonrec.bench.gpu.report import write_markdown
from tritonrec.bench.gpu.run import GpuBenchSettings
from tritonrec.bench.gpu.spec_stage import SpecStageSettings, measure_spec
from tritonrec.errors import ConfigError
from tritonrec.metrics import score_rows, spec_quality
from tritonrec.records import new_record
from tritonrec.scorers.rows import module_rows_scorer
from tritonrec.scorers.torch_device import Precision
from tritonrec.spec import load_spec
from tritonrec.spec.module import load_module
from tritonrec.spec.rows import read_rows, split_rows

FAST = TimingRule(warmup_calls=1, min_calls=3, min_s=0.0, max_calls=3)


def test_each_precision_is_timed_and_judged_against_fp32_on_all_evaluation_rows(spec_file):  # noqa: F811
    settings = SpecStageSettings(spec=spec_file, device="cpu", batches=(16, 64), cast="autocast", timing=FAST)
    record = measure_spec(settings)
    json.dumps(record)  # the record is written as JSON

    spec = load_spec(spec_file)
    _, rows = split_rows(spec, read_rows(spec))
    assert record["model"] == {**record["model"], "name": "bag_ranker", "source": "factory",
                               "evaluation_rows": len(rows), "evaluation_queries": rows.n_queries}  # fmt: skip
    assert record["model"]["parameters"] == sum(p.numel() for p in load_module(spec).parameters())
    fp32, bf16, fp16 = record["precisions"]
    assert [e["label"] for e in record["precisions"]] == ["fp32 eager", "bf16 autocast eager", "fp16 autocast eager"]
    for entry in record["precisions"]:
        assert [p["rows"] for p in entry["points"]] == [16, 64]
        assert all(p["calls"] == 3 and p["rows_per_second"] > 0 for p in entry["points"])
    # FP32 is the eager module as every spec command scores it; the others are held against it
    expected = spec_quality(spec, score_rows(module_rows_scorer(load_module(spec), spec), rows), rows)
    assert fp32["quality"]["ndcg@10"] == round(expected["ndcg@10"], 5) and "delta_auc" not in fp32["quality"]
    for low in (bf16, fp16):
        assert 0 < low["quality"]["max_abs_score_diff"] < 0.1
        assert low["quality"]["delta_ndcg@10"] == round(low["quality"]["ndcg@10"] - fp32["quality"]["ndcg@10"], 5)


def test_a_precision_the_module_cannot_run_in_is_recorded_and_a_skipped_point_says_so(spec_file):  # noqa: F811
    # the bag ranker builds a float32 mask inside forward: cast weights meet it in a matmul and torch refuses
    settings = SpecStageSettings(spec=spec_file, device="cpu", batches=(8,), precisions=(Precision.FP32,
                                 Precision.BF16), cast="weights", timing=FAST)  # fmt: skip
    fp32, bf16 = measure_spec(settings, time_left=lambda: 0.0)["precisions"]
    assert fp32["points"] == [{"rows": 8, "skipped": "time budget spent"}]
    assert np.isfinite(fp32["quality"]["auc"])  # quality is judged even with no time left
    assert bf16 == {"label": "bf16 weights eager", "precision": "bf16", "error": bf16["error"]}
    assert "must have the same dtype" in bf16["error"]


def test_the_report_renders_the_stage_and_its_failure(spec_file):  # noqa: F811
    stage = measure_spec(SpecStageSettings(spec=spec_file, device="cpu", batches=(16,), timing=FAST))
    record = {**new_record("bench gpu --spec"), "device": {"device": "cpu", "torch": "2"}, "models": {},
              "in_process": [], "quality": [], "served": None, "spec": stage}  # fmt: skip
    text = write_markdown(record)
    assert "## A team's model: `bag_ranker` (factory," in text
    fp32 = stage["precisions"][0]
    speed = fp32["points"][0]["rows_per_second"]
    shown = f"{speed / 1e6:.2f}M" if speed >= 1e5 else f"{speed:,.0f}"  # millions from 100k rows/s up
    assert f"| fp32 eager | {shown} ({fp32['points'][0]['median_ms']:g} ms) |" in text
    assert f"| {fp32['quality']['ndcg@10']:.4f} | | {fp32['quality']['auc']:.4f} |" in text
    assert "| bf16 weights eager | error: `RuntimeError: mat1 and mat2 must have the same dtype" in text
    record["spec"] = {"error": "ExportError: no weights"}
    assert "**The spec stage failed**: `ExportError: no weights`" in write_markdown(record)


def test_the_stage_refuses_a_query_layout_spec(query_spec_file):  # noqa: F811
    with pytest.raises(ConfigError, match="query_candidates layout"):
        measure_spec(SpecStageSettings(spec=query_spec_file, device="cpu"))


def test_the_stage_refuses_settings_it_cannot_run(spec_file):  # noqa: F811
    with pytest.raises(ConfigError, match="start with fp32"):
        SpecStageSettings(spec=spec_file, precisions=(Precision.BF16,))
    with pytest.raises(ConfigError, match="batches must be >= 1"):
        SpecStageSettings(spec=spec_file, batches=(0,))
    with pytest.raises(ConfigError, match="this run's device cuda, not cpu"):
        GpuBenchSettings(device="cuda", spec=SpecStageSettings(spec=spec_file, device="cpu"))
