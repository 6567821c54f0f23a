"""``tritonrec bench efficiency --spec``: what share of a team's model's own speed survives serving, like for like.

The same measure as the bundled model's (:mod:`tritonrec.bench.serving.efficiency`): candidates/s served through
Triton over gRPC / candidates/s of the same model run in process the way the server runs it. For a spec:

- **served**: its ``<name>_cpu`` as ``repo build --spec`` ships it (or as a ``bench tune --spec`` report chose),
  on requests drawn from its evaluation rows (each query's real rows, skewed as ``--query-skew`` says; in the rows
  layout the median query's row count when perf_analyzer measures, as it sends one batch size);
- **in process**: the sessions ``model.py`` opens (``rows_cpu_model.open_session``: the config's runtime, file and
  threads, one per instance, side by side in threads), on batches drawn with the sizes Triton's dynamic batcher
  formed in the served run (rows, or queries in the query + candidates layout), each filled with the same requests
  in order and packed by ``model.py``'s own ``pack_rows`` (dynamic dims padded to the batch's longest).

Candidates are rows (candidate rows of a query in the query + candidates layout). Served and in-process runs
alternate ``repeats`` times at the concurrency with the most served candidates/s; each pair gives one efficiency.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from tritonrec.backends.rows_cpu_model import open_session, pack_rows, rules_from_config
from tritonrec.bench.serving.efficiency import (
    EfficiencySettings,
    ServingShape,
    drawn_batch_sizes,
    measure_pairs,
    sessions_side_by_side,
    write_markdown,
)
from tritonrec.client import RankingClient
from tritonrec.errors import ConfigError
from tritonrec.measure.points import Target
from tritonrec.measure.served_configs import ServedModels, SpecContender
from tritonrec.measure.spec_traffic import FeatureRequest, SpecTraffic, served_spec_requests, spec_traffic_record
from tritonrec.pipeline.spec_steps import spec_rows
from tritonrec.records import Progress, Report, new_record, quiet, write_report
from tritonrec.repository.spec_variants import SpecVariant, SpecVariantKind
from tritonrec.serving.endpoint import empty_endpoint
from tritonrec.spec.model_spec import Layout, ModelSpec

__all__ = ["replayed_spec_batches", "run_spec_efficiency_bench", "spec_in_process"]

SERVED = "served"


def replayed_spec_batches(
    requests: list[FeatureRequest], batch_sizes: dict[str, int], config: dict[str, Any], seed: int
) -> list[tuple[dict[str, Any], int]]:
    """Batches of the sizes Triton formed, filled with ``requests`` in order, packed as ``model.py`` packs them.

    A batch takes whole requests until it holds at least its size along the first axis (rows, or queries); with
    requests of one size (what perf_analyzer replays) that is exactly the size Triton formed.
    """
    rules = rules_from_config(config)
    batches, at = [], 0
    for size in drawn_batch_sizes(batch_sizes, seed):
        group: list[FeatureRequest] = []
        filled = 0
        while filled < size:
            group.append(requests[at % len(requests)])
            filled += group[-1].batch
            at += 1
        batches.append((pack_rows([r.features for r in group], rules), sum(r.n_candidates for r in group)))
    return batches


def spec_in_process(
    model_dir: Path,
    config: dict[str, Any],
    requests: list[FeatureRequest],
    batch_sizes: dict[str, int],
    duration_s: float,
    *,
    seed: int = 0,
) -> dict[str, Any]:
    """Real candidates/s of the served config's sessions, one per instance, side by side on the replayed batches."""
    if not batch_sizes:
        raise ConfigError("no batch sizes to replay: the served run executed nothing")
    shape = ServingShape.of(config, 0)
    params = {k: v.get("string_value", "") for k, v in config.get("parameters", {}).items()}
    output = params.get("output_name") or config["output"][0]["name"]
    batches = replayed_spec_batches(requests, batch_sizes, config, seed)
    sessions = [open_session(model_dir / shape.onnx_file, shape.threads, shape.runtime) for _ in range(shape.instances)]
    mean = round(float(np.mean([len(next(iter(feeds.values()))) for feeds, _ in batches])), 2)  # rows or queries
    return {**sessions_side_by_side(sessions, output, batches, duration_s), "mean_batch_size": mean}


def run_spec_efficiency_bench(
    export_dir: Path,
    out_dir: Path,
    spec: ModelSpec,
    settings: EfficiencySettings,
    traffic: SpecTraffic,
    *,
    command: str,
    variant: SpecVariant | None = None,
    perf_analyzer: Path | None = None,
    progress: Progress = quiet,
) -> Report:
    """Serve the spec's ``<name>_cpu`` here and measure its serving efficiency; write efficiency.json / .md.

    Args:
        export_dir: the ``export onnx --spec`` folder (the served model and the in-process sessions read it).
        out_dir: results folder.
        spec: the model spec.
        settings: concurrencies, repeats, in-process time, windows (``traffics`` do not apply: the spec's rows are
            the traffic).
        traffic: how requests are drawn from the evaluation rows.
        command: the command line, recorded.
        variant: the served configuration (default: what ``repo build --spec`` ships).
        perf_analyzer: the perf_analyzer binary (None: our generator only).
        progress: where to say what is being measured.
    """
    served = variant or SpecVariant(kind=SpecVariantKind.CPU)
    traffic_record: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(empty_endpoint())
        target = Target.at(server.grpc_url, metrics_url=server.metrics_url, perf_analyzer=perf_analyzer)
        models = ServedModels(server, target, [], settings.perf_analyzer, concurrencies=settings.concurrencies,
                              p99_ms=float("inf"), point=settings.point)  # fmt: skip
        models.add(SERVED, SpecContender(served, export_dir, spec, served.name(spec), spec_rows(spec)))
        name = models.load(SERVED)
        client = stack.enter_context(RankingClient(target.url, model=name))
        config = client.model_config()
        requests, used = served_spec_requests(target.url, name, spec, settings.requests, traffic,
                                              one_batch_size=perf_analyzer is not None)  # fmt: skip
        traffic_record = spec_traffic_record(spec, used, requests)
        server_version = client.server_version()

        def local(batches: dict[str, int], repeat: int) -> dict[str, Any]:
            return spec_in_process(export_dir, config, requests, batches, settings.in_process_s, seed=repeat)

        progress(f"{served.name(spec)} on the spec's requests:")
        label = f"spec {spec.name}, each query's rows" + (f", skew {traffic.skew:g}" if traffic.skew else "")
        result = measure_pairs(target, client, requests, label, settings, local, progress)
    report = {
        **new_record(command, tritonserver=server_version, perf_analyzer=perf_analyzer is not None),
        "model": served.name(spec),
        "served_as": name,
        "spec": {"name": spec.name, "path": str(spec.path), "layout": spec.layout.value},
        "batch_unit": "queries" if spec.layout is Layout.QUERY_CANDIDATES else "rows",
        "url": "local (bundled tritonserver)",
        "server_cpu_measured": target.cpu.server is not None,
        "settings": {**asdict(settings), "traffics": []},
        "serving_shape": asdict(ServingShape.of(config, 0)),
        "traffic": traffic_record,
        "results": [result],
    }
    return write_report(out_dir, "efficiency", report, write_markdown(report))
