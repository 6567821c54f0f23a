"""`tritonrec select --spec` on a model defined only in a test file (a history ranker in the query + candidates
layout): the whole chain a team runs, through the public CLI, the real tritonserver and the real perf_analyzer.
Requests drawn from the spec's own evaluation rows, perf_analyzer's input data generated from them, every candidate's
quality on every evaluation query by the shared metrics, and the pick under the same rules as the bundled model's."""

import json
import shutil
import sys
from pathlib import Path

import pytest

from tritonrec.cli import main
from tritonrec.errors import ConfigError
from tritonrec.export.spec_export import export_spec
from tritonrec.pipeline.spec_steps import spec_rows
from tritonrec.select.spec_run import check_export_matches
from tritonrec.spec import load_spec

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))  # the test-file model and its rows
from test_spec_query_layout import QUERY_SPEC_TOML, write_query_rows  # noqa: E402

pytestmark = pytest.mark.integration

UNIT = Path(__file__).resolve().parents[1] / "unit"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    work = tmp_path_factory.mktemp("spec-select")
    write_query_rows(work / "rows.parquet", n_queries=60)
    (work / "spec.toml").write_text(QUERY_SPEC_TOML.format(factory="make_history_ranker", here=UNIT))
    spec = load_spec(work / "spec.toml")
    export_spec(spec, spec_rows(spec), work / "export", fp16=True)
    return work


def test_select_measures_a_spec_model_in_process_and_served_and_picks_a_served_candidate(exported, perf_analyzer):
    work = exported
    graphs = work / "graphs"
    graphs.mkdir(exist_ok=True)
    other = Path(shutil.copy2(work / "export" / "model_fp16.onnx", graphs / "half_fp16.onnx"))  # a graph of its own
    out = work / "select"
    args = [
        "select", "--spec", str(work / "spec.toml"), "--export", str(work / "export"), "--graph", f"half={other}",
        "--out", str(out), "--runtimes", "pytorch-eager,onnxruntime,triton,tensorrt", "--repeats", "2",
        "--concurrency", "2", "--measurement-ms", "1000", "--min-s", "0.2", "--rate", "50", "--p99-ms", "60000",
        "--query-skew", "1.0", "--perf-analyzer", str(perf_analyzer), "--json",
        "--navigator", "--navigator-python", str(work / "no-navigator" / "python"),  # the peer's wiring, not its run
    ]  # fmt: skip
    assert main(args) == 0
    record = json.loads((out / "select.json").read_text())
    rows = {r["name"]: r for r in record["candidates"]}
    served = ["base/triton/fp32", "base/triton/fp16", "half/triton/fp16"]
    in_process = [
        "base/pytorch-eager/fp32",
        "base/onnxruntime/fp32",
        "base/onnxruntime/fp16",
        "half/onnxruntime/fp16",
    ]
    assert all(rows[n]["measured"] for n in served + in_process), {n: rows[n].get("reason") for n in rows}
    assert record["reference"] == "base/pytorch-eager/fp32" and record["spec"]["export_max_abs_diff"] < 1e-4
    # every evaluation query, one request each through the server: the served FP32 quality is the in-process one
    for key in ("auc", "ndcg@10", "logloss"):
        assert rows["base/triton/fp32"][key] == pytest.approx(rows["base/onnxruntime/fp32"][key], abs=1e-6)
        assert abs(rows["base/onnxruntime/fp32"]["delta"][key]) < 1e-4  # the export is the module's
    assert record["quality_sample"]["unit"] == "evaluation queries"
    queries = spec_rows(load_spec(work / "spec.toml")).n_queries  # every evaluation query, not a sample
    assert record["quality_sample"]["users"] == record["quality_sample"]["of"] == queries > 0
    for name in served:  # perf_analyzer replayed the spec's requests, side by side in two shuffled rounds
        throughput = rows[name]["served_figures"]["throughput"]
        assert throughput["tool"] == "perf_analyzer" and throughput["candidates_per_second"]["n"] == 2, throughput
        assert rows[name]["served_figures"]["rate_point"]["errors"] == 0
    traffic = record["settings"]["traffic"]
    assert traffic["layout"] == "query_candidates" and traffic["query_skew"] == 1.0 and traffic["distinct_requests"]
    assert not rows["base/tensorrt/fp16"]["measured"] and "GPU" in rows["base/tensorrt/fp16"]["reason"]
    assert record["chosen"] in served and rows[record["chosen"]]["eligible"]
    assert rows["half/triton/fp16"]["bytes"] == rows["base/triton/fp16"]["bytes"]
    page = (out / "select.html").read_text()
    assert "evaluation queries" in page and record["chosen"] in page
    (peer,) = record["peers"]  # Model Navigator on the spec's module: here its venv is missing, and the report says so
    assert peer["failure"]["step"] == "install" and peer["summary"].startswith("picked nothing: model-navigator not")
    assert (out / "navigator" / "samples.npz").is_file()

    repo = work / "repo"  # the pick, built as the spec's served model
    build = ["repo", "build", "--spec", str(work / "spec.toml"), "--from-selection", str(out / "select.json")]
    assert main([*build, "--out", str(repo)]) == 0
    chosen = rows[record["chosen"]]
    config = (repo / "history_ranker_cpu" / "config.pbtxt").read_text()
    assert f'string_value: "{Path(chosen["artifact"]).name}"' in config
    assert (repo / "history_ranker_cpu" / "1" / Path(chosen["artifact"]).name).is_file()


def test_select_refuses_an_export_made_from_other_weights(exported, tmp_path):
    spec_file = tmp_path / "spec.toml"
    text = QUERY_SPEC_TOML.format(factory="make_history_ranker", here=UNIT).replace(
        "[[inputs]]", "factory_kwargs = { dim = 4 }\n[[inputs]]", 1
    )  # the same inputs, another module: as if retrained after the export
    spec_file.write_text(text.replace('path = "rows.parquet"', f'path = "{exported / "rows.parquet"}"'))
    spec = load_spec(spec_file)
    with pytest.raises(ConfigError, match="exported from other weights. Re-export"):
        check_export_matches(spec, exported / "export", spec_rows(spec))
    original = load_spec(exported / "spec.toml")
    assert check_export_matches(original, exported / "export", spec_rows(original)) < 1e-4


def test_select_spec_says_what_it_needs(exported, tmp_path, capsys):
    spec = str(exported / "spec.toml")
    assert main(["select", "--spec", spec, "--out", str(tmp_path / "o")]) != 0
    assert "--spec needs --export" in capsys.readouterr().err
    bad = ["select", "--spec", spec, "--export", str(exported / "export"), "--graph", str(tmp_path / "nope.onnx")]
    assert main([*bad, "--out", str(tmp_path / "o")]) != 0
    assert "--graph wants an existing .onnx or .xml file" in capsys.readouterr().err
    assert main(["select", "--checkpoint", str(tmp_path), "--out", str(tmp_path / "o")]) != 0
    assert "--checkpoint needs --dataset" in capsys.readouterr().err
    other = tmp_path / "select.json"
    other.write_text(json.dumps({"chosen_row": None, "spec": {"name": "another"}}))
    build = ["repo", "build", "--spec", spec, "--from-selection", str(other), "--out", str(tmp_path / "r")]
    assert main(build) != 0
    assert "selected for the spec 'another', not 'history_ranker'" in capsys.readouterr().err


def test_tune_searches_a_spec_models_batcher_and_repo_build_serves_its_choice(exported, perf_analyzer):
    work = exported
    spec, export, out = str(work / "spec.toml"), str(work / "export"), work / "tune"
    args = [
        "bench", "tune", "--spec", spec, "--export", export, "--out", str(out), "--perf-analyzer", str(perf_analyzer),
        "--concurrency", "2", "--max-batch-sizes", "4,16", "--queue-delays-us", "0", "--instance-threads", "1x1,2x1",
        "--passes", "1", "--confirm-repeats", "2", "--requests", "64", "--measurement-ms", "1000",
        "--pa-stability-pct", "100000", "--p99-ms", "60000", "--query-skew", "1.0",
    ]  # fmt: skip
    assert main(args) == 0
    record = json.loads((out / "tune.json").read_text())
    assert record["model"] == "history_ranker_cpu" and record["spec"]["name"] == "history_ranker"
    assert record["traffic"]["layout"] == "query_candidates" and record["traffic"]["query_skew"] == 1.0
    configs = [r["config"] for r in record["ranked"]]
    assert {c["layout"] for c in configs} == {"query_candidates"}  # the spec's layout is not searched
    assert {c["max_batch_size"] for c in configs} >= {4, 16, 64}  # the shipped 64 queries, and each value tried
    assert {(c["instances"], c["threads"]) for c in configs} >= {(1, 1), (2, 1)}
    assert all(r["tool"] == "perf_analyzer" and r["best"] for r in record["ranked"]), record["ranked"]
    assert set(record["confirmation"]) == {"shipped", "tuned"}
    assert record["confirmation"]["tuned"]["candidates_per_second"]["n"] == 2

    repo = work / "repo-tuned"
    assert (
        main(
            ["repo", "build", "--spec", spec, "--export", export, "--tuned", str(out / "tune.json"), "--out", str(repo)]
        )
        == 0
    )
    config = (repo / "history_ranker_cpu" / "config.pbtxt").read_text()
    chosen = record["chosen"]["config"]
    assert f"max_batch_size: {chosen['max_batch_size']}" in config and f"count: {chosen['instances']}" in config
    assert f'key: "intra_op_threads"\n  value {{\n    string_value: "{chosen["threads"]}"' in config


def test_batching_compares_a_spec_models_batcher_settings_side_by_side(exported, perf_analyzer):
    work = exported
    out = work / "batching"
    args = [
        "bench", "batching", "--spec", str(work / "spec.toml"), "--export", str(work / "export"), "--out", str(out),
        "--settings", "no_batching,dynamic,dynamic_no_preferred,dynamic_1_instance", "--concurrency", "2",
        "--requests", "64", "--repeats", "2", "--window-s", "1", "--stability-pct", "100000",
        "--perf-analyzer", str(perf_analyzer), "--query-skew", "1.0",
    ]  # fmt: skip
    assert main(args) == 0
    record = json.loads((out / "batching.json").read_text())
    assert record["model"] == "history_ranker_cpu" and record["traffic"]["layout"] == "query_candidates"
    results = record["results"]
    assert set(results) == {"no_batching", "dynamic", "dynamic_no_preferred", "dynamic_1_instance"}
    # the settings are applied to what `repo build --spec` ships: 64 queries, no preferred sizes, 2 instances
    assert results["no_batching"]["config"]["dynamic"] is False
    assert results["dynamic"]["config"] == {**results["dynamic"]["config"], "max_batch_size": 64, "instances": 2}
    assert results["dynamic_1_instance"]["config"]["instances"] == 1
    assert results["dynamic_no_preferred"]["same_as"] == "dynamic"  # measured once, said so
    for name in ("no_batching", "dynamic", "dynamic_1_instance"):
        row = results[name]
        assert row["tool"] == "perf_analyzer" and row["errors"] == [] and row["same_as"] is None
        assert row["candidates_per_second"]["n"] == 2 and row["candidates_per_second"]["median"] > 0
    assert results["no_batching"]["vs_no_batching"]["ratio"] == 1.0
    markdown = (out / "batching.md").read_text()
    assert "| dynamic | dynamic batching: up to 64 queries, preferred none, 2 ms delay, 2 instances |" in markdown
    assert "| dynamic_no_preferred | dynamic batching: up to 64 queries, preferred none, 2 ms delay, 2 instances " \
           "| same configuration as `dynamic` |" in markdown  # fmt: skip


def test_efficiency_measures_a_spec_model_served_against_its_own_sessions_in_process(exported, perf_analyzer, capsys):
    work = exported
    out = work / "efficiency"
    args = [
        "bench", "efficiency", "--spec", str(work / "spec.toml"), "--export", str(work / "export"), "--out", str(out),
        "--concurrency", "2,4", "--repeats", "2", "--in-process-s", "1", "--window-s", "1", "--warmup-s", "0.5",
        "--stability-pct", "100000", "--perf-analyzer", str(perf_analyzer), "--query-skew", "1.0",
    ]  # fmt: skip
    assert main(args) == 0
    record = json.loads((out / "efficiency.json").read_text())
    assert record["model"] == "history_ranker_cpu" and record["batch_unit"] == "queries"
    assert record["serving_shape"]["instances"] == 2 and record["serving_shape"]["runtime"] == "onnxruntime"
    assert record["traffic"]["layout"] == "query_candidates" and record["traffic"]["query_skew"] == 1.0
    (result,) = record["results"]
    assert result["concurrency"] in (2, 4) and [p["concurrency"] for p in result["search"]] == [2, 4]
    assert len(result["pairs"]) == 2
    for pair in result["pairs"]:
        assert pair["batch_sizes"] and all(int(size) >= 1 for size in pair["batch_sizes"])  # queries per execution
        local = pair["in_process"]
        assert local["candidates_per_second"] > 0 and local["session_runs"] > 0 and local["mean_batch_size"] >= 1
        assert pair["efficiency"] == round(pair["served_cand_per_s"] / local["candidates_per_second"], 4)
    assert 0 < result["efficiency"] < 5
    markdown = (out / "efficiency.md").read_text()
    assert "# Serving efficiency: history_ranker_cpu, like for like" in markdown
    assert "In process: 2 ONNX Runtime session(s)" in markdown and "executions per queries-per-batch" in markdown

    assert main([*args[:8], "--url", "localhost:1"]) != 0
    assert "--url does not apply" in capsys.readouterr().err
