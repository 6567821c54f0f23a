"""Rank one user's candidates with the synchronous client.

Start a server first (`tritonrec serve --repo REPO`), then: python client/examples/rank_sync.py --url 127.0.0.1:8001
"""

import argparse

from tritonrec.client import ClientOptions, RankingClient, RetryPolicy
from tritonrec.errors import ClientError, InvalidRequestError


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="127.0.0.1:8001")
    parser.add_argument("--model", default="ranker_cpu")
    args = parser.parse_args()

    # A 200 ms budget per call, retries included: what a page-serving backend can afford.
    options = ClientOptions(timeout_s=0.2, retry=RetryPolicy(max_attempts=3, initial_backoff_s=0.01))
    history = [1203, 88, 4512, 67]  # the user's recent items, oldest first
    candidates = list(range(1, 201))  # 200 items from retrieval
    with RankingClient(args.url, model=args.model, options=options) as client:
        try:
            best = client.rank(history, candidates, top_k=10)
        except InvalidRequestError as e:  # our bug: never retried, fix the request
            print(f"bad request: {e}")
            return 1
        except ClientError as e:  # server down, overloaded past the deadline, timeout: fall back
            print(f"ranking unavailable ({type(e).__name__}, status {e.status}): {e}")
            return 2
    for position, (item, score) in enumerate(zip(best.items, best.scores, strict=True), start=1):
        print(f"{position:2d}. item {item:6d}  score {score:+.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
