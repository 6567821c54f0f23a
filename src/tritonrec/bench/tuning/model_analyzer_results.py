"""What NVIDIA Triton Model Analyzer 1.58 wrote, read back; its best configuration as a ``bench tune`` contender.

``model-analyzer profile`` writes, at the paths its config names (``tritonrec bench model-analyzer`` puts them all
under ``<out>/ma/``):

- ``<export_path>/results/metrics-model-inference.csv``: one row per measurement (configuration x concurrency),
  configurations in Model Analyzer's own ranking (best first), each configuration's rows that pass the constraints
  before those that do not. Columns are named by ``inference_output_fields``: ``Model Config Path`` (the
  configuration's name, e.g. ``ranker_cpu_config_3``), ``Instance Group`` (``2:CPU``), ``Max Batch Size``,
  ``Concurrency``, ``Satisfies Constraints`` (``Yes``/``No``), ``Throughput (infer/sec)``, ``p99 Latency (ms)``.
  The dynamic batcher's settings are not in it.
- ``<checkpoint_directory>/<n>.ckpt`` (JSON): its whole state. ``ResultManager.results._results[model][config]``
  is ``[run config, {perf_analyzer command: measurement}]``; the run config's
  ``_model_run_configs[0]._model_config_variant.model_config`` is the configuration Triton served, as protobuf
  JSON of ``ModelConfig`` (camelCase names, 64-bit numbers as strings), read back through Triton's schema.
- ``<output_model_repository_path>/<config>/config.pbtxt``: the model folder it served for each configuration.

Throughput is per request (``infer/sec``, one user each); candidates/s multiply it by the mean candidate count
of the requests perf_analyzer sent (``--input-data``), as our perf_analyzer runs do.
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from tritonclient.grpc import model_config_pb2 as mc

from tritonrec.backends.ranker_cpu_model import serving_cpus
from tritonrec.bench.tuning.tune import TuneConfig
from tritonrec.errors import ConfigError, DataError
from tritonrec.repository import VARIANTS, VariantName

__all__ = [
    "INFERENCE_CSV",
    "INFERENCE_FIELDS",
    "MaConfig",
    "MaMeasurement",
    "best_measurement",
    "config_from_dict",
    "config_from_proto",
    "latest_checkpoint",
    "read_configs",
    "read_measurements",
    "report_contender",
    "to_tune_config",
]

INFERENCE_CSV = Path("results") / "metrics-model-inference.csv"
"""Where, under ``export_path``, Model Analyzer writes its table of measurements."""

INFERENCE_FIELDS = (
    "model_name",
    "batch_size",
    "concurrency",
    "model_config_path",
    "instance_group",
    "max_batch_size",
    "satisfies_constraints",
    "perf_throughput",
    "perf_latency_p99",
    "perf_server_queue",
    "perf_server_compute_infer",
)
"""The ``inference_output_fields`` we ask for (Model Analyzer's defaults plus Triton's queue and compute times)."""

_COLUMNS = {
    "config": "Model Config Path",
    "concurrency": "Concurrency",
    "batch_size": "Batch",
    "instance_group": "Instance Group",
    "max_batch_size": "Max Batch Size",
    "satisfies": "Satisfies Constraints",
    "throughput": "Throughput (infer/sec)",
    "p99": "p99 Latency (ms)",
}
_OPTIONAL_COLUMNS = {
    "server_queue_ms": "Server Queue time (ms)",
    "server_compute_infer_ms": "Server Compute Infer time (ms)",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class MaConfig:
    """One configuration Model Analyzer served (its ``config.pbtxt``, in the fields ``bench tune`` varies).

    Attributes:
        name: Model Analyzer's name for it (``ranker_cpu_config_default``, ``ranker_cpu_config_0``, ...).
        instances: model instances (``instance_group[*].count``, summed).
        max_batch_size: users per execution.
        dynamic_batching: whether the config has ``dynamic_batching``.
        preferred_batch_sizes: ``dynamic_batching.preferred_batch_size``.
        max_queue_delay_us: ``dynamic_batching.max_queue_delay_microseconds`` (0 when unset).
        intra_op_threads: the ``intra_op_threads`` parameter (0 = the serving CPUs shared out between instances).
        layout: the ``layout`` parameter (None when the config has none).
    """

    name: str
    instances: int
    max_batch_size: int
    dynamic_batching: bool
    preferred_batch_sizes: tuple[int, ...]
    max_queue_delay_us: int
    intra_op_threads: int
    layout: str | None

    def label(self) -> str:
        """A short description for tables."""
        if not self.dynamic_batching:
            batcher = "no dynamic batching"
        else:
            pref = "/".join(str(b) for b in self.preferred_batch_sizes) or "none"
            batcher = f"pref {pref} delay {self.max_queue_delay_us / 1000:g}ms"
        return f"b{self.max_batch_size} {batcher} {self.instances} inst"


@dataclass(frozen=True, slots=True, kw_only=True)
class MaMeasurement:
    """One row of Model Analyzer's inference table: a configuration at a concurrency.

    Attributes:
        config: the configuration's name.
        concurrency: perf_analyzer's concurrency.
        batch_size: perf_analyzer's ``-b`` (users per request; rows per request of a spec in the rows layout).
        instance_group: as Model Analyzer shows it (``2:CPU``).
        max_batch_size: the configuration's.
        satisfies_constraints: Model Analyzer's verdict against the p99 constraint.
        requests_per_second: ``Throughput (infer/sec)`` / ``batch_size``: perf_analyzer counts each of a request's
            ``-b`` rows as an inference.
        p99_ms: ``p99 Latency (ms)``.
        server_queue_ms: Triton's average queue time (None when the column is absent).
        server_compute_infer_ms: Triton's average compute time (None when the column is absent).
    """

    config: str
    concurrency: int
    batch_size: int
    instance_group: str
    max_batch_size: int
    satisfies_constraints: bool
    requests_per_second: float
    p99_ms: float
    server_queue_ms: float | None = None
    server_compute_infer_ms: float | None = None

    def to_dict(self, mean_candidates: float) -> dict[str, Any]:
        """The row as JSON, with candidates/s for requests of ``mean_candidates`` candidates."""
        return {**asdict(self), "candidates_per_second": round(self.requests_per_second * mean_candidates, 1)}


def _number(row: dict[str, str], column: str, path: Path) -> float:
    try:
        return float(row[column])
    except (KeyError, TypeError, ValueError) as e:
        raise DataError(f"{path}: column {column!r} is missing or not a number in row {row}") from e


def read_measurements(path: Path) -> list[MaMeasurement]:
    """Every row of Model Analyzer's ``metrics-model-inference.csv``, in its order.

    Raises:
        DataError: the file is missing, has none of the rows or columns we read, or a value is garbled.
    """
    try:
        with path.open(newline="") as f:
            rows = [r for r in csv.DictReader(f) if any((v or "").strip() for v in r.values())]
    except OSError as e:
        raise DataError(f"Model Analyzer's results table {path} cannot be read: {e}") from e
    if not rows:
        raise DataError(f"Model Analyzer's results table {path} has no measurement")
    missing = [c for c in _COLUMNS.values() if c not in rows[0]]
    if missing:
        raise DataError(f"{path} lacks the column(s) {missing} (inference_output_fields); it has {list(rows[0])}")
    out = []
    for r in rows:
        optional = {key: _number(r, col, path) if r.get(col) else None for key, col in _OPTIONAL_COLUMNS.items()}
        batch = max(1, int(_number(r, _COLUMNS["batch_size"], path)))
        out.append(
            MaMeasurement(
                config=r[_COLUMNS["config"]].strip(),
                concurrency=int(_number(r, _COLUMNS["concurrency"], path)),
                batch_size=batch,
                instance_group=r[_COLUMNS["instance_group"]].strip(),
                max_batch_size=int(_number(r, _COLUMNS["max_batch_size"], path)),
                satisfies_constraints=r[_COLUMNS["satisfies"]].strip().lower() == "yes",
                requests_per_second=_number(r, _COLUMNS["throughput"], path) / batch,
                p99_ms=_number(r, _COLUMNS["p99"], path),
                **optional,
            )
        )
    return out


def latest_checkpoint(directory: Path) -> Path:
    """Model Analyzer's newest checkpoint (``<n>.ckpt`` with the highest ``n``) in ``directory``.

    Raises:
        DataError: there is none.
    """
    found = [p for p in directory.glob("*.ckpt") if p.stem.isdigit()]
    if not found:
        raise DataError(f"no Model Analyzer checkpoint (<n>.ckpt) in {directory}")
    return max(found, key=lambda p: int(p.stem))


def config_from_proto(name: str, config: mc.ModelConfig) -> MaConfig:
    """The fields ``bench tune`` varies, from a Triton ``ModelConfig``."""
    params = {key: value.string_value for key, value in config.parameters.items()}
    batching = config.dynamic_batching if config.HasField("dynamic_batching") else None
    return MaConfig(
        name=name,
        instances=sum(g.count or 1 for g in config.instance_group) or 1,
        max_batch_size=config.max_batch_size,
        dynamic_batching=batching is not None,
        preferred_batch_sizes=tuple(batching.preferred_batch_size) if batching is not None else (),
        max_queue_delay_us=batching.max_queue_delay_microseconds if batching is not None else 0,
        intra_op_threads=int(params.get("intra_op_threads") or 0),
        layout=params.get("layout") or None,
    )


def config_from_dict(name: str, config: dict[str, Any]) -> MaConfig:
    """A configuration from Model Analyzer's checkpoint form of ``config.pbtxt`` (protobuf JSON, camelCase)."""
    return config_from_proto(name, json_format.ParseDict(config, mc.ModelConfig(), ignore_unknown_fields=True))


def read_configs(checkpoint: Path, model: str) -> dict[str, MaConfig]:
    """Every configuration of ``model`` Model Analyzer measured, by name, from its checkpoint.

    Raises:
        DataError: the checkpoint cannot be read or holds no result for ``model``.
    """
    try:
        state = json.loads(checkpoint.read_text())
        per_config = state["ResultManager.results"]["_results"][model]
        out = {}
        for name, (run_config, _measurements) in per_config.items():
            variant = run_config["_model_run_configs"][0]["_model_config_variant"]
            out[name] = config_from_dict(name, variant["model_config"])
    except (OSError, json.JSONDecodeError, json_format.ParseError, KeyError, IndexError, TypeError, ValueError) as e:
        raise DataError(f"Model Analyzer's checkpoint {checkpoint} has no readable result for {model}: {e!r}") from e
    return out


def best_measurement(rows: list[MaMeasurement], p99_ms: float) -> MaMeasurement | None:
    """Model Analyzer's best row within the target (None: no row passes).

    The first configuration in its ranking with a passing row, at its highest throughput among those rows. A row
    passes when Model Analyzer says it satisfies the constraints and its p99 is within ``p99_ms``.
    """
    passing = [r for r in rows if r.satisfies_constraints and r.p99_ms <= p99_ms]
    if not passing:
        return None
    first = passing[0].config
    return max((r for r in passing if r.config == first), key=lambda r: r.requests_per_second)


def to_tune_config(config: MaConfig, *, cpus: int | None = None) -> TuneConfig:
    """``config`` as a ``bench tune`` point: its batch size, instances and batcher; threads and layout as shipped.

    Threads per instance: the config's ``intra_op_threads`` when set, else the serving CPUs (``cpus``, default
    :func:`~tritonrec.backends.ranker_cpu_model.serving_cpus`) shared out between the instances, as the model
    does at load. The layout is the config's ``layout`` parameter, else the shipped one.

    Raises:
        ConfigError: the config has no dynamic batching (every ``bench tune`` configuration batches).
    """
    if not config.dynamic_batching:
        raise ConfigError(f"{config.name} runs without dynamic batching, which a `bench tune` contender cannot express")
    shipped = VARIANTS[VariantName.CPU]
    threads = config.intra_op_threads or max(1, (cpus or serving_cpus()) // config.instances)
    preferred = tuple(round(b / config.max_batch_size, 4) for b in config.preferred_batch_sizes)
    return TuneConfig(
        max_batch_size=config.max_batch_size,
        preferred=preferred,
        queue_delay_us=config.max_queue_delay_us,
        instances=config.instances,
        threads=threads,
        layout=config.layout or shipped.layout,
    )


def report_contender(path: Path, model: str = "ranker_cpu", layout: str | None = None) -> TuneConfig:
    """Model Analyzer's best configuration in a ``bench model-analyzer`` report (its folder or its JSON).

    Args:
        path: the report's folder or its JSON.
        model: the served model the caller tunes (``ranker_cpu``, or a spec's ``<name>_cpu``): the report must be of it.
        layout: the layout to give it (a spec's own; default: the config's ``layout`` parameter, else the shipped).

    Raises:
        ConfigError: the file is not such a report, it measured another model, or it has no best configuration
            within its target.
    """
    file = path / "model_analyzer.json" if path.is_dir() else path
    try:
        record = json.loads(file.read_text())
        best = record["best"]
        status = record["status"]
    except (OSError, KeyError, TypeError, json.JSONDecodeError) as e:
        raise ConfigError(f"{file} is not a `tritonrec bench model-analyzer` report: {e!r}") from e
    measured = record.get("model", "ranker_cpu")  # reports before specs searched ranker_cpu only
    if measured != model:
        raise ConfigError(f"{file} is Model Analyzer's search on {measured}, not on {model}")
    if best is None:
        reason = record.get("failure", {}) or {}
        detail = f"it failed at step {reason.get('step')!r}" if status == "failed" else "no configuration met its p99"
        raise ConfigError(f"{file} has no Model Analyzer best configuration ({detail})")
    fields = dict(best["config"])
    fields["preferred_batch_sizes"] = tuple(fields["preferred_batch_sizes"])
    if layout is not None:
        fields["layout"] = layout
    return to_tune_config(MaConfig(**fields))
