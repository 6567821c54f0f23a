"""``tritonrec bench tune``: the serving configuration that ranks the most candidates/s within a p99 target.

A coordinate search over the dynamic batcher and the instances of ``ranker_cpu`` (or of a model spec's
``<name>_cpu``, on requests drawn from its evaluation rows; its layout is the spec's): starting from the shipped
configuration, each dimension in turn (``max_batch_size``, preferred batch sizes, ``max_queue_delay``, instances x
threads per instance, the graph layout) is set to each of its values while the others keep their best so far;
the search keeps a value only when it serves measurably more (more than the previous best's spread allows) and
passes over the dimensions twice. Each configuration is a model of its own loaded into one running server
(explicit model control) and measured by perf_analyzer on the same realistic requests at several concurrencies;
its score is the highest candidates/s among the concurrencies whose p99 meets the target.

A search measures each configuration once, so its ranking can be luck. The confirmation that follows loads the
contenders side by side (the shipped configuration, the chosen one, each of the two in the other graph layout,
and any configuration handed in, such as Model Analyzer's best) and measures each at its best concurrency in
``confirm_repeats`` rounds in a shuffled order: the ratios to the shipped configuration come with their min-max
spread, and a ratio whose ranges overlap is reported as no measurable difference.

Writes ``tune.json`` (every configuration measured, the ranked table, the confirmation, the chosen overrides),
``tune.md`` and ``tune.png``; ``tritonrec repo build --tuned tune.json`` builds the repository with the chosen
configuration.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tritonrec.backends.ranker_cpu_model import serving_cpus
from tritonrec.client import RankingClient
from tritonrec.errors import ConfigError
from tritonrec.export.manifest import read_export_spec
from tritonrec.measure.loadgen import prepare_requests
from tritonrec.measure.points import PaSettings, Target
from tritonrec.measure.served_configs import Contender, ServedModels, SpecContender
from tritonrec.measure.spec_traffic import FeatureRequest, SpecTraffic, served_spec_requests, spec_traffic_record
from tritonrec.measure.traffic import TrafficSpec, load_user_pool
from tritonrec.records import Progress, Report, markdown_header, new_record, quiet, write_report
from tritonrec.repository import VARIANTS, Batching, VariantName, VariantOverrides
from tritonrec.repository.spec_variants import SpecVariant, SpecVariantKind, default_batching
from tritonrec.serving.endpoint import empty_endpoint, local_endpoint
from tritonrec.spec.model_spec import Layout, ModelSpec
from tritonrec.spread import Spread

__all__ = [
    "TuneConfig",
    "TuneSettings",
    "overrides_from_report",
    "run_tune",
    "spec_batch_sizes",
    "spec_variant",
    "write_markdown",
]

BASE = VariantName.CPU


@dataclass(frozen=True, slots=True, kw_only=True)
class TuneSettings:
    """The search space, the target and the measurement.

    Attributes:
        p99_ms: latency target; a concurrency whose p99 exceeds it does not count.
        concurrencies: closed-loop concurrencies tried for each configuration.
        max_batch_sizes: users per execution (1 = no batching; on CPU small batches can win: batching.md).
        preferred: preferred batch sizes as fractions of ``max_batch_size`` (``()`` = none).
        queue_delays_us: the batcher's delay.
        instance_threads: ``(instances, ONNX Runtime threads each)``; None = what the cores allow
            (``instances x threads`` = the CPUs the server may use, cgroup quota included).
        layouts: graph layouts (``ragged`` and/or ``padded``).
        passes: rounds over the dimensions.
        confirm_repeats: rounds of the side-by-side confirmation (0 skips it).
        perf_analyzer: perf_analyzer's window and stability rule.
    """

    p99_ms: float = 100.0
    concurrencies: tuple[int, ...] = (8, 16, 32)
    max_batch_sizes: tuple[int, ...] = (1, 4, 8, 16, 32, 64)
    preferred: tuple[tuple[float, ...], ...] = ((), (0.5, 1.0), (0.25, 0.5, 1.0))
    queue_delays_us: tuple[int, ...] = (0, 2_000, 5_000)
    instance_threads: tuple[tuple[int, int], ...] | None = None
    layouts: tuple[str, ...] = ("ragged", "padded")
    passes: int = 2
    confirm_repeats: int = 3
    perf_analyzer: PaSettings = field(default_factory=lambda: PaSettings(measurement_ms=3000, stability_pct=25))

    def __post_init__(self) -> None:
        if self.p99_ms <= 0 or not self.concurrencies or self.passes < 1 or self.confirm_repeats < 0:
            raise ConfigError("tune needs p99_ms > 0, concurrencies, passes >= 1 and confirm_repeats >= 0")

    def shapes(self) -> tuple[tuple[int, int], ...]:
        """Instances x threads to try: given, or every split of the CPUs the server may use."""
        if self.instance_threads:
            return self.instance_threads
        cpus = serving_cpus()
        return tuple((i, max(1, cpus // i)) for i in range(1, cpus + 1) if cpus % i == 0)


@dataclass(frozen=True, slots=True)
class TuneConfig:
    """One point of the search: the overrides of ``ranker_cpu`` it stands for."""

    max_batch_size: int
    preferred: tuple[float, ...]
    queue_delay_us: int
    instances: int
    threads: int
    layout: str

    def overrides(self) -> VariantOverrides:
        """The ``repo build`` overrides that produce this configuration."""
        sizes = tuple(sorted({max(1, round(self.max_batch_size * f)) for f in self.preferred}))
        return VariantOverrides(
            max_batch_size=self.max_batch_size,
            preferred_batch_sizes=sizes,
            max_queue_delay_us=self.queue_delay_us,
            instances=self.instances,
            cpu_threads=self.threads,
            layout=self.layout,
        )

    def label(self) -> str:
        """A short name for tables and model names."""
        pref = "/".join(f"{f:g}" for f in self.preferred) or "none"
        return (
            f"{self.layout} b{self.max_batch_size} pref {pref} delay {self.queue_delay_us / 1000:g}ms "
            f"{self.instances}x{self.threads}"
        )


def _shipped(settings: TuneSettings) -> TuneConfig:
    base = VARIANTS[BASE]
    b = base.batching
    preferred = tuple(round(p / b.max_batch_size, 4) for p in b.preferred_batch_sizes)
    threads = base.cpu_threads or max(1, serving_cpus() // base.instances)
    return TuneConfig(b.max_batch_size, preferred, b.max_queue_delay_us, base.instances, threads, base.layout)


def _neighbours(config: TuneConfig, dimension: str, settings: TuneSettings) -> list[TuneConfig]:
    values: dict[str, list[Any]] = {
        "layout": list(settings.layouts),
        "max_batch_size": list(settings.max_batch_sizes),
        "preferred": list(settings.preferred),
        "queue_delay_us": list(settings.queue_delays_us),
        "instances_threads": list(settings.shapes()),
    }
    out = []
    for value in values[dimension]:
        if dimension == "instances_threads":
            out.append(dataclasses.replace(config, instances=value[0], threads=value[1]))
        else:
            out.append(dataclasses.replace(config, **{dimension: value}))
    return out


def _score(result: dict[str, Any]) -> float:
    return float(result["best"]["candidates_per_second"]) if result["best"] else 0.0


def spec_batch_sizes(spec: ModelSpec) -> tuple[int, ...]:
    """``max_batch_size`` values worth trying for a spec: rows (rows layout) or queries (query + candidates)."""
    return (1, 4, 16, 64) if spec.layout is Layout.QUERY_CANDIDATES else (64, 256, 1024, 4096)


def _spec_shipped(spec: ModelSpec) -> TuneConfig:
    """What ``repo build --spec`` ships for ``spec``'s ``<name>_cpu``: its layout's batching, its instances."""
    b = default_batching(spec)
    instances = SpecVariant(kind=SpecVariantKind.CPU).instance_count
    threads = max(1, serving_cpus() // instances)
    return TuneConfig(b.max_batch_size, (), b.max_queue_delay_us, instances, threads, spec.layout.value)


def spec_variant(config: TuneConfig) -> SpecVariant:
    """The spec's ``<name>_cpu`` variant of ``config`` (its batcher, instances and threads)."""
    o = config.overrides()
    batching = Batching(
        max_batch_size=config.max_batch_size,
        preferred_batch_sizes=o.preferred_batch_sizes or (),
        max_queue_delay_us=config.queue_delay_us,
    )
    return SpecVariant(
        kind=SpecVariantKind.CPU, instances=config.instances, cpu_threads=config.threads, batching=batching
    )


def run_tune(
    export_dir: Path,
    out_dir: Path,
    settings: TuneSettings,
    traffic: TrafficSpec | SpecTraffic,
    *,
    perf_analyzer: Path,
    command: str,
    requests: int = 512,
    extra: dict[str, TuneConfig] | None = None,
    spec: ModelSpec | None = None,
    progress: Progress = quiet,
) -> Report:
    """Search the CPU variant's configurations on the export served locally; write tune.json/.md/.png.

    Without ``spec``: ``ranker_cpu`` of the bundled export, on Beauty users (``traffic`` a ``TrafficSpec``). With
    ``spec``: its ``<name>_cpu`` of the ``export onnx --spec`` folder, on requests drawn from its evaluation rows
    (``traffic`` a ``SpecTraffic``); the layout is the spec's, so that dimension is not searched.
    ``extra`` adds named configurations (Model Analyzer's best, say) to the side-by-side confirmation.
    """
    dimensions = ("layout", "max_batch_size", "preferred", "queue_delay_us", "instances_threads")
    if spec is not None:
        settings = dataclasses.replace(settings, layouts=())  # the spec's layout is its model's: not a choice
    endpoint = local_endpoint(export_dir) if spec is None else empty_endpoint()
    with endpoint as server:
        target = Target.at(server.grpc_url, metrics_url=server.metrics_url, perf_analyzer=perf_analyzer)
        with RankingClient(server.grpc_url) as client:
            server_version = client.server_version()
        search = ServedModels(
            server,
            target,
            [],
            settings.perf_analyzer,
            concurrencies=settings.concurrencies,
            p99_ms=settings.p99_ms,
        )
        contender, shipped, traffic_record = _setup(search, export_dir, settings, traffic, spec, requests)

        def measure(config: TuneConfig) -> dict[str, Any]:
            search.add(config, contender(config))
            return search.sweep(config, progress)

        best = shipped
        measure(shipped)
        for _ in range(settings.passes):
            for dimension in dimensions:
                for config in _neighbours(best, dimension, settings):
                    if _score(measure(config)) > _score(search.measured[best]) * 1.03:  # beyond run-to-run noise
                        best = config
        contenders = {"shipped": shipped, "tuned": best}
        for name, config in (("shipped", shipped), ("tuned", best)):  # each layout's gain at both configurations
            other_layout = next((lay for lay in settings.layouts if lay != config.layout), None)
            if other_layout is not None:
                contenders[f"{name}, {other_layout}"] = dataclasses.replace(config, layout=other_layout)
        contenders.update(extra or {})
        for config in contenders.values():
            measure(config)
        confirmation = (
            search.confirm(contenders, settings.confirm_repeats, progress, baseline="shipped")
            if settings.confirm_repeats
            else {}
        )
    configs = [c for c in search.measured if isinstance(c, TuneConfig)]  # every key is one
    ranked = [
        {"config": asdict(c), **search.measured[c]}
        for c in sorted(configs, key=lambda c: _score(search.measured[c]), reverse=True)
    ]
    chosen = {"config": asdict(best), **search.measured[best]}
    record = {
        **new_record(command, tritonserver=server_version, perf_analyzer=True),
        "model": "ranker_cpu" if spec is None else f"{spec.name}_cpu",
        "spec": None if spec is None else {"name": spec.name, "path": str(spec.path), "layout": spec.layout.value},
        "settings": asdict(settings),
        "traffic": traffic_record,
        "p99_target_ms": settings.p99_ms,
        "shipped": {"config": asdict(shipped), **search.measured[shipped]},
        "chosen": chosen,
        "chosen_overrides": asdict(best.overrides()),
        "gain_over_shipped": round(_score(chosen) / max(_score(search.measured[shipped]), 1.0), 3),
        "confirmation": confirmation,
        "ranked": ranked,
    }
    plots = {"tune.png": lambda path: _plot(record, path)}
    return write_report(out_dir, "tune", record, write_markdown(record), plots)


Contenders = Callable[[TuneConfig], Contender | SpecContender]


def _setup(
    search: ServedModels,
    export_dir: Path,
    settings: TuneSettings,
    traffic: TrafficSpec | SpecTraffic,
    spec: ModelSpec | None,
    requests: int,
) -> tuple[Contenders, TuneConfig, dict[str, Any]]:
    """How a configuration is served, the shipped configuration, and the requests drawn (what the record says)."""
    server = search.server
    if spec is None:
        if not isinstance(traffic, TrafficSpec):
            raise ConfigError("the bundled model is tuned on Beauty users: give a TrafficSpec")
        with RankingClient(server.grpc_url) as client:
            limits = client.limits()
        pool = load_user_pool(traffic, history_len=limits.max_history)
        search.requests = prepare_requests(pool.sample(requests), limits)
        users = {"source": traffic.source.value, "candidates": asdict(traffic.candidates)}
        return _bundled_contender(export_dir), _shipped(settings), users
    if not isinstance(traffic, SpecTraffic):
        raise ConfigError("a spec's model is tuned on requests drawn from its rows: give a SpecTraffic")
    contender, shipped = _spec_contender(export_dir, spec), _spec_shipped(spec)
    search.add(shipped, contender(shipped))
    record: dict[str, Any] = {}

    def draw(name: str) -> list[FeatureRequest]:
        drawn, used = served_spec_requests(server.grpc_url, name, spec, requests, traffic, one_batch_size=True)
        record.update(spec_traffic_record(spec, used, drawn))
        return drawn

    search.requests_from(shipped, draw)
    return contender, shipped, record


def _bundled_contender(export_dir: Path) -> Callable[[TuneConfig], Contender]:
    features = read_export_spec(export_dir / "model.onnx")

    def contender(config: TuneConfig) -> Contender:
        return Contender(config.overrides().apply(VARIANTS[BASE]), export_dir, features, config.label())

    return contender


def _spec_contender(export_dir: Path, spec: ModelSpec) -> Callable[[TuneConfig], SpecContender]:
    from tritonrec.pipeline.spec_steps import spec_rows

    warmup = spec_rows(spec)

    def contender(config: TuneConfig) -> SpecContender:
        return SpecContender(spec_variant(config), export_dir, spec, config.label(), warmup)

    return contender


def overrides_from_report(path: Path) -> VariantOverrides:
    """The chosen configuration of a ``tune.json`` as ``repo build`` overrides.

    Raises:
        ConfigError: the file is not a tune report.
    """
    try:
        chosen = json.loads(path.read_text())["chosen_overrides"]
    except (OSError, KeyError, json.JSONDecodeError) as e:
        raise ConfigError(f"{path} is not a `tritonrec bench tune` report: {e}") from e
    if chosen.get("preferred_batch_sizes") is not None:
        chosen["preferred_batch_sizes"] = tuple(chosen["preferred_batch_sizes"])
    return VariantOverrides(**chosen)


def spec_tuned_variant(path: Path, spec: ModelSpec) -> SpecVariant:
    """The ``<name>_cpu`` variant a ``bench tune --spec`` report on ``spec`` chose.

    Raises:
        ConfigError: the file is not a tune report, or it tuned another model.
    """
    try:
        record = json.loads(path.read_text())
        tuned, config = record.get("spec"), dict(record["chosen"]["config"])
    except (OSError, KeyError, TypeError, json.JSONDecodeError) as e:
        raise ConfigError(f"{path} is not a `tritonrec bench tune` report: {e}") from e
    if not tuned or tuned.get("name") != spec.name:
        raise ConfigError(f"{path} tuned {tuned['name'] if tuned else 'the bundled ranker_cpu'}, not {spec.name}")
    config["preferred"] = tuple(config["preferred"])
    return spec_variant(TuneConfig(**config))


def write_markdown(record: dict[str, Any]) -> str:
    """Render the ranked configurations (every figure from ``record``)."""
    lines = [
        *markdown_header(
            f"Tuning {record.get('model', 'ranker_cpu')}: most candidates/s within p99 {record['p99_target_ms']:g} ms",
            record,
        ),
        f"Shipped: {record['shipped']['label']}; chosen: **{record['chosen']['label']}**, "
        f"{record['gain_over_shipped']:.2f}x the shipped configuration's candidates/s (perf_analyzer, best "
        "concurrency within the target). A change was kept only when it served more than 3% more.",
        "",
        *_confirmation_lines(record),
        "Every configuration of the search (one measurement each):",
        "",
        "| rank | configuration | best concurrency | cand/s | req/s | p99 ms |",
        "|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(record["ranked"], start=1):
        b = r["best"]
        if b is None:
            lines.append(f"| {i} | {r['label']} | none within the target | - | - | - |")
            continue
        lines.append(
            f"| {i} | {r['label']} | {b['concurrency']} | {b['candidates_per_second']:,.0f} "
            f"| {b['requests_per_second']:,.0f} | {b['latency_ms']['p99']} |"
        )
    lines.append("")
    return "\n".join(lines)


def _confirmation_lines(record: dict[str, Any]) -> list[str]:
    rows = record.get("confirmation") or {}
    if not rows:
        return []
    n = next((r["candidates_per_second"]["n"] for r in rows.values() if r["candidates_per_second"]), 0)
    lines = [
        f"Side by side, each at its best concurrency, {n} rounds in a shuffled order (median (min-max)):",
        "",
        "| contender | configuration | concurrency | cand/s | p99 ms | vs shipped |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        if r["candidates_per_second"] is None:
            lines.append(f"| {name} | {r['label']} | {r['concurrency']} | failed: {r['errors'][:1]} | - | - |")
            continue
        cps, p99 = Spread.from_dict(r["candidates_per_second"]), Spread.from_dict(r["p99_ms"])
        vs = r.get("vs_shipped", {})
        ratio = f"{vs['ratio']:.2f}x ({vs['ratio_min']:.2f}-{vs['ratio_max']:.2f})" if vs else "-"
        if vs and not vs["measurable"]:
            ratio += ", no measurable difference"
        lines.append(f"| {name} | {r['label']} | {r['concurrency']} | {cps.text()} | {p99.text('.1f')} | {ratio} |")
    return [*lines, ""]


def _plot(record: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=120)
    for r in record["ranked"]:
        pts = [p for p in r["points"] if "error" not in p]
        ax.plot([p["candidates_per_second"] for p in pts], [p["latency_ms"]["p99"] for p in pts], "o-", alpha=0.4)
    chosen = [p for p in record["chosen"]["points"] if "error" not in p]
    ax.plot(
        [p["candidates_per_second"] for p in chosen],
        [p["latency_ms"]["p99"] for p in chosen],
        "o-",
        color="black",
        label=f"chosen: {record['chosen']['label']}",
    )
    ax.axhline(record["p99_target_ms"], color="red", linestyle="--", label="p99 target")
    ax.set_xlabel("candidates/s (perf_analyzer)")
    ax.set_ylabel("p99 ms")
    ax.set_title("Every configuration measured (one line per configuration, points = concurrencies)", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
