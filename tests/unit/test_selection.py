"""The selection rules and the report of ``tritonrec select`` on hand-made rows (the measurements are integration)."""

from pathlib import Path

import pytest

from tritonrec.errors import ConfigError
from tritonrec.select.candidates import ModelArtifacts, Precision, Runtime, plan
from tritonrec.select.report import markdown, write_html
from tritonrec.select.selection import Constraints, choose, pareto


def _row(name, cps, *, p99=20.0, auc=0.0, ndcg=0.0, served=True, ndcg_value=0.30, size=1000, rss=100.0):
    low, mid, high = cps
    return {
        "name": name,
        "measured": True,
        "served": served,
        "p99_ms": p99,
        "cand_per_s": {"median": mid, "min": low, "max": high, "n": 3},
        "delta": {"auc": auc, "ndcg@10": ndcg},
        "ndcg@10": ndcg_value,
        "bytes": size,
        "peak_rss_mib": rss,
    }


def test_the_fastest_eligible_served_candidate_is_chosen_and_every_other_says_why():
    rows = [
        _row("fast-but-lossy", (300, 310, 320), ndcg=-0.02),
        _row("slow", (100, 110, 120)),
        _row("fast", (200, 210, 220)),
        _row("over-sla", (400, 410, 420), p99=80.0),
        _row("in-process", (900, 910, 920), served=False),
        {"name": "gpu", "measured": False, "served": False, "reason": "not measured: needs an NVIDIA GPU"},
    ]
    assert choose(rows, Constraints(p99_ms=50)) == "fast"
    reasons = {r["name"]: r["reason"] for r in rows}
    assert reasons["fast"].startswith("chosen")
    assert "NDCG@10 drop 0.0200 > budget 0.005" in reasons["fast-but-lossy"]
    assert "measurably slower" in reasons["slow"]
    assert "p99 80.0 ms > SLA 50 ms" in reasons["over-sla"]
    assert reasons["in-process"].startswith("in process only")
    assert reasons["gpu"] == "not measured: needs an NVIDIA GPU"
    flags = {r["name"]: (r["meets_sla"], r["meets_quality"]) for r in rows}
    assert flags["over-sla"] == (False, True) and flags["fast-but-lossy"] == (True, False)
    assert flags["gpu"] == (None, None)


def test_throughputs_within_the_spread_are_a_tie_broken_by_quality_then_bytes():
    rows = [
        _row("a", (200, 230, 260), ndcg_value=0.30, size=2000),
        _row("b", (240, 250, 255), ndcg_value=0.31, size=3000),
        _row("c", (180, 220, 250), ndcg_value=0.31, size=1000),
    ]
    assert choose(rows, Constraints(p99_ms=50)) == "c"  # all three overlap; b and c best NDCG; c smaller
    assert "tied" in next(r for r in rows if r["name"] == "b")["reason"]
    # the same rows in another order: the same pick (a rerun whose order differs)
    assert choose(list(reversed(rows)), Constraints(p99_ms=50)) == "c"


def test_memory_cap_and_auc_budget_reject_with_their_figures():
    rows = [_row("big", (300, 300, 300), rss=900.0), _row("lossy-auc", (250, 250, 250), auc=-0.001)]
    assert choose(rows, Constraints(p99_ms=50, memory_mib=512)) is None
    assert "peak RSS 900 MiB > cap 512 MiB" in rows[0]["reason"]
    assert "AUC drop 0.0010 > budget 0.0008" in rows[1]["reason"]


def test_constraints_refuse_nonsense():
    with pytest.raises(ConfigError):
        Constraints(p99_ms=0)
    with pytest.raises(ConfigError):
        Constraints(p99_ms=10, max_auc_drop=-1)
    with pytest.raises(ConfigError):
        Constraints(p99_ms=10, memory_mib=0)


def test_pareto_keeps_only_points_nothing_beats_on_both_axes():
    points = [("a", 100, 0.30), ("b", 200, 0.29), ("c", 150, 0.28), ("d", 200, 0.25)]
    assert pareto(points, maximize_y=True) == ["a", "b"]
    latency = [("a", 100, 10.0), ("b", 200, 30.0), ("c", 150, 40.0)]
    assert pareto(latency, maximize_y=False) == ["a", "b"]


def test_the_plan_lists_what_cannot_run_here_with_the_reason(tmp_path):
    model = ModelArtifacts("base", tmp_path / "ckpt", tmp_path / "export")
    candidates = plan([model])
    names = [c.name for c in candidates]
    assert len(names) == len(set(names))
    int8 = next(c for c in candidates if c.runtime is Runtime.ONNXRUNTIME and c.precision is Precision.INT8)
    assert "tritonrec quantize" in int8.skip
    trt = next(c for c in candidates if c.runtime is Runtime.TENSORRT)
    assert "GPU" in trt.skip
    only = plan([model], runtimes=[Runtime.TRITON], precisions=[Precision.FP32])
    assert [c.name for c in only] == ["base/triton/fp32"]


def _graph(path: Path, op: str, domain: str = "") -> Path:
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])
    node = helper.make_node(op, ["x", "x"], ["y"], domain=domain)
    onnx.save(helper.make_model(helper.make_graph([node], "g", [x], [y])), str(path))
    return path


def test_int8_files_become_candidates_of_the_runtime_that_reads_them(tmp_path):
    onnx, ir = _graph(tmp_path / "model_int8.onnx", "MatMul"), tmp_path / "model_int8.xml"
    model = ModelArtifacts("base", tmp_path / "ckpt", tmp_path / "export", (onnx, ir))
    int8 = {c.runtime: c for c in plan([model], precisions=[Precision.INT8]) if c.skip is None}
    assert int8[Runtime.ONNXRUNTIME].artifact == onnx == int8[Runtime.TRITON].artifact
    assert int8[Runtime.OPENVINO].artifact == ir == int8[Runtime.TRITON_OPENVINO].artifact
    assert Runtime.TRITON_OPENVINO.served and Runtime.TRITON_OPENVINO.cpu_runtime == "openvino"
    assert Runtime.TRITON.cpu_runtime == "onnxruntime" and not Runtime.OPENVINO.served
    only_onnx = ModelArtifacts("base", tmp_path / "ckpt", tmp_path / "export", (onnx,))
    skipped = {c.runtime: c.skip for c in plan([only_onnx], precisions=[Precision.INT8])}
    assert skipped[Runtime.TRITON] is None and "OpenVINO IR" in skipped[Runtime.TRITON_OPENVINO]


def _record(tmp_path: Path) -> dict:
    rows = [
        {
            **_row("base/triton/fp32", (100, 120, 130)),
            "model": "base",
            "runtime": "triton",
            "precision": "fp32",
            "where": "served",
            "auc": 0.7,
            "hr@10": 0.5,
            "logloss": 0.6,
            "cost_per_million": 0.01,
            "in_process": {"load_s": {"median": 0.3, "min": 0.3, "max": 0.3, "n": 1}},
        },
        {"name": "base/tensorrt/fp16", "measured": False, "served": False, "reason": "not measured: needs a GPU"},
    ]
    rows[0]["delta"] = {"auc": 0.0, "ndcg@10": 0.0}
    chosen = choose(rows, Constraints(p99_ms=50))
    return {
        "command": "tritonrec select ...",
        "date": "2026-12-01T00:00:00Z",
        "host": {
            "cpu_model": "cpu",
            "cpu_affinity": 2,
            "cpu_count": 2,
            "isa": ["avx2"],
            "memory_gib": 1,
            "gpu": "none",
        },
        "versions": {"tritonrec": "0"},
        "settings": {"constraints": {"p99_ms": 50, "max_auc_drop": 0.0008, "max_ndcg_drop": 0.005, "memory_mib": None}},
        "reference": "base/triton/fp32",
        "chosen": chosen,
        "chosen_row": rows[0],
        "candidates": rows,
        "pareto": {"served": {"quality_vs_throughput": [chosen]}},
        "quality_users": 10,
        "peers": [],
    }


def test_markdown_and_html_show_the_pick_every_row_and_how_to_read_them(tmp_path):
    record = _record(tmp_path)
    text = markdown(record)
    assert "**Pick: base/triton/fp32**" in text and "not measured: needs a GPU" in text
    assert "## How to read this report" in text
    png = tmp_path / "plot.png"
    png.write_bytes(b"\x89PNG fake")
    page = write_html(record, tmp_path / "select.html", {"plot.png": png}).read_text()
    assert "data-chosen='base/triton/fp32'" in page and "data:image/png;base64," in page
    assert "<script" not in page  # a static page: nothing to run
    assert "<strong>Pick: base/triton/fp32</strong>" in page and "<h2>How to read this report</h2>" in page
    assert "<p>No peer tool was run (see the command" in page  # not cut, not a list item (issue 32)
    assert page.count("<table>") == 3 and "**" not in page


def test_the_page_lists_each_peer_whole(tmp_path):
    record = _record(tmp_path) | {"peers": [{"tool": "Model Navigator", "summary": "picked onnx <fp16> & more"}]}
    page = write_html(record, tmp_path / "select.html", {}).read_text()
    assert "<li><strong>Model Navigator</strong>: picked onnx &lt;fp16&gt; &amp; more</li>" in page


def test_an_int8_graph_that_quantizes_activations_per_batch_is_not_a_candidate(tmp_path):
    dynamic = _graph(tmp_path / "int8_dynamic.onnx", "DynamicQuantizeMatMul", "com.microsoft")
    model = ModelArtifacts("base", tmp_path / "ckpt", tmp_path / "export", (dynamic,))
    int8 = {c.runtime: c.skip for c in plan([model], precisions=[Precision.INT8])}
    for runtime in (Runtime.ONNXRUNTIME, Runtime.TRITON):
        assert "DynamicQuantizeMatMul" in int8[runtime] and "who is batched with them" in int8[runtime]


def test_quality_is_on_a_seeded_random_sample_and_the_report_says_so_with_the_reference_on_all(tmp_path):
    import numpy as np

    from tritonrec.data.splits import EvalSet

    rows = EvalSet(np.arange(100).reshape(50, 2), np.arange(150).reshape(50, 3), np.zeros((50, 3), np.float32))
    sample = rows.sample(10, seed=3)
    assert len(sample) == 10 and sample.histories[:, 0].tolist() == sorted(sample.histories[:, 0].tolist())
    assert sample.histories.tolist() != rows.head(10).histories.tolist()  # not the first users
    assert rows.sample(10, seed=3).histories.tolist() == sample.histories.tolist()  # seeded
    assert rows.sample(0, seed=3) is rows and rows.sample(50, seed=3) is rows
    record = _record(tmp_path) | {
        "quality_sample": {"users": 10, "of": 50, "seed": 3, "reference_all_users": {"ndcg@10": 0.31, "auc": 0.8}},
    }
    text = markdown(record)
    assert "quality on 10 of 50 test users (a random sample, seed 3)" in text
    assert f"the reference {record['reference']} on all of them: NDCG@10 0.3100, AUC 0.8000" in text
    every = _record(tmp_path) | {"quality_sample": {"users": 50, "of": 50, "seed": 0, "reference_all_users": None}}
    assert "quality on all 50 test users" in markdown(every)


def test_a_specs_graphs_are_named_by_stem_or_name_and_each_is_measured_in_its_runtime(tmp_path):
    from tritonrec.select.spec_candidates import named_graphs, spec_plan
    from tritonrec.spec import InputSpec, ModelSource, ModelSpec

    export, d8 = tmp_path / "export", tmp_path / "d8"
    export.mkdir()
    d8.mkdir()
    fp32 = _graph(export / "model.onnx", "Relu")
    mixed = _graph(tmp_path / "int8_mixed.onnx", "DequantizeLinear")  # a quantize op: INT8, whatever the name
    distilled = _graph(d8 / "model.onnx", "Relu")  # a compressed model's FP32 export
    (tmp_path / "ov_int8.xml").write_text('<net><layer type="FakeQuantize"/></net>')
    graphs = named_graphs([str(mixed), f"distill-d8={distilled}", str(tmp_path / "ov_int8.xml")])
    assert graphs == {"int8_mixed": mixed, "distill-d8": distilled, "ov_int8": tmp_path / "ov_int8.xml"}
    for bad in ([str(fp32), str(fp32)], [f"base={mixed}"], [str(tmp_path / "nope.onnx")], [f"x={tmp_path}/w.pt"]):
        with pytest.raises(ConfigError, match="--graph"):
            named_graphs(bad)
    spec = ModelSpec(name="m", model=ModelSource(onnx=fp32), inputs=(InputSpec(name="x", dtype="float32", shape=(2,)),))
    plan_ = {c.name: c for c in spec_plan(spec, export, graphs)}
    assert "ONNX file" in plan_["base/pytorch-eager/fp32"].skip  # no module to run eager
    assert plan_["int8_mixed/triton/int8"].skip is None and plan_["distill-d8/triton/fp32"].skip is None
    assert {"distill-d8/onnxruntime/fp32", "ov_int8/openvino/int8", "ov_int8/triton-openvino/int8"} <= set(plan_)
    assert "GPU" in plan_["base/tensorrt/fp16"].skip
