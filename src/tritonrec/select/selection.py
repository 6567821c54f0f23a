"""The pick: the fastest served candidate that meets the SLA, the quality budget and the memory cap.

Rules, in order:

1. A candidate is eligible when it was measured, is served (users get scores from Triton, so the SLA is judged
   on served figures), its served p99 at its best point meets ``p99_ms``, its AUC and NDCG@10 fall by no more
   than the budget below the FP32 reference (the base model in PyTorch eager), and its peak memory is under the
   cap (when one is given).
2. Among the eligible, the highest served candidates/s wins, but throughput is measured with a spread: every
   eligible candidate whose range reaches the best one's range is tied with it ("a difference inside the spread
   is no difference"), and the tie is broken by NDCG@10 (higher), then model bytes (fewer), then name. Reruns
   with the same seed therefore pick the same candidate unless a difference is measurable.
3. Every other candidate gets the reason it lost: the constraint it failed with its figure, or the throughput it
   was measurably short by, or the tie-break it lost.

The defaults are the MLPerf DLRM 99.9% accuracy tier for AUC (0.0008 absolute, 99.9% of 0.8025) and 0.005 for
NDCG@10. The Pareto frontiers (quality vs throughput, p99 vs throughput) are the candidates no other beats on
both axes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tritonrec.errors import ConfigError

__all__ = ["Constraints", "choose", "pareto"]


@dataclass(frozen=True, slots=True)
class Constraints:
    """What the pick must meet.

    Attributes:
        p99_ms: served p99 latency at the candidate's best point.
        max_auc_drop: AUC below the FP32 reference at most (absolute).
        max_ndcg_drop: NDCG@10 below the FP32 reference at most (absolute).
        memory_mib: peak RSS cap (None = none).
    """

    p99_ms: float
    max_auc_drop: float = 0.0008
    max_ndcg_drop: float = 0.005
    memory_mib: float | None = None

    def __post_init__(self) -> None:
        if self.p99_ms <= 0 or self.max_auc_drop < 0 or self.max_ndcg_drop < 0:
            raise ConfigError("p99_ms must be > 0 and the quality budgets >= 0")
        if self.memory_mib is not None and self.memory_mib <= 0:
            raise ConfigError("the memory cap must be > 0 MiB")


def _failures(row: dict[str, Any], c: Constraints) -> list[str]:
    out = []
    if row["p99_ms"] is None or row["p99_ms"] > c.p99_ms:
        shown = "no concurrency" if row["p99_ms"] is None else f"{row['p99_ms']:.1f} ms"
        out.append(f"p99 {shown} > SLA {c.p99_ms:g} ms")
    auc_drop, ndcg_drop = -row["delta"]["auc"], -row["delta"]["ndcg@10"]
    if auc_drop > c.max_auc_drop:
        out.append(f"AUC drop {auc_drop:.4f} > budget {c.max_auc_drop:g}")
    if ndcg_drop > c.max_ndcg_drop:
        out.append(f"NDCG@10 drop {ndcg_drop:.4f} > budget {c.max_ndcg_drop:g}")
    if c.memory_mib is not None and (row["peak_rss_mib"] or 0) > c.memory_mib:
        out.append(f"peak RSS {row['peak_rss_mib']:.0f} MiB > cap {c.memory_mib:g} MiB")
    return out


def choose(rows: list[dict[str, Any]], constraints: Constraints) -> str | None:
    """Mark every row (``meets_sla``, ``meets_quality``, ``meets_memory``, ``eligible``, ``reason``); the pick's name.

    Each row needs ``name``, ``measured``, ``served``, ``p99_ms``, ``cand_per_s`` (a spread dict or None),
    ``delta`` (``auc``, ``ndcg@10``), ``ndcg@10``, ``bytes``, ``peak_rss_mib`` and, when not measured, ``reason``.
    """
    for row in rows:
        if not row["measured"]:
            row.update(meets_sla=None, meets_quality=None, meets_memory=None, eligible=False)
            continue
        failures = _failures(row, constraints)
        row["meets_sla"] = not any(f.startswith("p99") for f in failures)
        row["meets_quality"] = not any("drop" in f for f in failures)
        row["meets_memory"] = not any(f.startswith("peak RSS") for f in failures)
        if not row["served"]:
            failures.insert(0, "in process only: the SLA is a served latency; only served rows (triton...) are picked")
        row["eligible"] = not failures
        row["reason"] = "; ".join(failures) if failures else None
    eligible = [r for r in rows if r["eligible"]]
    if not eligible:
        return None
    fastest = max(eligible, key=lambda r: r["cand_per_s"]["median"])
    tied = [r for r in eligible if r["cand_per_s"]["max"] >= fastest["cand_per_s"]["min"]]
    chosen = min(tied, key=lambda r: (-r["ndcg@10"], r["bytes"], r["name"]))
    for r in eligible:
        if r is chosen:
            r["reason"] = "chosen: " + (
                f"tied on throughput with {len(tied) - 1} other(s) within the spread, best NDCG@10 / fewest bytes"
                if len(tied) > 1
                else "the highest served candidates/s that meets every constraint"
            )
        elif r in tied:
            r["reason"] = (
                f"throughput tied with {chosen['name']} within the spread; lost on NDCG@10 "
                f"({r['ndcg@10']:.4f} vs {chosen['ndcg@10']:.4f}), then bytes"
            )
        else:
            r["reason"] = (
                f"measurably slower: {r['cand_per_s']['median']:,.0f} cand/s (max {r['cand_per_s']['max']:,.0f}) "
                f"vs {chosen['name']} {chosen['cand_per_s']['median']:,.0f} (min {chosen['cand_per_s']['min']:,.0f})"
            )
    return str(chosen["name"])


def pareto(points: Sequence[tuple[str, float, float]], *, maximize_y: bool) -> list[str]:
    """Names of the points ``(name, x = throughput, y)`` that no other point beats on both axes.

    Higher x is better; higher y is better when ``maximize_y``, lower otherwise.
    """

    def beats(a: tuple[str, float, float], b: tuple[str, float, float]) -> bool:
        better_y = a[2] >= b[2] if maximize_y else a[2] <= b[2]
        strictly = a[1] > b[1] or (a[2] > b[2] if maximize_y else a[2] < b[2])
        return a[1] >= b[1] and better_y and strictly

    return [p[0] for p in points if not any(beats(q, p) for q in points if q is not p)]
