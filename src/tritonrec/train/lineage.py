"""The lineage of a derived checkpoint: its parent, the transformation, its arguments, metrics before and after.

Stored as the ``lineage`` section of ``checkpoint.json`` (checkpoint format 2). A checkpoint derived from a
derived checkpoint keeps its parent's lineage inside its own, so the whole chain back to the trained model is
read from the last file. Imports no torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tritonrec.dictconfig import known_fields
from tritonrec.errors import ConfigError
from tritonrec.train.report import Metrics

__all__ = ["Lineage"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Lineage:
    """Where a checkpoint came from.

    Attributes:
        parent: the parent checkpoint folder, as it was given.
        method: the transformation (``prune``, ``distill``, ``share``, ``quantize-embeddings``).
        arguments: the transformation's arguments, as given (JSON values).
        metrics_before: the parent's metrics on the evaluation rows, measured in the same run.
        metrics_after: this checkpoint's metrics on the same rows.
        details: what the transformation measured on the way (kept widths, collisions, errors, logs, timings).
        parent_lineage: the parent's own lineage (None when the parent was trained from scratch).
    """

    parent: str
    method: str
    arguments: dict[str, Any] = field(default_factory=dict)
    metrics_before: Metrics = field(default_factory=dict)
    metrics_after: Metrics = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    parent_lineage: Lineage | None = None

    def __post_init__(self) -> None:
        if not self.parent or not self.method:
            raise ConfigError("a lineage needs its parent and method")

    @property
    def root(self) -> str:
        """The first checkpoint of the chain (the one trained from scratch)."""
        return self.parent_lineage.root if self.parent_lineage is not None else self.parent

    @property
    def methods(self) -> tuple[str, ...]:
        """Every transformation of the chain, oldest first."""
        earlier = self.parent_lineage.methods if self.parent_lineage is not None else ()
        return (*earlier, self.method)

    def delta(self, metric: str) -> float:
        """``metrics_after[metric] - metrics_before[metric]``.

        Raises:
            ConfigError: the metric is missing on either side.
        """
        try:
            return float(self.metrics_after[metric]) - float(self.metrics_before[metric])
        except KeyError:
            raise ConfigError(f"metric {metric!r} is not recorded before and after {self.method}") from None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the checkpoint's ``lineage`` section)."""
        return {
            "parent": self.parent,
            "method": self.method,
            "arguments": dict(self.arguments),
            "metrics_before": dict(self.metrics_before),
            "metrics_after": dict(self.metrics_after),
            "details": dict(self.details),
            "parent_lineage": self.parent_lineage.to_dict() if self.parent_lineage is not None else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Lineage:
        """Read :meth:`to_dict` output.

        Raises:
            ConfigError: unknown keys or a missing parent/method.
        """
        values = known_fields(cls, data)
        parent = values.get("parent_lineage")
        return cls(
            parent=str(values.get("parent", "")),
            method=str(values.get("method", "")),
            arguments=dict(values.get("arguments") or {}),
            metrics_before=dict(values.get("metrics_before") or {}),
            metrics_after=dict(values.get("metrics_after") or {}),
            details=dict(values.get("details") or {}),
            parent_lineage=cls.from_dict(parent) if parent else None,
        )
