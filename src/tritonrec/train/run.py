"""Train a preset on a prepared dataset, evaluate it against the baselines, and write the checkpoint."""

from __future__ import annotations

import logging
from pathlib import Path

from tritonrec.data.registry import PreparedData
from tritonrec.metrics import evaluate, ranking_metrics
from tritonrec.model.config import preset
from tritonrec.model.ranker import RankingModel
from tritonrec.scorers.eager import torch_scorer
from tritonrec.scorers.popularity import popularity_scorer
from tritonrec.train.checkpoint import save_checkpoint
from tritonrec.train.loop import TrainConfig, seed_everything, train_model
from tritonrec.train.report import TrainReport

__all__ = ["train_and_save"]

logger = logging.getLogger(__name__)


def train_and_save(
    data: PreparedData, preset_name: str, config: TrainConfig, out_dir: Path, *, progress: bool = True
) -> TrainReport:
    """Train preset ``preset_name`` on ``data``, evaluate on the test rows, save a checkpoint in ``out_dir``."""
    model_config = preset(preset_name)
    seed_everything(config.seed)
    model = RankingModel(data.spec, model_config, data.catalogue)
    logger.info("training %s (%d parameters) on %s", preset_name, model.n_parameters(), data.name.value)
    result = train_model(model, data.train, data.valid, config, progress=progress)
    oracle = data.oracle_test_scores
    report = TrainReport(
        preset=preset_name,
        n_parameters=model.n_parameters(),
        train_s=round(result.train_s, 1),
        best_epoch=result.best_epoch,
        stopped_by=result.stopped_by,
        epochs=tuple(result.epochs),
        valid=result.best_valid,
        test=evaluate(torch_scorer(model), data.test),
        popularity_test=evaluate(popularity_scorer(data.item_counts), data.test),
        oracle_test=ranking_metrics(oracle, data.test.labels) if oracle is not None else None,
    )
    save_checkpoint(out_dir, model, metrics=report.to_dict(), train=config.to_dict(), dataset=data.info)
    return report
