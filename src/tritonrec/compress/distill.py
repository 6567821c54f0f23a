"""Knowledge distillation: a student trained on the true labels and on the teacher's scores of the same rows.

Every training batch is scored by the teacher (eval mode, no gradient) on exactly the candidates the student
sees: the target and the sampled negatives of next-item data, the impression slate of click data. The loss is

    (1 - w) * labels_loss(s) + w * T^2 * teacher_loss(s / T, t / T)

with the usual label loss of the data (sampled softmax or BCE) and, as teacher loss, the KL divergence between
the softmaxes over the candidates (next-item data) or the BCE against the teacher's click probabilities (click
data). ``T^2`` keeps the teacher term's gradient scale independent of ``T`` (Hinton et al. 2015).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from tritonrec.compress.options import DistillOptions
from tritonrec.data.registry import PreparedData
from tritonrec.model.ranker import RankingModel
from tritonrec.train.loop import Loss, Objective, TrainConfig, label_loss, seed_everything, train_model

__all__ = ["distill", "distillation_objective"]


def distillation_objective(teacher: RankingModel, kind: Loss, temperature: float, weight: float) -> Objective:
    """The loss mixing the labels and the teacher's scores (see the module docstring)."""
    teacher.eval()

    def objective(logits: Tensor, labels: Tensor, histories: Tensor, candidates: Tensor) -> Tensor:
        hard = label_loss(logits, labels, kind)
        if weight == 0.0:
            return hard
        with torch.no_grad():
            target = teacher(histories, candidates) / temperature
        student = logits / temperature
        if kind is Loss.BCE:
            soft = F.binary_cross_entropy_with_logits(student, torch.sigmoid(target))
        else:
            log_student, log_teacher = F.log_softmax(student, -1), F.log_softmax(target, -1)
            soft = F.kl_div(log_student, log_teacher, log_target=True, reduction="batchmean")
        return (1.0 - weight) * hard + weight * temperature**2 * soft

    return objective


def distill(
    teacher: RankingModel, data: PreparedData, options: DistillOptions, *, seed: int = 0, progress: bool = False
) -> tuple[RankingModel, dict[str, Any]]:
    """Train a new ``options.student`` on ``data`` against ``teacher``; return it with its training log."""
    config = TrainConfig(
        loss=Loss(data.loss), max_epochs=options.max_epochs, max_minutes=options.max_minutes, lr=options.lr, seed=seed
    )
    seed_everything(seed)
    student = RankingModel(data.spec, options.student, data.catalogue)
    objective = distillation_objective(teacher, config.loss, options.temperature, options.weight)
    result = train_model(student, data.train, data.valid, config, progress=progress, objective=objective)
    details = {
        "student": options.student_name,
        "student_config": options.student.to_dict(),
        "train": config.to_dict(),
        "train_s": round(result.train_s, 1),
        "best_epoch": result.best_epoch,
        "stopped_by": result.stopped_by,
        "epochs": result.epochs,
    }
    return student, details
