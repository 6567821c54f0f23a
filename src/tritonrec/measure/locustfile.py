"""The locustfile ``tritonrec bench locust`` runs (packaged, so a ``tritonrec[bench]`` install has it too).

    locust -f bench/locustfile.py --host 127.0.0.1:8001 --scenario bench/scenarios/beauty-steady.toml --headless

``bench/locustfile.py`` in a source checkout imports this file's users; the logic is in
``tritonrec.measure.locust_user``.
"""

import locust  # noqa: F401  (first: locust patches the standard library for gevent)

from tritonrec.measure.locust_user import RankingUser, ScenarioShape

__all__ = ["ScenarioShape", "Shopper"]


class Shopper(RankingUser):
    """A shopper whose page asks Triton to rank the retrieval stage's candidates."""
