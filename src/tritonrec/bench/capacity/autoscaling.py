"""Simulate the Kubernetes HPA control law on Triton pods whose capacity the bench measured.

The HPA part follows the documented algorithm of ``autoscaling/v2`` (kube-controller-manager's replica
calculator and its behavior handling):

- per metric of type Pods with an AverageValue target: ``ratio = average over pods with metrics / target``; within
  the tolerance (``|1 - ratio| <= 0.1``) the metric proposes the current replicas, otherwise
  ``ceil(ratio * pods with metrics)`` (pods still starting are Pending and ignored);
- the HPA takes the largest proposal of its metrics;
- stabilization: the recommendation is kept between the lowest recommendation of the scale-up window and the
  highest of the scale-down window (recommendations are recorded before stabilization);
- rate limits: each policy allows ``Pods`` pods or ``Percent`` % of the replicas at the start of its period
  (``periodStartReplicas`` = current minus the changes of the last ``periodSeconds``); ``selectPolicy`` Max takes
  the policy allowing the largest change, Min the smallest; then min/max replicas.

Pods are a fluid model driven by a measured capacity curve (``CapacityCurve.from_sweep``, a ``tritonrec bench
sweep`` record): every second each ready pod receives an equal share of the offered requests (round robin),
serves up to the capacity, queues the rest up to ``max_queue`` (beyond: rejected, and counted by no Triton
metric, like Triton's queue-full refusals) and reports queue time per request = the measured queue time at that
load + backlog / capacity (Little's law). The metrics the HPA reads are 60-second averages per ready pod (what
``rate(...[1m])`` through prometheus-adapter gives, without scrape delay). New pods serve ``startup_s`` after the
HPA creates them (image pull, engine build, model load).

No torch import: the bench extra runs it. ``tritonrec.bench.capacity.autoscaling_report`` writes JSON, Markdown
and a PNG.
"""

from __future__ import annotations

import bisect
import enum
import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tritonrec.errors import ConfigError

__all__ = [
    "Behavior",
    "CapacityCurve",
    "HpaConfig",
    "HpaController",
    "MetricKind",
    "MetricTarget",
    "PodModel",
    "PolicyKind",
    "Sample",
    "ScalingPolicy",
    "ScalingRules",
    "SelectPolicy",
    "SimulationResult",
    "Summary",
    "TrafficRamp",
    "metric_proposal",
    "simulate",
    "summarize",
]


class PolicyKind(enum.Enum):
    """``HPAScalingPolicy.type``."""

    PODS = "Pods"
    PERCENT = "Percent"


class SelectPolicy(enum.Enum):
    """``HPAScalingRules.selectPolicy``."""

    MAX = "Max"
    MIN = "Min"
    DISABLED = "Disabled"


class MetricKind(enum.Enum):
    """The per-pod metrics the chart's HPA can scale on."""

    INFERENCE_RATE = "inferences_per_second"  # rate(nv_inference_count[1m]) per pod
    QUEUE_TIME = "queue_time_per_request_us"  # rate(queue_duration_us) / rate(request_success) per pod


@dataclass(frozen=True, slots=True, kw_only=True)
class ScalingPolicy:
    """One rate limit (``HPAScalingPolicy``): ``value`` pods or percent per ``period_s`` seconds."""

    kind: PolicyKind
    value: int
    period_s: int

    def __post_init__(self) -> None:
        if self.value < 1 or not 1 <= self.period_s <= 1800:
            raise ConfigError(f"scaling policy needs value >= 1 and 1 <= periodSeconds <= 1800, got {self}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ScalingRules:
    """``HPAScalingRules`` of one direction: stabilization window, policies and how to pick among them."""

    stabilization_window_s: int
    select_policy: SelectPolicy
    policies: tuple[ScalingPolicy, ...]

    def __post_init__(self) -> None:
        if not 0 <= self.stabilization_window_s <= 3600:
            raise ConfigError(f"stabilizationWindowSeconds must be 0..3600, got {self.stabilization_window_s}")

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> ScalingRules:
        """Read the Kubernetes structure (``stabilizationWindowSeconds``, ``selectPolicy``, ``policies``)."""
        policies = tuple(
            ScalingPolicy(kind=PolicyKind(p["type"]), value=int(p["value"]), period_s=int(p["periodSeconds"]))
            for p in values.get("policies", [])
        )
        return cls(
            stabilization_window_s=int(values.get("stabilizationWindowSeconds", 0)),
            select_policy=SelectPolicy(values.get("selectPolicy", "Max")),
            policies=policies,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Behavior:
    """``HorizontalPodAutoscalerBehavior``: rules to scale up and down."""

    scale_up: ScalingRules
    scale_down: ScalingRules

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> Behavior:
        """Read an HPA ``spec.behavior`` mapping (the chart's ``autoscaling.behavior``)."""
        return cls(
            scale_up=ScalingRules.from_values(values["scaleUp"]),
            scale_down=ScalingRules.from_values(values["scaleDown"]),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricTarget:
    """One Pods metric with an AverageValue target (inferences/s, or microseconds of queue time per request)."""

    kind: MetricKind
    target: float

    def __post_init__(self) -> None:
        if self.target <= 0:
            raise ConfigError(f"{self.kind.value}: target must be > 0, got {self.target}")


@dataclass(frozen=True, slots=True, kw_only=True)
class HpaConfig:
    """What the HPA is told: bounds, metrics, behavior; tolerance and sync period are the controller's defaults."""

    min_replicas: int
    max_replicas: int
    metrics: tuple[MetricTarget, ...]
    behavior: Behavior
    tolerance: float = 0.1
    sync_period_s: int = 15

    def __post_init__(self) -> None:
        if not 1 <= self.min_replicas <= self.max_replicas:
            raise ConfigError(f"need 1 <= min_replicas <= max_replicas, got {self.min_replicas}, {self.max_replicas}")
        if not self.metrics:
            raise ConfigError("an HPA needs at least one metric")


@dataclass(frozen=True, slots=True, kw_only=True)
class CapacityCurve:
    """What one pod serves: its most requests/s, and the queue time it reported at each measured load.

    Attributes:
        points: (served requests/s, server queue ms per request), sorted by load, queue made non-decreasing.
        max_rps: the most requests/s one pod served without errors (its capacity).
        source: where the points come from (the sweep record).
    """

    points: tuple[tuple[float, float], ...]
    max_rps: float
    source: str = ""

    def __post_init__(self) -> None:
        if not self.points or self.max_rps <= 0:
            raise ConfigError("a capacity curve needs measured points and a capacity > 0")

    @classmethod
    def from_sweep(cls, report: Mapping[str, Any], *, source: str = "") -> CapacityCurve:
        """Build the curve from a ``tritonrec bench sweep`` record: every stable, error-free point, both loops.

        Raises:
            ConfigError: the record has no such point.
        """
        measured = [
            (float(p["requests_per_second"]), float(p["server"]["queue_ms"]))
            for mode in ("closed", "open")
            for p in report.get(mode, [])
            if p.get("stable") and not p.get("errors") and p.get("server")
        ]
        if not measured:
            raise ConfigError(f"no stable error-free point in the sweep record {source}")
        measured.sort()
        points, running = [], 0.0
        for rps, queue_ms in measured:
            running = max(running, queue_ms)  # more load never means less queueing
            points.append((rps, running))
        return cls(points=tuple(points), max_rps=max(rps for rps, _ in measured), source=source)

    def queue_us(self, rps: float) -> float:
        """Queue time per request at ``rps`` served requests/s, interpolated (flat beyond the measured range)."""
        loads = [p[0] for p in self.points]
        i = bisect.bisect_left(loads, rps)
        if i == 0:
            return self.points[0][1] * 1000.0
        if i == len(loads):
            return self.points[-1][1] * 1000.0
        (x0, y0), (x1, y1) = self.points[i - 1], self.points[i]
        return (y0 + (y1 - y0) * (rps - x0) / (x1 - x0)) * 1000.0


@dataclass(frozen=True, slots=True, kw_only=True)
class TrafficRamp:
    """Offered requests/s over time: straight lines between ``(second, requests/s)`` points."""

    points: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        times = [t for t, _ in self.points]
        if len(self.points) < 2 or times != sorted(times) or any(r < 0 for _, r in self.points):
            raise ConfigError("a traffic ramp needs >= 2 points in time order with rates >= 0")

    @property
    def duration_s(self) -> int:
        """Seconds from the first to the last point."""
        return int(self.points[-1][0] - self.points[0][0])

    def rps_at(self, t: float) -> float:
        """Offered requests/s at second ``t``."""
        for (t0, r0), (t1, r1) in zip(self.points, self.points[1:], strict=False):
            if t0 <= t <= t1:
                return r0 if t1 == t0 else r0 + (r1 - r0) * (t - t0) / (t1 - t0)
        return self.points[-1][1] if t > self.points[-1][0] else self.points[0][1]


@dataclass(frozen=True, slots=True, kw_only=True)
class PodModel:
    """How a Triton pod behaves beyond its capacity curve.

    Attributes:
        startup_s: seconds from creation to serving (image pull + engine build + model load).
        max_queue: requests a pod queues before refusing (the model config's ``max_queue_size``).
        metric_window_s: the rate window of the HPA's queries.
    """

    startup_s: int = 300
    max_queue: int = 512
    metric_window_s: int = 60

    def __post_init__(self) -> None:
        if self.startup_s < 0 or self.max_queue < 0 or self.metric_window_s < 1:
            raise ConfigError(f"bad pod model {self}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Sample:
    """The state at one HPA sync: traffic, replicas, what the pods did over the last second, the HPA's inputs."""

    t_s: int
    offered_rps: float
    replicas: int
    ready: int
    served_rps: float
    rejected_rps: float
    queue_ms: float
    metrics: tuple[float, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Summary:
    """Figures of one run; ``window`` figures cover ``[from_s, to_s)`` (the steady part of the traffic)."""

    scale_events: int
    reversals: int
    window_from_s: int
    window_to_s: int
    window_scale_events: int
    window_replicas_min: int
    window_replicas_max: int
    rejected_requests: float
    rejected_fraction: float
    seconds_with_rejections: int
    mean_queue_ms: float
    replica_hours: float


@dataclass(frozen=True, slots=True, kw_only=True)
class SimulationResult:
    """The samples at every HPA sync and the replica count of every second."""

    hpa: HpaConfig
    samples: tuple[Sample, ...]
    replicas_per_second: tuple[int, ...]
    rejected_per_second: tuple[float, ...]
    served_per_second: tuple[float, ...]
    queue_ms_per_second: tuple[float, ...]


def metric_proposal(value: float, target: float, *, current: int, ready: int, tolerance: float) -> int:
    """Replicas one Pods metric asks for: ``ceil(ready * value / target)``, or ``current`` within the tolerance."""
    if ready == 0:
        return current
    ratio = value / target
    if abs(1.0 - ratio) <= tolerance:
        return current
    return math.ceil(ratio * ready)


def _changes_in_period(events: Sequence[tuple[int, int]], now: int, period_s: int) -> int:
    return sum(change for t, change in events if t > now - period_s)


def _rate_limit(
    rules: ScalingRules,
    current: int,
    ups: Sequence[tuple[int, int]],
    downs: Sequence[tuple[int, int]],
    now: int,
    *,
    up: bool,
) -> int:
    """The most (scale-up) or fewest (scale-down) replicas the policies allow now."""
    if rules.select_policy is SelectPolicy.DISABLED:
        return current
    proposals = []
    for policy in rules.policies:
        start = (
            current - _changes_in_period(ups, now, policy.period_s) + _changes_in_period(downs, now, policy.period_s)
        )
        if policy.kind is PolicyKind.PODS:
            proposals.append(start + policy.value if up else start - policy.value)
        elif up:
            proposals.append(math.ceil(start * (1 + policy.value / 100)))
        else:
            proposals.append(int(start * (1 - policy.value / 100)))
    if not proposals:
        return current
    # Max: the policy allowing the largest change (most pods up, fewest left down); Min: the smallest change.
    if up:
        return max(proposals) if rules.select_policy is SelectPolicy.MAX else min(proposals)
    return min(proposals) if rules.select_policy is SelectPolicy.MAX else max(proposals)


class HpaController:
    """One HPA's control loop: it keeps recommendations and scale events, as kube-controller-manager does.

    Args:
        config: the HPA's settings.
    """

    def __init__(self, config: HpaConfig) -> None:
        self.config = config
        self.recommendations: list[tuple[int, int]] = []
        self.ups: list[tuple[int, int]] = []
        self.downs: list[tuple[int, int]] = []

    def decide(self, now: int, current: int, ready: int, values: Sequence[float]) -> int:
        """Replicas after the sync at second ``now``.

        Args:
            now: the sync's time, seconds.
            current: the Deployment's replicas (starting pods included).
            ready: pods that report metrics.
            values: each metric's average per ready pod, in the order of ``config.metrics``.

        Returns:
            The new replica count (stabilized, rate-limited, within min/max).
        """
        c = self.config
        desired = max(
            metric_proposal(v, m.target, current=current, ready=ready, tolerance=c.tolerance)
            for v, m in zip(values, c.metrics, strict=True)
        )
        behavior = c.behavior
        up_cut, down_cut = (
            now - behavior.scale_up.stabilization_window_s,
            now - behavior.scale_down.stabilization_window_s,
        )
        up_rec = min([desired] + [r for t, r in self.recommendations if t > up_cut])
        down_rec = max([desired] + [r for t, r in self.recommendations if t > down_cut])
        self.recommendations.append((now, desired))
        horizon = now - max(behavior.scale_down.stabilization_window_s, behavior.scale_up.stabilization_window_s, 1800)
        self.recommendations = [(t, r) for t, r in self.recommendations if t > horizon]
        stabilized = min(max(current, up_rec), down_rec)
        if stabilized > current:
            limit = max(_rate_limit(behavior.scale_up, current, self.ups, self.downs, now, up=True), current)
            new = min(stabilized, limit, c.max_replicas)
        elif stabilized < current:
            limit = min(_rate_limit(behavior.scale_down, current, self.ups, self.downs, now, up=False), current)
            new = max(stabilized, limit, c.min_replicas)
        else:
            new = current
        new = min(max(new, c.min_replicas), c.max_replicas)
        if new > current:
            self.ups.append((now, new - current))
        elif new < current:
            self.downs.append((now, current - new))
        return new


def _metric_values(hpa: HpaConfig, window: Sequence[tuple[float, float, float]]) -> list[float]:
    """(served per pod per s, queue us x served per pod, served per pod) seconds -> each metric's window value."""
    seconds = max(len(window), 1)
    served = sum(w[0] for w in window)
    queue_weighted = sum(w[1] for w in window)
    out = []
    for metric in hpa.metrics:
        if metric.kind is MetricKind.INFERENCE_RATE:
            out.append(served / seconds)
        else:
            out.append(queue_weighted / max(served, 0.001 * seconds))  # clamp_min(rate(success), 0.001)
    return out


def simulate(
    curve: CapacityCurve, traffic: TrafficRamp, hpa: HpaConfig, pods: PodModel, *, initial_replicas: int | None = None
) -> SimulationResult:
    """Run the traffic through the pods second by second, with the HPA deciding every ``sync_period_s``.

    Args:
        curve: what one pod serves and the queue time it reports at each load.
        traffic: offered requests/s over time.
        hpa: the autoscaler's settings.
        pods: startup time, queue bound and metric window of a pod.
        initial_replicas: ready replicas at second 0 (default: ``hpa.min_replicas``).

    Returns:
        The samples at each sync and per-second series.
    """
    controller = HpaController(hpa)
    ready_at: list[int] = [0] * (initial_replicas or hpa.min_replicas)  # second each replica serves from
    backlog_total = 0.0
    window: deque[tuple[float, float, float]] = deque(maxlen=pods.metric_window_s)
    samples: list[Sample] = []
    replicas_s: list[int] = []
    rejected_s: list[float] = []
    served_s: list[float] = []
    queue_s: list[float] = []
    start = int(traffic.points[0][0])
    for second in range(traffic.duration_s + 1):
        now = start + second
        offered = traffic.rps_at(now)
        ready = sum(1 for t in ready_at if t <= now)
        if ready == 0:
            served, rejected, queue_us = 0.0, offered, 0.0
        else:
            per_pod_backlog = backlog_total / ready
            arrivals = offered / ready
            available = per_pod_backlog + arrivals
            per_pod_served = min(curve.max_rps, available)
            left = available - per_pod_served
            per_pod_rejected = max(0.0, left - pods.max_queue)
            new_backlog = left - per_pod_rejected
            queue_us = curve.queue_us(per_pod_served) + (per_pod_backlog + new_backlog) / 2 / curve.max_rps * 1e6
            backlog_total = new_backlog * ready
            served, rejected = per_pod_served * ready, per_pod_rejected * ready
            window.append((per_pod_served, queue_us * per_pod_served, per_pod_served))
        replicas_s.append(len(ready_at))
        rejected_s.append(rejected)
        served_s.append(served)
        queue_s.append(queue_us / 1000.0)
        if second % hpa.sync_period_s == 0 and second > 0:
            values = _metric_values(hpa, window)
            current = len(ready_at)
            new = controller.decide(now, current, ready, values)
            if new > current:
                ready_at += [now + pods.startup_s] * (new - current)
            elif new < current:
                ready_at.sort()  # Kubernetes removes pods that are not ready first, then the newest
                starting = [t for t in ready_at if t > now]
                serving = [t for t in ready_at if t <= now]
                remove = current - new
                drop_starting = min(remove, len(starting))
                starting = starting[: len(starting) - drop_starting]
                serving = serving[: len(serving) - (remove - drop_starting)]
                ready_at = serving + starting
            samples.append(
                Sample(
                    t_s=now,
                    offered_rps=offered,
                    replicas=new,
                    ready=ready,
                    served_rps=served,
                    rejected_rps=rejected,
                    queue_ms=queue_us / 1000.0,
                    metrics=tuple(values),
                )
            )
    return SimulationResult(
        hpa=hpa,
        samples=tuple(samples),
        replicas_per_second=tuple(replicas_s),
        rejected_per_second=tuple(rejected_s),
        served_per_second=tuple(served_s),
        queue_ms_per_second=tuple(queue_s),
    )


def summarize(result: SimulationResult, *, window_from_s: int, window_to_s: int) -> Summary:
    """Scale events, direction reversals, rejections, queueing and cost of a run; ``window`` = the steady part."""
    replicas = result.replicas_per_second
    changes = [(t, replicas[t] - replicas[t - 1]) for t in range(1, len(replicas)) if replicas[t] != replicas[t - 1]]
    directions = [1 if c > 0 else -1 for _, c in changes]
    reversals = sum(1 for a, b in zip(directions, directions[1:], strict=False) if a != b)
    in_window = replicas[window_from_s:window_to_s]
    offered = sum(result.served_per_second) + sum(result.rejected_per_second)
    served = sum(result.served_per_second)
    weighted_queue = sum(q * s for q, s in zip(result.queue_ms_per_second, result.served_per_second, strict=True))
    return Summary(
        scale_events=len(changes),
        reversals=reversals,
        window_from_s=window_from_s,
        window_to_s=window_to_s,
        window_scale_events=sum(1 for t, _ in changes if window_from_s <= t < window_to_s),
        window_replicas_min=min(in_window),
        window_replicas_max=max(in_window),
        rejected_requests=sum(result.rejected_per_second),
        rejected_fraction=sum(result.rejected_per_second) / offered if offered else 0.0,
        seconds_with_rejections=sum(1 for r in result.rejected_per_second if r > 0),
        mean_queue_ms=weighted_queue / served if served else 0.0,
        replica_hours=sum(replicas) / 3600.0,
    )
