"""The report of a training run, stored as a checkpoint's ``metrics`` and read back typed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Metrics", "TrainReport"]

Metrics = dict[str, float]
"""``{metric name: value}`` as :func:`tritonrec.metrics.ranking_metrics` returns it (``ndcg@10``, ``auc``, ...)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TrainReport:
    """What a training run produced, stored as the checkpoint's ``metrics``.

    Attributes:
        preset: the model preset trained.
        n_parameters: trainable parameters.
        train_s: wall time of the training loop.
        best_epoch: the epoch whose weights were kept (best validation NDCG@10).
        stopped_by: ``early stopping``, ``time budget`` or ``max epochs``.
        epochs: per-epoch log (loss, elapsed_s, validation metrics).
        valid: validation metrics of the kept weights.
        test: test metrics of the kept weights.
        popularity_test: the popularity baseline on the same test rows.
        oracle_test: the ground-truth scorer on the same rows (synthetic data only): the best achievable.
    """

    preset: str
    n_parameters: int
    train_s: float
    best_epoch: int
    stopped_by: str
    epochs: tuple[dict[str, float], ...]
    valid: Metrics
    test: Metrics
    popularity_test: Metrics
    oracle_test: Metrics | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the checkpoint's ``metrics``)."""
        data: dict[str, Any] = {
            "preset": self.preset,
            "n_parameters": self.n_parameters,
            "train_s": self.train_s,
            "best_epoch": self.best_epoch,
            "stopped_by": self.stopped_by,
            "epochs": list(self.epochs),
            "valid": self.valid,
            "test": self.test,
            "popularity_test": self.popularity_test,
        }
        if self.oracle_test is not None:
            data["oracle_test"] = self.oracle_test
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainReport:
        """Read :meth:`to_dict` output (checkpoints written before the ``train_s`` key carry ``train_seconds``)."""
        return cls(
            preset=str(data["preset"]),
            n_parameters=int(data["n_parameters"]),
            train_s=float(data.get("train_s", data.get("train_seconds", 0.0))),
            best_epoch=int(data["best_epoch"]),
            stopped_by=str(data["stopped_by"]),
            epochs=tuple(data.get("epochs", ())),
            valid=dict(data["valid"]),
            test=dict(data["test"]),
            popularity_test=dict(data["popularity_test"]),
            oracle_test=dict(data["oracle_test"]) if data.get("oracle_test") else None,
        )
