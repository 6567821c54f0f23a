"""Structured pruning of the dense part: whole channels removed, the layers rebuilt smaller (no masks).

Prunable groups (legend: D = embedding dim, H = heads, F = 5D interaction width):

- every MLP hidden layer (its neurons);
- every low-rank cross layer (its rank channels: rows of ``down``, columns of ``up``; full-rank cross layers are
  left as they are, their width is the residual's);
- every history block's feed-forward hidden layer;
- every attention module's query/key channels and value channels, the same number per head.

Criterion: the expected magnitude of a channel's contribution to the layer that reads it,
``E|a_c| * ||W_next[:, c]||_2``, with ``a_c`` the channel's activation over calibration rows from the training
set and ``W_next`` the weights that consume it (the next MLP layer, ``up``, the second feed-forward layer, the
attention output projection). A query/key channel contributes ``q_c * k_c`` to the attention logits and is
ranked by ``E|q_c| * E|k_c|``. Each group keeps its ``round((1 - ratio) * width)`` highest channels (at least
one). Kept query weights are scaled by ``sqrt(kept / width)`` so the attention logits (divided by the square
root of the new channel count) are those of the kept channels in the parent.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from tritonrec.data.catalogue import Catalogue
from tritonrec.data.splits import FeatureBatch
from tritonrec.model.config import ModelConfig
from tritonrec.model.ranker import RankingModel
from tritonrec.scorers.eager import torch_scorer

__all__ = ["PrunePlan", "channel_importance", "plan_pruning", "prune_model"]


def _kept(width: int, ratio: float) -> int:
    return max(1, round(width * (1.0 - ratio)))


def _top(scores: Tensor, keep: int) -> Tensor:
    return torch.sort(torch.topk(scores, keep).indices).values


class _Meter:
    """Mean absolute activation per channel of the last axis, accumulated over forward passes."""

    def __init__(self) -> None:
        self.total: Tensor | None = None
        self.count = 0

    def add(self, x: Tensor) -> None:
        flat = x.detach().abs().reshape(-1, x.shape[-1]).double()
        self.total = flat.sum(0) if self.total is None else self.total + flat.sum(0)
        self.count += flat.shape[0]

    @property
    def mean(self) -> Tensor:
        if self.total is None:
            raise RuntimeError("no activation was recorded")
        return (self.total / max(self.count, 1)).float()


def _attention_modules(model: RankingModel) -> Iterator[tuple[str, nn.Module]]:
    for i, attn in enumerate(model.history.attn):
        yield f"history.attn.{i}", attn
    yield "target_attention.attention", model.target_attention.attention


def _consumers(model: RankingModel) -> dict[str, nn.Linear]:
    """``{group: the Linear that reads the group's channels}`` for the groups ranked by input activations."""
    found: dict[str, nn.Module] = {}
    net = list(model.mlp.net)
    for i in range(len(model.config.mlp_hidden)):
        found[f"mlp.net.{2 * i}"] = net[2 * i + 2]
    for i, layer in enumerate(model.cross.layers):
        if isinstance(layer, nn.Sequential):
            found[f"cross.layers.{i}"] = layer[1]
    for i, ffn in enumerate(model.history.ffn):
        found[f"history.ffn.{i}"] = ffn.get_submodule("2")
    for prefix, attn in _attention_modules(model):
        found[f"{prefix}.value"] = attn.get_submodule("out")
    return {name: module for name, module in found.items() if isinstance(module, nn.Linear)}


def _input_hook(meter: _Meter) -> Callable[[nn.Module, tuple[Tensor, ...], Tensor], None]:
    def hook(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
        meter.add(inputs[0])

    return hook


def _output_hook(meter: _Meter) -> Callable[[nn.Module, tuple[Tensor, ...], Tensor], None]:
    def hook(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
        meter.add(output)

    return hook


def channel_importance(model: RankingModel, batches: Iterable[FeatureBatch]) -> dict[str, Tensor]:
    """Score every channel of every prunable group on ``batches`` (see the module docstring for the criterion).

    Returns:
        ``{group: [width] scores}``; attention groups are ``<module>.qk`` and ``<module>.value``.
    """
    consumers = _consumers(model)
    meters: dict[str, _Meter] = {}
    handles = []
    for name, linear in consumers.items():
        meters[name] = _Meter()
        handles.append(linear.register_forward_hook(_input_hook(meters[name])))
    for prefix, attn in _attention_modules(model):
        for part in ("query", "key"):
            meters[f"{prefix}.{part}"] = _Meter()
            handles.append(getattr(attn, part).register_forward_hook(_output_hook(meters[f"{prefix}.{part}"])))
    score = torch_scorer(model)
    try:
        for batch in batches:
            score(batch)
    finally:
        for handle in handles:
            handle.remove()
    scores = {name: meters[name].mean * linear.weight.detach().norm(dim=0) for name, linear in consumers.items()}
    for prefix, _ in _attention_modules(model):
        scores[f"{prefix}.qk"] = meters[f"{prefix}.query"].mean * meters[f"{prefix}.key"].mean
    return scores


@dataclass(frozen=True, slots=True)
class PrunePlan:
    """The channels each group keeps, and the config of the pruned model.

    Attributes:
        config: the parent's config with the pruned widths.
        kept: ``{group: kept channel indices of the parent}`` (attention groups head by head).
        widths: ``{group: [parent width, kept]}`` for reports.
    """

    config: ModelConfig
    kept: dict[str, Tensor]
    widths: dict[str, list[int]]


def _per_head(scores: Tensor, heads: int, keep: int) -> Tensor:
    per_head = scores.reshape(heads, -1)
    return torch.cat([_top(s, keep) + h * per_head.shape[1] for h, s in enumerate(per_head)])


def plan_pruning(model: RankingModel, scores: dict[str, Tensor], ratio: float) -> PrunePlan:
    """Choose the channels to keep from their ``scores`` at ``ratio``."""
    config = model.config
    kept: dict[str, Tensor] = {}
    for name, s in scores.items():
        if not name.endswith((".qk", ".value")):
            kept[name] = _top(s, _kept(s.numel(), ratio))
    head_dim = config.embedding_dim // config.n_heads
    qk = _kept(config.attention_qk_dim or head_dim, ratio)
    v = _kept(config.attention_v_dim or head_dim, ratio)
    for prefix, _ in _attention_modules(model):
        kept[f"{prefix}.qk"] = _per_head(scores[f"{prefix}.qk"], config.n_heads, qk)
        kept[f"{prefix}.value"] = _per_head(scores[f"{prefix}.value"], config.n_heads, v)
    ranks = list(config.layer_cross_ranks)
    for i in range(len(ranks)):
        if f"cross.layers.{i}" in kept:
            ranks[i] = len(kept[f"cross.layers.{i}"])
    pruned = dataclasses.replace(
        config,
        mlp_hidden=tuple(len(kept[f"mlp.net.{2 * i}"]) for i in range(len(config.mlp_hidden))),
        cross_ranks=tuple(ranks),
        ffn_hidden=tuple(len(kept[f"history.ffn.{i}"]) for i in range(config.history_layers)),
        attention_qk_dim=qk,
        attention_v_dim=v,
    )
    widths = {name: [scores[name].numel(), len(idx)] for name, idx in kept.items()}
    return PrunePlan(pruned, kept, widths)


def _slice(state: dict[str, Tensor], key: str, index: Tensor, dim: int, scale: float = 1.0) -> None:
    state[key] = state[key].index_select(dim, index) * scale


def _pruned_state(model: RankingModel, plan: PrunePlan) -> dict[str, Tensor]:
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    for name, idx in plan.kept.items():
        if name.startswith("mlp.net."):
            i = int(name.rsplit(".", 1)[1])
            for key, dim in ((f"mlp.net.{i}.weight", 0), (f"mlp.net.{i}.bias", 0), (f"mlp.net.{i + 2}.weight", 1)):
                _slice(state, key, idx, dim)
        elif name.startswith("cross.layers."):
            _slice(state, f"{name}.0.weight", idx, 0)
            _slice(state, f"{name}.1.weight", idx, 1)
        elif name.startswith("history.ffn."):
            for key, dim in ((f"{name}.0.weight", 0), (f"{name}.0.bias", 0), (f"{name}.2.weight", 1)):
                _slice(state, key, idx, dim)
        elif name.endswith(".qk"):
            prefix = name[: -len(".qk")]
            head_dim = model.config.embedding_dim // model.config.n_heads
            fold = math.sqrt(plan.config.attention_qk_dim / (model.config.attention_qk_dim or head_dim))
            for key, factor in ((f"{prefix}.query", fold), (f"{prefix}.key", 1.0)):
                _slice(state, f"{key}.weight", idx, 0, factor)
                _slice(state, f"{key}.bias", idx, 0, factor)
        else:  # <module>.value
            prefix = name[: -len(".value")]
            _slice(state, f"{prefix}.value.weight", idx, 0)
            _slice(state, f"{prefix}.value.bias", idx, 0)
            _slice(state, f"{prefix}.out.weight", idx, 1)
    return state


def prune_model(
    model: RankingModel, batches: Iterable[FeatureBatch], ratio: float
) -> tuple[RankingModel, dict[str, Any]]:
    """Rank the channels of ``model`` on ``batches``, remove the lowest ``ratio`` of each group.

    Returns:
        ``(pruned model in eval mode, details)``; details hold the parent and kept width of every group.
    """
    model.eval()
    plan = plan_pruning(model, channel_importance(model, batches), ratio)
    pruned = RankingModel(model.spec, plan.config, Catalogue.empty(model.spec))
    pruned.load_state_dict(_pruned_state(model, plan))
    pruned.eval()
    kept_share = float(np.mean([kept / width for width, kept in plan.widths.values()]))
    return pruned, {"criterion": "E|a_c| * ||W_next[:, c]||_2", "widths": plan.widths, "kept_share": kept_share}
