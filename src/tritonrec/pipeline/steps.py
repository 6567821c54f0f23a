"""The steps from data to a served, scored model; each returns a typed result the next one takes.

The layers above compose them: :mod:`tritonrec.demo` runs them in order; ``repo build``
(:mod:`tritonrec.repo_build`), ``select``, the served check of ``quantize`` and the compression study reuse them.
Steps never print: a caller that wants to show progress passes a :data:`~tritonrec.records.Progress`.

Legend: U = users (rows), C = candidates per row.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tritonrec.data.feature_spec import FeatureSpec
from tritonrec.data.registry import PreparedData
from tritonrec.data.splits import EvalSet, FeatureBatch
from tritonrec.errors import CheckpointError
from tritonrec.export.checkpoint_export import ExportResult, export_checkpoint
from tritonrec.export.torch_export import TorchExport, export_program
from tritonrec.metrics import Scorer, score_eval_set
from tritonrec.model.config import Preset
from tritonrec.records import Progress, quiet
from tritonrec.repository import Variant, build_repository
from tritonrec.train.checkpoint import Checkpoint, load_checkpoint
from tritonrec.train.loop import TrainConfig
from tritonrec.train.report import TrainReport

__all__ = [
    "RepositoryStep",
    "ServedScores",
    "TrainStep",
    "build_repository_step",
    "export_step",
    "program_step",
    "score_served",
    "train_or_reuse",
]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class TrainStep:
    """A checkpoint ready to use: trained now, or reused from an earlier run.

    Attributes:
        checkpoint_dir: where it lives.
        checkpoint: the loaded checkpoint (model in eval mode).
        report: its training report (test metrics, baselines, parameters, training time).
        reused: True when nothing was trained.
    """

    checkpoint_dir: Path
    checkpoint: Checkpoint
    report: TrainReport
    reused: bool


def train_or_reuse(
    data: PreparedData,
    preset: Preset,
    checkpoint_dir: Path,
    config: TrainConfig,
    *,
    retrain: bool = False,
    progress: bool = False,
) -> TrainStep:
    """Train ``preset`` on ``data`` into ``checkpoint_dir``, unless a checkpoint is already there.

    Args:
        data: the prepared dataset.
        preset: the model size.
        checkpoint_dir: where the checkpoint is (or is written).
        config: training settings (used only when training).
        retrain: train even if a checkpoint exists.
        progress: show the training progress bars.

    Raises:
        CheckpointError: the existing checkpoint does not fit ``data`` or carries no training report.
    """
    from tritonrec.train.run import train_and_save  # torch: imported only by the steps that train

    reused = not retrain and (checkpoint_dir / "checkpoint.json").is_file()
    if not reused:
        train_and_save(data, preset, config, checkpoint_dir, progress=progress)
    checkpoint = load_checkpoint(checkpoint_dir)
    data.check_fits(checkpoint.spec, checkpoint_dir)
    report = checkpoint.report
    if report is None:
        raise CheckpointError(f"{checkpoint_dir} carries no training report: train it with `tritonrec train`")
    return TrainStep(checkpoint_dir, checkpoint, report, reused)


def export_step(
    checkpoint_dir: Path,
    data: PreparedData,
    out_dir: Path,
    *,
    fp16: bool = True,
    gpu_graph: bool = False,
    external_data: bool | None = None,
) -> ExportResult:
    """Export the checkpoint in ``checkpoint_dir`` to ONNX in ``out_dir``, parity-checked on ``data``'s test rows.

    Raises:
        CheckpointError: the checkpoint does not fit ``data``.
        ExportError: the export failed or is past its parity tolerance.
    """
    checkpoint = load_checkpoint(checkpoint_dir)
    data.check_fits(checkpoint.spec, checkpoint_dir)
    return export_checkpoint(
        checkpoint, data.test, out_dir, fp16=fp16, gpu_graph=gpu_graph, external_data=external_data
    )


def program_step(checkpoint_dir: Path, data: PreparedData, out_dir: Path) -> TorchExport:
    """Export the checkpoint as a ``torch.export`` program (``ranker_gpu``'s artifact), parity-checked on ``data``.

    Raises:
        CheckpointError: the checkpoint does not fit ``data``.
        ExportError: the export failed or is past its parity tolerance.
    """
    checkpoint = load_checkpoint(checkpoint_dir)
    data.check_fits(checkpoint.spec, checkpoint_dir)
    return export_program(checkpoint.model, out_dir, rows=data.test)


@dataclass(frozen=True, slots=True)
class RepositoryStep:
    """A written model repository: its folder, the variants in it, the files per variant."""

    root: Path
    variants: tuple[Variant, ...]
    files: dict[str, list[Path]]

    @property
    def model_names(self) -> list[str]:
        """The served model names (what ``LocalTriton(models=...)`` loads)."""
        return [v.name for v in self.variants]


def build_repository_step(
    root: Path, spec: FeatureSpec, variants: list[Variant], *, export_dir: Path | None
) -> RepositoryStep:
    """Write ``variants`` (configs, and artifacts from ``export_dir`` when given) into the repository ``root``."""
    files = build_repository(root, spec, variants, export_dir=export_dir)
    return RepositoryStep(root, tuple(variants), files)


@dataclass(frozen=True, slots=True)
class ServedScores:
    """Scores of every evaluation row, each user sent as its own gRPC request to a served model.

    Attributes:
        scores: ``[U, C]`` scores in row order.
        grpc_requests: requests the client sent (retries included).
        executions: model executions Triton ran for them (fewer than requests when the batcher joined them).
        inferences: users Triton scored.
        elapsed_s: wall time of the scoring.
    """

    scores: FloatArray
    grpc_requests: int
    executions: int
    inferences: int
    elapsed_s: float

    @property
    def users_per_second(self) -> float:
        """Users scored per second of wall time."""
        return len(self.scores) / self.elapsed_s if self.elapsed_s > 0 else 0.0


def _counting(scorer: Scorer, total: int, progress: Progress) -> Scorer:
    done = 0

    def score(batch: FeatureBatch) -> npt.NDArray[np.floating[Any]]:
        nonlocal done
        scores = scorer(batch)
        done += len(batch.histories)
        progress(f"{done:,}/{total:,} users scored over gRPC")
        return scores

    return score


def score_served(
    url: str, model: str, rows: EvalSet, *, concurrency: int = 16, progress: Progress = quiet
) -> ServedScores:
    """Score ``rows`` through the model served at ``url``, one request per user, ``concurrency`` in flight."""
    from tritonrec.client import RankingClient
    from tritonrec.scorers.triton import triton_scorer

    with RankingClient(url, model=model) as client:
        before = client.statistics()  # warm-up inferences are counted too
        started = time.perf_counter()
        scorer = _counting(triton_scorer(client, concurrency=concurrency), len(rows), progress)
        scores = score_eval_set(scorer, rows, batch_size=1024)
        elapsed_s = time.perf_counter() - started
        after = client.statistics()
        sent = client.requests_sent
    return ServedScores(
        scores=scores,
        grpc_requests=sent,
        executions=after["execution_count"] - before["execution_count"],
        inferences=after["inference_count"] - before["inference_count"],
        elapsed_s=elapsed_s,
    )
