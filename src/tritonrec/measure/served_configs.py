"""Several served configurations in one running Triton, measured by perf_analyzer on the same requests.

``tritonrec bench tune`` (configurations of ``ranker_cpu``) and ``tritonrec select`` (runtimes, precisions and
models) ask the same questions of each contender: what does it serve at each concurrency, which is its best
point within the p99 target, and, measured side by side in shuffled rounds, how do the contenders compare with
their spread. Each contender is a model of its own (explicit model control), built into the server's repository
from its :class:`~tritonrec.repository.Variant` (a spec's :class:`~tritonrec.repository.spec_variants.SpecVariant`) and
export folder, loaded only while it is measured.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tritonrec.client.channel import open_stub
from tritonrec.client.options import ClientOptions
from tritonrec.data.feature_spec import FeatureSpec
from tritonrec.measure.loadgen import LoadMode, PointSettings, PreparedRequest
from tritonrec.measure.points import PaSettings, Target, run_ours, run_theirs
from tritonrec.measure.spec_traffic import FeatureRequest
from tritonrec.records import Progress
from tritonrec.repository import Variant, build_repository
from tritonrec.repository.spec_variants import SpecVariant, build_spec_repository
from tritonrec.serving.server import LocalTriton
from tritonrec.spec.model_spec import ModelSpec
from tritonrec.spec.rows import SpecRows
from tritonrec.spread import Spread, compare, shuffled_trials, spread

__all__ = ["Contender", "ServedModels", "SpecContender", "best_point"]


@dataclass(frozen=True, slots=True)
class Contender:
    """What to serve: the variant (its ``name`` is replaced), the export it reads, the export's feature spec."""

    variant: Variant
    export_dir: Path
    spec: FeatureSpec
    label: str

    def write(self, repository: Path, name: str) -> None:
        """Build it into ``repository`` as the model ``name``."""
        build_repository(
            repository, self.spec, [dataclasses.replace(self.variant, name=name)], export_dir=self.export_dir
        )


@dataclass(frozen=True, slots=True)
class SpecContender:
    """A spec's variant to serve: the variant (its ``served_name`` is replaced), its export, the warm-up rows."""

    variant: SpecVariant
    export_dir: Path
    spec: ModelSpec
    label: str
    warmup: SpecRows | None = None

    def write(self, repository: Path, name: str) -> None:
        """Build it into ``repository`` as the model ``name``."""
        variant = dataclasses.replace(self.variant, served_name=name)
        build_spec_repository(repository, self.spec, [variant], export_dir=self.export_dir, warmup=self.warmup)


def best_point(points: list[dict[str, Any]], p99_ms: float) -> dict[str, Any] | None:
    """The point with the most candidates/s among those whose p99 meets ``p99_ms`` (None: none does)."""
    ok = [p for p in points if "error" not in p and p["latency_ms"]["p99"] <= p99_ms]
    return max(ok, key=lambda p: p["candidates_per_second"]) if ok else None


class ServedModels:
    """Loads contenders into ``server`` and measures them; each sweep is measured once and remembered.

    Args:
        server: the running Triton (explicit model control) whose repository receives the contenders.
        target: the endpoint and perf_analyzer.
        requests: the requests every contender gets.
        settings: perf_analyzer's window and stability rule.
        concurrencies: closed-loop concurrencies of a sweep.
        p99_ms: a sweep's best point is the fastest whose p99 meets this.
        point: where ``target`` has no perf_analyzer, our closed-loop generator measures instead, with these
            windows (the record's ``tool`` says which measured).
    """

    def __init__(
        self,
        server: LocalTriton,
        target: Target,
        requests: list[PreparedRequest] | list[FeatureRequest],
        settings: PaSettings,
        *,
        concurrencies: tuple[int, ...],
        p99_ms: float,
        point: PointSettings | None = None,
    ):
        self.server, self.target, self.requests, self.settings = server, target, requests, settings
        self.concurrencies, self.p99_ms = concurrencies, p99_ms
        self.point = point or PointSettings()
        self.tool = "perf_analyzer" if target.perf_analyzer is not None else "tritonrec"
        self.measured: dict[Hashable, dict[str, Any]] = {}
        self._names: dict[Hashable, str] = {}
        self._contenders: dict[Hashable, Contender | SpecContender] = {}

    def add(self, key: Hashable, contender: Contender | SpecContender) -> None:
        """Know ``contender`` as ``key`` (built and loaded when first measured)."""
        self._contenders.setdefault(key, contender)

    def requests_from(self, key: Hashable, draw: Callable[[str], list[FeatureRequest]]) -> None:
        """Draw the requests every contender gets from ``key``'s served model (loaded for the draw).

        A spec's requests are checked against the served config's inputs and limits, so they are drawn once a
        contender is loaded; every contender of one spec takes the same inputs.
        """
        name = self.load(key)
        try:
            self.requests = draw(name)
        finally:
            self.unload(key)

    def name(self, key: Hashable) -> str:
        """The model name ``key`` is served under."""
        return self._names.setdefault(key, f"contender_{len(self._names)}")

    def load(self, key: Hashable) -> str:
        """Build ``key``'s model into the repository and load it; its name."""
        name = self.name(key)
        self._contenders[key].write(self.server.repository, name)
        self._control("load", name)
        return name

    def unload(self, key: Hashable) -> None:
        """Unload ``key``'s model (its threads stop competing for the CPUs)."""
        self._control("unload", self.name(key))

    def _control(self, action: str, name: str) -> None:
        from tritonclient.grpc import service_pb2

        channel, stub = open_stub(self.server.grpc_url, ClientOptions())
        try:
            if action == "load":
                stub.RepositoryModelLoad(service_pb2.RepositoryModelLoadRequest(model_name=name), timeout=300)
            else:
                stub.RepositoryModelUnload(service_pb2.RepositoryModelUnloadRequest(model_name=name), timeout=60)
        finally:
            channel.close()

    def run(self, key: Hashable, concurrency: int) -> dict[str, Any]:
        """One closed-loop run of the loaded ``key`` at ``concurrency`` (perf_analyzer, else our generator)."""
        if self.target.perf_analyzer is None:
            point = run_ours(self.target, self.name(key), self.requests, LoadMode.CLOSED, concurrency, self.point)
            reason = point["unstable_reason"]  # windows that disagree are kept (and say so); failures are not
            return point if reason is None or reason.startswith("windows") else {**point, "error": reason}
        return run_theirs(self.target, self.name(key), self.requests, LoadMode.CLOSED, concurrency, self.settings)

    def sweep(self, key: Hashable, progress: Progress) -> dict[str, Any]:
        """``key``'s points over the concurrencies (measured once) and its best point within the p99 target."""
        if key in self.measured:
            return self.measured[key]
        label = self._contenders[key].label
        self.load(key)
        try:
            points = []
            for c in self.concurrencies:
                progress(f"{label}: concurrency {c} ...")
                points.append({"concurrency": c, **self.run(key, c)})
        finally:
            self.unload(key)
        best = best_point(points, self.p99_ms)
        fields = ("concurrency", "candidates_per_second", "requests_per_second", "latency_ms")
        result = {
            "label": label,
            "tool": self.tool,
            "points": points,
            "best": None if best is None else {k: best[k] for k in fields},
        }
        self.measured[key] = result
        return result

    def confirm(
        self, contenders: Mapping[str, Hashable], repeats: int, progress: Progress, *, baseline: str
    ) -> dict[str, Any]:
        """Each contender at its best concurrency, ``repeats`` rounds in a shuffled order, loaded side by side.

        Returns per contender name: its concurrency, candidates/s and p99 as spreads, errors, and ``vs_<baseline>``
        (the ratio of candidates/s to ``baseline``'s with its range and verdict).
        """
        levels = {}
        for name, key in contenders.items():
            best = self.sweep(key, progress)["best"]
            levels[name] = best["concurrency"] if best else min(self.concurrencies)
        keys = list(dict.fromkeys(contenders.values()))
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in contenders}
        for key in keys:
            self.load(key)
        try:
            for name, repeat in shuffled_trials(list(contenders), repeats, seed=13):
                progress(f"side by side: {name} (round {repeat + 1}) at concurrency {levels[name]} ...")
                runs[name].append(self.run(contenders[name], levels[name]))
        finally:
            for key in keys:
                self.unload(key)
        out: dict[str, Any] = {}
        for name, key in contenders.items():
            ok = [r for r in runs[name] if "error" not in r]
            cps = spread([r["candidates_per_second"] for r in ok]) if ok else None
            p99 = spread([r["latency_ms"]["p99"] for r in ok]) if ok else None
            out[name] = {
                "label": self._contenders[key].label,
                "tool": self.tool,
                "concurrency": levels[name],
                "candidates_per_second": cps.to_dict() if cps else None,
                "p99_ms": p99.to_dict() if p99 else None,
                "errors": [r["error"] for r in runs[name] if "error" in r],
            }
        base = out[baseline]["candidates_per_second"]
        for name, row in out.items():
            if row["candidates_per_second"] and base:
                row[f"vs_{baseline}"] = compare(
                    Spread.from_dict(row["candidates_per_second"]), Spread.from_dict(base), a_name=name, b_name=baseline
                ).to_dict()
        return out
