"""One artifact (an eager checkpoint or an exported ONNX file) scored on a split by the shared metrics module."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

from tritonrec.data.registry import PreparedData
from tritonrec.errors import ConfigError
from tritonrec.metrics import Scorer, evaluate
from tritonrec.train.report import Metrics

__all__ = ["Evaluation", "Split", "evaluate_artifact"]


class Split(enum.StrEnum):
    """Which evaluation rows to score."""

    TEST = "test"
    VALID = "valid"


@dataclass(frozen=True, slots=True)
class Evaluation:
    """Metrics of one artifact on one split.

    Attributes:
        artifact: the checkpoint folder or ONNX file scored.
        runtime: ``eager`` (PyTorch) or ``onnxruntime``.
        split: the rows scored.
        metrics: :func:`tritonrec.metrics.ranking_metrics` of the scores.
    """

    artifact: Path
    runtime: str
    split: Split
    metrics: Metrics


def _scorer(data: PreparedData, checkpoint: Path | None, onnx: Path | None) -> tuple[Path, str, Scorer]:
    if onnx is not None:
        from tritonrec.export.manifest import read_export_spec
        from tritonrec.scorers.ort import file_scorer

        data.check_fits(read_export_spec(onnx), onnx)
        return onnx, "onnxruntime", file_scorer(onnx)
    if checkpoint is None:
        raise ConfigError("evaluate needs a checkpoint or an ONNX file")
    from tritonrec.scorers.eager import torch_scorer
    from tritonrec.train.checkpoint import load_checkpoint

    loaded = load_checkpoint(checkpoint)
    data.check_fits(loaded.spec, checkpoint)
    return checkpoint, "eager", torch_scorer(loaded.model)


def evaluate_artifact(
    data: PreparedData,
    *,
    checkpoint: Path | None = None,
    onnx: Path | None = None,
    split: Split = Split.TEST,
    limit: int = 0,
    sample_seed: int | None = None,
) -> Evaluation:
    """Score ``checkpoint`` (eager) or ``onnx`` (ONNX Runtime) on ``split`` of ``data``.

    Args:
        data: the dataset the artifact was trained on.
        checkpoint: a checkpoint folder (needs torch).
        onnx: an ONNX file written by ``tritonrec export onnx`` (needs onnxruntime only).
        split: which rows.
        limit: only ``limit`` users (0 = all): the first ones, or with ``sample_seed`` a seeded random sample (the one
            ``tritonrec select --quality-users`` draws with the same seed).
        sample_seed: see ``limit``.

    Raises:
        CheckpointError: the artifact was trained on another item vocabulary.
    """
    artifact, runtime, scorer = _scorer(data, checkpoint, onnx)
    rows = data.test if split is Split.TEST else data.valid
    if limit:
        rows = rows.head(limit) if sample_seed is None else rows.sample(limit, sample_seed)
    return Evaluation(artifact, runtime, split, evaluate(scorer, rows))
