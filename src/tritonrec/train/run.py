"""Train a preset on a prepared dataset, evaluate it against the baselines, and write the checkpoint."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from tritonrec.baselines import popularity_scorer
from tritonrec.data.registry import PreparedData
from tritonrec.metrics import evaluate
from tritonrec.model.config import preset
from tritonrec.model.ranker import RankingModel
from tritonrec.model.scoring import torch_scorer
from tritonrec.train.checkpoint import save_checkpoint
from tritonrec.train.loop import TrainConfig, seed_everything, train_model

__all__ = ["train_and_save"]

logger = logging.getLogger(__name__)


def train_and_save(
    data: PreparedData, preset_name: str, config: TrainConfig, out_dir: Path, *, progress: bool = True
) -> dict[str, Any]:
    """Train preset ``preset_name`` on ``data``, evaluate on the test rows, save a checkpoint in ``out_dir``.

    Returns:
        The report stored as the checkpoint's ``metrics``: ``test``, ``valid``, ``popularity_test``,
        ``oracle_test`` (synthetic data), ``n_parameters``, ``train_seconds``, ``best_epoch``, ``epochs``.
    """
    model_config = preset(preset_name)
    seed_everything(config.seed)
    model = RankingModel(data.spec, model_config, data.catalogue)
    logger.info("training %s (%d parameters) on %s", preset_name, model.n_parameters(), data.name.value)
    result = train_model(model, data.train, data.valid, config, progress=progress)
    report: dict[str, Any] = {
        "preset": preset_name,
        "n_parameters": model.n_parameters(),
        "train_seconds": round(result.seconds, 1),
        "best_epoch": result.best_epoch,
        "stopped_by": result.stopped_by,
        "epochs": result.epochs,
        "valid": result.best_valid,
        "test": evaluate(torch_scorer(model), data.test),
        "popularity_test": evaluate(popularity_scorer(data.item_counts), data.test),
    }
    if data.oracle_test is not None:
        report["oracle_test"] = data.oracle_test
    save_checkpoint(out_dir, model, metrics=report, train=config.to_dict(), dataset=data.info)
    return report
