"""Parity records: how far an exported artifact's scores are from its source's, on real and edge-case rows.

Rows checked (legend: U = rows, L = history length, C = candidates):

- ``real``: evaluation rows of the dataset the model was trained on;
- ``oov``: the same rows with ids outside the vocabulary (negative, too large) mixed into histories and candidates;
- ``empty_history``: the same candidates with all-padding histories.

A record passes when ``|candidate - reference| <= atol + rtol * |reference|`` for every score.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

import numpy as np

from tritonrec.data.splits import EvalSet, FeatureBatch
from tritonrec.errors import ExportError

__all__ = ["ParityRecord", "compare_scorers", "parity_batches"]

Batch = TypeVar("Batch")

_REL_FLOOR = 1e-3  # relative differences are measured against max(|reference|, this)


@dataclass(frozen=True, slots=True)
class ParityRecord:
    """Differences between a candidate scorer and its reference, overall and per kind of row."""

    reference: str
    candidate: str
    max_abs: float
    max_rel: float
    mean_abs: float
    n_scores: int
    atol: float
    rtol: float
    passed: bool
    max_abs_by_case: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return asdict(self)

    def raise_if_failed(self) -> None:
        """Raise :class:`ExportError` when the record did not pass."""
        if not self.passed:
            raise ExportError(
                f"{self.candidate} differs from {self.reference} beyond tolerance: max abs {self.max_abs:.3g}, "
                f"max rel {self.max_rel:.3g} (atol {self.atol:g}, rtol {self.rtol:g}; by case "
                f"{ {k: float(f'{v:.3g}') for k, v in self.max_abs_by_case.items()} })"
            )


def parity_batches(rows: EvalSet, n_items: int, *, n_rows: int = 256, seed: int = 0) -> dict[str, FeatureBatch]:
    """Build the ``real``, ``oov``, ``empty_history``, ``short_history`` and ``full_history`` batches.

    All from the first ``n_rows`` evaluation rows: their real ids; with 20% of ids replaced by unknown and negative
    ones; with no history; with only the two most recent items; with every history position a real item.
    """
    head = rows.head(n_rows)
    rng = np.random.default_rng(seed)
    real = FeatureBatch(head.histories.astype(np.int64), head.candidates.astype(np.int64))
    weird_ids = np.array([-1, -(2**31), n_items + 1, n_items + 10**6], dtype=np.int64)
    histories, candidates = real.histories.copy(), real.candidates.copy()
    hist_mask = (rng.random(histories.shape) < 0.2) & (histories != 0)
    histories[hist_mask] = rng.choice(weird_ids, size=int(hist_mask.sum()))
    cand_mask = rng.random(candidates.shape) < 0.2
    candidates[cand_mask] = rng.choice(weird_ids, size=int(cand_mask.sum()))
    short = np.zeros_like(real.histories)
    short[:, -2:] = real.histories[:, -2:]
    full = rng.integers(1, n_items + 1, real.histories.shape, dtype=np.int64)
    return {
        "real": real,
        "oov": FeatureBatch(histories, candidates),
        "empty_history": FeatureBatch(np.zeros_like(real.histories), real.candidates),
        "short_history": FeatureBatch(short, real.candidates),
        "full_history": FeatureBatch(full, real.candidates),
    }


def compare_scorers(
    reference: Callable[[Batch], Any],
    candidate: Callable[[Batch], Any],
    batches: Mapping[str, Batch],
    *,
    reference_name: str,
    candidate_name: str,
    atol: float,
    rtol: float,
) -> ParityRecord:
    """Score every batch with both scorers and record the differences.

    Any kind of batch: the bundled model's :class:`~tritonrec.data.splits.FeatureBatch` with
    :data:`~tritonrec.metrics.Scorer` s, or a spec's ``{input: array}`` with :data:`~tritonrec.metrics.RowsScorer` s.
    """
    diffs, rels, ok = [], [], True
    by_case: dict[str, float] = {}
    for case, batch in batches.items():
        ref = np.asarray(reference(batch), dtype=np.float64)
        got = np.asarray(candidate(batch), dtype=np.float64)
        if got.shape != ref.shape or not np.isfinite(got).all():
            raise ExportError(f"{candidate_name} returned shape {got.shape} or non-finite scores on {case!r} rows")
        diff = np.abs(got - ref)
        diffs.append(diff.ravel())
        rels.append((diff / np.maximum(np.abs(ref), _REL_FLOOR)).ravel())
        by_case[case] = float(diff.max())
        ok = ok and bool(np.all(diff <= atol + rtol * np.abs(ref)))
    all_diffs, all_rels = np.concatenate(diffs), np.concatenate(rels)
    return ParityRecord(
        reference=reference_name,
        candidate=candidate_name,
        max_abs=float(all_diffs.max()),
        max_rel=float(all_rels.max()),
        mean_abs=float(all_diffs.mean()),
        n_scores=int(all_diffs.size),
        atol=atol,
        rtol=rtol,
        passed=ok,
        max_abs_by_case=by_case,
    )
