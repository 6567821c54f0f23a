"""One compression run: parent checkpoint -> transformation (-> fine-tuning) -> evaluated checkpoint with lineage.

Both the parent and the result are scored on the same evaluation rows by the shared metrics module through the
eager scorer, in the same run, so the deltas compare like with like. The result is a normal checkpoint
(``tritonrec evaluate``, ``export onnx``, ``repo build`` and serving take it unchanged) whose ``lineage`` section
records the parent, the method, its arguments, the metrics before and after and what the method measured.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tritonrec.compress.distill import distill, distillation_objective
from tritonrec.compress.options import (
    CompressOptions,
    DistillOptions,
    FinetuneOptions,
    PruneOptions,
    QuantizeOptions,
    ShareOptions,
    options_to_dict,
)
from tritonrec.compress.prune import prune_model
from tritonrec.compress.quantize import quantize_embeddings
from tritonrec.compress.share import share_item_table
from tritonrec.compress.size import ModelSize, files_bytes, model_size
from tritonrec.data.registry import PreparedData
from tritonrec.data.splits import EvalSet, FeatureBatch
from tritonrec.metrics import evaluate
from tritonrec.model.ranker import RankingModel
from tritonrec.scorers.eager import torch_scorer
from tritonrec.train.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from tritonrec.train.lineage import Lineage
from tritonrec.train.loop import EARLY_STOP_METRIC, Loss, TrainConfig, train_model
from tritonrec.train.report import Metrics

__all__ = ["CompressionResult", "compress_checkpoint", "evaluation_rows"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CompressionResult:
    """A written compressed checkpoint and its figures.

    Attributes:
        out_dir: the checkpoint folder.
        lineage: what was done (also in the checkpoint).
        size: the compressed model's weights and bytes.
        parent_size: the parent's.
        checkpoint_bytes: bytes of the checkpoint folder.
        parent_checkpoint_bytes: bytes of the parent's checkpoint files.
        elapsed_s: wall time of the run (0 when an earlier identical run was reused).
        reused: True when the checkpoint was already there from an identical run.
    """

    out_dir: Path
    lineage: Lineage
    size: ModelSize
    parent_size: ModelSize
    checkpoint_bytes: int
    parent_checkpoint_bytes: int
    elapsed_s: float
    reused: bool = False

    def summary(self) -> dict[str, Any]:
        """The object ``tritonrec compress ... --json`` prints."""
        before, after = self.lineage.metrics_before, self.lineage.metrics_after
        return {
            "method": self.lineage.method,
            "parent": self.lineage.parent,
            "out": str(self.out_dir),
            "arguments": self.lineage.arguments,
            "params": self.size.params,
            "bytes": self.checkpoint_bytes,
            "model_bytes": self.size.bytes,
            "parent_params": self.parent_size.params,
            "parent_bytes": self.parent_checkpoint_bytes,
            "ndcg@10": round(after["ndcg@10"], 4),
            "auc": round(after["auc"], 4),
            "ndcg@10_delta": round(after["ndcg@10"] - before["ndcg@10"], 4),
            "auc_delta": round(after["auc"] - before["auc"], 4),
            "parent_ndcg@10": round(before["ndcg@10"], 4),
            "parent_auc": round(before["auc"], 4),
            "elapsed_s": round(self.elapsed_s, 1),
        }


def _checkpoint_files(directory: Path) -> list[Path]:
    return [directory / "checkpoint.json", directory / "weights.pt"]


def evaluation_rows(data: PreparedData, users: int = 0) -> EvalSet:
    """The test rows compression runs score (the first ``users`` users; 0 = all)."""
    return data.test.head(users) if users else data.test


def _calibration_batches(data: PreparedData, rows: int, seed: int) -> list[FeatureBatch]:
    batches, taken = [], 0
    for batch in data.train.batches(256, np.random.default_rng(seed)):
        batches.append(batch.features)
        taken += len(batch.labels)
        if taken >= rows:
            break
    return batches


def _finetune(
    model: RankingModel, parent: RankingModel, data: PreparedData, options: FinetuneOptions, seed: int, progress: bool
) -> dict[str, Any]:
    """Fine-tune ``model`` in place; keep its weights from before when no epoch validates better."""
    if options.max_epochs == 0:
        return {"epochs": []}
    config = TrainConfig(
        loss=Loss(data.loss), max_epochs=options.max_epochs, max_minutes=options.max_minutes, lr=options.lr, seed=seed
    )
    valid = data.valid.head(config.valid_users) if config.valid_users else data.valid
    before = evaluate(torch_scorer(model), valid)
    start = {k: v.detach().clone() for k, v in model.state_dict().items()}
    objective = None
    if options.teacher_weight > 0:
        objective = distillation_objective(parent, config.loss, options.temperature, options.teacher_weight)
    result = train_model(model, data.train, data.valid, config, progress=progress, objective=objective)
    improved = result.best_valid[EARLY_STOP_METRIC] > before[EARLY_STOP_METRIC]
    if not improved:
        model.load_state_dict(start)
    return {
        "train": config.to_dict(),
        "train_s": round(result.train_s, 1),
        "best_epoch": result.best_epoch if improved else 0,
        "stopped_by": result.stopped_by,
        "valid_before": before,
        "epochs": result.epochs,
    }


def _transform(
    parent: Checkpoint, data: PreparedData, options: CompressOptions, rows: EvalSet, seed: int, progress: bool
) -> tuple[RankingModel, dict[str, Any]]:
    if isinstance(options, QuantizeOptions):
        return quantize_embeddings(parent.model, options)
    if isinstance(options, DistillOptions):
        return distill(parent.model, data, options, seed=seed, progress=progress)
    if isinstance(options, PruneOptions):
        calibration = _calibration_batches(data, options.calibration_rows, seed)
        model, details = prune_model(parent.model, calibration, options.ratio)
    elif isinstance(options, ShareOptions):
        model, details = share_item_table(parent.model, options.kind, options.ratio)
    details["metrics_before_finetune"] = evaluate(torch_scorer(model), rows)
    details["finetune"] = _finetune(model, parent.model, data, options.finetune, seed, progress)
    model.eval()
    return model, details


def _reusable(out_dir: Path, parent_dir: Path, options: CompressOptions, rows: int) -> Checkpoint | None:
    """The checkpoint in ``out_dir`` if an identical run (parent, method, arguments, rows) wrote it."""
    if not (out_dir / "checkpoint.json").is_file():
        return None
    existing = load_checkpoint(out_dir)
    lineage = existing.lineage
    same = (
        lineage is not None
        and lineage.parent == str(parent_dir)
        and lineage.method == options.method.value
        and json.dumps(lineage.arguments, sort_keys=True) == json.dumps(options_to_dict(options), sort_keys=True)
        and lineage.details.get("evaluated_users") == rows
    )
    return existing if same else None


def compress_checkpoint(
    parent_dir: Path,
    data: PreparedData,
    options: CompressOptions,
    out_dir: Path,
    *,
    eval_users: int = 0,
    seed: int = 0,
    reuse: bool = False,
    parent_metrics: Metrics | None = None,
    threads: int = 0,
    progress: bool = False,
) -> CompressionResult:
    """Compress the checkpoint in ``parent_dir`` with ``options`` and write the result to ``out_dir``.

    Args:
        parent_dir: the parent checkpoint (for ``distill``: the teacher).
        data: the dataset the parent was trained on (training rows for fine-tuning, test rows for the metrics).
        options: the method and its arguments.
        out_dir: the checkpoint folder to write.
        eval_users: score only the first this many test users (0 = all).
        seed: seed of calibration, fine-tuning and student training.
        reuse: keep an identical earlier result found in ``out_dir`` instead of recomputing it.
        parent_metrics: the parent's metrics on the same rows when the caller measured them already in this run
            (a benchmark compressing one parent many times); None = score the parent here.
        threads: torch intra-op threads for scoring and training (0 = leave torch's default); on a shared
            machine one thread per process avoids the stalls of oversubscribed thread pools.
        progress: show training progress bars.

    Raises:
        CheckpointError: the parent is missing, unreadable or trained on other data.
        ConfigError: the method cannot apply to this parent (e.g. quantizing quantized tables).
    """
    parent = load_checkpoint(parent_dir)
    data.check_fits(parent.spec, parent_dir)
    rows = evaluation_rows(data, eval_users)
    parent_files = _checkpoint_files(parent_dir)
    existing = _reusable(out_dir, parent_dir, options, len(rows)) if reuse else None
    if existing is not None and existing.lineage is not None:
        logger.info("reusing %s", out_dir)
        return CompressionResult(
            out_dir, existing.lineage, model_size(existing.model), model_size(parent.model),
            files_bytes(_checkpoint_files(out_dir)), files_bytes(parent_files), 0.0, reused=True,
        )  # fmt: skip
    if threads:
        torch.set_num_threads(threads)
    started = time.perf_counter()
    before = parent_metrics if parent_metrics is not None else evaluate(torch_scorer(parent.model), rows)
    model, details = _transform(parent, data, options, rows, seed, progress)
    after: Metrics = evaluate(torch_scorer(model), rows)
    details["evaluated_users"] = len(rows)
    if data.oracle_test_scores is not None:
        from tritonrec.metrics import ranking_metrics

        details["oracle"] = ranking_metrics(data.oracle_test_scores[: len(rows)], rows.labels)
    lineage = Lineage(
        parent=str(parent_dir),
        method=options.method.value,
        arguments=options_to_dict(options),
        metrics_before=before,
        metrics_after=after,
        details=details,
        parent_lineage=parent.lineage,
    )
    save_checkpoint(out_dir, model, metrics={"test": after}, dataset=data.info, lineage=lineage)
    return CompressionResult(
        out_dir=out_dir,
        lineage=lineage,
        size=model_size(model),
        parent_size=model_size(parent.model),
        checkpoint_bytes=files_bytes(_checkpoint_files(out_dir)),
        parent_checkpoint_bytes=files_bytes(parent_files),
        elapsed_s=time.perf_counter() - started,
    )
