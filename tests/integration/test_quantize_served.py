"""`tritonrec quantize` end to end on a briefly trained Beauty model (the `quantized` fixture of conftest.py), and
INT8 files served by the real Triton."""

import json
import shutil

import pytest

from tritonrec.quantize.modelopt_ptq import find_modelopt_python
from tritonrec.quantize.served_parity import served_check

pytestmark = pytest.mark.integration

REQUIRED = {"name", "ndcg@10", "auc", "ndcg@10_delta", "auc_delta", "bytes", "cand_per_s_256", "within_budget"}


def test_quantize_prints_one_json_object_with_every_variant(quantized):
    out, printed = quantized
    record = json.loads(printed)  # the whole of stdout is one object
    names = [v["name"] for v in record["variants"]]
    assert names[:2] == ["fp32", "int8-ort-minmax"]
    assert {"int8-mixed", "int8-mixed-qop-u8s8", "int8-mixed-dynamic", "openvino-fp32", "openvino-int8"} <= set(names)
    for entry in record["variants"]:
        assert REQUIRED <= set(entry), entry["name"]
        assert entry["bytes"] > 0 and entry["cand_per_s_256"] > 0
    fp32 = record["variants"][0]
    assert fp32["ndcg@10_delta"] == 0 and fp32["within_budget"]
    int8 = next(v for v in record["variants"] if v["name"] == "int8-ort-minmax")
    assert int8["bytes"] < fp32["bytes"] / 2 and int8["profile"]["int8_ops"], "INT8 weights, INT8 kernels"
    groups = {g["group"] for g in record["sensitivity"]["groups"]}
    assert {"embeddings", "target_attention", "cross", "mlp", "head"} <= groups
    assert record["mixed"]["valid_within_budget"] and set(record["mixed"]["kept_fp"]) <= groups
    if find_modelopt_python():
        assert "int8-modelopt-max" in names and not record["modelopt_errors"]
    assert record["host"]["isa"] == record["isa"] and record["command"].startswith("tritonrec ")
    for name in ("model_qdq.onnx", "export.json", "model.onnx", "model_ragged.onnx", "quantize.json", "precision.md"):
        assert (out / name).is_file(), name


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_served_int8_scores_equal_in_process_scores(quantized, data, runtime):
    out, _ = quantized
    for stale in out.glob("model_int8.*"):
        stale.unlink()
    if runtime == "onnxruntime":
        shutil.copy2(out / "model_qdq.onnx", out / "model_int8.onnx")
    else:
        shutil.copy2(out / "variants" / "openvino_int8.xml", out / "model_int8.xml")
        shutil.copy2(out / "variants" / "openvino_int8.bin", out / "model_int8.bin")
    rows = data.test.head(48)
    check = served_check(out, rows, variant="int8", runtime=runtime, concurrency=8)
    assert check.users == 48 and check.grpc_requests >= 48
    assert check.max_abs_diff <= 1e-5
    assert check.ndcg_served == pytest.approx(check.ndcg_in_process, abs=1e-12)
