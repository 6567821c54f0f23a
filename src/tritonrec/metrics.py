"""Ranking-quality metrics for ANY scorer: eager PyTorch, an ONNX Runtime session, a Triton endpoint.

A scorer is a function from a :class:`~tritonrec.data.splits.FeatureBatch` to ``[B, C]`` scores (logits: higher
means more relevant; ``sigmoid(score)`` is read as a click probability for the log loss). One code path scores
every artifact, which is what makes accuracy comparisons between variants honest.

Conventions (legend: U = users/rows, C = candidates per row):

- Ties are broken pessimistically: a negative that scores the same as a positive ranks above it, so a
  constant scorer gets no credit.
- ``auc`` is the mean per-row AUC over rows that hold both a positive and a negative (the usual figure for the
  leave-one-out protocol); ``auc_global`` pools all rows (the usual CTR figure).
- ``hr@K``: a positive is in the top K. ``ndcg@K``: binary-gain NDCG. ``mrr``: reciprocal rank of the first
  positive.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from tritonrec.data.splits import EvalSet, FeatureBatch
    from tritonrec.spec.model_spec import ModelSpec
    from tritonrec.spec.rows import SpecRows

__all__ = [
    "BUDGET_CUTOFF",
    "CUTOFFS",
    "RowsScorer",
    "Scorer",
    "evaluate",
    "evaluate_rows",
    "grouped_metrics",
    "logloss",
    "ranking_metrics",
    "roc_auc",
    "score_eval_set",
    "score_rows",
    "spec_quality",
    "with_budget_cutoff",
]

FloatArray = npt.NDArray[np.float64]
Scorer = Callable[["FeatureBatch"], npt.NDArray[np.floating[Any]]]
RowsScorer = Callable[[dict[str, npt.NDArray[Any]]], npt.NDArray[np.floating[Any]]]
"""A model of a spec: ``{input name: [B, *dims]}`` -> ``[B]`` scores, one per row."""

CUTOFFS = (1, 5, 10)
NDCG_CUTOFFS = (5, 10)
BUDGET_CUTOFF = 10
"""The K of the NDCG@K that quality budgets and selections read, whatever cutoffs a spec asks for."""
_PAIRWISE_CHUNK = 2048


def roc_auc(scores: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    """Pooled ROC AUC with tie correction (Mann-Whitney U); ``nan`` if one class is absent."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).ravel() > 0.5
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    sorted_s = s[order]
    ranks = np.empty(len(s), dtype=np.float64)
    # Average ranks (1-based) over runs of equal scores.
    boundaries = np.flatnonzero(np.diff(sorted_s)) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(s)]])
    avg = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(avg, ends - starts)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _per_row_auc(scores: FloatArray, labels: npt.NDArray[np.bool_]) -> FloatArray:
    """``[U]`` per-row AUC (``nan`` where a row lacks a class), exact pairwise comparison in chunks."""
    out = np.empty(len(scores), dtype=np.float64)
    for lo in range(0, len(scores), _PAIRWISE_CHUNK):
        s = scores[lo : lo + _PAIRWISE_CHUNK]
        y = labels[lo : lo + _PAIRWISE_CHUNK]
        pair = (s[:, :, None] > s[:, None, :]) + 0.5 * (s[:, :, None] == s[:, None, :])  # [u, pos, neg]
        pair_mask = y[:, :, None] & ~y[:, None, :]
        n_pairs = pair_mask.sum(axis=(1, 2))
        with np.errstate(invalid="ignore", divide="ignore"):
            out[lo : lo + len(s)] = np.where(n_pairs > 0, (pair * pair_mask).sum(axis=(1, 2)) / n_pairs, np.nan)
    return out


def _grouped_auc(s: FloatArray, y: npt.NDArray[np.bool_], codes: npt.NDArray[np.int64]) -> float:
    """Mean AUC within groups that hold both classes (ties count half, as :func:`_per_row_auc`); ``nan`` if none."""
    order = np.lexsort((s, codes))
    q, v, pos = codes[order], s[order], y[order]
    if not len(q):
        return float("nan")
    group_start = np.flatnonzero(np.r_[True, q[1:] != q[:-1]])
    run_start = np.flatnonzero(np.r_[True, (q[1:] != q[:-1]) | (v[1:] != v[:-1])])
    run_end = np.r_[run_start[1:], len(q)]
    first_of_group = np.repeat(group_start, np.diff(np.r_[group_start, len(q)]))
    # 1-based average rank within the group over each run of equal scores
    ranks = np.repeat((run_start + run_end + 1) / 2.0, run_end - run_start) - first_of_group
    n_pos = np.add.reduceat(pos.astype(np.float64), group_start)
    n_neg = np.diff(np.r_[group_start, len(q)]) - n_pos
    rank_sum = np.add.reduceat(np.where(pos, ranks, 0.0), group_start)
    both = (n_pos > 0) & (n_neg > 0)
    if not both.any():
        return float("nan")
    auc = (rank_sum[both] - n_pos[both] * (n_pos[both] + 1) / 2.0) / (n_pos[both] * n_neg[both])
    return float(np.mean(auc))


def logloss(scores: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    """Mean binary cross-entropy of ``sigmoid(scores)`` against ``labels`` (numerically stable)."""
    x = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    return float(np.mean(np.maximum(x, 0.0) - x * y + np.log1p(np.exp(-np.abs(x)))))


def grouped_metrics(
    scores: npt.ArrayLike,
    labels: npt.ArrayLike,
    groups: npt.ArrayLike,
    *,
    cutoffs: tuple[int, ...] = NDCG_CUTOFFS,
    probabilities: bool = False,
) -> dict[str, float]:
    """Metrics of rows grouped into queries: AUC and logloss over all rows, ranking metrics within each query.

    The form of a user's own data (a row per candidate, a ``query_id`` column), where queries have any number of
    candidates; :func:`ranking_metrics` is the ``[U, C]`` special case. Ties are broken pessimistically, as there.

    Args:
        scores: ``[R]`` one score per row (logits, or probabilities with ``probabilities``).
        labels: ``[R]`` binary relevance.
        groups: ``[R]`` query ids; rows of one query need not be adjacent.
        cutoffs: the K of ``ndcg@K`` and ``hr@K``.
        probabilities: scores are probabilities (logloss on them, clipped), not logits.

    Returns:
        ``auc`` (pooled over rows), ``gauc`` (the mean AUC within queries holding both classes: the bundled
        evaluation's ``auc``), ``logloss``, ``ndcg@K``, ``hr@K``, ``mrr`` (over queries with a positive), ``n_rows``,
        ``n_queries`` (those with a positive).

    Raises:
        ValueError: the arrays differ in length, are not 1-D, or scores hold NaN.
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels) > 0.5
    g = np.asarray(groups)
    if s.ndim != 1 or s.shape != y.shape or s.shape != g.shape:
        raise ValueError(f"scores {s.shape}, labels {y.shape} and groups {g.shape} must be equal 1-D shapes")
    if np.isnan(s).any():
        raise ValueError(f"scores hold {int(np.isnan(s).sum())} NaN values")
    result: dict[str, float] = {"auc": roc_auc(s, y)}
    if probabilities:
        p = np.clip(s, 1e-7, 1 - 1e-7)
        result["logloss"] = float(-np.mean(y * np.log(p) + (~y) * np.log1p(-p)))
    else:
        result["logloss"] = logloss(s, y)
    _, codes = np.unique(g, return_inverse=True)
    codes = codes.reshape(-1)
    result["gauc"] = _grouped_auc(s, y, codes)
    order = np.lexsort((y, -s, codes))  # by query, then score descending, negatives first on ties
    q, ranked = codes[order], y[order]
    starts = np.flatnonzero(np.r_[True, q[1:] != q[:-1]])
    position = np.arange(len(q)) - np.repeat(starts, np.diff(np.r_[starts, len(q)]))
    n_pos = np.add.reduceat(ranked.astype(np.int64), starts) if len(q) else np.zeros(0, dtype=np.int64)
    has_pos = n_pos > 0
    gain = np.where(ranked, 1.0 / np.log2(position + 2.0), 0.0)
    for k in cutoffs:
        within = position < k
        dcg = np.add.reduceat(gain * within, starts) if len(q) else np.zeros(0)
        ideal = np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))[np.minimum(n_pos, k) - 1]
        hits = np.add.reduceat((ranked & within).astype(np.int64), starts) if len(q) else np.zeros(0)
        result[f"ndcg@{k}"] = float(np.mean(dcg[has_pos] / ideal[has_pos])) if has_pos.any() else float("nan")
        result[f"hr@{k}"] = float(np.mean(hits[has_pos] > 0)) if has_pos.any() else float("nan")
    first = np.where(ranked, position, np.iinfo(np.int64).max)
    first_hit = np.minimum.reduceat(first, starts) if len(q) else np.zeros(0, dtype=np.int64)
    result["mrr"] = float(np.mean(1.0 / (first_hit[has_pos] + 1))) if has_pos.any() else float("nan")
    result["n_rows"] = int(len(s))
    result["n_queries"] = int(has_pos.sum())
    return result


def ranking_metrics(scores: npt.ArrayLike, labels: npt.ArrayLike) -> dict[str, float]:
    """Compute every metric from ``[U, C]`` scores and binary labels.

    Returns:
        ``auc``, ``auc_global``, ``logloss``, ``hr@{1,5,10}``, ``ndcg@{5,10}``, ``mrr`` and ``n_users``
        (rows with at least one positive; ranking metrics average over those rows).

    Raises:
        ValueError: shapes differ, are not 2-D, or scores hold NaN.
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels) > 0.5
    if s.ndim != 2 or s.shape != y.shape:
        raise ValueError(f"scores {s.shape} and labels {y.shape} must be equal 2-D shapes")
    if np.isnan(s).any():
        raise ValueError(f"scores hold {int(np.isnan(s).sum())} NaN values")
    has_pos = y.any(axis=1)
    s_pos, y_pos = s[has_pos], y[has_pos]
    # Pessimistic order: by score descending, negatives before positives on equal scores.
    order = np.lexsort((y_pos, -s_pos), axis=-1)
    ranked = np.take_along_axis(y_pos, order, axis=1)
    discounts = 1.0 / np.log2(np.arange(2, ranked.shape[1] + 2))
    n_pos = ranked.sum(axis=1)
    result: dict[str, float] = {}
    per_row_auc = _per_row_auc(s, y)
    result["auc"] = float(np.nanmean(per_row_auc)) if np.isfinite(per_row_auc).any() else float("nan")
    result["auc_global"] = roc_auc(s, y)
    result["logloss"] = logloss(s, y)
    for k in CUTOFFS:
        result[f"hr@{k}"] = float(ranked[:, :k].any(axis=1).mean()) if len(ranked) else float("nan")
    for k in NDCG_CUTOFFS:
        dcg = (ranked[:, :k] * discounts[:k]).sum(axis=1)
        ideal = np.cumsum(discounts)[np.minimum(n_pos, k) - 1]
        result[f"ndcg@{k}"] = float(np.mean(dcg / ideal)) if len(ranked) else float("nan")
    first_hit = ranked.argmax(axis=1)
    result["mrr"] = float(np.mean(1.0 / (first_hit + 1))) if len(ranked) else float("nan")
    result["n_users"] = int(has_pos.sum())
    return result


def score_eval_set(scorer: Scorer, eval_set: EvalSet, *, batch_size: int = 1024) -> npt.NDArray[np.float64]:
    """Run ``scorer`` over ``eval_set`` in batches; return ``[U, C]`` scores.

    Raises:
        ValueError: the scorer returned the wrong shape.
    """
    parts = []
    for batch in eval_set.batches(batch_size):
        out = np.asarray(scorer(batch), dtype=np.float64)
        if out.shape != batch.candidates.shape:
            raise ValueError(f"scorer returned shape {out.shape}, expected {batch.candidates.shape}")
        parts.append(out)
    return np.concatenate(parts) if parts else np.zeros((0, eval_set.candidates.shape[1]))


def evaluate(scorer: Scorer, eval_set: EvalSet, *, batch_size: int = 1024) -> dict[str, float]:
    """Score ``eval_set`` with ``scorer`` and return :func:`ranking_metrics`."""
    return ranking_metrics(score_eval_set(scorer, eval_set, batch_size=batch_size), eval_set.labels)


def score_rows(scorer: RowsScorer, rows: SpecRows, *, batch_rows: int = 4096) -> npt.NDArray[np.float64]:
    """Run ``scorer`` over a spec's ``rows`` in batches (whole queries in the query + candidates layout).

    Returns:
        ``[R]`` scores, one per row, in the rows' order.

    Raises:
        ValueError: the scorer returned other than one score per row (per candidate).
    """
    parts = [rows.scores_of(scorer(rows.batch(start, stop)), start, stop) for start, stop in rows.bounds(batch_rows)]
    return np.concatenate(parts) if parts else np.zeros(0)


def with_budget_cutoff(cutoffs: tuple[int, ...]) -> tuple[int, ...]:
    """``cutoffs`` with :data:`BUDGET_CUTOFF` added, sorted."""
    return tuple(sorted({*cutoffs, BUDGET_CUTOFF}))


def evaluate_rows(
    scorer: RowsScorer, rows: SpecRows, *, cutoffs: tuple[int, ...] = NDCG_CUTOFFS, probabilities: bool = False
) -> dict[str, float]:
    """Score ``rows`` with ``scorer`` and return :func:`grouped_metrics` over their queries."""
    scores = score_rows(scorer, rows)
    return grouped_metrics(scores, rows.labels, rows.query_ids, cutoffs=cutoffs, probabilities=probabilities)


def spec_quality(spec: ModelSpec, scores: npt.ArrayLike, rows: SpecRows) -> dict[str, float]:
    """:func:`grouped_metrics` of ``scores`` of ``rows`` as a spec's candidates are judged.

    The spec's NDCG cutoffs with the quality budget's, and probabilities when the spec's output is one.
    """
    from tritonrec.spec.model_spec import ScoreKind

    probabilities = spec.output.kind is ScoreKind.PROBABILITY
    cutoffs = with_budget_cutoff(spec.metrics.cutoffs)
    return grouped_metrics(scores, rows.labels, rows.query_ids, cutoffs=cutoffs, probabilities=probabilities)
