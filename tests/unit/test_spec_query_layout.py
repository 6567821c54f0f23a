"""The query + candidates layout of a model spec, for a model defined only in this test file: query inputs (a
variable-length history, an age) once per query, item inputs per candidate. Its rows, scores back to one per row,
export with parity, quality equal in every runtime, the served configs, and the CPU variant's packing.
"""

import contextlib
import io
import json
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from torch import nn

from tritonrec.cli import main
from tritonrec.errors import ExportError
from tritonrec.export.spec_export import export_spec
from tritonrec.metrics import score_rows
from tritonrec.pipeline.spec_steps import spec_quality_step, spec_rows
from tritonrec.repository.spec_variants import SpecVariant, SpecVariantKind, spec_model_config, trt_shapes
from tritonrec.scorers.rows import module_rows_scorer, onnx_rows_scorer
from tritonrec.spec import Layout, load_spec
from tritonrec.spec.module import load_module
from tritonrec.spec.rows import read_rows

pytestmark = pytest.mark.unit

HERE = Path(__file__).resolve().parent
VOCAB = 60


class HistoryRanker(nn.Module):
    """Defined only here: a user's history of item ids (variable length, 0 = padding) and age, once per query; each
    candidate's item id and price. ``[Q, L]``, ``[Q]``, ``[Q, N]``, ``[Q, N]`` -> ``[Q, N]`` logits."""

    def __init__(self, dim: int = 8) -> None:
        super().__init__()
        self.items = nn.Embedding(VOCAB, dim, padding_idx=0)
        self.age = nn.Linear(1, dim)
        self.price = nn.Linear(1, 1)

    def forward(
        self, history: torch.Tensor, age: torch.Tensor, item: torch.Tensor, price: torch.Tensor
    ) -> torch.Tensor:
        ids = torch.remainder(history, VOCAB)
        mask = (ids > 0).float().unsqueeze(-1)
        user = (self.items(ids) * mask).sum(1) / mask.sum(1).clamp(min=1.0) + self.age(age.unsqueeze(1) / 100.0)
        candidates = self.items(torch.remainder(item, VOCAB))
        priced = self.price(torch.log1p(price.abs()).unsqueeze(-1)).squeeze(-1)
        return (candidates * user.unsqueeze(1)).sum(-1) + priced


def make_history_ranker(dim: int = 8) -> HistoryRanker:
    torch.manual_seed(0)
    return HistoryRanker(dim)


class OnePerQuery(nn.Module):
    """One score per query, not per candidate: not a ranker."""

    def forward(
        self, history: torch.Tensor, age: torch.Tensor, item: torch.Tensor, price: torch.Tensor
    ) -> torch.Tensor:
        return price.sum(1)


def make_one_per_query() -> OnePerQuery:
    return OnePerQuery()


def write_query_rows(path: Path, n_queries: int = 40, seed: int = 0) -> Path:
    """A row per candidate; each query's history and age repeated on its rows (as a feature log has them)."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(3, 12, n_queries)
    histories = [rng.integers(1, VOCAB, rng.integers(2, 10)).tolist() for _ in range(n_queries)]
    ages = rng.uniform(18, 70, n_queries).astype(np.float32)
    rows = int(sizes.sum())
    table = pa.table(
        {
            "query_id": np.repeat(np.arange(n_queries) * 3 + 11, sizes),
            "label": (rng.random(rows) < 0.3).astype(np.int64),
            "history": [h for h, n in zip(histories, sizes, strict=True) for _ in range(n)],
            "age": np.repeat(ages, sizes),
            "item": rng.integers(1, VOCAB, rows),
            "price": rng.gamma(2.0, 10.0, rows).astype(np.float32),
        }
    )
    pq.write_table(table, path)
    return path


QUERY_SPEC_TOML = """
name = "history_ranker"
[model]
factory = "test_spec_query_layout:{factory}"
python_path = ["{here}"]
[[inputs]]
name = "history"
dtype = "int64"
shape = ["events"]
role = "query"
[[inputs]]
name = "age"
dtype = "float32"
shape = []
role = "query"
[[inputs]]
name = "item"
dtype = "int64"
shape = []
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
def query_spec_file(tmp_path):
    write_query_rows(tmp_path / "rows.parquet")
    path = tmp_path / "spec.toml"
    path.write_text(QUERY_SPEC_TOML.format(factory="make_history_ranker", here=HERE))
    return path


def test_query_inputs_are_read_once_per_query_and_batches_hold_each_querys_candidates(query_spec_file):
    spec = load_spec(query_spec_file)
    assert spec.layout is Layout.QUERY_CANDIDATES
    rows = read_rows(spec)
    table = pq.read_table(query_spec_file.parent / "rows.parquet").to_pydict()
    assert (
        rows.query_layout
        and set(rows.query_features) == {"history", "age"}
        and set(rows.features)
        == {
            "item",
            "price",
        }
    )
    assert rows.query_features["age"].shape == (40,) and rows.features["item"].shape == (len(rows),)
    (a, b), (_, c) = list(rows.queries())[:2]
    batch = rows.batch(a, c)  # two queries
    assert batch["item"].shape == (2, max(b - a, c - b)) and batch["age"].shape == (2,)
    assert batch["item"][0, : b - a].tolist() == table["item"][a:b]
    assert batch["item"][1, : c - b].tolist() == table["item"][b:c]
    longest = max(len(table["history"][a]), len(table["history"][b]))
    assert batch["history"].shape == (2, longest)  # trimmed to the batch's longest history
    assert batch["history"][1, : len(table["history"][b])].tolist() == table["history"][b]
    grid = np.arange(batch["item"].size, dtype=np.float32).reshape(batch["item"].shape)
    back = rows.scores_of(grid, a, c)  # one score per row, the padding dropped
    assert back.tolist() == [*grid[0, : b - a].tolist(), *grid[1, : c - b].tolist()]
    with pytest.raises(ValueError, match="one score per candidate"):
        rows.scores_of(grid[:, 0], a, c)
    for _, stop in rows.bounds(25):
        assert stop == len(rows) or rows.query_ids[stop] != rows.query_ids[stop - 1]  # whole queries


def test_scores_in_batches_equal_each_query_scored_alone(query_spec_file):
    spec = load_spec(query_spec_file)
    rows = spec_rows(spec)
    eager = module_rows_scorer(load_module(spec), spec)
    alone = np.concatenate([np.asarray(eager(rows.batch(a, b))).reshape(-1) for a, b in rows.queries()])
    np.testing.assert_allclose(score_rows(eager, rows, batch_rows=30), alone, atol=1e-6)


def test_the_query_layout_model_exports_with_parity_and_scores_the_same_in_every_runtime(query_spec_file, tmp_path):
    spec = load_spec(query_spec_file)
    result = export_spec(spec, spec_rows(spec), tmp_path / "export")
    assert [r.passed for r in result.parity] == [True, True]
    assert result.parity[0].max_abs < 1e-5 and result.parity_rows == len(spec_rows(spec))
    report = json.loads((tmp_path / "export" / "spec_export.json").read_text())
    assert report["layout"] == "query_candidates" and report["inputs"][0]["role"] == "query"
    rows = spec_rows(spec)
    three = rows.batch(*next(rows.bounds(20)))  # other query, candidate and history counts than the export's example
    onnx = onnx_rows_scorer(tmp_path / "export" / "model.onnx", spec)
    np.testing.assert_allclose(onnx(three), module_rows_scorer(load_module(spec), spec)(three), atol=1e-5)
    eager, exported = spec_quality_step(spec), spec_quality_step(spec, onnx=tmp_path / "export" / "model.onnx")
    for key in ("auc", "logloss", "ndcg@10", "mrr"):
        assert exported.metrics[key] == pytest.approx(eager.metrics[key], abs=1e-6), key
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["evaluate", "--spec", str(query_spec_file), "--json"]) == 0
    assert json.loads(printed.getvalue())["ndcg@10"] == pytest.approx(eager.metrics["ndcg@10"], abs=1e-4)


def test_a_model_with_one_score_per_query_is_refused_before_export(tmp_path):
    write_query_rows(tmp_path / "rows.parquet")
    (tmp_path / "spec.toml").write_text(QUERY_SPEC_TOML.format(factory="make_one_per_query", here=HERE))
    spec = load_spec(tmp_path / "spec.toml")
    with pytest.raises(ExportError, match=r"returned shape \[1\] for 1 queries .* one score per candidate"):
        export_spec(spec, spec_rows(spec), tmp_path / "export")
    assert not (tmp_path / "export").exists()


def test_the_served_configs_take_query_inputs_once_and_item_inputs_per_candidate(query_spec_file):
    spec = load_spec(query_spec_file)
    rows = spec_rows(spec)
    cpu = spec_model_config(spec, SpecVariant(kind=SpecVariantKind.CPU), rows)
    dims = {i.name: list(i.dims) for i in cpu.input}
    assert dims == {"history": [-1], "age": [1], "item": [-1], "price": [-1]}
    assert cpu.max_batch_size == 64 and list(cpu.output[0].dims) == [-1]  # queries per execution; [Q, N] scores
    params = {k: v.string_value for k, v in cpu.parameters.items()}
    assert params["layout"] == "query_candidates" and params["candidates_item"] == "true"
    assert "candidates_history" not in params and params["scalar_age"] == "true" and "scalar_item" not in params
    assert all(i.allow_ragged_batch for i in cpu.input if i.name != "age")  # the Python model pads them
    assert cpu.model_warmup[0].batch_size == 1  # one real query
    native = spec_model_config(spec, SpecVariant(kind=SpecVariantKind.ONNX), rows)
    assert {i.name: list(i.reshape.shape) for i in native.input if i.HasField("reshape")} == {"age": []}
    assert not native.output[0].HasField("reshape") and not any(i.allow_ragged_batch for i in native.input)
    shapes = trt_shapes(spec, SpecVariant(kind=SpecVariantKind.TRT_FP16, max_len=64, max_candidates=500), rows)
    n = next(rows.queries())
    assert shapes["trt_max_shapes"] == "history:64x64,age:64,item:64x500,price:64x500"
    assert shapes["trt_opt_shapes"].startswith("history:16x") and f"item:16x{n[1] - n[0]}" in shapes["trt_opt_shapes"]


def test_the_cpu_model_packs_queries_of_different_candidate_counts_and_splits_them_back():
    from tritonrec.backends.rows_cpu_model import InputRule, check_rows, pack_rows, split_rows

    rules = [
        InputRule("history", "int64", [-1], max_len=8),
        InputRule("item", "int64", [-1], max_candidates=4),
        InputRule("price", "float32", [-1], max_candidates=4),
    ]
    a = {"history": np.array([[1, 2]]), "item": np.array([[5, 6, 7]]), "price": np.ones((1, 3), np.float32)}
    b = {"history": np.array([[3, 4, 9]]), "item": np.array([[8]]), "price": np.ones((1, 1), np.float32)}
    assert check_rows(a, rules) is None and check_rows(b, rules) is None
    packed = pack_rows([a, b], rules)
    assert packed["item"].tolist() == [[5, 6, 7], [8, 0, 0]] and packed["history"].tolist() == [[1, 2, 0], [3, 4, 9]]
    parts = split_rows(np.array([[0.1, 0.2, 0.3], [0.4, 0.0, 0.0]], np.float32), [1, 1], [3, 1])
    assert [p.shape for p in parts] == [(1, 3), (1, 1)] and parts[1].tolist() == [[pytest.approx(0.4)]]
    assert "different candidate counts" in check_rows({**a, "price": np.ones((1, 2), np.float32)}, rules)
    assert "at most 4" in check_rows({**a, "item": np.ones((1, 5), np.int64), "price": np.ones((1, 5))}, rules)
    assert "no candidates" in check_rows({**a, "item": np.ones((1, 0), np.int64), "price": np.ones((1, 0))}, rules)
    assert "at most 8" in check_rows({**a, "history": np.ones((1, 9), np.int64)}, rules)


def test_export_trt_builds_the_spec_engine_with_the_profile_its_config_states(
    query_spec_file, tmp_path, monkeypatch, capsys
):
    from test_tensorrt import stand_in_tensorrt

    from tritonrec.export.tensorrt_plan import EngineMetadata

    spec = load_spec(query_spec_file)
    export_spec(spec, spec_rows(spec), tmp_path / "export", fp16=False)
    config = spec_model_config(spec, SpecVariant(kind=SpecVariantKind.TRT_FP16), spec_rows(spec))
    args = ["export", "trt", "--spec", str(query_spec_file), "--onnx", str(tmp_path / "export" / "model.onnx")]
    assert main([*args, "--precision", "fp16", "--print-trtexec"]) == 0
    line = capsys.readouterr().out.split()
    assert line[:2] == ["trtexec", f"--onnx={tmp_path / 'export' / 'model.onnx'}"] and "--fp16" in line
    for flag, key in (
        ("--minShapes", "trt_min_shapes"),
        ("--optShapes", "trt_opt_shapes"),
        ("--maxShapes", "trt_max_shapes"),
    ):
        assert f"{flag}={config.parameters[key].string_value}" in line  # what build_trt_engines.sh passes
    calls = []
    trt, _ = stand_in_tensorrt(calls)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setattr("tritonrec.export.tensorrt_build.gpu_identity", lambda: ("NVIDIA L4", "8.9"))
    assert main([*args, "--precision", "fp16", "--out", str(tmp_path / "repo" / "1")]) == 0
    plan = tmp_path / "repo" / "1" / "model.plan"  # the file the trt_fp16 config loads
    meta = EngineMetadata.read(plan)
    assert plan.read_bytes() == b"serialized engine" and meta.profile.layout == "spec"
    assert meta.profile.shapes()["item"][2] == (64, 2048) and ("flag", "FP16") in calls
    capsys.readouterr()
    assert main([*args, "--precision", "int8", "--print-trtexec"]) == 1
    assert "with --spec: --precision fp16" in capsys.readouterr().err
