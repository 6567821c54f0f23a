"""Load-test scenarios as files: traffic, think time, load shape and SLA, read from TOML (``bench/scenarios/``).

A scenario file::

    name = "beauty-step"
    model = "ranker_cpu"
    think_time_ms = [0, 0]          # uniform pause between a locust user's requests, ms

    [traffic]                       # tritonrec.measure.traffic.TrafficSpec
    source = "beauty"
    user_zipf = 1.1
    candidates = { low = 50, high = 500, distribution = "uniform" }

    [shape]                         # LoadShape: constant | step | ramp | spike
    kind = "step"
    users = 8
    step_users = 8
    step_s = 20
    steps = 3

    [sla]                           # the run fails (exit code 1) past either bound
    p99_ms = 1000
    max_error_rate = 0.01

A team's own model: ``spec = "path/spec.toml"`` (relative to the scenario file) and ``model`` its served name;
requests are then the spec's evaluation queries (:mod:`tritonrec.measure.spec_traffic`), drawn with
``query_skew`` (Zipf over queries, 0 = uniform), and ``[traffic]`` is not used.

Unknown keys are errors: a typo must not silently change a benchmark.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tritonrec.contract import DEFAULT_MODEL
from tritonrec.errors import ConfigError
from tritonrec.measure.traffic import CandidateCounts, TrafficSpec

__all__ = ["SLA", "LoadShape", "Scenario", "ShapeKind", "load_scenario"]


class ShapeKind(enum.StrEnum):
    """How the number of simulated users moves over a run."""

    CONSTANT = "constant"  # ``users`` for ``duration_s``
    STEP = "step"  # ``users``, then ``step_users`` more every ``step_s``, ``steps`` times
    RAMP = "ramp"  # linear from ``users`` to ``peak_users`` over ``duration_s``
    SPIKE = "spike"  # ``users``; ``peak_users`` from ``spike_at_s`` for ``spike_s``; ``users`` until ``duration_s``


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadShape:
    """Simulated users over time; :meth:`users_at` is what locust's ``LoadTestShape.tick`` asks."""

    kind: ShapeKind = ShapeKind.CONSTANT
    users: int = 8
    duration_s: float = 30.0
    step_users: int = 8
    step_s: float = 10.0
    steps: int = 3
    peak_users: int = 32
    spike_at_s: float = 10.0
    spike_s: float = 10.0
    spawn_rate: float = 100.0

    def __post_init__(self) -> None:
        if not isinstance(self.kind, ShapeKind):
            try:
                object.__setattr__(self, "kind", ShapeKind(self.kind))
            except ValueError:
                raise ConfigError(
                    f"shape.kind must be one of {[k.value for k in ShapeKind]}, got {self.kind!r}"
                ) from None
        for name in ("users", "step_users", "peak_users"):
            if getattr(self, name) < 0:
                raise ConfigError(f"shape.{name} must be >= 0, got {getattr(self, name)}")
        for name in ("duration_s", "step_s", "spike_s", "spawn_rate"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"shape.{name} must be > 0, got {getattr(self, name)}")
        if self.steps < 1:
            raise ConfigError(f"shape.steps must be >= 1, got {self.steps}")

    @property
    def total_s(self) -> float:
        """Length of the whole run."""
        return self.step_s * self.steps if self.kind is ShapeKind.STEP else self.duration_s

    @property
    def max_users(self) -> int:
        """The most users the shape ever asks for."""
        if self.kind is ShapeKind.STEP:
            return self.users + self.step_users * (self.steps - 1)
        return max(self.users, self.peak_users) if self.kind is not ShapeKind.CONSTANT else self.users

    def users_at(self, t_s: float) -> int | None:
        """Users wanted ``t_s`` seconds into the run; ``None`` once the run is over."""
        if t_s >= self.total_s:
            return None
        if self.kind is ShapeKind.STEP:
            return self.users + self.step_users * int(t_s // self.step_s)
        if self.kind is ShapeKind.RAMP:
            return self.users + math.floor((self.peak_users - self.users) * t_s / self.duration_s)
        if self.kind is ShapeKind.SPIKE and self.spike_at_s <= t_s < self.spike_at_s + self.spike_s:
            return self.peak_users
        return self.users


@dataclass(frozen=True, slots=True, kw_only=True)
class SLA:
    """What a run must meet: p99 latency (ms) and the share of failed requests."""

    p99_ms: float = 1000.0
    max_error_rate: float = 0.01

    def __post_init__(self) -> None:
        if not self.p99_ms > 0 or not 0 <= self.max_error_rate <= 1:
            raise ConfigError(f"sla needs p99_ms > 0 and 0 <= max_error_rate <= 1, got {self}")

    def violations(self, *, p99_ms: float, error_rate: float, requests: int) -> list[str]:
        """Human-readable reasons the measured run misses the SLA (empty = met)."""
        problems = []
        if requests == 0:
            problems.append("no request completed")
        if p99_ms > self.p99_ms:
            problems.append(f"p99 {p99_ms:.1f} ms > SLA {self.p99_ms:g} ms")
        if error_rate > self.max_error_rate:
            problems.append(f"error rate {error_rate:.2%} > SLA {self.max_error_rate:.2%}")
        return problems


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    """One load test: which model, what traffic, how users arrive, what must hold."""

    name: str
    model: str = DEFAULT_MODEL
    description: str = ""
    think_time_ms: tuple[float, float] = (0.0, 0.0)
    traffic: TrafficSpec = TrafficSpec()
    shape: LoadShape = LoadShape()
    sla: SLA = SLA()
    spec: str = ""
    query_skew: float = 0.0

    def __post_init__(self) -> None:
        low, high = self.think_time_ms
        if low < 0 or high < low:
            raise ConfigError(f"think_time_ms must be [min, max] with 0 <= min <= max, got {list(self.think_time_ms)}")
        if self.query_skew < 0:
            raise ConfigError(f"query_skew must be >= 0, got {self.query_skew}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (enums as their values), recorded in reports."""
        return dict(_plain(dataclasses.asdict(self)))


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _build(cls: type[Any], table: dict[str, Any], where: str) -> Any:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; known: {sorted(known)}")
    try:
        return cls(**table)
    except TypeError as e:
        raise ConfigError(f"{where}: {e}") from None


def scenario_from_dict(data: dict[str, Any], where: str = "scenario") -> Scenario:
    """Build a scenario from parsed TOML (raises ``ConfigError`` naming the bad key)."""
    data = dict(data)
    traffic = dict(data.pop("traffic", {}))
    if "candidates" in traffic:
        traffic["candidates"] = _build(CandidateCounts, dict(traffic["candidates"]), f"{where}: [traffic.candidates]")
    if "think_time_ms" in data:
        think = data["think_time_ms"]
        if not isinstance(think, list) or len(think) != 2:
            raise ConfigError(f"{where}: think_time_ms must be [min, max], got {think!r}")
        data["think_time_ms"] = (float(think[0]), float(think[1]))
    data["traffic"] = _build(TrafficSpec, traffic, f"{where}: [traffic]")
    data["shape"] = _build(LoadShape, dict(data.pop("shape", {})), f"{where}: [shape]")
    data["sla"] = _build(SLA, dict(data.pop("sla", {})), f"{where}: [sla]")
    if "name" not in data:
        raise ConfigError(f"{where}: a scenario needs a name")
    if data.get("spec") and "model" not in data:
        raise ConfigError(f'{where}: a scenario with a spec names its served model (model = "<spec name>_cpu")')
    scenario: Scenario = _build(Scenario, data, where)
    return scenario


def load_scenario(path: Path) -> Scenario:
    """Read and check a scenario TOML file."""
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"scenario file {path} does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    spec = data.get("spec")
    if isinstance(spec, str) and spec and not Path(spec).is_absolute():
        data["spec"] = str(path.parent / spec)  # relative to the scenario file
    return scenario_from_dict(data, where=str(path))
