"""The tritonrec locust suite: shoppers ranking candidates over gRPC against a Triton ``ranker_*`` model.

    locust -f bench/locustfile.py --host 127.0.0.1:8001 --scenario bench/scenarios/beauty-steady.toml \
        --headless --csv reports/locust/run --html reports/locust/run.html

The users live in the package (``tritonrec.measure.locustfile``, what ``tritonrec bench locust`` runs); see
``bench/README.md`` for scenarios, distributed runs and the SLA exit code.
"""

import locust  # noqa: F401  (first: locust patches the standard library for gevent)

from tritonrec.measure.locustfile import ScenarioShape, Shopper

__all__ = ["ScenarioShape", "Shopper"]
