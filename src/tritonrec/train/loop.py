"""The training loop: seeded, with a progress bar, early stopping on validation NDCG@10 and a time budget."""

from __future__ import annotations

import dataclasses
import enum
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm import tqdm

from tritonrec.data.splits import EvalSet, TrainBatch
from tritonrec.errors import ConfigError
from tritonrec.metrics import evaluate
from tritonrec.model.ranker import RankingModel
from tritonrec.scorers.eager import torch_scorer

__all__ = [
    "Loss",
    "Objective",
    "TrainConfig",
    "TrainResult",
    "TrainSet",
    "label_loss",
    "seed_everything",
    "train_model",
]

logger = logging.getLogger(__name__)

EARLY_STOP_METRIC = "ndcg@10"


class Loss(enum.StrEnum):
    """Training objective."""

    SAMPLED_SOFTMAX = "sampled_softmax"  # softmax over [positive, sampled negatives]: next-item data
    BCE = "bce"  # pointwise binary cross-entropy on observed click labels: impression data


class Objective(Protocol):
    """A training loss in place of :class:`Loss` (distillation adds the teacher's scores, for example)."""

    def __call__(self, logits: Tensor, labels: Tensor, histories: Tensor, candidates: Tensor) -> Tensor:
        """The loss of one batch: ``[B, C]`` logits and labels of ``[B, L]`` histories and ``[B, C]`` candidates."""
        ...


class TrainSet(Protocol):
    """Anything that yields shuffled :class:`TrainBatch` es (NextItemTrainSet, SlateTrainSet)."""

    def __len__(self) -> int:
        """Number of examples."""
        ...

    def batches(self, batch_size: int, rng: np.random.Generator) -> Iterator[TrainBatch]:
        """Yield one epoch of shuffled batches."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class TrainConfig:
    """Optimisation settings.

    Attributes:
        loss: objective (see :class:`Loss`).
        max_epochs: upper bound on epochs.
        batch_size: users (rows) per step.
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
        patience: epochs without a validation NDCG@10 gain before stopping.
        max_minutes: wall-clock budget for training (checked after each epoch and every 50 steps).
        valid_users: validate on the first this many validation users (0 = all); 5,000 keeps the per-epoch
            validation cheap while its NDCG@10 noise stays around +-0.005.
        shared_negatives: with the sampled-softmax loss, also train the user state ``u`` against the target
            and this many uniformly drawn negatives shared by the whole batch (an auxiliary softmax on
            ``<u, item>``, cheap because it skips the per-candidate layers); 0 turns it off.
        shared_negatives_weight: weight of that auxiliary loss.
        seed: seeds torch, numpy and the batch order.
        threads: torch intra-op threads (0 = leave torch's default).
    """

    loss: Loss = Loss.SAMPLED_SOFTMAX
    max_epochs: int = 30
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-4
    patience: int = 3
    max_minutes: float = 14.0
    valid_users: int = 5000
    shared_negatives: int = 2048
    shared_negatives_weight: float = 1.0
    seed: int = 0
    threads: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.loss, Loss):
            try:
                object.__setattr__(self, "loss", Loss(self.loss))
            except ValueError:
                raise ConfigError(f"unknown loss {self.loss!r}; choose one of {[x.value for x in Loss]}") from None
        if self.max_epochs < 1 or self.batch_size < 1 or self.patience < 1:
            raise ConfigError("max_epochs, batch_size and patience must be >= 1")
        if not (self.lr > 0 and self.weight_decay >= 0 and self.max_minutes > 0):
            raise ConfigError("lr and max_minutes must be > 0, weight_decay >= 0")
        if self.shared_negatives < 0 or self.shared_negatives_weight < 0:
            raise ConfigError("shared_negatives and shared_negatives_weight must be >= 0")

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        data = dataclasses.asdict(self)
        data["loss"] = self.loss.value
        return data


@dataclass(slots=True)
class TrainResult:
    """What a training run did: per-epoch log, best epoch and its validation metrics."""

    epochs: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    best_valid: dict[str, float] = field(default_factory=dict)
    train_s: float = 0.0
    stopped_by: str = ""


def seed_everything(seed: int) -> np.random.Generator:
    """Seed torch and return a numpy generator seeded with ``seed``."""
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def label_loss(logits: Tensor, labels: Tensor, kind: Loss) -> Tensor:
    """The loss of ``[B, C]`` logits against their labels: sampled softmax (multi-positive) or pointwise BCE."""
    if kind is Loss.BCE:
        return F.binary_cross_entropy_with_logits(logits, labels)
    log_probs = torch.log_softmax(logits, dim=-1)
    return -((labels * log_probs).sum(-1) / labels.sum(-1).clamp(min=1.0)).mean()


def _shared_negative_loss(
    model: RankingModel, history: Tensor, targets: Tensor, n_negatives: int, rng: np.random.Generator
) -> Tensor:
    """Softmax of ``<u, target>`` against ``<u, negative>`` for negatives shared by the batch."""
    user = model.user_state(history)  # [B, D]
    negatives = torch.from_numpy(rng.integers(1, model.spec.n_items + 1, size=n_negatives, dtype=np.int64))
    positive = (user * model.item_vectors(targets)).sum(-1, keepdim=True)  # [B, 1]
    negative = user @ model.item_vectors(negatives).T  # [B, K]
    negative = negative.masked_fill(negatives[None, :] == targets[:, None], -1.0e4)
    return -torch.log_softmax(torch.cat([positive, negative], dim=1), dim=1)[:, 0].mean()


def _step(
    model: RankingModel,
    optimizer: torch.optim.Optimizer,
    batch: TrainBatch,
    config: TrainConfig,
    rng: np.random.Generator,
    objective: Objective | None,
) -> float:
    histories = torch.from_numpy(np.ascontiguousarray(batch.features.histories, dtype=np.int64))
    candidates = torch.from_numpy(np.ascontiguousarray(batch.features.candidates, dtype=np.int64))
    labels = torch.from_numpy(batch.labels)
    history, mask = model.encode_history(histories)
    logits = model.score(history, mask, candidates)
    if objective is None:
        loss = label_loss(logits, labels, config.loss)
    else:
        loss = objective(logits, labels, histories, candidates)
    if config.loss is Loss.SAMPLED_SOFTMAX and config.shared_negatives > 0:
        aux = _shared_negative_loss(model, history, candidates[:, 0], config.shared_negatives, rng)
        loss = loss + config.shared_negatives_weight * aux
    optimizer.zero_grad(set_to_none=True)
    loss.backward()  # type: ignore[no-untyped-call]
    torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
    optimizer.step()
    return loss.item()


def train_model(
    model: RankingModel,
    train_set: TrainSet,
    valid_set: EvalSet,
    config: TrainConfig,
    *,
    progress: bool = True,
    objective: Objective | None = None,
) -> TrainResult:
    """Train ``model`` in place; on return it holds the weights of the best validation epoch.

    Args:
        model: the model to train.
        train_set: training batches.
        valid_set: validation rows for early stopping on NDCG@10.
        config: optimisation settings.
        progress: show a tqdm progress bar per epoch.
        objective: the loss of each batch; None = ``config.loss`` (the shared-negative term is added either way).
    """
    rng = seed_everything(config.seed)
    if config.threads:
        torch.set_num_threads(config.threads)
    valid = valid_set.head(config.valid_users) if config.valid_users else valid_set
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    result = TrainResult()
    best_state: dict[str, Tensor] = {}
    best = -math.inf
    start = time.perf_counter()
    deadline = start + 60.0 * config.max_minutes
    for epoch in range(1, config.max_epochs + 1):
        model.train()
        losses: list[float] = []
        n_steps = math.ceil(len(train_set) / config.batch_size)
        bar = tqdm(total=n_steps, desc=f"epoch {epoch}", disable=not progress, leave=False, unit="step")
        for step, batch in enumerate(train_set.batches(config.batch_size, rng)):
            losses.append(_step(model, optimizer, batch, config, rng, objective))
            bar.update()
            if step % 50 == 0:
                bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
                if time.perf_counter() > deadline:
                    break
        bar.close()
        metrics = evaluate(torch_scorer(model), valid)
        elapsed = time.perf_counter() - start
        result.epochs.append({"epoch": epoch, "loss": float(np.mean(losses)), "elapsed_s": elapsed, **metrics})
        logger.info(
            "epoch %d loss %.4f valid ndcg@10 %.4f (%.0f s)", epoch, np.mean(losses), metrics["ndcg@10"], elapsed
        )
        if progress:
            tqdm.write(
                f"epoch {epoch}: loss {np.mean(losses):.4f}  valid ndcg@10 {metrics['ndcg@10']:.4f}  "
                f"hr@10 {metrics['hr@10']:.4f}  auc {metrics['auc']:.4f}  ({elapsed:.0f} s)"
            )
        if metrics[EARLY_STOP_METRIC] > best:
            best, result.best_epoch, result.best_valid = metrics[EARLY_STOP_METRIC], epoch, metrics
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if epoch - result.best_epoch >= config.patience:
            result.stopped_by = "early stopping"
            break
        if time.perf_counter() > deadline:
            result.stopped_by = "time budget"
            break
    else:
        result.stopped_by = "max epochs"
    model.load_state_dict(best_state)
    model.eval()
    result.train_s = time.perf_counter() - start
    return result
