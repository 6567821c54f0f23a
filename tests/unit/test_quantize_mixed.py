"""Sensitivity per layer group and the mixed-precision choice, with a stand-in quantizer whose costs are known."""

from pathlib import Path

import pytest

from tritonrec.errors import ConfigError
from tritonrec.quantize.groups import LayerGroup, NodeInfo
from tritonrec.quantize.modelopt_ptq import ModelOptMethod, find_modelopt_python, quantize_modelopt
from tritonrec.quantize.sensitivity import Budget, choose_mixed, quality_delta, run_sensitivity

pytestmark = pytest.mark.unit

REFERENCE = {"ndcg@10": 0.40, "auc": 0.80, "logloss": 0.50}
# What quantizing each group costs (NDCG@10 drop, AUC drop); the stand-in model adds the costs up, plus an
# interaction: cross and MLP both in INT8 cost 0.0006 AUC more (deltas do not always add up).
COSTS = {
    LayerGroup.EMBEDDINGS: (0.0005, 0.0001),
    LayerGroup.HISTORY_ATTENTION: (0.0002, 0.00005),
    LayerGroup.TARGET_ATTENTION: (0.0030, 0.0006),  # sensitive: over its share of the budget
    LayerGroup.CROSS: (0.0008, 0.00012),
    LayerGroup.MLP: (0.0001, 0.00001),
    LayerGroup.HEAD: (0.0007, 0.0001),
}
INTERACTION = ({LayerGroup.CROSS, LayerGroup.MLP}, 0.0006)
GROUPS = {g: [NodeInfo(f"{g.value}_{i}", "MatMul", (g.value,)) for i in range(2)] for g in LayerGroup}


class StandIn:
    """Quantizes by remembering which groups stayed in float; evaluates by summing the quantized groups' costs."""

    def __init__(self):
        self.files: dict[Path, set[LayerGroup]] = {}

    def quantize(self, excluded, stem):
        path = Path(f"/virtual/{stem}-{len(self.files)}.onnx")
        self.files[path] = {g for g in LayerGroup if GROUPS[g][0].name not in excluded}
        return path

    def evaluate(self, path):
        quantized = self.files[path]
        both, extra = INTERACTION
        return {
            "ndcg@10": REFERENCE["ndcg@10"] - sum(COSTS[g][0] for g in quantized),
            "auc": REFERENCE["auc"] - sum(COSTS[g][1] for g in quantized) - (extra if both <= quantized else 0.0),
            "logloss": REFERENCE["logloss"],
        }


def test_each_group_is_measured_alone_and_the_costly_one_is_flagged():
    stand_in = StandIn()
    results = run_sensitivity(GROUPS, stand_in.quantize, stand_in.evaluate, REFERENCE, Budget())
    assert [r.group for r in results] == list(LayerGroup)
    assert all(len(q) == 1 for q in stand_in.files.values()), "one group in INT8 per run"
    target = next(r for r in results if r.group is LayerGroup.TARGET_ATTENTION)
    assert target.delta.auc == pytest.approx(-0.0006) and target.cost == pytest.approx(0.75)
    assert [r.group for r in results if r.sensitive] == [LayerGroup.TARGET_ATTENTION]


def test_mixed_keeps_sensitive_groups_and_adds_more_until_the_budget_holds():
    stand_in = StandIn()
    results = run_sensitivity(GROUPS, stand_in.quantize, stand_in.evaluate, REFERENCE, Budget())
    mixed = choose_mixed(GROUPS, results, stand_in.quantize, stand_in.evaluate, REFERENCE, Budget())
    # target attention alone in FP32 leaves cross + MLP interacting (AUC drop 0.00098): cross, the costliest group
    # still in INT8, joins it, and the budget holds
    assert [t["kept_fp"] for t in mixed.trail] == [["target_attention"], ["target_attention", "cross"]]
    assert mixed.trail[0]["budget_cost"] > 1 and mixed.trail[1]["budget_cost"] <= 1
    assert mixed.kept_fp == (LayerGroup.TARGET_ATTENTION, LayerGroup.CROSS) and mixed.within_budget
    assert set(mixed.excluded_nodes) == {"target_attention_0", "target_attention_1", "cross_0", "cross_1"}
    impossible = Budget(max_auc_drop=1e-9, max_ndcg_drop=1e-9)
    mixed = choose_mixed(GROUPS, results, stand_in.quantize, stand_in.evaluate, REFERENCE, impossible)
    assert set(mixed.kept_fp) == set(LayerGroup) and mixed.within_budget, "everything in FP32 is FP32"


def test_budget_costs_and_validation():
    budget = Budget()
    delta = quality_delta({"ndcg@10": 0.399, "auc": 0.7996, "logloss": 0.5}, REFERENCE)
    assert budget.allows(delta) and budget.cost(delta) == pytest.approx(0.5)
    assert not budget.allows(quality_delta({"ndcg@10": 0.39, "auc": 0.8, "logloss": 0.5}, REFERENCE))
    with pytest.raises(ConfigError):
        Budget(max_auc_drop=0)
    with pytest.raises(ConfigError, match="no layer group"):
        run_sensitivity({g: [] for g in LayerGroup}, StandIn().quantize, StandIn().evaluate, REFERENCE, budget)


def test_modelopt_without_its_interpreter_reports_why(tmp_path, monkeypatch):
    import numpy as np

    from tritonrec.quantize.calibration import CalibrationSet

    monkeypatch.delenv("TRITONREC_MODELOPT_PYTHON", raising=False)
    monkeypatch.chdir(tmp_path)  # no .tools/modelopt here
    rows = CalibrationSet(histories=np.zeros((2, 3), dtype=np.int64), candidates=np.ones((2, 4), dtype=np.int64))
    result = quantize_modelopt(tmp_path / "model.onnx", tmp_path / "out.onnx", rows, method=ModelOptMethod.MAX)
    assert result.path is None and "install_modelopt.sh" in (result.error or "")
    assert find_modelopt_python(tmp_path / "missing") is None
