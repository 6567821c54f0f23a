"""The ranker on a ragged batch: only real candidates go through the deep part, each history encoded once.

A dynamic batch of users asks for different numbers of candidates (Beauty traffic: 50-500). Padding every user to
the batch's longest list scores padding; these graphs do not. Both take ``history`` int64 ``[B, L]``: the batch's
histories, right-aligned, ``L`` = the longest real history of the batch (trimmed, not the model's maximum: the
recency embedding counts from the most recent item, so leading padding columns change nothing), and give
``scores`` float32 ``[M]``, one per real candidate in request order.

- The CPU graph (:class:`RaggedRanker`): ``candidates`` int64 ``[B, N]``, each user's list padded to the batch's
  longest, and ``real_index`` int64 ``[M]``, the positions of the real candidates in the flattened grid. The
  target attention runs on the grid as one batched product per user; the cross network and MLP, most of the
  arithmetic, only on the real rows (``RankingModel.score_grid``). An earlier form took the candidates
  concatenated with a per-candidate user index and gathered each candidate's keys and values: on 2 CPU cores it
  served 1.2-1.4x fewer candidates/s at 4-16 users per batch.
- The GPU graph (:class:`OffsetsRanker`): ``candidates`` int64 ``[M]``, concatenated, and ``candidate_offsets``
  int32 ``[B]``, the running total of candidates per user, which is what Triton's ragged batching gives a native
  backend (``batch_input`` ``BATCH_ACCUMULATED_ELEMENT_COUNT``); each candidate is scored against its user's
  encoded history (``RankingModel.score_offsets``).

Both wrap :class:`~tritonrec.model.ranker.RankingModel` without changing it, so the arithmetic is the model's own.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from tritonrec.contract import CANDIDATE_OFFSETS, CANDIDATES, HISTORY, REAL_INDEX
from tritonrec.export.onnx_export import OnnxArtifact, export_module
from tritonrec.model.ranker import RankingModel

__all__ = [
    "OffsetsRanker",
    "RaggedRanker",
    "export_offsets_onnx",
    "export_ragged_onnx",
]


class RaggedRanker(nn.Module):
    """``(history [B, L], candidates [B, N], real_index [M]) -> scores [M]`` on a trained model."""

    def __init__(self, model: RankingModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, history: Tensor, candidates: Tensor, real_index: Tensor) -> Tensor:
        """Score the real candidates of the grid against the history of their user."""
        encoded, mask = self.model.encode_history(history)  # once per user: [B, L, D], [B, L]
        return self.model.score_grid(encoded, mask, candidates, real_index)


class OffsetsRanker(nn.Module):
    """``(history [B, L], candidates [M], candidate_offsets [B]) -> scores [M]``: Triton's ragged batch input."""

    def __init__(self, model: RankingModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, history: Tensor, candidates: Tensor, candidate_offsets: Tensor) -> Tensor:
        """Derive each candidate's user from the running totals, then score it against that user's history."""
        positions = torch.arange(candidates.shape[0], device=candidates.device)
        # the user of candidate m is the number of users whose candidates all come before m
        user_index = (candidate_offsets.to(torch.int64)[None, :] <= positions[:, None]).sum(dim=1)
        encoded, mask = self.model.encode_history(history)
        scores: Tensor = self.model.score_offsets(encoded, mask, candidates, user_index)
        return scores


def _history_example(model: RankingModel) -> Tensor:
    return torch.randint(1, model.spec.n_items + 1, (3, 4))


def _dims() -> tuple[torch.export.Dim, torch.export.Dim, torch.export.Dim]:
    return torch.export.Dim("users"), torch.export.Dim("history_len"), torch.export.Dim("candidates_total")


def export_ragged_onnx(model: RankingModel, out_path: Path, *, external_data: bool | None = None) -> OnnxArtifact:
    """Export the CPU graph (``history``, ``candidates [B, N]``, ``real_index``) with every axis dynamic."""
    candidates = torch.randint(1, model.spec.n_items + 1, (3, 5))
    real_index = torch.tensor([0, 1, 5, 6, 7, 10, 11])  # users of 2, 3 and 2 candidates
    users, length, total = _dims()
    return export_module(
        RaggedRanker(model),
        (_history_example(model), candidates, real_index),
        out_path,
        input_names=[HISTORY, CANDIDATES, REAL_INDEX],
        dynamic_shapes={
            "history": {0: users, 1: length},
            "candidates": {0: users, 1: torch.export.Dim("grid_candidates")},
            "real_index": {0: total},
        },
        external_data=external_data,
        layout="ragged",
    )


def export_offsets_onnx(model: RankingModel, out_path: Path, *, external_data: bool | None = None) -> OnnxArtifact:
    """Export the GPU graph (``history``, ``candidates [M]``, ``candidate_offsets``) for Triton's ragged batching."""
    candidates = torch.randint(1, model.spec.n_items + 1, (7,))
    offsets = torch.tensor([2, 5, 7], dtype=torch.int32)
    users, length, total = _dims()
    return export_module(
        OffsetsRanker(model),
        (_history_example(model), candidates, offsets),
        out_path,
        input_names=[HISTORY, CANDIDATES, CANDIDATE_OFFSETS],
        dynamic_shapes={"history": {0: users, 1: length}, "candidates": {0: total}, "candidate_offsets": {0: users}},
        external_data=external_data,
        layout="offsets",
    )
