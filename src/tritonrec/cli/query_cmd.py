"""``tritonrec query``: rank one user's candidates on a running Triton ranker (the client from a shell).

With ``--spec``: score one query's rows of the spec's evaluation data on the spec's served model instead.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import numpy.typing as npt

from tritonrec.cli.common import print_json
from tritonrec.contract import DEFAULT_MODEL
from tritonrec.errors import InvalidRequestError

__all__ = ["register", "run_query"]


def register(p: argparse.ArgumentParser) -> None:
    """The arguments of ``tritonrec query``."""
    p.add_argument("--url", default="127.0.0.1:8001", help="Triton gRPC host:port (default 127.0.0.1:8001)")
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"model name (default {DEFAULT_MODEL})")
    p.add_argument("--history", default="", help="comma-separated item ids, oldest first (may be empty)")
    p.add_argument("--candidates", default=None, help="comma-separated item ids to rank")
    p.add_argument("--spec", type=Path, default=None, help="a model spec: send one query's rows of its data instead")
    p.add_argument("--query", type=int, default=0, help="with --spec: which evaluation query (0 = the first)")
    p.add_argument("--top-k", type=int, default=None, help="only the best K (default: every candidate, by score)")
    p.add_argument("--timeout-s", type=float, default=5.0, help="deadline of the call, retries included")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=run_query)


def _ids(name: str, text: str) -> npt.NDArray[np.int64]:
    try:
        return np.array([int(v) for v in text.split(",") if v.strip()], dtype=np.int64)
    except ValueError as e:
        raise InvalidRequestError(f"--{name} must be comma-separated integer ids, got {text!r}") from e


def run_query(args: argparse.Namespace) -> int:
    """Send one ranking request and print the ranking (table or JSON)."""
    from tritonrec.client import ClientOptions, RankingClient

    if args.spec is not None:
        return _query_spec(args)
    if args.candidates is None:
        raise InvalidRequestError("--candidates is required (or --spec, to send a query of a spec's data)")
    history, candidates = _ids("history", args.history), _ids("candidates", args.candidates)
    options = ClientOptions(timeout_s=args.timeout_s)
    with RankingClient(args.url, model=args.model, options=options) as client:
        ranking = client.rank(history, candidates, top_k=args.top_k or max(len(candidates), 1))
    if args.json:
        print_json({"model": args.model, "items": ranking.items.tolist(), "scores": ranking.scores.tolist()})
        return 0
    print(f"{'rank':>4} {'item':>10} {'score':>10}")
    for position, (item, score) in enumerate(zip(ranking.items, ranking.scores, strict=True), start=1):
        print(f"{position:>4} {int(item):>10} {float(score):>10.4f}")
    return 0


def _query_spec(args: argparse.Namespace) -> int:
    from tritonrec.client import ClientOptions, RankingClient
    from tritonrec.spec import load_spec
    from tritonrec.spec.rows import evaluation_query

    spec = load_spec(args.spec)
    model = args.model if args.model != DEFAULT_MODEL else f"{spec.name}_cpu"
    features, labels = evaluation_query(spec, args.query)
    with RankingClient(args.url, model=model, options=ClientOptions(timeout_s=args.timeout_s)) as client:
        scores = client.score_rows(features)
    order = np.argsort(-scores, kind="stable")[: args.top_k or len(scores)]
    if args.json:
        print_json(
            {"model": model, "rows": order.tolist(), "scores": scores[order].tolist(), "labels": labels[order].tolist()}
        )
        return 0
    print(f"{model}: query {args.query} of the evaluation rows, {len(scores)} rows")
    print(f"{'rank':>4} {'row':>6} {'score':>10} {'label':>6}")
    for position, row in enumerate(order, start=1):
        print(f"{position:>4} {int(row):>6} {float(scores[row]):>10.4f} {int(labels[row]):>6}")
    return 0
