"""``tritonrec bench model-analyzer``: NVIDIA Triton Model Analyzer's search on ``ranker_cpu``, beside ours.

Model Analyzer (``triton-model-analyzer``, own virtualenv: ``bench/tools/install_model_analyzer.sh``) runs in
local launch mode: it starts the bundled ``tritonserver`` itself (the nvidia-pytriton wheel's binary, with the
backend folder and environment :class:`~tritonrec.serving.server.LocalTriton` uses), once per configuration, and
measures each with our perf_analyzer on the requests our benches send (``--input-data`` from
:mod:`tritonrec.measure.traffic`). Its automatic (brute) search walks instance counts and ``max_batch_size``
(doubling) with dynamic batching on, and per configuration the concurrencies (doubling) between the limits given;
its objective is throughput, its constraint the p99 target. The defaults give it the budget of
``tritonrec bench tune``: concurrencies 8-32, ``max_batch_size`` 16-64, 1 to serving-CPUs instances, perf_analyzer
windows of 3 s within 25%.

The configuration it starts from is the shipped ``ranker_cpu`` less its preferred batch sizes (unless
``keep_preferred``): Model Analyzer's search merges its changes into the base config, so the shipped
``preferred_batch_size`` 16/32/64 stays, every ``max_batch_size`` below 64 is then "illegal" (a preferred size above
the maximum), and the first illegal step ends its walk: with the shipped config it measures the default only.

Each step (find the binary, its version, prepare, profile, read the results) is recorded; when one fails the
report says which, with the command, the exit code and the tail of Model Analyzer's log, and :class:`ToolError`
carries the same message. Writes ``model_analyzer.json`` and ``model_analyzer.md``; Model Analyzer's own files
(config, full log, server log, results CSV, checkpoint, output model repository, its reports) stay in ``<out>/ma``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf import json_format

from tritonrec.backends.ranker_cpu_model import serving_cpus
from tritonrec.bench.tuning.model_analyzer_results import (
    INFERENCE_CSV,
    INFERENCE_FIELDS,
    MaMeasurement,
    best_measurement,
    latest_checkpoint,
    read_configs,
    read_measurements,
)
from tritonrec.bench.tuning.model_analyzer_view import plot, write_markdown
from tritonrec.client import ModelLimits
from tritonrec.client.features import FeatureLimits
from tritonrec.errors import ConfigError, ToolError, TritonRecError
from tritonrec.export.manifest import read_export_spec
from tritonrec.measure.loadgen import prepare_requests
from tritonrec.measure.perf_analyzer import PaInput, pa_input
from tritonrec.measure.points import PaSettings
from tritonrec.measure.spec_traffic import (
    SpecTraffic,
    evaluation_rows,
    replayable,
    spec_requests,
    spec_traffic_record,
)
from tritonrec.measure.traffic import TrafficSpec, load_user_pool
from tritonrec.records import Progress, Report, new_record, quiet, write_report
from tritonrec.repository import (
    CONFIG_FILE,
    VARIANTS,
    VariantName,
    VariantOverrides,
    build_repository,
    parse_config_text,
)
from tritonrec.repository.spec_variants import SpecVariant, SpecVariantKind, build_spec_repository
from tritonrec.serving.server import find_tritonserver, free_port, prepare_backends, server_environment
from tritonrec.spec.model_spec import ModelSpec

__all__ = [
    "KNOWN_INSTALLS",
    "MODEL_ANALYZER_ENV",
    "ModelAnalyzerSettings",
    "find_model_analyzer",
    "model_analyzer_config",
    "run_model_analyzer",
]

MODEL = VariantName.CPU
MODEL_ANALYZER_ENV = "MODEL_ANALYZER"
"""Environment variable naming the ``model-analyzer`` binary to run."""
KNOWN_INSTALLS = (Path(".tools/model_analyzer/venv/bin/model-analyzer"),)
"""Where ``bench/tools/install_model_analyzer.sh`` puts it (else ``$MODEL_ANALYZER``, else ``PATH``)."""
_LOG_TAIL_LINES = 40
_STOP_GRACE_S = 60.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelAnalyzerSettings:
    """Model Analyzer's search limits, target and measurement (defaults: the budget of ``bench tune``).

    Attributes:
        p99_ms: the ``perf_latency_p99`` constraint.
        min_concurrency: ``run_config_search_min_concurrency`` (Model Analyzer doubles from here).
        max_concurrency: ``run_config_search_max_concurrency``.
        min_instances: ``run_config_search_min_instance_count``.
        max_instances: ``run_config_search_max_instance_count``; None = the CPUs the server may use.
        min_batch_size: ``run_config_search_min_model_batch_size`` (doubled up to ``max_batch_size``).
        max_batch_size: ``run_config_search_max_model_batch_size``.
        requests: distinct requests written to perf_analyzer's input data.
        perf_analyzer: perf_analyzer's time window and stability (passed through ``perf_analyzer_flags``).
        keep_preferred: start from the shipped config as it is, preferred batch sizes included (see the module
            docstring: Model Analyzer then measures its default only).
        timeout_s: the whole ``model-analyzer profile`` run; past it the run is stopped and recorded as failed.
    """

    p99_ms: float = 100.0
    min_concurrency: int = 8
    max_concurrency: int = 32
    min_instances: int = 1
    max_instances: int | None = None
    min_batch_size: int = 16
    max_batch_size: int = 64
    requests: int = 512
    perf_analyzer: PaSettings = field(default_factory=lambda: PaSettings(measurement_ms=3000, stability_pct=25))
    keep_preferred: bool = False
    timeout_s: float = 3600.0

    def __post_init__(self) -> None:
        pairs = (
            ("concurrency", self.min_concurrency, self.max_concurrency),
            ("instances", self.min_instances, self.instance_limit()),
            ("batch size", self.min_batch_size, self.max_batch_size),
        )
        for name, low, high in pairs:
            if not 1 <= low <= high:
                raise ConfigError(f"Model Analyzer's {name} limits need 1 <= min <= max, got {low}..{high}")
        if self.p99_ms <= 0 or self.requests < 1 or self.timeout_s <= 0:
            raise ConfigError("Model Analyzer needs p99_ms > 0, requests >= 1 and timeout_s > 0")

    def instance_limit(self) -> int:
        """The most instances searched: given, or the CPUs the server may use."""
        return self.max_instances if self.max_instances is not None else serving_cpus()


@dataclass(frozen=True, slots=True)
class _Prepared:
    work: Path
    config_path: Path
    config: dict[str, Any]
    mean_candidates: float
    base_config: dict[str, Any]
    model: str
    traffic: dict[str, Any]


class _StepFailedError(Exception):
    """A step of the run failed; ``failure`` is what the report records."""

    def __init__(self, failure: dict[str, Any]) -> None:
        super().__init__(failure["reason"])
        self.failure = failure


def _failure(
    step: str, reason: str, *, command: list[str] | None = None, exit_code: int | None = None, log: Path | None = None
) -> _StepFailedError:
    tail = ""
    if log is not None and log.is_file():
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-_LOG_TAIL_LINES:])
    return _StepFailedError(
        {
            "step": step,
            "reason": reason,
            "command": " ".join(command) if command else None,
            "exit_code": exit_code,
            "log": str(log) if log is not None else None,
            "log_tail": tail,
        }
    )


def find_model_analyzer(path: Path | None = None) -> Path:
    """The ``model-analyzer`` to run: ``path``, else ``$MODEL_ANALYZER``, else a known install, else on ``PATH``.

    Raises:
        ToolError: none of them exists.
    """
    if path is None and os.environ.get(MODEL_ANALYZER_ENV):
        path = Path(os.environ[MODEL_ANALYZER_ENV])
    if path is not None:
        if not path.is_file():
            raise ToolError(f"no model-analyzer at {path}; install: bash bench/tools/install_model_analyzer.sh")
        return path.absolute()  # it runs in its own folder: a relative path would not be found there
    for known in KNOWN_INSTALLS:
        if known.is_file():
            return known.resolve()
    found = shutil.which("model-analyzer")
    if found is None:
        raise ToolError("model-analyzer not installed: bash bench/tools/install_model_analyzer.sh")
    return Path(found)


def model_analyzer_version(binary: Path) -> str:
    """``model-analyzer --version``.

    Raises:
        _StepFailedError: it does not answer.
    """
    cmd = [str(binary), "--version"]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise _failure("version", f"{type(e).__name__}: {e}", command=cmd) from e
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip()
        raise _failure(
            "version", f"exit code {done.returncode}: {output[-2000:]}", command=cmd, exit_code=done.returncode
        )
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "unknown"


def model_analyzer_config(
    *,
    model: str = str(MODEL),
    repository: Path,
    work: Path,
    server_binary: Path,
    backends: Path,
    environment: dict[str, str],
    perf_analyzer: Path,
    input_file: Path,
    batch_size: int = 1,
    settings: ModelAnalyzerSettings,
    ports: tuple[int, int, int],
) -> dict[str, Any]:
    """Model Analyzer's ``profile`` config (field names from its ``docs/config.md``) for ``model`` here.

    Local launch mode with the bundled server, our perf_analyzer on the given input data (``batch_size``: its ``-b``,
    the rows of one request of a spec in the rows layout), CPU-only instances, the p99 constraint, throughput as the
    objective, the search limits of ``settings``, every output inside ``work``; ``ports`` = (http, grpc, metrics) for
    the servers it starts.
    """
    http, grpc, metrics = ports
    pa = settings.perf_analyzer
    return {
        "model_repository": str(repository),
        "triton_launch_mode": "local",
        "triton_server_path": str(server_binary),
        "triton_server_flags": {"backend_directory": str(backends)},
        "triton_server_environment": environment,
        "triton_http_endpoint": f"localhost:{http}",
        "triton_grpc_endpoint": f"localhost:{grpc}",
        "triton_metrics_url": f"http://localhost:{metrics}/metrics",
        "triton_output_path": str(work / "tritonserver.log"),
        "perf_analyzer_path": str(perf_analyzer),
        "perf_output": True,
        "perf_output_path": str(work / "perf_analyzer.log"),
        "client_protocol": "grpc",
        "output_model_repository_path": str(work / "output_repository"),
        "override_output_model_repository": True,
        "export_path": str(work / "export"),
        "checkpoint_directory": str(work / "checkpoints"),
        "run_config_search_mode": "brute",
        "run_config_search_min_concurrency": settings.min_concurrency,
        "run_config_search_max_concurrency": settings.max_concurrency,
        "run_config_search_min_instance_count": settings.min_instances,
        "run_config_search_max_instance_count": settings.instance_limit(),
        "run_config_search_min_model_batch_size": settings.min_batch_size,
        "run_config_search_max_model_batch_size": settings.max_batch_size,
        "inference_output_fields": list(INFERENCE_FIELDS),
        "profile_models": {
            model: {
                "cpu_only": True,
                "parameters": {"batch_sizes": [batch_size]},
                "perf_analyzer_flags": {
                    "input-data": str(input_file),
                    # our perf_analyzer runs' window: time windows (Model Analyzer's default counts 50 requests)
                    "measurement-mode": "time_windows",
                    "measurement-interval": pa.measurement_ms,
                    "stability-percentage": pa.stability_pct,
                    "max-trials": 10,
                },
                "constraints": {"perf_latency_p99": {"max": settings.p99_ms}},
                "objectives": ["perf_throughput"],
            }
        },
    }


def _prepare(
    export_dir: Path,
    out_dir: Path,
    settings: ModelAnalyzerSettings,
    traffic: TrafficSpec | SpecTraffic,
    perf_analyzer: Path,
    spec: ModelSpec | None,
) -> _Prepared:
    work = out_dir / "ma"
    if work.exists():
        shutil.rmtree(work)  # a checkpoint left in it would make Model Analyzer resume an old run
    work.mkdir(parents=True)
    repository = work / "repository"
    if spec is None:
        served = _bundled_model(export_dir, repository, settings, traffic)
    else:
        if not isinstance(traffic, SpecTraffic):
            raise ConfigError("a spec's model is measured on requests drawn from its rows: give a SpecTraffic")
        served = _spec_model(export_dir, repository, settings, traffic, spec)
    install = find_tritonserver()
    backends = prepare_backends(install, work / "backends")
    input_file = work / "input_data.json"
    input_file.write_text(json.dumps(served.input.data))
    config = model_analyzer_config(
        model=served.name,
        repository=repository,
        work=work,
        server_binary=install.binary,
        backends=backends,
        environment=server_environment(install),
        perf_analyzer=perf_analyzer,
        input_file=input_file,
        batch_size=served.input.batch,
        settings=settings,
        ports=(free_port(), free_port(), free_port()),
    )
    config_path = work / "config.yaml"
    # JSON is YAML: Model Analyzer's yaml loader reads it as it is
    config_path.write_text("# Model Analyzer profile config written by `tritonrec bench model-analyzer`\n"
                           + json.dumps(config, indent=2) + "\n")  # fmt: skip
    base = {
        "name": served.name,
        **served.base,
        "preferred_batch_sizes_removed": not settings.keep_preferred,
        "config_pbtxt": (repository / served.name / "config.pbtxt").read_text(),
    }
    return _Prepared(work, config_path, config, served.input.candidates_per_request, base, served.name, served.traffic)


@dataclass(frozen=True, slots=True)
class _Served:
    """The model Model Analyzer searches: its name, the requests replayed, its starting configuration."""

    name: str
    input: PaInput
    base: dict[str, Any]
    traffic: dict[str, Any]


def _bundled_model(
    export_dir: Path, repository: Path, settings: ModelAnalyzerSettings, traffic: TrafficSpec | SpecTraffic
) -> _Served:
    """``ranker_cpu`` of the bundled export on Beauty users (or synthetic ones)."""
    if not isinstance(traffic, TrafficSpec):
        raise ConfigError("the bundled model is measured on Beauty users: give a TrafficSpec")
    spec = read_export_spec(export_dir / "model.onnx")
    variant = VARIANTS[MODEL]
    if not settings.keep_preferred:
        variant = VariantOverrides(preferred_batch_sizes=()).apply(variant)
    build_repository(repository, spec, [variant], export_dir=export_dir)
    limits = ModelLimits(max_history=spec.history_len, max_candidates=variant.max_candidates)
    pool = load_user_pool(traffic, history_len=limits.max_history)
    base = {
        "instances": variant.instances,
        "max_batch_size": variant.batching.max_batch_size,
        "preferred_batch_sizes": list(variant.batching.preferred_batch_sizes),
        "max_queue_delay_us": variant.batching.max_queue_delay_us,
        "layout": variant.layout,
    }
    requests = pa_input(prepare_requests(pool.sample(settings.requests), limits))
    users = {"source": traffic.source.value, "candidates": asdict(traffic.candidates)}
    return _Served(str(MODEL), requests, base, users)


def _spec_model(
    export_dir: Path, repository: Path, settings: ModelAnalyzerSettings, traffic: SpecTraffic, spec: ModelSpec
) -> _Served:
    """The spec's ``<name>_cpu`` as ``repo build --spec`` ships it, on requests drawn from its evaluation rows.

    Raises:
        ConfigError: the smallest ``max_batch_size`` searched is below the rows of one request.
    """
    from tritonrec.pipeline.spec_steps import spec_rows

    variant = SpecVariant(kind=SpecVariantKind.CPU)  # as `repo build --spec` ships it
    name = variant.name(spec)
    build_spec_repository(repository, spec, [variant], export_dir=export_dir, warmup=spec_rows(spec))
    config = parse_config_text((repository / name / CONFIG_FILE).read_text())  # what Model Analyzer starts from
    limits = FeatureLimits.from_config(json_format.MessageToDict(config, preserving_proto_field_name=True))
    rows = evaluation_rows(spec)
    used = replayable(rows, limits, traffic)
    requests = spec_requests(rows, limits, name, settings.requests, used)
    replayed = pa_input(requests)
    if settings.min_batch_size < replayed.batch:
        raise ConfigError(
            f"each request holds {replayed.batch} rows: search max_batch_size from at least that "
            f"(min_batch_size {settings.min_batch_size})"
        )
    batching = variant.batching_of(spec)
    base = {
        "instances": variant.instance_count,
        "max_batch_size": batching.max_batch_size,
        "preferred_batch_sizes": list(batching.preferred_batch_sizes),
        "max_queue_delay_us": batching.max_queue_delay_us,
        "layout": spec.layout.value,
    }
    return _Served(name, replayed, base, spec_traffic_record(spec, used, requests))


def _descendants(pid: int) -> list[int]:
    import psutil

    with contextlib.suppress(psutil.Error):
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    return []


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop Model Analyzer and what it started (tritonserver and perf_analyzer run in sessions of their own)."""
    children = _descendants(process.pid)
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGINT)  # its interrupt handler saves a checkpoint and stops its server
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=_STOP_GRACE_S)
    own_group = os.getpgrp()
    for pid in [process.pid, *children]:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            group = os.getpgid(pid)
            if group != own_group:
                os.killpg(group, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)


def _follow(log: Path, offset: int, progress: Progress) -> int:
    """Pass Model Analyzer's new progress lines to ``progress``; the new offset."""
    with log.open("rb") as f:
        f.seek(offset)
        data = f.read()
    end = data.rfind(b"\n") + 1
    for line in data[:end].decode(errors="replace").splitlines():
        text = line.removeprefix("[Model Analyzer]").strip()
        if text.startswith(("Profiling", "Creating model config", "Setting", "Profile complete")):
            progress(f"model-analyzer: {text}")
    return offset + end


def _profile(prepared: _Prepared, binary: Path, timeout_s: float, progress: Progress) -> dict[str, Any]:
    cmd = [str(binary), "profile", "-f", str(prepared.config_path)]
    log = prepared.work / "model_analyzer.log"
    started = time.monotonic()
    with log.open("wb") as out:
        try:
            process = subprocess.Popen(  # noqa: S603 - our own argument list
                cmd, cwd=prepared.work, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        except OSError as e:
            raise _failure("profile", f"cannot start model-analyzer: {e}", command=cmd) from e
        offset = 0
        while True:
            try:
                code = process.wait(timeout=2.0)
                break
            except subprocess.TimeoutExpired:
                offset = _follow(log, offset, progress)
                if time.monotonic() - started > timeout_s:
                    _stop(process)
                    raise _failure(
                        "profile",
                        f"model-analyzer profile did not finish within {timeout_s:g} s and was stopped",
                        command=cmd,
                        exit_code=process.returncode,
                        log=log,
                    ) from None
            except KeyboardInterrupt:
                _stop(process)
                raise
        _follow(log, offset, progress)
    if code != 0:
        said = [ln for ln in log.read_text(errors="replace").splitlines() if "encountered an error" in ln]
        reason = f"model-analyzer profile exited with code {code}" + (f": {said[-1].strip()}" if said else "")
        raise _failure("profile", reason, command=cmd, exit_code=code, log=log)
    return {"command": " ".join(cmd), "exit_code": code, "wall_s": round(time.monotonic() - started, 1)}


def _results(prepared: _Prepared, settings: ModelAnalyzerSettings) -> dict[str, Any]:
    work, config, log = prepared.work, prepared.config, prepared.work / "model_analyzer.log"
    try:
        rows = read_measurements(Path(config["export_path"]) / INFERENCE_CSV)
        configs = read_configs(latest_checkpoint(Path(config["checkpoint_directory"])), prepared.model)
    except TritonRecError as e:
        raise _failure("results", str(e), log=log) from e
    unknown = sorted({r.config for r in rows} - set(configs))
    if unknown:
        raise _failure("results", f"configurations {unknown} of the results table are not in the checkpoint", log=log)
    mean = prepared.mean_candidates

    def row(m: MaMeasurement) -> dict[str, Any]:
        return {**m.to_dict(mean), "config_label": configs[m.config].label()}

    best = best_measurement(rows, settings.p99_ms)
    default = best_measurement([r for r in rows if r.config.endswith("_config_default")], settings.p99_ms)
    out: dict[str, Any] = {
        "measured": [row(r) for r in rows],
        "configs": {name: asdict(c) for name, c in configs.items()},
        "best": None,
        "default": None if default is None else {**row(default), "config": asdict(configs[default.config])},
    }
    if best is not None:
        pbtxt = Path(config["output_model_repository_path"]) / best.config / "config.pbtxt"
        out["best"] = {
            **row(best),
            "config": asdict(configs[best.config]),
            "config_pbtxt": pbtxt.read_text() if pbtxt.is_file() else None,
            "config_pbtxt_path": str(pbtxt.relative_to(work.parent)) if pbtxt.is_file() else None,
        }
        if default is not None:
            out["gain_over_default"] = round(best.requests_per_second / max(default.requests_per_second, 1e-9), 3)
    return out


def run_model_analyzer(
    export_dir: Path,
    out_dir: Path,
    settings: ModelAnalyzerSettings,
    traffic: TrafficSpec | SpecTraffic,
    *,
    perf_analyzer: Path,
    command: str,
    binary: Path | None = None,
    spec: ModelSpec | None = None,
    progress: Progress = quiet,
) -> Report:
    """Run Model Analyzer's search on the CPU variant of the export; write model_analyzer.json/.md.

    Without ``spec``: ``ranker_cpu`` of the bundled export, on Beauty users (``traffic`` a ``TrafficSpec``). With
    ``spec``: its ``<name>_cpu`` of the ``export onnx --spec`` folder on requests drawn from its evaluation rows
    (``traffic`` a ``SpecTraffic``), as ``bench tune --spec`` measures it.

    Raises:
        ToolError: a step failed (the report, written first, says which, with the command, exit code and log).
    """
    # Model Analyzer runs in its work folder, so every path written into its config must be absolute
    out_dir, export_dir, perf_analyzer = out_dir.resolve(), export_dir.resolve(), perf_analyzer.resolve()
    record: dict[str, Any] = {
        **new_record(command, perf_analyzer=True),
        "status": "failed",
        "failure": None,
        "model": str(MODEL) if spec is None else SpecVariant(kind=SpecVariantKind.CPU).name(spec),
        "spec": None if spec is None else {"name": spec.name, "path": str(spec.path), "layout": spec.layout.value},
        "p99_target_ms": settings.p99_ms,
        "settings": {**asdict(settings), "max_instances": settings.instance_limit()},
        "traffic": None,
        "model_analyzer": {"binary": None, "version": None},
        "best": None,
        "default": None,
        "measured": [],
    }
    record["versions"]["model_analyzer"] = None
    try:
        try:
            found = find_model_analyzer(binary)
        except ToolError as e:
            raise _failure("find", str(e)) from e
        record["model_analyzer"]["binary"] = str(found)
        version = model_analyzer_version(found)
        record["model_analyzer"]["version"] = record["versions"]["model_analyzer"] = version
        progress(f"model-analyzer {version}: preparing the repository, backends and input data ...")
        try:
            prepared = _prepare(export_dir, out_dir, settings, traffic, perf_analyzer, spec)
        except (TritonRecError, OSError) as e:
            raise _failure("prepare", f"{type(e).__name__}: {e}") from e
        record["traffic"] = prepared.traffic
        record["mean_candidates"] = round(prepared.mean_candidates, 2)
        record["base_config"] = prepared.base_config
        record["model_analyzer"]["config_file"] = str(prepared.config_path.relative_to(out_dir))
        record["model_analyzer"]["config"] = prepared.config
        record["model_analyzer"]["log"] = str((prepared.work / "model_analyzer.log").relative_to(out_dir))
        progress(f"model-analyzer profile -f {prepared.config_path} (up to {settings.timeout_s:g} s) ...")
        record["model_analyzer"].update(_profile(prepared, found, settings.timeout_s, progress))
        record.update(_results(prepared, settings))
        record["status"] = "ok"
    except _StepFailedError as e:
        record["failure"] = e.failure
    plots = {"model_analyzer.png": lambda path: plot(record, path)} if record["measured"] else {}
    report = write_report(out_dir, "model_analyzer", record, write_markdown(record), plots)
    failure = record["failure"]
    if failure is not None:
        parts = [f"Model Analyzer failed at step {failure['step']!r}: {failure['reason']}"]
        if failure["command"]:
            parts.append(f"command: {failure['command']}")
        if failure["exit_code"] is not None:
            parts.append(f"exit code: {failure['exit_code']}")
        if failure["log_tail"]:
            tail = "\n".join(failure["log_tail"].splitlines()[-12:])
            parts.append(f"log ({failure['log']}), last lines:\n{tail}")
        parts.append(f"report: {report.json_path}")
        raise ToolError("\n".join(parts))
    return report
