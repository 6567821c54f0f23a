"""A team's own model through the model spec: parsing (every error names its field), the rows, the grouped metrics,
and export with parity, for a model defined only here (a variable-length per-row input) through the API and CLI.
"""

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from bag_model import VOCAB, BagRanker, make_bag_ranker  # noqa: F401 - the specs below name test_spec:make_bag_ranker
from torch import nn

from tritonrec.cli import main
from tritonrec.errors import ConfigError, DataError, ExportError
from tritonrec.export.spec_export import export_spec
from tritonrec.metrics import grouped_metrics, ranking_metrics
from tritonrec.pipeline.spec_steps import RowsSplit, spec_quality_step, spec_rows
from tritonrec.scorers.rows import module_rows_scorer, onnx_rows_scorer
from tritonrec.spec import InputSpec, Layout, ModelSource, ModelSpec, load_spec
from tritonrec.spec.module import load_module
from tritonrec.spec.rows import read_rows, split_rows

pytestmark = pytest.mark.unit

HERE = Path(__file__).resolve().parent


class TwoScores(nn.Module):
    """Returns two scores per row: not a ranker."""

    def forward(self, title: torch.Tensor, price: torch.Tensor) -> torch.Tensor:
        return torch.stack([price, price], dim=1)


def make_two_scores() -> TwoScores:
    return TwoScores()


def write_rows(path: Path, n_queries: int = 40, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    sizes = rng.integers(3, 12, n_queries)
    rows = int(sizes.sum())
    titles = [rng.integers(1, VOCAB, rng.integers(1, 7)).tolist() for _ in range(rows)]
    table = pa.table(
        {
            "query_id": np.repeat(np.arange(n_queries) * 7 + 100, sizes),  # ids need not be 0..Q-1
            "label": (rng.random(rows) < 0.3).astype(np.int64),
            "title": titles,
            "price": rng.gamma(2.0, 10.0, rows).astype(np.float32),
        }
    )
    pq.write_table(table, path)
    return path


SPEC_TOML = """
name = "bag_ranker"
[model]
factory = "test_spec:{factory}"
python_path = ["{here}"]
[[inputs]]
name = "title"
dtype = "int64"
shape = ["tokens"]
[[inputs]]
name = "price"
dtype = "float32"
shape = []
[output]
name = "score"
[data]
path = "rows.parquet"
evaluate_fraction = 0.5
"""


@pytest.fixture
def spec_file(tmp_path):
    write_rows(tmp_path / "rows.parquet")
    path = tmp_path / "spec.toml"
    path.write_text(SPEC_TOML.format(factory="make_bag_ranker", here=HERE))
    return path


# -- the spec ---------------------------------------------------------------------------------------------------


def test_a_spec_file_reads_into_the_python_api(spec_file):
    spec = load_spec(spec_file)
    assert spec.name == "bag_ranker" and spec.layout is Layout.ROWS
    assert [i.name for i in spec.inputs] == ["title", "price"]
    assert spec.input("title").dynamic and spec.input("title").dims == [-1] and spec.input("price").dims == []
    assert spec.data.path == spec_file.parent / "rows.parquet" and spec.model.kind == "factory"
    built = ModelSpec(
        name="bag_ranker",
        model=ModelSource(factory="test_spec:make_bag_ranker", python_path=(HERE,)),
        inputs=(InputSpec(name="title", dtype="int64", shape=("tokens",)), InputSpec(name="price", dtype="float32")),
    )
    assert built.inputs == spec.inputs and built.output == spec.output


@pytest.mark.parametrize(
    "change,field",
    [
        (lambda t: t.replace('name = "bag_ranker"', ""), "name"),
        (lambda t: t.replace('dtype = "float32"', 'dtype = "float64"'), "input 'price'.dtype"),
        (lambda t: t.replace('shape = ["tokens"]', "shape = [0]"), "input 'title'.shape"),
        (lambda t: t.replace("[output]", "[output]\nunits = 1"), "output: unknown key(s) ['units']"),
        (lambda t: t.replace("evaluate_fraction = 0.5", "evaluate_fraction = 2.0"), "data.evaluate_fraction"),
        (
            lambda t: t.replace('factory = "test_spec:{factory}"', 'factory = "x:y"\nonnx = "m.onnx"'),
            "model: name exactly one",
        ),
        (lambda t: t.replace('factory = "test_spec:{factory}"', 'factory = "no colon"'), "model.factory"),
        (lambda t: t.replace('name = "title"', 'name = "price"'), "inputs: names must be unique"),
        (lambda t: t.replace("[data]", "[data]\nlabels = 1"), "data: unknown key(s) ['labels']"),
        (lambda t: t + "\n[metrics]\ncutoffs = [0]\n", "metrics.cutoffs"),
        (lambda t: t.replace("[[inputs]]", "[[input]]", 1), "the spec: unknown key(s) ['input']"),
    ],
)
def test_a_bad_spec_is_refused_naming_the_field(tmp_path, change, field):
    path = tmp_path / "spec.toml"
    path.write_text(change(SPEC_TOML).format(factory="make_bag_ranker", here=HERE))
    with pytest.raises(ConfigError) as e:
        load_spec(path)
    assert str(path) in str(e.value) and field in str(e.value)


def test_a_spec_file_that_is_not_toml_or_missing_is_refused(tmp_path):
    (tmp_path / "bad.toml").write_text("name = [")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_spec(tmp_path / "bad.toml")
    with pytest.raises(ConfigError, match="cannot read it"):
        load_spec(tmp_path / "missing.toml")


# -- rows and metrics ------------------------------------------------------------------------------------------------


def test_rows_are_read_per_input_padded_and_split_by_whole_queries(spec_file):
    spec = load_spec(spec_file)
    rows = read_rows(spec)
    titles = pq.read_table(spec.data.path).column("title").to_pylist()
    assert rows.features["title"].shape == (len(rows), max(len(t) for t in titles))
    assert rows.lengths["title"].tolist() == [len(t) for t in titles]
    assert rows.features["title"][0, : len(titles[0])].tolist() == titles[0]
    assert rows.features["price"].dtype == np.float32 and rows.features["price"].shape == (len(rows),)
    batch = rows.batch(0, 3)
    assert batch["title"].shape[1] == max(len(t) for t in titles[:3])  # trimmed to the batch's longest
    calibrate, evaluate = split_rows(spec, rows)
    assert len(calibrate) + len(evaluate) == len(rows)
    assert not set(calibrate.query_ids) & set(evaluate.query_ids)
    assert split_rows(spec, rows)[1].positions.tolist() == evaluate.positions.tolist()  # seeded


@pytest.mark.parametrize(
    "table,message",
    [
        (lambda t: t.drop_columns(["price"]), "no column 'price'"),
        (lambda t: t.set_column(3, "price", pa.array(["x"] * t.num_rows)), "does not hold float32 values"),
        (lambda t: t.set_column(1, "label", pa.array([2] * t.num_rows)), "must hold 0 or 1 only"),
        (lambda t: t.drop_columns(["query_id"]), "no column 'query_id'"),
    ],
)
def test_a_bad_data_file_is_refused_naming_the_column(spec_file, table, message):
    spec = load_spec(spec_file)
    pq.write_table(table(pq.read_table(spec.data.path)), spec.data.path)
    with pytest.raises(DataError, match=message):
        read_rows(spec)


def test_a_file_that_is_not_parquet_is_refused(spec_file):
    spec = load_spec(spec_file)
    spec.data.path.write_text("label,price\n1,2\n")
    with pytest.raises(DataError, match="not a readable Parquet file"):
        read_rows(spec)


def test_grouped_metrics_equal_the_padded_metrics_on_equal_size_queries():
    rng = np.random.default_rng(0)
    scores, labels = rng.normal(size=(40, 12)), (rng.random((40, 12)) < 0.2).astype(float)
    scores[3, :5] = 0.25  # ties are broken pessimistically in both
    padded = ranking_metrics(scores, labels)
    order = rng.permutation(scores.size)  # rows of a query need not be adjacent
    groups = np.repeat(np.arange(40), 12)[order]
    grouped = grouped_metrics(scores.ravel()[order], labels.ravel()[order], groups, cutoffs=(5, 10))
    for key in ("ndcg@5", "ndcg@10", "hr@5", "hr@10", "mrr", "logloss"):
        assert grouped[key] == pytest.approx(padded[key], abs=1e-12), key
    assert grouped["auc"] == pytest.approx(padded["auc_global"]) and grouped["n_queries"] == padded["n_users"]
    assert grouped["gauc"] == pytest.approx(padded["auc"], abs=1e-12)  # the mean within queries, ties counting half


# -- export ----------------------------------------------------------------------------------------------------------


def test_the_test_file_model_exports_through_the_api_with_served_dims_dynamic(spec_file, tmp_path):
    spec = load_spec(spec_file)
    evaluate = spec_rows(spec)
    result = export_spec(spec, evaluate, tmp_path / "export")
    assert [a.precision for a in result.artifacts] == ["fp32", "fp16"] and result.parity_rows == len(evaluate)
    fp32, fp16 = result.parity
    assert fp32.passed and fp32.max_abs < 1e-5 and fp32.n_scores == len(evaluate)
    assert fp16.passed
    eager, exported = module_rows_scorer(load_module(spec), spec), onnx_rows_scorer(result.model_path, spec)
    for start, stop in evaluate.queries():  # one query at a time: other row counts and token lengths than exported
        batch = evaluate.batch(start, stop)
        np.testing.assert_allclose(exported(batch), eager(batch), atol=1e-5)
    report = json.loads((tmp_path / "export" / "spec_export.json").read_text())
    assert report["layout"] == "rows" and report["parity"][0]["candidate"] == "onnx fp32"
    eager_quality = spec_quality_step(spec)
    onnx_quality = spec_quality_step(spec, onnx=result.model_path)
    assert eager_quality.runtime == "eager" and onnx_quality.runtime == "onnxruntime"
    for key in ("auc", "ndcg@10", "mrr"):
        assert onnx_quality.metrics[key] == pytest.approx(eager_quality.metrics[key], abs=1e-5)


def test_the_test_file_model_exports_and_evaluates_through_the_cli(spec_file, tmp_path):
    out = tmp_path / "cli-export"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["export", "onnx", "--spec", str(spec_file), "--out", str(out), "--json"]) == 0
    record = json.loads(printed.getvalue())
    assert record["parity"][0]["passed"] and (out / "model.onnx").is_file()
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["evaluate", "--spec", str(spec_file), "--onnx", str(out / "model.onnx"), "--json"]) == 0
    served_like = json.loads(printed.getvalue())
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["evaluate", "--spec", str(spec_file), "--split", "evaluate", "--json"]) == 0
    eager = json.loads(printed.getvalue())
    assert served_like["runtime"] == "onnxruntime" and eager["runtime"] == "eager"
    assert served_like["ndcg@10"] == pytest.approx(eager["ndcg@10"], abs=1e-4)


def test_a_model_that_does_not_give_one_score_per_row_is_refused_before_export(spec_file, tmp_path):
    spec_file.write_text(SPEC_TOML.format(factory="make_two_scores", here=HERE))
    spec = load_spec(spec_file)
    with pytest.raises(ExportError, match=r"returned shape \[4, 2\] for 4 rows; a ranker returns one score per row"):
        export_spec(spec, spec_rows(spec, RowsSplit.ALL), tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_a_spec_whose_dtype_the_model_cannot_take_fails_its_dry_run_naming_the_inputs(spec_file, tmp_path):
    spec_file.write_text(
        SPEC_TOML.format(factory="make_bag_ranker", here=HERE).replace('dtype = "int64"', 'dtype = "float32"')
    )
    spec = load_spec(spec_file)
    with pytest.raises(ExportError, match=r"dry run of the PyTorch module on 4 rows .*'title': 'float32\[4, \d+\]'"):
        export_spec(spec, spec_rows(spec), tmp_path / "out")
    assert not (tmp_path / "out").exists()


class UnsupportedOp(nn.Module):
    def forward(self, title: torch.Tensor, price: torch.Tensor) -> torch.Tensor:
        return torch.special.bessel_j0(price)


def make_unsupported() -> UnsupportedOp:
    return UnsupportedOp()


def test_an_operator_onnx_cannot_express_is_named(spec_file, tmp_path):
    spec_file.write_text(SPEC_TOML.format(factory="make_unsupported", here=HERE))
    spec = load_spec(spec_file)
    with pytest.raises(ExportError, match="operator prims.bessel_j0 has no ONNX conversion"):
        export_spec(spec, spec_rows(spec), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_an_onnx_spec_whose_names_or_dtypes_differ_from_the_graph_is_refused(spec_file, tmp_path):
    spec = load_spec(spec_file)
    exported = export_spec(spec, spec_rows(spec), tmp_path / "export", fp16=False)
    onnx_spec = SPEC_TOML.format(factory="x", here=HERE).replace(
        f'factory = "test_spec:x"\npython_path = ["{HERE}"]', f'onnx = "{exported.model_path}"'
    )
    (tmp_path / "onnx.toml").write_text(onnx_spec)
    good = load_spec(tmp_path / "onnx.toml")
    assert export_spec(good, spec_rows(good), tmp_path / "copied").parity[0].candidate == "onnx fp16"
    (tmp_path / "onnx.toml").write_text(onnx_spec.replace('name = "price"', 'name = "cost"'))
    with pytest.raises(
        ExportError, match=r"inputs: the spec names 'cost', the graph's inputs are \['price', 'title'\]"
    ):
        export_spec(load_spec(tmp_path / "onnx.toml"), spec_rows(good), tmp_path / "bad")  # checked before any row
    (tmp_path / "onnx.toml").write_text(onnx_spec.replace('dtype = "int64"', 'dtype = "int32"'))
    with pytest.raises(ExportError, match=r"input 'title'.dtype: the spec says int32"):
        bad = load_spec(tmp_path / "onnx.toml")
        export_spec(bad, spec_rows(bad), tmp_path / "bad")


# -- the CPU variant's model.py (pure functions) ---------------------------------------------------------------------


def test_the_rows_model_packs_requests_of_different_lengths_and_splits_the_scores_back():
    from tritonrec.backends.rows_cpu_model import InputRule, check_rows, pack_rows, split_rows

    rules = [InputRule("title", "int64", [-1], pad=0, max_len=8), InputRule("price", "float32", [1], scalar=True)]
    a = {"title": np.array([[1, 2]], np.int64), "price": np.array([[3.0]], np.float32)}
    b = {"title": np.array([[4, 5, 6], [7, 8, 9]], np.int64), "price": np.array([[1.0], [2.0]], np.float32)}
    assert check_rows(a, rules) is None and check_rows(b, rules) is None
    packed = pack_rows([a, b], rules)
    assert packed["title"].tolist() == [[1, 2, 0], [4, 5, 6], [7, 8, 9]] and packed["price"].tolist() == [3, 1, 2]
    parts = split_rows(np.array([[0.1], [0.2], [0.3]], np.float32), [1, 2])
    assert [p.tolist() for p in parts] == [[pytest.approx(0.1)], [pytest.approx(0.2), pytest.approx(0.3)]]
    assert "row counts" in check_rows({"title": a["title"], "price": b["price"]}, rules)
    assert "at most 8" in check_rows({"title": np.ones((1, 9), np.int64), "price": a["price"]}, rules)
    assert "1 NaN or infinite value(s), first in row 0" in check_rows(
        {**a, "price": np.array([[np.inf]], np.float32)}, rules
    )
    allowed = [rules[0], InputRule("price", "float32", [1], scalar=True, allow_nan=True)]
    assert check_rows({**a, "price": np.array([[np.nan]], np.float32)}, allowed) is None
