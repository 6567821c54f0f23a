"""What a Model Navigator run did, read from the worker's record (``navigator.json``): :class:`NavigatorResult`.

The worker (:mod:`tritonrec.select.navigator_worker`) writes the record from Navigator's own status objects (the
same data as Navigator's ``status.yaml``); :func:`parse_record` turns it into typed, frozen results. Statuses are
Navigator's ``CommandStatus`` values: ``OK``, ``FAIL``, ``SKIPPED``. Imports nothing heavy.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tritonrec.errors import ConfigError

__all__ = [
    "LOG_FILE",
    "RECORD_FILE",
    "SCHEMA_VERSION",
    "FormatOutcome",
    "NavigatorFailure",
    "NavigatorResult",
    "Pick",
    "ProfilePoint",
    "RunnerOutcome",
    "load_result",
    "parse_record",
    "read_record",
]

RECORD_FILE = "navigator.json"
LOG_FILE = "navigator-worker.log"
SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class NavigatorFailure:
    """Where a Navigator run stopped.

    Attributes:
        step: ``install`` (no venv), ``start`` (the worker could not be started), ``timeout``, or the worker's
            step: ``import``, ``load``, ``dataloader``, ``optimize``, ``collect``, ``select``, ``save``; ``worker``
            when it died without saying where.
        command: the command that ran.
        exit_code: its exit status (None: it did not start, or was killed at the time limit).
        error: the error in one line (``TypeName: message``).
        log_tail: the last lines of its log.
    """

    step: str
    command: tuple[str, ...]
    exit_code: int | None
    error: str
    log_tail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ProfilePoint:
    """One batch size as Navigator's profiler measured it (its ``ProfilingResults``).

    Attributes:
        batch_size: rows per inference.
        throughput_per_second: rows per second.
        avg_latency_ms: mean latency of one inference.
        p50_latency_ms: median.
        p90_latency_ms: 90th percentile.
        p95_latency_ms: 95th percentile.
        p99_latency_ms: 99th percentile.
    """

    batch_size: int | None
    throughput_per_second: float
    avg_latency_ms: float
    p50_latency_ms: float
    p90_latency_ms: float
    p95_latency_ms: float
    p99_latency_ms: float


@dataclass(frozen=True, slots=True, kw_only=True)
class RunnerOutcome:
    """One runner on one model format: Navigator's command statuses and figures.

    Attributes:
        runner: Navigator's runner name (``OnnxCPU``, ``TorchScriptCPU``, ...).
        commands: ``{command: status}``: ``Correctness``, ``Performance``, ``VerifyModel`` -> ``OK``/``FAIL``/
            ``SKIPPED``.
        tolerance_atol: Navigator's measured absolute difference from its source runner (None if not measured).
        tolerance_rtol: its relative difference.
        profile: per batch size.
    """

    runner: str
    commands: Mapping[str, str]
    tolerance_atol: float | None
    tolerance_rtol: float | None
    profile: tuple[ProfilePoint, ...]

    @property
    def profiled(self) -> bool:
        """Correctness and profiling both passed (what Navigator's strategies choose among)."""
        return self.commands.get("Correctness") == "OK" and self.commands.get("Performance") == "OK"

    @property
    def peak(self) -> ProfilePoint | None:
        """The batch size with the highest throughput."""
        return max(self.profile, key=lambda p: p.throughput_per_second, default=None)


@dataclass(frozen=True, slots=True, kw_only=True)
class FormatOutcome:
    """One model format Navigator tried.

    Attributes:
        key: Navigator's model key (``onnx``, ``torchscript-trace``, ...).
        format: Navigator's format (``onnx``, ``torchscript``, ``torch-exportedprogram``, ``torch``).
        path: the artifact, relative to Navigator's workspace.
        exists: the artifact was written.
        commands: ``{export/conversion command: status}``.
        runners: what each runner did with it.
        errors: the distinct exception lines of its log, where something failed.
        runner_config: Navigator's runner settings for it (``autocast``, ``autocast_dtype``, ...).
    """

    key: str
    format: str
    path: str
    exists: bool
    commands: Mapping[str, str]
    runners: tuple[RunnerOutcome, ...]
    errors: tuple[str, ...] = ()
    runner_config: Mapping[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str:
        """``FAIL`` if any command failed, ``OK`` if a runner was profiled, else ``SKIPPED``."""
        every = [*self.commands.values(), *(s for r in self.runners for s in r.commands.values())]
        if "FAIL" in every:
            return "FAIL"
        return "OK" if any(r.profiled for r in self.runners) else "SKIPPED"


@dataclass(frozen=True, slots=True, kw_only=True)
class Pick:
    """What one of Navigator's strategies chose.

    Attributes:
        strategy: ``default`` (``package.get_best_runtime()``'s chain: MaxThroughputAndMinLatency, then
            MinLatency), ``MaxThroughputAndMinLatencyStrategy``, ``MaxThroughputStrategy`` or ``MinLatencyStrategy``.
        include_source: the source PyTorch model could be chosen (False: serialized formats only).
        model_key: Navigator's model key; None when nothing qualified.
        format: its format.
        runner: its runner.
        throughput_per_second: rows per second at the chosen batch size, as Navigator reports.
        latency_ms: Navigator's p50 latency there.
    """

    strategy: str
    include_source: bool
    model_key: str | None
    format: str | None
    runner: str | None
    throughput_per_second: float | None
    latency_ms: float | None

    @property
    def found(self) -> bool:
        """The strategy found a qualifying model."""
        return self.model_key is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class NavigatorResult:
    """One Navigator run on one checkpoint.

    Attributes:
        ran: every step ran (a pick may still be missing when no format profiled).
        failure: where it stopped, or None.
        navigator_version: Model Navigator's version.
        versions: the worker's python and package versions.
        cpu_sync_shim: the shim was loaded (see :class:`NavigatorSettings`).
        profile: the settings the worker ran with.
        formats: every format Navigator tried.
        picks: every strategy, with and without the source model.
        picked: the default strategy over serialized formats (what a Triton repository could hold), or None.
        picked_artifact: that artifact, copied out of Navigator's workspace.
        picked_runner_config: Navigator's runner settings for it (autocast!).
        out_dir: the run's folder.
        record_path: the worker's ``navigator.json``.
        log_path: the worker's log (stdout and stderr, Navigator's included).
        workspace: Navigator's workspace.
        status_file: Navigator's own ``status.yaml``.
        optimize_s: seconds ``nav.torch.optimize`` took.
    """

    ran: bool
    failure: NavigatorFailure | None
    navigator_version: str | None = None
    versions: Mapping[str, str | None] = field(default_factory=dict)
    cpu_sync_shim: bool = False
    profile: Mapping[str, Any] = field(default_factory=dict)
    formats: tuple[FormatOutcome, ...] = ()
    picks: tuple[Pick, ...] = ()
    picked: Pick | None = None
    picked_artifact: Path | None = None
    picked_runner_config: Mapping[str, Any] = field(default_factory=dict)
    out_dir: Path | None = None
    record_path: Path | None = None
    log_path: Path | None = None
    workspace: Path | None = None
    status_file: Path | None = None
    optimize_s: float | None = None

    def pick(self, strategy: str = "default", *, include_source: bool = False) -> Pick | None:
        """The pick of ``strategy`` (None if that strategy was not run)."""
        return next((p for p in self.picks if p.strategy == strategy and p.include_source == include_source), None)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (paths as strings)."""
        return json.loads(json.dumps(asdict(self), default=str))  # type: ignore[no-any-return]


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


def _profile_point(row: Mapping[str, Any]) -> ProfilePoint:
    batch = row.get("batch_size")
    return ProfilePoint(
        batch_size=None if batch is None else int(batch),
        throughput_per_second=float(row["throughput_per_second"]),
        avg_latency_ms=float(row["avg_latency_ms"]),
        p50_latency_ms=float(row["p50_latency_ms"]),
        p90_latency_ms=float(row["p90_latency_ms"]),
        p95_latency_ms=float(row["p95_latency_ms"]),
        p99_latency_ms=float(row["p99_latency_ms"]),
    )


def _runner(row: Mapping[str, Any]) -> RunnerOutcome:
    tolerance = row.get("tolerance") or {}
    return RunnerOutcome(
        runner=str(row["runner"]),
        commands={str(k): str(v) for k, v in (row.get("commands") or {}).items()},
        tolerance_atol=_float_or_none(tolerance.get("atol")),
        tolerance_rtol=_float_or_none(tolerance.get("rtol")),
        profile=tuple(_profile_point(p) for p in row.get("profiling") or ()),
    )


def _format(row: Mapping[str, Any]) -> FormatOutcome:
    return FormatOutcome(
        key=str(row["key"]),
        format=str(row["format"]),
        path=str(row.get("path", "")),
        exists=bool(row.get("exists", False)),
        commands={str(k): str(v) for k, v in (row.get("commands") or {}).items()},
        runners=tuple(_runner(r) for r in row.get("runners") or ()),
        errors=tuple(str(e) for e in row.get("errors") or ()),
        runner_config=dict(row.get("runner_config") or {}),
    )


def _pick(row: Mapping[str, Any]) -> Pick:
    found = bool(row.get("found"))
    return Pick(
        strategy=str(row["strategy"]),
        include_source=bool(row["include_source"]),
        model_key=_str_or_none(row.get("model_key")) if found else None,
        format=_str_or_none(row.get("format")) if found else None,
        runner=_str_or_none(row.get("runner")) if found else None,
        throughput_per_second=_float_or_none(row.get("throughput_per_second")) if found else None,
        latency_ms=_float_or_none(row.get("latency_ms")) if found else None,
    )


def _path_or_none(value: Any) -> Path | None:
    return None if value in (None, "") else Path(str(value))


def parse_record(
    record: Mapping[str, Any],
    *,
    record_path: Path | None = None,
    log_path: Path | None = None,
    failure: NavigatorFailure | None = None,
) -> NavigatorResult:
    """Read the worker's record (``navigator.json``) into a :class:`NavigatorResult`.

    Args:
        record: the parsed JSON.
        record_path: where it was read from.
        log_path: the worker's log.
        failure: a failure seen from outside (exit code, timeout); the record's own failure otherwise.

    Raises:
        ConfigError: the record is of another schema version or lacks its required keys.
    """
    version = record.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ConfigError(f"navigator record schema_version {version!r}; this tritonrec reads {SCHEMA_VERSION}")
    try:
        own = record.get("failure")
        if failure is None and own:
            failure = NavigatorFailure(
                step=str(own["step"]),
                command=tuple(str(a) for a in record.get("argv") or ()),
                exit_code=2,
                error=str(own["error"]),
                log_tail="".join(str(line) for line in own.get("traceback_tail") or ()),
            )
        picked = record.get("picked") or None
        picks = tuple(_pick(p) for p in record.get("picks") or ())
        chosen = next((p for p in picks if p.strategy == "default" and not p.include_source), None)
        return NavigatorResult(
            ran=failure is None and record.get("running_step") is None and "picks" in record,
            failure=failure,
            navigator_version=_str_or_none(record.get("navigator_version")),
            versions=dict(record.get("versions") or {}),
            cpu_sync_shim=bool(record.get("cpu_sync_shim", False)),
            profile=dict(record.get("profile") or {}),
            formats=tuple(_format(m) for m in record.get("models") or ()),
            picks=picks,
            picked=chosen if chosen is not None and chosen.found else None,
            picked_artifact=_path_or_none(picked.get("artifact")) if picked else None,
            picked_runner_config=dict(picked.get("runner_config") or {}) if picked else {},
            out_dir=record_path.parent if record_path else None,
            record_path=record_path,
            log_path=log_path,
            workspace=_path_or_none(record.get("workspace")),
            status_file=_path_or_none(record.get("status_file")),
            optimize_s=_float_or_none(record.get("optimize_s")),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise ConfigError(f"navigator record {record_path or ''} is malformed: {type(e).__name__}: {e}") from e


def read_record(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``, or None where it is missing or unreadable (a worker killed mid-write)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def load_result(out_dir: Path) -> NavigatorResult:
    """Read a finished run's folder (its ``navigator.json``) again, e.g. to score its pick later.

    Raises:
        ConfigError: no readable record there.
    """
    record = read_record(out_dir / RECORD_FILE)
    if record is None:
        raise ConfigError(f"no readable {RECORD_FILE} in {out_dir}")
    return parse_record(record, record_path=out_dir / RECORD_FILE, log_path=out_dir / LOG_FILE)
