"""The compression report judges speed side by side: in process, round by round against the parent."""

import pytest

from tritonrec.bench.models.compression_report import evaluate_goals, render_markdown, round_ratios
from tritonrec.records import new_record

pytestmark = pytest.mark.unit


def _entry(name, rounds, served, ndcg, **extra):
    ordered = sorted(rounds)
    return {
        "name": name, "parent": "parent", "params": 10, "checkpoint_bytes": 100, "export": {"onnx_bytes": 100},
        "metrics": {"ndcg@10": ndcg, "auc": 0.8},
        "in_process": {"candidates_per_second": ordered[len(ordered) // 2], "min": ordered[0], "max": ordered[-1],
                       "rounds": rounds},
        "served": {"candidates_per_second": served, "min": served, "max": served},
        **extra,
    }  # fmt: skip


def _record(student_rounds):
    parent = _entry("parent", [100.0, 200.0, 100.0], 50.0, 0.40, preset="base", checkpoint="p", evaluated_users=9)
    student = _entry(
        "distill-tiny", student_rounds, 80.0, 0.39, methods=["distill"], arguments={"weight": 0.5},
        delta_vs_parent={"ndcg@10": -0.01, "auc": 0.0}, delta_vs_root={"ndcg@10": -0.01, "auc": 0.0},
    )  # fmt: skip
    plan = {"dataset": "beauty", "parent": parent, "variants": [student]}
    settings = {"batch_users": 64, "n_candidates": 200, "repeats": 3, "repeat_s": 1.0, "concurrency": 8}
    return {**new_record("test"), "plans": {"beauty": plan}, "settings": settings}


def test_the_student_is_compared_with_its_teacher_round_by_round_not_median_by_median():
    record = _record([350.0, 500.0, 320.0])  # ratios 3.5, 2.5, 3.2; medians 350 / 100 would say 3.5
    plan = record["plans"]["beauty"]
    assert round_ratios(plan["variants"][0], plan["parent"]) == [3.5, 2.5, 3.2]
    distilled = next(g for g in evaluate_goals(record) if g["key"] == "distilled")
    assert distilled["met"] is True
    assert "97.5% of the teacher's NDCG@10, 3.20x [2.50-3.50] in-process, 1.60x served" in distilled["figures"]
    record["goals"] = evaluate_goals(record)
    assert "| 350 [320-500] (3.20x [2.50-3.50]) | 80 [80-80] (1.60x) |" in render_markdown(record)


def test_a_student_slower_than_3x_in_the_middle_round_does_not_meet_the_goal():
    record = _record([290.0, 800.0, 250.0])  # ratios 2.9, 4.0, 2.5: median 2.9
    distilled = next(g for g in evaluate_goals(record) if g["key"] == "distilled")
    assert distilled["met"] is False and "2.90x [2.50-4.00]" in distilled["figures"]
