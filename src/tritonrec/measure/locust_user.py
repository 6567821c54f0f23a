"""The locust suite's parts: a gRPC ranking user on our client, the scenario's load shape, and the SLA verdict.

Import this module only from a locustfile (``bench/locustfile.py``): importing locust patches the standard
library for gevent. ``grpc.experimental.gevent.init_gevent()`` makes gRPC's blocking calls cooperate with
gevent, so one worker process runs many simulated users on one OS thread.

The scenario file (``bench/scenarios/*.toml``, see :mod:`tritonrec.measure.scenario`) comes from locust's
``--scenario`` option (forwarded to workers in distributed runs) or the ``TRITONREC_SCENARIO`` variable. It sets
the model, the traffic, the think time, the load shape (the :class:`ScenarioShape` a locustfile exposes) and the
SLA: when the run ends, the master (or the single process) sets the exit code to 1 if p99 latency or the error
rate misses the SLA, and says why.

Every request fires locust's ``request`` event: ``request_type`` "grpc", ``name`` the model, ``response_time`` in
ms, ``response_length`` the number of candidates ranked, ``exception`` the tritonrec error (retries are off: a
load test counts failures, it does not hide them).
"""

from __future__ import annotations

import logging
import os
import random
import time
from pathlib import Path
from typing import Any

from grpc.experimental import gevent as grpc_gevent
from locust import LoadTestShape, User, events, task
from locust.runners import WorkerRunner

from tritonrec.client import ClientOptions, RankingClient, RetryPolicy
from tritonrec.errors import TritonRecError
from tritonrec.measure.scenario import Scenario, load_scenario
from tritonrec.measure.traffic import load_user_pool

__all__ = ["RankingUser", "ScenarioShape", "current_scenario"]

logger = logging.getLogger(__name__)
grpc_gevent.init_gevent()

DEFAULT_SCENARIO = Path(__file__).resolve().parents[3] / "bench" / "scenarios" / "beauty-steady.toml"
REQUESTS_PER_PROCESS = 4096  # distinct requests drawn once per process, cycled by its users
_state: dict[str, Any] = {}
# this process's requests: started, ended (reported to locust), failed, and abandoned when locust stopped a user
_counts = {"issued": 0, "reported": 0, "failed": 0, "abandoned": 0}
DRAIN_S = 15.0  # at quit, how long to wait for requests still in flight to end


@events.init_command_line_parser.add_listener
def _add_arguments(parser: Any) -> None:
    parser.add_argument(
        "--scenario",
        type=str,
        default=os.environ.get("TRITONREC_SCENARIO", ""),
        help="tritonrec scenario TOML (default: $TRITONREC_SCENARIO, else bench/scenarios/beauty-steady.toml)",
    )


def current_scenario(path: str | None = None) -> Scenario:
    """The run's scenario, read once per process."""
    if "scenario" not in _state:
        _state["scenario"] = load_scenario(Path(path) if path else DEFAULT_SCENARIO)
    scenario: Scenario = _state["scenario"]
    return scenario


def _requests(client: RankingClient) -> list[Any]:
    """This process's requests: Beauty users, or a spec's evaluation queries (the served config read once)."""
    if "requests" not in _state:
        scenario = current_scenario()
        if scenario.spec:
            from tritonrec.client.features import FeatureLimits
            from tritonrec.measure.spec_traffic import SpecTraffic, evaluation_rows, spec_requests
            from tritonrec.spec import load_spec

            spec = load_spec(Path(scenario.spec))
            limits = FeatureLimits.from_config(client.model_config())
            traffic = SpecTraffic(skew=scenario.query_skew, seed=os.getpid())
            _state["requests"] = spec_requests(evaluation_rows(spec), limits, scenario.model, REQUESTS_PER_PROCESS,
                                               traffic)  # fmt: skip
        else:
            _state["requests"] = load_user_pool(scenario.traffic).sample(REQUESTS_PER_PROCESS)
    requests: list[Any] = _state["requests"]
    return requests


@events.init.add_listener
def _on_init(environment: Any, **_: Any) -> None:
    options = environment.parsed_options
    scenario = current_scenario(getattr(options, "scenario", "") if options else "")
    logger.info("scenario %s: model %s, shape %s", scenario.name, scenario.model, scenario.shape.kind.value)


@events.quitting.add_listener
def _check_sla(environment: Any, **_: Any) -> None:
    # every request started must end as a success or an explicit failure: let those in flight finish, then count
    deadline = time.monotonic() + DRAIN_S
    while _counts["issued"] > _counts["reported"] + _counts["abandoned"] and time.monotonic() < deadline:
        time.sleep(0.05)  # gevent-patched: the users' greenlets run meanwhile
    logger.info(
        "tritonrec accounting: issued=%d reported=%d failed=%d abandoned=%d",
        _counts["issued"],
        _counts["reported"],
        _counts["failed"],
        _counts["abandoned"],
    )
    if isinstance(environment.runner, WorkerRunner):
        return  # the master judges the aggregated statistics
    total = environment.stats.total
    p99 = float(total.get_response_time_percentile(0.99) or 0.0)
    sla = current_scenario().sla
    problems = sla.violations(p99_ms=p99, error_rate=total.fail_ratio, requests=total.num_requests)
    verdict = f"{total.num_requests} requests, p99 {p99:.1f} ms, errors {total.fail_ratio:.2%}"
    if problems:
        logger.error("SLA missed (%s): %s", verdict, "; ".join(problems))
        environment.process_exit_code = 1
    else:
        logger.info("SLA met (%s)", verdict)
        environment.process_exit_code = 0


def _think(user: User) -> float:
    low, high = current_scenario().think_time_ms
    return random.uniform(low, high) / 1000.0 if high > 0 else 0.0


class RankingUser(User):
    """One simulated shopper: ranks a drawn user's candidates over gRPC, pauses for the think time, repeats.

    ``host`` is Triton's gRPC endpoint: ``host:port``, or ``dns:///name:port`` to balance over every address.
    """

    abstract = True  # a locustfile subclasses it (bench/locustfile.py)
    wait_time = _think

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        scenario = current_scenario()
        host = self.host or "127.0.0.1:8001"
        options = ClientOptions(
            timeout_s=10.0,
            retry=RetryPolicy(max_attempts=1),
            # a dns:/// target (the chart's headless Service) spreads calls over every Triton pod
            load_balancing="round_robin" if host.startswith("dns:///") else "pick_first",
        )
        self.model = scenario.model
        self.client = RankingClient(host, model=scenario.model, options=options)
        self.requests = _requests(self.client)

    def on_stop(self) -> None:
        """Close the gRPC channel."""
        self.client.close()

    @task
    def rank(self) -> None:
        """Rank one drawn request's candidates (a user's, or a spec's query) and report it to locust."""
        drawn = self.requests[random.randrange(len(self.requests))]
        error: Exception | None = None
        _counts["issued"] += 1
        started = time.perf_counter()
        try:
            if isinstance(drawn, tuple):
                history, candidates = drawn
                n_candidates = int(candidates.size)
                self.client.rank(history, candidates)
            else:  # a spec's FeatureRequest
                n_candidates = drawn.n_candidates
                self.client.score_rows(drawn.features)
        except TritonRecError as e:
            error = e
            _counts["failed"] += 1
        except BaseException:  # locust stopping this user (GreenletExit) while the request is in flight
            _counts["abandoned"] += 1
            raise
        _counts["reported"] += 1
        self.environment.events.request.fire(
            request_type="grpc",
            name=self.model,
            response_time=(time.perf_counter() - started) * 1000.0,
            response_length=n_candidates,
            exception=error,
            context={},
        )


class ScenarioShape(LoadTestShape):
    """The scenario's users over time (constant, step, ramp or spike); the run stops when the shape ends."""

    def tick(self) -> tuple[int, float] | None:
        """Users and spawn rate wanted now, ``None`` to stop."""
        shape = current_scenario().shape
        users = shape.users_at(self.get_run_time())
        return None if users is None else (users, shape.spawn_rate)
