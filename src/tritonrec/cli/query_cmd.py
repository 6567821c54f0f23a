"""``tritonrec query``: rank one user's candidates on a running Triton ranker (the client from a shell)."""

from __future__ import annotations

import argparse
import json

import numpy as np
import numpy.typing as npt

from tritonrec.client import ClientOptions, RankingClient
from tritonrec.errors import InvalidRequestError

__all__ = ["run_query"]


def _ids(name: str, text: str) -> npt.NDArray[np.int64]:
    try:
        return np.array([int(v) for v in text.split(",") if v.strip()], dtype=np.int64)
    except ValueError as e:
        raise InvalidRequestError(f"--{name} must be comma-separated integer ids, got {text!r}") from e


def run_query(args: argparse.Namespace) -> int:
    """Send one ranking request and print the ranking (table or JSON)."""
    history, candidates = _ids("history", args.history), _ids("candidates", args.candidates)
    options = ClientOptions(timeout_s=args.timeout_s)
    with RankingClient(args.url, model=args.model, options=options) as client:
        ranking = client.rank(history, candidates, top_k=args.top_k or max(len(candidates), 1))
    if args.json:
        print(json.dumps({"model": args.model, "items": ranking.items.tolist(), "scores": ranking.scores.tolist()}))
        return 0
    print(f"{'rank':>4} {'item':>10} {'score':>10}")
    for position, (item, score) in enumerate(zip(ranking.items, ranking.scores, strict=True), start=1):
        print(f"{position:>4} {int(item):>10} {float(score):>10.4f}")
    return 0
