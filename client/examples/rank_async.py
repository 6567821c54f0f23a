"""Rank many users concurrently with the asyncio client (one request per user; Triton batches them).

Start a server first (`tritonrec serve --repo REPO`), then: python client/examples/rank_async.py --url 127.0.0.1:8001
"""

import argparse
import asyncio
import random

from tritonrec.client import AsyncRankingClient


async def rank_users(url: str, model: str, n_users: int) -> None:
    rng = random.Random(0)
    histories = [[rng.randint(1, 12_000) for _ in range(rng.randint(0, 50))] for _ in range(n_users)]
    candidates = [[rng.randint(1, 12_000) for _ in range(200)] for _ in range(n_users)]
    async with AsyncRankingClient(url, model=model) as client:
        if not await client.is_model_ready():
            raise SystemExit(f"{model} is not ready on {url}")
        rankings = await client.rank_many(histories, candidates, top_k=5, concurrency=32)
        stats = await client.statistics()
    for user, ranking in enumerate(rankings[:3]):
        print(f"user {user}: top items {ranking.items.tolist()}")
    print(f"{n_users} users ranked; server counters: {stats}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="127.0.0.1:8001")
    parser.add_argument("--model", default="ranker_cpu")
    parser.add_argument("--users", type=int, default=100)
    args = parser.parse_args()
    asyncio.run(rank_users(args.url, args.model, args.users))


if __name__ == "__main__":
    main()
