"""The ranker on a flat (ragged) batch: only real candidates are scored, each user's history encoded once.

A dynamic batch of users asks for different numbers of candidates (Beauty traffic: 50-500). Padding every user to
the batch's longest list scores padding; the flat layout does not:

- ``history`` int64 ``[B, L]``: the batch's histories, right-aligned, ``L`` = the longest real history of the
  batch (trimmed, not the model's maximum: the recency embedding counts from the most recent item, so leading
  padding columns change nothing);
- ``candidates`` int64 ``[M]``: every user's candidates, concatenated;
- ``user_index`` int64 ``[M]`` (the CPU graph): the user each candidate belongs to; or
  ``candidate_offsets`` int32 ``[B]`` (the GPU graph): the running total of candidates per user, which is what
  Triton's ragged batching gives a native backend (``batch_input`` ``BATCH_ACCUMULATED_ELEMENT_COUNT``);
- output ``scores`` float32 ``[M]``, in the same order.

Both wrap :class:`~tritonrec.model.ranker.RankingModel` without changing it: the histories are encoded once per
user (and the target attention's keys and values projected once per user), then every candidate is scored
against its user's encoded history (``RankingModel.score_flat``), so the arithmetic is the model's own.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from tritonrec.contract import CANDIDATE_OFFSETS, CANDIDATES, HISTORY, USER_INDEX
from tritonrec.export.onnx_export import OnnxArtifact, export_module
from tritonrec.model.ranker import RankingModel

__all__ = [
    "OffsetsRanker",
    "RaggedRanker",
    "export_offsets_onnx",
    "export_ragged_onnx",
]


class RaggedRanker(nn.Module):
    """``(history [B, L], candidates [M], user_index [M]) -> scores [M]`` on a trained model."""

    def __init__(self, model: RankingModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, history: Tensor, candidates: Tensor, user_index: Tensor) -> Tensor:
        """Score each candidate against the history of its user."""
        encoded, mask = self.model.encode_history(history)  # once per user: [B, L, D], [B, L]
        return self.model.score_flat(encoded, mask, candidates, user_index)


class OffsetsRanker(nn.Module):
    """``(history [B, L], candidates [M], candidate_offsets [B]) -> scores [M]``: Triton's ragged batch input."""

    def __init__(self, model: RankingModel) -> None:
        super().__init__()
        self.ragged = RaggedRanker(model)

    def forward(self, history: Tensor, candidates: Tensor, candidate_offsets: Tensor) -> Tensor:
        """Derive each candidate's user from the running totals, then score as :class:`RaggedRanker`."""
        positions = torch.arange(candidates.shape[0], device=candidates.device)
        # the user of candidate m is the number of users whose candidates all come before m
        user_index = (candidate_offsets.to(torch.int64)[None, :] <= positions[:, None]).sum(dim=1)
        scores: Tensor = self.ragged(history, candidates, user_index)
        return scores


def _example(model: RankingModel) -> tuple[Tensor, Tensor]:
    history = torch.randint(1, model.spec.n_items + 1, (3, 4))
    candidates = torch.randint(1, model.spec.n_items + 1, (7,))
    return history, candidates


def _dims() -> tuple[torch.export.Dim, torch.export.Dim, torch.export.Dim]:
    return torch.export.Dim("users"), torch.export.Dim("history_len"), torch.export.Dim("flat_candidates")


def export_ragged_onnx(model: RankingModel, out_path: Path, *, external_data: bool | None = None) -> OnnxArtifact:
    """Export the CPU flat graph (``history``, ``candidates``, ``user_index``) with every axis dynamic."""
    history, candidates = _example(model)
    user_index = torch.tensor([0, 0, 1, 1, 1, 2, 2])
    users, length, flat = _dims()
    return export_module(
        RaggedRanker(model),
        (history, candidates, user_index),
        out_path,
        input_names=[HISTORY, CANDIDATES, USER_INDEX],
        dynamic_shapes={"history": {0: users, 1: length}, "candidates": {0: flat}, "user_index": {0: flat}},
        external_data=external_data,
        layout="ragged",
    )


def export_offsets_onnx(model: RankingModel, out_path: Path, *, external_data: bool | None = None) -> OnnxArtifact:
    """Export the GPU flat graph (``history``, ``candidates``, ``candidate_offsets``) for Triton's ragged batching."""
    history, candidates = _example(model)
    offsets = torch.tensor([2, 5, 7], dtype=torch.int32)
    users, length, flat = _dims()
    return export_module(
        OffsetsRanker(model),
        (history, candidates, offsets),
        out_path,
        input_names=[HISTORY, CANDIDATES, CANDIDATE_OFFSETS],
        dynamic_shapes={"history": {0: users, 1: length}, "candidates": {0: flat}, "candidate_offsets": {0: users}},
        external_data=external_data,
        layout="offsets",
    )
