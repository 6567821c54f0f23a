"""``tritonrec quantize --spec`` on a model defined only in a test file: INT8 variants calibrated on its calibration
rows, judged on its evaluation rows by the shared metrics, a sensitivity pass over its op-type groups, the chosen file
published where ``repo build --spec --cpu-precision int8`` serves it from; and the errors a user can cause."""

import contextlib
import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from tritonrec.cli import main
from tritonrec.metrics import score_rows
from tritonrec.pipeline.spec_steps import RowsSplit, spec_rows
from tritonrec.quantize.modelopt_ptq import find_modelopt_python
from tritonrec.quantize.spec_quantize import OP_GROUPS
from tritonrec.repository import parse_config_text
from tritonrec.scorers.rows import onnx_rows_scorer
from tritonrec.spec import load_spec

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_spec import SPEC_TOML, write_rows  # noqa: E402

HERE = Path(__file__).resolve().parent


def _run(argv: list[str]) -> dict:
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(argv) == 0
    return json.loads(printed.getvalue())


@pytest.fixture(scope="module")
def quantized(tmp_path_factory):
    work = tmp_path_factory.mktemp("spec-quantize")
    write_rows(work / "rows.parquet", n_queries=80)
    (work / "spec.toml").write_text(SPEC_TOML.format(factory="make_bag_ranker", here=HERE))
    _run(["export", "onnx", "--spec", str(work / "spec.toml"), "--out", str(work / "export"), "--json"])
    record = _run(
        ["quantize", "--spec", str(work / "spec.toml"), "--export", str(work / "export"), "--out", str(work / "int8")]
        + ["--calibration-rows", "200", "--batches", "16,128", "--repeats", "2", "--publish", "int8-ort-minmax"]
        + ["--json"]
    )
    return work, record


def test_every_variant_is_judged_on_the_spec_evaluation_rows(quantized):
    work, record = quantized
    spec = load_spec(work / "spec.toml")
    evaluate, calibrate = spec_rows(spec, RowsSplit.EVALUATE), spec_rows(spec, RowsSplit.CALIBRATE)
    names = [v["name"] for v in record["variants"]]
    assert names[0] == "fp32" and {"fp16", "int8-ort-minmax", "int8-ort-entropy", "int8-ort-dynamic"} <= set(names)
    assert "int8-tables" in names
    assert {"openvino-fp32", "openvino-int8", "openvino-int8-ac"} <= set(names)
    if find_modelopt_python() is not None:  # make test installs it; elsewhere the report says it was not made
        assert "int8-modelopt-max" in names, record["skipped"]
    else:
        assert "not installed" in record["skipped"]["int8-modelopt-max"]
    assert record["rows"]["evaluation"] == len(evaluate)
    assert record["rows"]["calibration"] <= 200 and record["rows"]["validation"] < len(calibrate)
    fp32 = record["variants"][0]
    assert fp32["auc_delta"] == 0 and fp32["metrics"]["n_rows"] == len(evaluate)
    for variant in record["variants"]:
        assert set(variant["rows_per_s"]) == {"16", "128"} and variant["rows_per_s"]["128"]["n"] == 2
        assert variant["metrics"]["auc"] == pytest.approx(variant["auc"]) and 0 <= variant["auc"] <= 1
    assert set(record["sensitivity"]) <= set(OP_GROUPS) and record["sensitivity"]
    assert record["winner"] is None or record["winner"].startswith(("int8", "openvino-int8"))
    assert record["host"] and record["versions"]["onnxruntime"]  # the report records where it ran


def test_the_published_file_is_the_named_variant_and_scores_as_it(quantized):
    work, record = quantized
    spec = load_spec(work / "spec.toml")
    assert record["published"] == "int8-ort-minmax"
    published, variant = work / "int8" / "model_int8.onnx", work / "int8" / "variants" / "int8_ort_minmax.onnx"
    assert published.read_bytes() == variant.read_bytes()
    assert (work / "int8" / "model.onnx").is_file() and (work / "int8" / "spec_export.json").is_file()
    rows = spec_rows(spec)
    scores = score_rows(onnx_rows_scorer(published, spec), rows)
    fp32 = score_rows(onnx_rows_scorer(work / "export" / "model.onnx", spec), rows)
    assert np.abs(scores - fp32).max() > 0  # really quantized


def _fails(argv: list[str], capsys) -> str:
    capsys.readouterr()
    assert main(argv) == 1
    return capsys.readouterr().err


def test_repo_build_serves_the_published_int8_file_in_the_cpu_variant_only(quantized, capsys):
    work, _ = quantized
    repo = work / "repo-int8"
    args = ["repo", "build", "--spec", str(work / "spec.toml"), "--export", str(work / "int8"), "--out", str(repo)]
    with contextlib.redirect_stdout(io.StringIO()):
        assert main([*args, "--cpu-precision", "int8", "--variants", "cpu,onnx"]) == 0
    cpu = parse_config_text((repo / "bag_ranker_cpu" / "config.pbtxt").read_text())
    assert cpu.parameters["onnx_file"].string_value == "model_int8.onnx"
    assert (repo / "bag_ranker_cpu" / "1" / "model_int8.onnx").is_file()
    assert (repo / "bag_ranker_onnx" / "1" / "model.onnx").is_file()  # the GPU variant keeps FP32
    elsewhere = [*args[:-1], str(work / "repo-openvino"), "--cpu-precision", "int8", "--cpu-runtime", "openvino"]
    error = _fails(elsewhere, capsys)
    assert (
        "RepositoryError: bag_ranker_cpu needs model_int8.xml" in error and "run `tritonrec quantize --spec`" in error
    )
    assert not (work / "repo-openvino").exists()  # nothing half-written


def test_bad_quantize_requests_are_refused_with_what_to_do(quantized, tmp_path, capsys):
    work, _ = quantized
    spec = str(work / "spec.toml")
    error = _fails(
        ["quantize", "--spec", spec, "--export", str(tmp_path / "none"), "--out", str(tmp_path / "o")], capsys
    )
    assert "ExportError:" in error and "model.onnx not found: run `tritonrec export onnx --spec" in error
    error = _fails(["quantize", "--export", str(work / "export"), "--out", str(tmp_path / "o")], capsys)
    assert "ConfigError: name the data the export is judged on: --dataset" in error
    error = _fails(
        ["quantize", "--spec", spec, "--export", str(work / "export"), "--out", str(tmp_path / "o")]
        + ["--calibrators", "minmax", "--no-openvino", "--repeats", "1", "--batches", "16", "--publish", "fp16"],
        capsys,
    )
    assert "ConfigError: --publish 'fp16': not an INT8 variant" in error
    assert not (tmp_path / "o" / "model_int8.onnx").exists()


def test_embedding_tables_are_gathered_as_int8_codes_and_dequantized_after_the_gather(quantized, tmp_path):
    import onnx

    from tritonrec.quantize.tables import embedding_tables, quantize_tables

    work, _ = quantized
    spec = load_spec(work / "spec.toml")
    source = work / "export" / "model.onnx"
    assert list(embedding_tables(onnx.load(str(source)))) == ["tokens.weight"]  # the test model's one table
    result = quantize_tables(source, tmp_path / "tables.onnx")
    graph = onnx.load(str(result.path)).graph
    assert "tokens.weight" not in {i.name for i in graph.initializer}
    codes = next(i for i in graph.initializer if i.name == "tokens.weight_int8_codes")
    assert (
        codes.data_type == onnx.TensorProto.UINT8
        and result.tables["tokens.weight"]["bytes"] < 0.5 * (result.tables["tokens.weight"]["bytes_fp32"])
    )
    rows = spec_rows(spec)
    fp32 = score_rows(onnx_rows_scorer(source, spec), rows)
    int8 = score_rows(onnx_rows_scorer(result.path, spec), rows)
    openvino = score_rows(onnx_rows_scorer(result.path, spec, runtime="openvino"), rows)
    table = result.tables["tokens.weight"]
    assert 0 < np.abs(int8 - fp32).max() < 0.05 and table["max_abs_error"] > 0
    np.testing.assert_allclose(openvino, int8, atol=1e-5)  # plain ONNX ops: any runtime runs the graph


def test_a_graph_without_tables_is_refused_naming_it(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    from tritonrec.errors import ExportError
    from tritonrec.quantize.tables import quantize_tables

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "no_tables",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4])],
    )
    onnx.save(helper.make_model(graph), str(tmp_path / "m.onnx"))
    with pytest.raises(ExportError, match="no embedding table"):
        quantize_tables(tmp_path / "m.onnx", tmp_path / "out.onnx")


def test_the_budget_metric_nncf_controls_is_one_for_fp32_and_zero_at_the_budgets_edge():
    from tritonrec.quantize.sensitivity import Budget
    from tritonrec.quantize.spec_quantize import budget_metric

    rng = np.random.default_rng(0)
    items = [({"x": rng.normal(size=20)}, (rng.random(20) < 0.3).astype(float)) for _ in range(30)]
    items = [(f, y) for f, y in items if y.any()]
    fp32 = lambda feeds: feeds["x"]  # noqa: E731 - the model is its input
    metric = budget_metric(fp32, Budget(max_auc_drop=0.01, max_ndcg_drop=0.05))
    assert metric(fp32, items) == 1  # not 0: NNCF divides by the FP32 model's metric
    noisy = metric(lambda feeds: feeds["x"] + rng.normal(scale=3.0, size=20), items)
    assert noisy < 0  # far past the budget (0 is its edge)
    assert metric(fp32, items[:1]) == 1  # NNCF also scores single items: one query alone
