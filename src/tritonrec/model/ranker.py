"""`RankingModel`: scores N candidates against one user's behaviour history (DIN/DCN-v2 family).

Legend: B = users in the batch, L = history length, N = candidates per user, D = embedding dim.

Data flow per user::

    history ids [B, L] ──ItemEncoder──> [B, L, D] ──HistoryEncoder──> h [B, L, D]   (once per user)
    candidate ids [B, N] ──ItemEncoder──> c [B, N, D]
    TargetAttention(c over h) ──> interest [B, N, D]
    x0 = [c, interest, c*interest, u, c*u]  (u = h at the most recent position)   [B, N, 5D]
    logit = MLP(CrossNetwork(x0)) + <c, interest> + <c, u>                          [B, N]

The history is encoded once and shared by all of the user's candidates, which is what makes "history once per
request" cheaper than one history per candidate row. Inputs are plain item ids: the model maps any id to a valid
row itself (unknown and negative ids -> OOV, 0 -> padding), so no input can index out of range.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from tritonrec.data.catalogue import Catalogue
from tritonrec.data.feature_spec import FeatureSpec
from tritonrec.model.config import ModelConfig
from tritonrec.model.layers import MLP, CrossNetwork, HistoryEncoder, ItemEncoder, TargetAttention, ids_to_rows

__all__ = ["RankingModel"]

_N_INTERACTION_PARTS = 5


class RankingModel(nn.Module):
    """Rank candidates for users from their behaviour histories.

    Args:
        spec: vocabularies and history length.
        config: architecture.
        catalogue: item side features, kept as buffers (defaults to all-unknown).
    """

    def __init__(self, spec: FeatureSpec, config: ModelConfig, catalogue: Catalogue | None = None) -> None:
        super().__init__()
        self.spec = spec
        self.config = config
        self.items = ItemEncoder(spec, catalogue or Catalogue.empty(spec), config)
        self.history = HistoryEncoder(config, spec.history_len)
        self.target_attention = TargetAttention(config)
        width = _N_INTERACTION_PARTS * config.embedding_dim
        self.cross = CrossNetwork(width, config.layer_cross_ranks)
        self.mlp = MLP(width, config.mlp_hidden)

    def encode_history(self, histories: Tensor) -> tuple[Tensor, Tensor]:
        """Encode histories once per user.

        Args:
            histories: ``[B, L]`` item ids (any integers), right-aligned; only the last ``spec.history_len``
                columns are read.

        Returns:
            ``(h [B, L', D], mask [B, L'])`` with ``L' = min(L, history_len)``.
        """
        rows = ids_to_rows(histories[:, -self.spec.history_len :], self.spec.n_items)
        mask = rows > 0
        return self.history(self.items(rows), mask), mask

    def score(self, history: Tensor, mask: Tensor, candidates: Tensor) -> Tensor:
        """Score candidates against encoded histories.

        Args:
            history: ``[B, L, D]`` from :meth:`encode_history`.
            mask: ``[B, L]``.
            candidates: ``[B, N]`` item ids (any integers).

        Returns:
            ``[B, N]`` logits.
        """
        c = self.item_vectors(candidates)  # [B, N, D]
        interest = self.target_attention(c, history, mask)  # [B, N, D]
        user = self.user_state(history).unsqueeze(1).expand_as(c)
        return self._logits(c, interest, user)

    def score_offsets(self, history: Tensor, mask: Tensor, candidates: Tensor, user_index: Tensor) -> Tensor:
        """Score an offsets batch: each candidate against the encoded history of its user.

        Args:
            history: ``[B, L, D]`` from :meth:`encode_history`.
            mask: ``[B, L]``.
            candidates: ``[M]`` item ids (any integers).
            user_index: ``[M]``, the row of ``history`` each candidate belongs to.

        Returns:
            ``[M]`` logits, the same as :meth:`score` gives each candidate in a padded batch.
        """
        c = self.item_vectors(candidates)  # [M, D]
        interest = self.target_attention.gathered(c, history, mask, user_index)  # [M, D]
        user = self.user_state(history)[user_index]
        return self._logits(c, interest, user)

    def score_grid(self, history: Tensor, mask: Tensor, candidates: Tensor, real_index: Tensor) -> Tensor:
        """Score the real candidates of a padded grid: attention on the grid, the deep part on real rows only.

        The target attention is a batched product per user (``[B, N, L]``, cheap next to the deep part), so it
        runs on the padded grid; the cross network and MLP, most of the arithmetic, run only on the rows
        ``real_index`` names. Unlike :meth:`score_offsets`, no candidate gathers its user's keys and values.

        Args:
            history: ``[B, L, D]`` from :meth:`encode_history`.
            mask: ``[B, L]``.
            candidates: ``[B, N]`` item ids (any integers), padded with anything.
            real_index: ``[M]`` positions of the real candidates in the flattened ``[B * N]`` grid.

        Returns:
            ``[M]`` logits, the same as :meth:`score` gives those candidates.
        """
        n = candidates.shape[1]
        c_grid = self.item_vectors(candidates)  # [B, N, D]
        interest_grid = self.target_attention(c_grid, history, mask)  # [B, N, D]
        width = c_grid.shape[-1]
        c = c_grid.reshape(-1, width)[real_index]  # [M, D]
        interest = interest_grid.reshape(-1, width)[real_index]
        user = self.user_state(history)[torch.div(real_index, n, rounding_mode="floor")]
        return self._logits(c, interest, user)

    def _logits(self, c: Tensor, interest: Tensor, user: Tensor) -> Tensor:
        x0 = torch.cat([c, interest, c * interest, user, c * user], dim=-1)
        # Deep part (cross network + MLP) plus the two dot products as a direct, "wide" term.
        logits: Tensor = self.mlp(self.cross(x0)) + (c * (interest + user)).sum(-1)
        return logits

    def item_vectors(self, ids: Tensor) -> Tensor:
        """Encode item ids (any integers) of any shape ``[...]`` into ``[..., D]`` item vectors."""
        vectors: Tensor = self.items(ids_to_rows(ids, self.spec.n_items))
        return vectors

    @staticmethod
    def user_state(history: Tensor) -> Tensor:
        """``[B, D]``: the encoded history at the most recent position (zero for an empty history)."""
        return history[:, -1, :]

    def forward(self, histories: Tensor, candidates: Tensor) -> Tensor:
        """Score ``[B, N]`` candidates for ``[B, L]`` histories; returns ``[B, N]`` logits."""
        history, mask = self.encode_history(histories)
        return self.score(history, mask, candidates)

    def n_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)
