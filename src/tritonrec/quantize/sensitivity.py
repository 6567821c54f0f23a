"""Which layer groups INT8 hurts, and the mixed-precision model that keeps them in float under a quality budget.

Sensitivity: for each :class:`~tritonrec.quantize.groups.LayerGroup` that has quantizable nodes, quantize only
that group (every other node stays FP32) and score the result on the validation split with the shared metrics
module; its deltas against FP32 are the group's cost.

Mixed precision (:func:`choose_mixed`): deltas of separately quantized groups roughly add up, so a group whose
own cost exceeds its share of the budget (``budget / groups``) is kept in float from the start. The combined
model is then scored; while it misses the budget, the most costly group still in INT8 joins the float ones.
Everything is decided on the validation split; the test split only reports the outcome.

Cost of a result: ``max(auc_drop / max_auc_drop, ndcg_drop / max_ndcg_drop)`` (1.0 = exactly at the budget).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tritonrec.errors import ConfigError
from tritonrec.quantize.groups import LayerGroup, NodeInfo, node_names
from tritonrec.records import Progress, quiet

__all__ = ["Budget", "GroupResult", "MixedResult", "QualityDelta", "choose_mixed", "quality_delta", "run_sensitivity"]

Quantizer = Callable[[tuple[str, ...], str], Path]
"""``(node names to keep in float, file stem) -> quantized ONNX file``."""
Evaluator = Callable[[Path], Mapping[str, float]]
"""An ONNX file -> its :func:`tritonrec.metrics.ranking_metrics` on the validation split."""

HEADLINE = ("ndcg@10", "auc", "logloss")


@dataclass(frozen=True, slots=True, kw_only=True)
class Budget:
    """The quality a precision variant may give up against FP32.

    Attributes:
        max_auc_drop: largest AUC drop (0.0008: MLPerf's 99.9% tier of an AUC near 0.8).
        max_ndcg_drop: largest NDCG@10 drop.
    """

    max_auc_drop: float = 0.0008
    max_ndcg_drop: float = 0.005

    def __post_init__(self) -> None:
        if self.max_auc_drop <= 0 or self.max_ndcg_drop <= 0:
            raise ConfigError(f"budget drops must be > 0, got AUC {self.max_auc_drop}, NDCG {self.max_ndcg_drop}")

    def cost(self, delta: QualityDelta) -> float:
        """The share of the budget ``delta`` uses (> 1.0: over budget; negative: better than FP32)."""
        return max(-delta.auc / self.max_auc_drop, -delta.ndcg / self.max_ndcg_drop)

    def allows(self, delta: QualityDelta) -> bool:
        """Whether ``delta`` is within the budget."""
        return -delta.auc <= self.max_auc_drop and -delta.ndcg <= self.max_ndcg_drop


@dataclass(frozen=True, slots=True)
class QualityDelta:
    """Headline metrics of a variant and their differences to FP32 (variant - FP32)."""

    metrics: dict[str, float]
    ndcg: float
    auc: float
    logloss: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            **{k: self.metrics[k] for k in HEADLINE},
            "ndcg@10_delta": self.ndcg,
            "auc_delta": self.auc,
            "logloss_delta": self.logloss,
        }


def quality_delta(metrics: Mapping[str, float], reference: Mapping[str, float]) -> QualityDelta:
    """``metrics`` against the FP32 ``reference``."""
    return QualityDelta(
        {k: float(metrics[k]) for k in HEADLINE},
        ndcg=float(metrics["ndcg@10"] - reference["ndcg@10"]),
        auc=float(metrics["auc"] - reference["auc"]),
        logloss=float(metrics["logloss"] - reference["logloss"]),
    )


@dataclass(frozen=True, slots=True)
class GroupResult:
    """One group quantized alone.

    Attributes:
        group: the layer group.
        quantized_nodes: its quantizable nodes (quantized in this run).
        delta: validation metrics and deltas vs FP32.
        cost: the share of the budget it used.
        sensitive: its cost is over its share of the budget (kept in float from the start).
    """

    group: LayerGroup
    quantized_nodes: int
    delta: QualityDelta
    cost: float
    sensitive: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "group": self.group.value,
            "quantized_nodes": self.quantized_nodes,
            **self.delta.to_dict(),
            "budget_cost": self.cost,
            "sensitive": self.sensitive,
        }


@dataclass(frozen=True, slots=True)
class MixedResult:
    """The mixed-precision model chosen on the validation split.

    Attributes:
        path: its ONNX file.
        kept_fp: groups kept in float.
        excluded_nodes: node names kept in float.
        delta: its validation metrics and deltas vs FP32.
        within_budget: whether ``delta`` meets the budget.
        trail: each combination tried, in order: ``{"kept_fp": [...], "cost": ...}``.
    """

    path: Path
    kept_fp: tuple[LayerGroup, ...]
    excluded_nodes: tuple[str, ...]
    delta: QualityDelta
    within_budget: bool
    trail: list[dict[str, Any]] = field(default_factory=list)


def run_sensitivity(
    groups: Mapping[LayerGroup, Sequence[NodeInfo]],
    quantize: Quantizer,
    evaluate: Evaluator,
    reference: Mapping[str, float],
    budget: Budget,
    *,
    progress: Progress = quiet,
) -> list[GroupResult]:
    """Quantize each group with quantizable nodes alone and score it (see the module docstring).

    Args:
        groups: the quantizable nodes of each group.
        quantize: writes a model with the given nodes kept in float.
        evaluate: scores a model on the validation split.
        reference: FP32 metrics on the validation split.
        budget: the quality budget (each group's share is ``budget / groups``).
        progress: where to say what runs.
    """
    present = [g for g in LayerGroup if groups.get(g)]
    if not present:
        raise ConfigError("no layer group has a node of the op types being quantized")
    results = []
    for group in present:
        progress(f"sensitivity: {group.value} alone in INT8 ({len(groups[group])} nodes)")
        others = tuple(node_names(groups, [g for g in present if g is not group]))
        delta = quality_delta(evaluate(quantize(others, f"only_{group.value}")), reference)
        cost = budget.cost(delta)
        results.append(GroupResult(group, len(groups[group]), delta, cost, cost > 1.0 / len(present)))
    return results


def choose_mixed(
    groups: Mapping[LayerGroup, Sequence[NodeInfo]],
    sensitivity: Sequence[GroupResult],
    quantize: Quantizer,
    evaluate: Evaluator,
    reference: Mapping[str, float],
    budget: Budget,
    *,
    progress: Progress = quiet,
) -> MixedResult:
    """Build the mixed-precision model: sensitive groups in float, more while the budget is missed."""
    by_cost = sorted(sensitivity, key=lambda r: r.cost, reverse=True)
    kept = [r.group for r in by_cost if r.sensitive]
    trail: list[dict[str, Any]] = []
    while True:
        chosen = tuple(g for g in LayerGroup if g in kept)
        excluded = tuple(node_names(groups, chosen))
        progress(f"mixed precision: float groups {[g.value for g in chosen] or 'none'}")
        path = quantize(excluded, "mixed")
        delta = quality_delta(evaluate(path), reference)
        trail.append({"kept_fp": [g.value for g in chosen], "budget_cost": budget.cost(delta), **delta.to_dict()})
        remaining = [r.group for r in by_cost if r.group not in kept]
        if budget.allows(delta) or not remaining:
            return MixedResult(path, chosen, excluded, delta, budget.allows(delta), trail)
        kept.append(remaining[0])
