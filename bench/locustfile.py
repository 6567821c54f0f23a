"""The tritonrec locust suite: shoppers ranking candidates over gRPC against a Triton ``ranker_*`` model.

    locust -f bench/locustfile.py --host 127.0.0.1:8001 --scenario bench/scenarios/beauty-steady.toml \
        --headless --csv reports/locust/run --html reports/locust/run.html

The logic lives in ``tritonrec.bench.locust_user``; see ``bench/README.md`` for scenarios, distributed runs and the
SLA exit code.
"""

import locust  # noqa: F401  (first: locust patches the standard library for gevent)

from tritonrec.bench.locust_user import RankingUser, ScenarioShape

__all__ = ["ScenarioShape", "Shopper"]


class Shopper(RankingUser):
    """A shopper whose page asks Triton to rank the retrieval stage's candidates."""
