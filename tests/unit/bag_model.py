"""The bag ranker, a model defined only in the tests (outside src/): a bag of title tokens (variable length, 0 =
padding) and a price per row. It imports torch only, so tools with environments of their own (Model Navigator's venv)
can load it from a spec; test_spec.py names it, and its rows and spec."""

import torch
from torch import nn

VOCAB = 50


class BagRanker(nn.Module):
    """Mean of the title's token embeddings and the log price, through one linear layer: one score per row."""

    def __init__(self, dim: int = 8) -> None:
        super().__init__()
        self.tokens = nn.Embedding(VOCAB, dim, padding_idx=0)
        self.head = nn.Linear(dim + 1, 1)

    def forward(self, title: torch.Tensor, price: torch.Tensor) -> torch.Tensor:
        ids = torch.remainder(title, VOCAB)
        mask = (ids > 0).float().unsqueeze(-1)
        bag = (self.tokens(ids) * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return self.head(torch.cat([bag, torch.log1p(price.abs()).unsqueeze(1)], dim=1)).squeeze(1)


def make_bag_ranker(dim: int = 8) -> BagRanker:
    torch.manual_seed(0)
    return BagRanker(dim)
