"""``tritonrec bench batching --spec``: the batcher settings of a spec's ``<name>_cpu``, side by side on its requests.

The settings are :data:`~tritonrec.bench.serving.batching.BATCHER_SETTINGS`, applied to what ``repo build --spec``
ships for the spec (its layout's batching, 2 instances) instead of to ``ranker_cpu``: only the fields a setting
changes are changed, so ``dynamic`` is the shipped configuration and ``no_batching`` the same model with Triton's
default scheduler. A setting that gives the same configuration as an earlier one (the spec's batching has no
preferred sizes, so ``dynamic_no_preferred`` is ``dynamic``) is measured once and the report says so.

Every setting is a model of its own in one server (:class:`~tritonrec.measure.served_configs.ServedModels`), all
driven by the same requests drawn from the spec's evaluation rows (each query's real rows; the median query's row
count in the rows layout when perf_analyzer measures, as it sends one batch size), at one closed-loop concurrency,
``repeats`` rounds in a shuffled order with every setting loaded; each is compared with ``no_batching`` as a
median (min-max) ratio, "no measurable difference" where the ranges overlap. Writes ``batching.json`` and
``batching.md``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tritonrec.bench.serving.batching import BASELINE, BATCHER_SETTINGS, ratio_text
from tritonrec.client import RankingClient
from tritonrec.errors import ConfigError
from tritonrec.measure.loadgen import PointSettings
from tritonrec.measure.points import PaSettings, Target
from tritonrec.measure.served_configs import ServedModels, SpecContender
from tritonrec.measure.spec_traffic import FeatureRequest, SpecTraffic, served_spec_requests, spec_traffic_record
from tritonrec.pipeline.spec_steps import spec_rows
from tritonrec.records import Progress, Report, markdown_header, new_record, quiet, write_report
from tritonrec.repository import Batching
from tritonrec.repository.spec_variants import SpecVariant, SpecVariantKind, default_batching
from tritonrec.serving.endpoint import empty_endpoint
from tritonrec.spec.model_spec import Layout, ModelSpec
from tritonrec.spread import Spread

__all__ = ["SpecBatchingSettings", "run_spec_batching_bench", "spec_batching_variants", "write_spec_markdown"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SpecBatchingSettings:
    """The settings compared, the closed-loop concurrency, distinct requests, rounds, each tool's window."""

    settings: tuple[str, ...] = tuple(BATCHER_SETTINGS)
    concurrency: int = 16
    requests: int = 512
    repeats: int = 3
    point: PointSettings = field(default_factory=PointSettings)
    perf_analyzer: PaSettings = field(default_factory=PaSettings)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.settings) - set(BATCHER_SETTINGS))
        if unknown or BASELINE not in self.settings:
            raise ConfigError(f"settings must be of {list(BATCHER_SETTINGS)} and include {BASELINE} (the baseline); "
                              f"unknown: {unknown}")  # fmt: skip
        if self.concurrency < 1 or self.requests < 1 or self.repeats < 1:
            raise ConfigError("concurrency, requests and repeats must be >= 1")


def _changed(batching: Batching) -> dict[str, Any]:
    """The fields ``batching`` sets away from :class:`Batching`'s defaults: what a setting changes."""
    default = Batching()
    return {f.name: getattr(batching, f.name) for f in dataclasses.fields(Batching)
            if getattr(batching, f.name) != getattr(default, f.name)}  # fmt: skip


def spec_batching_variants(spec: ModelSpec, names: tuple[str, ...]) -> dict[str, SpecVariant]:
    """Each setting of ``names`` applied to the spec's shipped ``<name>_cpu`` (its layout's batching, 2 instances)."""
    shipped = SpecVariant(kind=SpecVariantKind.CPU)
    base = default_batching(spec)
    out = {}
    for name in names:
        changes = BATCHER_SETTINGS[name][1]
        batching = dataclasses.replace(base, **_changed(changes["batching"])) if "batching" in changes else base
        instances = changes.get("instances", shipped.instance_count)
        out[name] = dataclasses.replace(shipped, batching=batching, instances=instances)
    return out


def describe(variant: SpecVariant, spec: ModelSpec) -> str:
    """What a setting serves, in the spec's units: rows (rows layout) or queries per execution."""
    b = variant.batching_of(spec)
    unit = "queries" if spec.layout is Layout.QUERY_CANDIDATES else "rows"
    instances = f"{variant.instance_count} instance{'s' if variant.instance_count > 1 else ''}"
    if not b.dynamic:
        return f"default scheduler: one request per execution, {instances}"
    preferred = "/".join(str(p) for p in b.preferred_batch_sizes) or "none"
    timeout = f", queue timeout {b.queue_timeout_us / 1e6:g} s" if b.queue_timeout_us else ""
    return (f"dynamic batching: up to {b.max_batch_size:,} {unit}, preferred {preferred}, "
            f"{b.max_queue_delay_us / 1e3:g} ms delay{timeout}, {instances}")  # fmt: skip


def run_spec_batching_bench(
    export_dir: Path,
    out_dir: Path,
    spec: ModelSpec,
    settings: SpecBatchingSettings,
    traffic: SpecTraffic,
    *,
    command: str,
    perf_analyzer: Path | None = None,
    progress: Progress = quiet,
) -> Report:
    """Serve every setting of the spec's model, measure them side by side; write ``batching.json`` / ``.md``."""
    variants = spec_batching_variants(spec, settings.settings)
    distinct: dict[SpecVariant, str] = {}
    same_as = {name: distinct.setdefault(v, name) for name, v in variants.items()}  # the first setting of each variant
    warmup = spec_rows(spec)
    with empty_endpoint() as server:
        target = Target.at(server.grpc_url, metrics_url=server.metrics_url, perf_analyzer=perf_analyzer)
        with RankingClient(server.grpc_url) as client:
            server_version = client.server_version()
        models = ServedModels(server, target, [], settings.perf_analyzer, concurrencies=(settings.concurrency,),
                              p99_ms=float("inf"), point=settings.point)  # fmt: skip
        for variant, name in distinct.items():
            models.add(name, SpecContender(variant, export_dir, spec, name, warmup))
        traffic_record: dict[str, Any] = {}

        def draw(model: str) -> list[FeatureRequest]:
            one_size = perf_analyzer is not None
            drawn, used = served_spec_requests(server.grpc_url, model, spec, settings.requests, traffic,
                                               one_batch_size=one_size)  # fmt: skip
            traffic_record.update(spec_traffic_record(spec, used, drawn))
            return drawn

        models.requests_from(BASELINE, draw)
        measured = models.confirm({n: n for n in distinct.values()}, settings.repeats, progress, baseline=BASELINE)
    results = {
        name: {
            "description": describe(variant, spec),
            "same_as": None if same_as[name] == name else same_as[name],
            "config": asdict(variant.batching_of(spec)) | {"instances": variant.instance_count},
            **measured[same_as[name]],
        }  # fmt: skip
        for name, variant in variants.items()
    }
    record = {
        **new_record(command, tritonserver=server_version, perf_analyzer=perf_analyzer is not None),
        "model": f"{spec.name}_cpu",
        "spec": {"name": spec.name, "path": str(spec.path), "layout": spec.layout.value},
        "server_cpu_measured": target.cpu.server is not None,
        "settings": asdict(settings),
        "traffic": traffic_record,
        "results": results,
    }
    return write_report(out_dir, "batching", record, write_spec_markdown(record))


def _spread(value: dict[str, Any] | None, fmt: str) -> str:
    return Spread.from_dict(value).text(fmt) if value else "-"


def write_spec_markdown(record: dict[str, Any]) -> str:
    """Render the spec's batching comparison (every figure from ``record``)."""
    s, t = record["settings"], record["traffic"]
    title = f"Dynamic batching: {record['model']}, closed loop at concurrency {s['concurrency']}"
    lines = markdown_header(title, record)
    tool = next((row["tool"] for row in record["results"].values()), "?")
    sizes = t.get("rows_per_request") or "each query's own"
    lines += [
        f"Spec `{record['spec']['name']}` ({record['spec']['layout']} layout); {s['requests']} requests from "
        f"{t.get('source', '?')}, query skew {t.get('query_skew', 0):g}, rows per request: {sizes}. Measured by "
        f"{tool}, every setting loaded side by side, {s['repeats']} rounds in a shuffled order; figures are "
        f'median (min-max); ratios against `{BASELINE}`, "no measurable difference" where the ranges overlap.',
        "",
        "| setting | what it serves | candidates/s | p99 ms | vs no batching | errors |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in record["results"].items():
        if row["same_as"]:
            lines.append(f"| {name} | {row['description']} | same configuration as `{row['same_as']}` | | | |")
            continue
        lines.append(
            f"| {name} | {row['description']} | {_spread(row['candidates_per_second'], ',.0f')} "
            f"| {_spread(row['p99_ms'], '.1f')} | {ratio_text(row.get(f'vs_{BASELINE}'))} | {len(row['errors'])} |"
        )
    failed = [(name, row["errors"]) for name, row in record["results"].items() if row["errors"] and not row["same_as"]]
    if failed:
        lines += ["", "Failed runs (the tool's own words):", ""]
        lines += [f"- {name}: {len(errors)} run(s): `{_reason(errors[0])}`" for name, errors in failed]
    return "\n".join([*lines, ""])


def _reason(error: str) -> str:
    """The line of a tool's output that says what failed (perf_analyzer's ``Failed ...``), else its last line."""
    lines = [line.strip() for line in error.splitlines() if line.strip()]
    return next((line for line in lines if line.startswith("Failed")), lines[-1] if lines else "?")[:200]
