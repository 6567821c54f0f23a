"""A synthetic dataset generated, written, and scored by its own ground truth (the best achievable metrics)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from tritonrec.data.synthetic import SyntheticConfig, generate_synthetic, logit
from tritonrec.data.synthetic_io import save_synthetic
from tritonrec.metrics import ranking_metrics
from tritonrec.train.report import Metrics

__all__ = ["SynthResult", "write_synthetic"]

_ORACLE_SUMMARY_ROWS = 200_000  # rows scored for the meta.json oracle summary


@dataclass(frozen=True, slots=True)
class SynthResult:
    """What :func:`write_synthetic` wrote.

    Attributes:
        out_dir: the dataset folder.
        config: the generating config.
        base_ctr: share of impressions clicked.
        oracle_test: the ground-truth scorer's metrics on the test users (``auc`` per user, ``auc_global`` pooled).
        elapsed_s: generation and writing time.
    """

    out_dir: Path
    config: SyntheticConfig
    base_ctr: float
    oracle_test: Metrics
    elapsed_s: float


def write_synthetic(config: SyntheticConfig, out_dir: Path, *, seed: int = 0) -> SynthResult:
    """Generate a dataset from ``config``, save it to ``out_dir`` and score its ground truth on the test split."""
    started = time.perf_counter()
    dataset = generate_synthetic(config)
    n = min(len(dataset.labels), _ORACLE_SUMMARY_ROWS)

    overall = ranking_metrics(logit(dataset.click_probs[:n]), dataset.labels[:n])
    summary = {key: overall[key] for key in ("auc", "auc_global", "logloss")}
    save_synthetic(dataset, out_dir, oracle_metrics={**summary, "metric_rows": n})
    split = dataset.split(seed=seed)
    return SynthResult(
        out_dir=out_dir,
        config=config,
        base_ctr=float(dataset.labels.mean()),
        oracle_test=ranking_metrics(split.oracle_scores(), split.test.labels),
        elapsed_s=time.perf_counter() - started,
    )
