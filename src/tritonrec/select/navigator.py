"""Triton Model Navigator as a peer of ``tritonrec select``: its ``optimize`` on our model, its pick, its speed.

Model Navigator (``triton-model-navigator``) lives in its own virtualenv (``bash
bench/tools/install_model_navigator.sh``: its pins conflict with ours and it requires packages that cannot
install here), so :func:`run_navigator` runs :mod:`tritonrec.select.navigator_worker` with that venv's python, in
a subprocess with a time limit, tritonrec's own source on its ``PYTHONPATH``, and keeps its log. It returns a
:class:`NavigatorResult` read from the worker's record (``navigator.json``), which holds what Navigator itself
reported: each format's export/conversion statuses, each runner's correctness, verification and profiling
figures, and what Navigator's strategies pick. Any failure (no venv, a failed import, export, profiling, a
timeout) comes back as :class:`NavigatorFailure`: the step, the command, the exit code and the log's tail; this
module raises nothing for a failed Navigator run.

:func:`navigator_quality` scores the pick with OUR metrics (:func:`tritonrec.metrics.evaluate`), the way
``tritonrec evaluate`` scores a checkpoint or an ONNX file: ONNX Runtime for ONNX, ``torch.jit.load`` for
TorchScript, under the autocast setting Navigator's runner measured it with.

Throughput figures are Navigator's: rows (users) per second at each batch size, each row holding
``profile_candidates`` candidates; Navigator repeats its one profiling row to fill each batch.

This module imports no torch, onnxruntime or model_navigator.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tritonrec.errors import ConfigError
from tritonrec.select.navigator_record import (
    LOG_FILE,
    RECORD_FILE,
    SCHEMA_VERSION,
    FormatOutcome,
    NavigatorFailure,
    NavigatorResult,
    Pick,
    ProfilePoint,
    RunnerOutcome,
    load_result,
    parse_record,
    read_record,
)
from tritonrec.train.report import Metrics

if TYPE_CHECKING:
    from tritonrec.data.registry import PreparedData
    from tritonrec.metrics import RowsScorer, Scorer
    from tritonrec.pipeline.evaluation import Split
    from tritonrec.spec.model_spec import ModelSpec
    from tritonrec.spec.rows import SpecRows

__all__ = [
    "INSTALL_HINT",
    "FormatOutcome",
    "NavigatorFailure",
    "NavigatorQuality",
    "NavigatorResult",
    "NavigatorSettings",
    "Pick",
    "ProfilePoint",
    "RunnerOutcome",
    "default_navigator_python",
    "load_result",
    "navigator_quality",
    "parse_record",
    "profiled_candidates",
    "run_navigator",
    "run_spec_navigator",
    "spec_navigator_settings",
    "spec_navigator_quality",
    "worker_command",
    "write_spec_samples",
]

logger = logging.getLogger(__name__)

INSTALL_HINT = "bash bench/tools/install_model_navigator.sh"
SAMPLES_FILE = "samples.npz"
"""A spec run's samples, written by :func:`write_spec_samples` for the worker."""
_ENV_PYTHON = "TRITONREC_NAVIGATOR_PYTHON"
_LOG_TAIL_LINES = 40
_LOG_TAIL_CHARS = 6000
_SHIM_DIR = Path(__file__).resolve().parent / "navigator_shim"


def default_navigator_python() -> Path:
    """The Navigator venv's python: ``$TRITONREC_NAVIGATOR_PYTHON``, else ``<repo>/.tools/navigator-venv``."""
    if os.environ.get(_ENV_PYTHON):
        return Path(os.environ[_ENV_PYTHON])
    repo = Path(__file__).resolve().parents[3]  # src/tritonrec/select/navigator.py -> the checkout
    return repo / ".tools" / "navigator-venv" / "bin" / "python"


@dataclass(frozen=True, slots=True, kw_only=True)
class NavigatorSettings:
    """What Navigator converts and how it profiles (the names of ``OptimizationProfile`` where they match).

    Attributes:
        formats: Navigator target formats (``torchscript``, ``torch-exportedprogram``, ``onnx``; TensorRT needs
            CUDA). Navigator always adds the source ``torch`` format.
        runners: Navigator runner names; empty = its defaults for the CPU.
        samples: dataloader samples (consecutive test users).
        sample_batch_sizes: users per sample, cycled over the samples.
        sample_candidates: candidates per user, cycled (B and N vary, so both export as dynamic axes).
        batch_sizes: batch sizes Navigator profiles.
        window_size: inferences per profiling window.
        stabilization_windows: consecutive windows that must agree.
        min_trials: windows at least.
        max_trials: windows at most before Navigator gives up ("Unable to get stable performance results").
        stability_percentage: how far (in %) the windows may spread and still count as stable.
        profile_candidates: candidates in the one row Navigator profiles with.
        verify_atol: ``verify_func`` tolerance of every runner's scores against our FP32 eager scores (0 = none).
        verify_rtol: its relative tolerance.
        cpu_sync_shim: put ``navigator_shim`` on the path so Navigator's Torch runners can be profiled on a
            CPU-only torch (see :mod:`tritonrec.select.navigator_shim.sitecustomize`); off = stock Navigator.
    """

    formats: tuple[str, ...] = ("torchscript", "torch-exportedprogram", "onnx")
    runners: tuple[str, ...] = ()
    samples: int = 8
    sample_batch_sizes: tuple[int, ...] = (1, 8)
    sample_candidates: tuple[int, ...] = (100, 50)
    batch_sizes: tuple[int, ...] = (1, 16, 64)
    window_size: int = 25
    stabilization_windows: int = 3
    min_trials: int = 3
    max_trials: int = 10
    stability_percentage: float = 10.0
    profile_candidates: int = 100
    verify_atol: float = 1e-4
    verify_rtol: float = 1e-3
    cpu_sync_shim: bool = False

    def __post_init__(self) -> None:
        for name in ("formats", "runners", "sample_batch_sizes", "sample_candidates", "batch_sizes"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if not self.formats:
            raise ConfigError("formats must name at least one Navigator target format")
        for name in ("samples", "window_size", "stabilization_windows", "min_trials", "profile_candidates"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("sample_batch_sizes", "sample_candidates", "batch_sizes"):
            values = getattr(self, name)
            if not values or min(values) < 1:
                raise ConfigError(f"{name} must be positive integers, got {values}")
        if not self.stabilization_windows <= self.min_trials <= self.max_trials:
            raise ConfigError(
                "need stabilization_windows <= min_trials <= max_trials, got "
                f"{self.stabilization_windows}, {self.min_trials}, {self.max_trials}"
            )
        if self.stability_percentage <= 0 or self.verify_atol < 0 or self.verify_rtol < 0:
            raise ConfigError("stability_percentage must be > 0 and the verify tolerances >= 0")

    def worker_args(self) -> list[str]:
        """The worker's command-line options for these settings."""

        def joined(values: Sequence[object]) -> str:
            return ",".join(str(v) for v in values)

        return [
            f"--formats={joined(self.formats)}",
            f"--runners={joined(self.runners)}",
            f"--samples={self.samples}",
            f"--sample-batch-sizes={joined(self.sample_batch_sizes)}",
            f"--sample-candidates={joined(self.sample_candidates)}",
            f"--batch-sizes={joined(self.batch_sizes)}",
            f"--window-size={self.window_size}",
            f"--stabilization-windows={self.stabilization_windows}",
            f"--min-trials={self.min_trials}",
            f"--max-trials={self.max_trials}",
            f"--stability-percentage={self.stability_percentage:g}",
            f"--profile-candidates={self.profile_candidates}",
            f"--verify-atol={self.verify_atol:g}",
            f"--verify-rtol={self.verify_rtol:g}",
        ]


def _tail(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-_LOG_TAIL_LINES:])[-_LOG_TAIL_CHARS:]


def _last_error(tail: str) -> str:
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    for line in reversed(lines):
        head = line.split(":", 1)[0]
        if head.endswith(("Error", "Exception")) and " " not in head:
            return line[:500]
    return lines[-1][:500] if lines else ""


def worker_command(
    python: Path,
    checkpoint: Path,
    *,
    dataset: str,
    out_dir: Path,
    data_dir: Path | None = None,
    history_len: int = 50,
    seed: int = 0,
    settings: NavigatorSettings | None = None,
) -> list[str]:
    """The command line that runs the worker with ``python``."""
    cmd = [
        str(python),
        "-m",
        "tritonrec.select.navigator_worker",
        f"--checkpoint={checkpoint}",
        f"--dataset={dataset}",
        f"--history-len={history_len}",
        f"--seed={seed}",
        f"--out={out_dir}",
    ]
    if data_dir is not None:
        cmd.append(f"--data-dir={data_dir}")
    return cmd + (settings or NavigatorSettings()).worker_args()


def _worker_env(settings: NavigatorSettings) -> dict[str, str]:
    source = str(Path(__file__).resolve().parents[2])  # the folder holding the tritonrec package
    paths = [str(_SHIM_DIR)] if settings.cpu_sync_shim else []
    paths += [source, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _stop(process: subprocess.Popen[bytes]) -> None:
    """End the worker and every process Navigator started under it (its own process group)."""
    for sig, wait_s in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 15.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def run_navigator(
    checkpoint: Path,
    *,
    dataset: str,
    out_dir: Path,
    data_dir: Path | None = None,
    history_len: int = 50,
    seed: int = 0,
    settings: NavigatorSettings | None = None,
    python: Path | None = None,
    timeout_s: float = 1800.0,
) -> NavigatorResult:
    """Run ``nav.torch.optimize`` on ``checkpoint`` in Navigator's venv and read back what it did.

    Args:
        checkpoint: a tritonrec checkpoint folder.
        dataset: the dataset it was trained on (its test users feed Navigator's dataloader).
        out_dir: the run's folder: ``navigator.json``, ``navigator-worker.log``, Navigator's ``workspace/``
            and the pick under ``picked/``.
        data_dir: the dataset's files (default: the bundled copy).
        history_len: ``L``.
        seed: the split's seed.
        settings: what to convert and how to profile.
        python: the Navigator venv's python (default :func:`default_navigator_python`).
        timeout_s: the worker and everything it started are stopped after this long.

    Returns:
        The result; ``failure`` says where a failed run stopped (nothing is raised for it).
    """
    settings = settings or NavigatorSettings()
    python = python or default_navigator_python()
    cmd = worker_command(
        python,
        checkpoint,
        dataset=dataset,
        out_dir=out_dir,
        data_dir=data_dir,
        history_len=history_len,
        seed=seed,
        settings=settings,
    )
    return _run_worker(cmd, python, out_dir, settings, timeout_s)


def run_spec_navigator(
    spec: ModelSpec,
    rows: SpecRows,
    *,
    out_dir: Path,
    settings: NavigatorSettings | None = None,
    python: Path | None = None,
    timeout_s: float = 1800.0,
) -> NavigatorResult:
    """Run ``nav.torch.optimize`` on a spec's module (factory + weights, TorchScript or a program) in Navigator's venv.

    Navigator's venv reads no Parquet, so the samples are written here from ``rows`` (the spec's evaluation rows)
    into ``out_dir/samples.npz`` (:func:`write_spec_samples`) and the worker loads the module from the spec itself.

    Returns:
        The result; ``failure`` says where a failed run stopped (nothing is raised for it).
    """
    settings = settings or NavigatorSettings()
    python = python or default_navigator_python()
    out_dir.mkdir(parents=True, exist_ok=True)
    samples = write_spec_samples(out_dir / SAMPLES_FILE, rows, settings)
    cmd = [
        str(python),
        "-m",
        "tritonrec.select.navigator_worker",
        f"--spec={spec.path}",
        f"--samples-file={samples}",
        f"--out={out_dir}",
        *settings.worker_args(),
    ]
    return _run_worker(cmd, python, out_dir, settings, timeout_s)


SPEC_ROWS_BATCH_SIZES = (1, 64, 512)
"""Rows per call Navigator profiles a rows-layout spec's model with (a request is a query's rows, a served batch
several queries'); a query + candidates model keeps :class:`NavigatorSettings`' queries per call."""


def spec_navigator_settings(spec: ModelSpec, *, cpu_sync_shim: bool = False) -> NavigatorSettings:
    """The default :class:`NavigatorSettings` for ``spec``: in the rows layout, :data:`SPEC_ROWS_BATCH_SIZES`."""
    from tritonrec.spec.model_spec import Layout

    if spec.layout is Layout.QUERY_CANDIDATES:
        return NavigatorSettings(cpu_sync_shim=cpu_sync_shim)
    return NavigatorSettings(batch_sizes=SPEC_ROWS_BATCH_SIZES, cpu_sync_shim=cpu_sync_shim)


def write_spec_samples(path: Path, rows: SpecRows, settings: NavigatorSettings) -> Path:
    """Navigator's samples from a spec's rows, as ``{input name: [B, ...]}`` arrays in an ``.npz`` file.

    ``sample{k}/<input>``: the rows of ``sample_batch_sizes[k]`` consecutive queries (cycled), so the first axis
    varies between samples and Navigator exports it as a dynamic axis; when an input has a dynamic dim, one more
    sample, the first padded one step longer along it with the input's pad value, so that dim is exported dynamic
    too; ``profile/<input>``: what Navigator repeats to each profiled batch size: the first row (rows layout) or the
    first query (query + candidates layout, its candidates cut to ``profile_candidates``).

    Raises:
        ConfigError: ``rows`` hold no query.
    """
    queries = list(rows.queries())
    if not queries:
        raise ConfigError("the spec's evaluation rows hold no query to give Navigator")
    arrays: dict[str, Any] = {}
    at = 0
    for k in range(settings.samples):
        b = min(settings.sample_batch_sizes[k % len(settings.sample_batch_sizes)], len(queries))
        if at + b > len(queries):
            at = 0
        start, stop = queries[at][0], queries[at + b - 1][1]
        arrays |= {f"sample{k}/{name}": v for name, v in rows.batch(start, stop).items()}
        at += b
    if rows.lengths:
        first_sample = {key.removeprefix("sample0/"): v for key, v in arrays.items() if key.startswith("sample0/")}
        grown = _one_longer(first_sample, rows)
        arrays |= {f"sample{settings.samples}/{name}": v for name, v in grown.items()}
    start, stop = queries[0]
    first = rows.batch(start, start + profiled_candidates(rows, settings))
    arrays |= {f"profile/{name}": v for name, v in first.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        np.savez(f, **arrays)
    return path


def profiled_candidates(rows: SpecRows, settings: NavigatorSettings) -> int:
    """The candidates in the row Navigator profiles a spec's model with.

    1 in the rows layout (a row is a candidate); the first query's, cut to ``profile_candidates``, in the query +
    candidates layout.
    """
    if not rows.query_layout:
        return 1
    start, stop = next(iter(rows.queries()))
    return min(stop - start, settings.profile_candidates)


def _one_longer(batch: dict[str, Any], rows: SpecRows) -> dict[str, Any]:
    """``batch`` with each dynamic dim one step longer, filled with the input's pad value (what the model ignores)."""
    out = dict(batch)
    for name in rows.lengths:
        values = batch[name]
        axis = 2 if rows.query_layout and name in rows.features else 1  # [Q, N, T] item inputs; [R, T] / [Q, T]
        widths = [(0, 0)] * values.ndim
        widths[axis] = (0, 1)
        out[name] = np.pad(values, widths, constant_values=rows.pads.get(name, 0))
    return out


def _run_worker(
    cmd: list[str], python: Path, out_dir: Path, settings: NavigatorSettings, timeout_s: float
) -> NavigatorResult:
    """Run the worker command, its log kept; what it recorded, or where it failed."""
    out_dir.mkdir(parents=True, exist_ok=True)
    record_path, log_path = out_dir / RECORD_FILE, out_dir / LOG_FILE
    record_path.unlink(missing_ok=True)

    def failed(step: str, exit_code: int | None, error: str, tail: str | None = None) -> NavigatorResult:
        failure = NavigatorFailure(
            step=step,
            command=tuple(cmd),
            exit_code=exit_code,
            error=error,
            log_tail=_tail(log_path) if tail is None else tail,
        )
        record = read_record(record_path)
        if record is not None and record.get("schema_version") == SCHEMA_VERSION:
            return parse_record(record, record_path=record_path, log_path=log_path, failure=failure)
        return NavigatorResult(ran=False, failure=failure, out_dir=out_dir, record_path=None, log_path=log_path)

    if not python.is_file():
        return failed("install", None, f"model-navigator not installed: {python} is missing; run {INSTALL_HINT}", "")
    logger.info("running Model Navigator: %s", " ".join(cmd))
    with log_path.open("wb") as log:
        try:
            process = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=_worker_env(settings),
                start_new_session=True,  # its own process group: a timeout stops Navigator's children too
            )
        except OSError as e:
            return failed("start", None, f"{type(e).__name__}: {e}")
        try:
            code = process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _stop(process)
            step = (read_record(record_path) or {}).get("running_step") or "worker"
            return failed("timeout", None, f"stopped after {timeout_s:g} s during step {step!r}")
        except BaseException:
            _stop(process)
            raise
    record = read_record(record_path)
    if record is None:
        tail = _tail(log_path)
        return failed("worker", code, _last_error(tail) or f"exit code {code}, no {RECORD_FILE} written", tail)
    if code != 0:
        own = record.get("failure") or {}
        step = str(own.get("step") or record.get("running_step") or "worker")
        error = str(own.get("error") or _last_error(_tail(log_path)) or f"exit code {code}")
        return failed(step, code, error)
    return parse_record(record, record_path=record_path, log_path=log_path)


@dataclass(frozen=True, slots=True, kw_only=True)
class NavigatorQuality:
    """Navigator's pick scored with tritonrec's metrics.

    Attributes:
        artifact: the file scored.
        format: Navigator's format of it.
        runner: the runner Navigator measured it on.
        runtime: what scored it here: ``onnxruntime``, ``torchscript`` or ``torch.export``.
        autocast: the autocast type applied as Navigator's runner does (``bfloat16``...), or None.
        split: the rows scored.
        metrics: :func:`tritonrec.metrics.ranking_metrics` of the scores.
    """

    artifact: Path
    format: str
    runner: str
    runtime: str
    autocast: str | None
    split: str
    metrics: Metrics


def _autocast(config: Mapping[str, Any]) -> tuple[bool, str | None, str | None]:
    """Navigator's Torch runners: ``torch.autocast("cpu", enabled=autocast, dtype=autocast_dtype)``.

    Returns ``(enabled, dtype name or None for the device default, the type that applies on the CPU)``.
    """
    enabled = bool(config.get("autocast", True))
    dtype = config.get("autocast_dtype")
    name = None if dtype in (None, "", "None") else str(dtype).removeprefix("torch.")
    return enabled, name, (name or "bfloat16") if enabled else None  # torch's CPU autocast default: bfloat16


def _pick_scorer(artifact: Path, fmt: str, runner_config: Mapping[str, Any]) -> tuple[Scorer, str, str | None]:
    """``(scorer, runtime, autocast type applied)`` for Navigator's artifact of format ``fmt``."""
    if fmt == "onnx":
        from tritonrec.scorers.ort import onnx_scorer

        return onnx_scorer(artifact), "onnxruntime", None
    enabled, dtype, applied = _autocast(runner_config)
    if fmt == "torchscript":
        from tritonrec.scorers.torch_artifact import torchscript_scorer

        return torchscript_scorer(artifact, autocast=enabled, autocast_dtype=dtype), "torchscript", applied
    if fmt == "torch-exportedprogram":
        from tritonrec.scorers.torch_artifact import exported_program_scorer

        return exported_program_scorer(artifact, autocast=enabled, autocast_dtype=dtype), "torch.export", applied
    raise ConfigError(f"cannot score Navigator format {fmt!r} (onnx, torchscript, torch-exportedprogram)")


def _picked(result: NavigatorResult) -> tuple[Path, Pick, str]:
    """Navigator's pick: its artifact, the pick and its format.

    Raises:
        ConfigError: the run picked nothing, or the artifact is missing.
    """
    artifact, pick = result.picked_artifact, result.picked
    if artifact is None or pick is None or pick.format is None:
        why = result.failure.error if result.failure else "no format passed Navigator's correctness and profiling"
        raise ConfigError(f"the Navigator run picked no artifact to score: {why}")
    if not artifact.is_file():
        raise ConfigError(f"Navigator's pick {artifact} is missing")
    return artifact, pick, pick.format


def navigator_quality(
    result: NavigatorResult,
    data: PreparedData,
    *,
    split: Split | str = "test",
    limit: int = 0,
    seed: int | None = None,
) -> NavigatorQuality:
    """Score Navigator's pick on ``split`` of ``data`` with :func:`tritonrec.metrics.evaluate`.

    Args:
        result: a run with a pick.
        data: the dataset the checkpoint was trained on.
        split: ``test`` or ``valid``.
        limit: only ``limit`` users (0 = all): the first ones, or with ``seed`` a seeded random sample
            (:meth:`~tritonrec.data.splits.EvalSet.sample`, as ``tritonrec select`` draws its quality users).
        seed: see ``limit``.

    Raises:
        ConfigError: the run picked nothing, the artifact is missing, or its format cannot be scored here.
    """
    from tritonrec.metrics import evaluate
    from tritonrec.pipeline.evaluation import Split

    which = Split(split)
    artifact, pick, fmt = _picked(result)
    scorer, runtime, autocast = _pick_scorer(artifact, fmt, result.picked_runner_config)
    rows = data.test if which is Split.TEST else data.valid
    if limit:
        rows = rows.head(limit) if seed is None else rows.sample(limit, seed)
    return NavigatorQuality(
        artifact=artifact,
        format=fmt,
        runner=pick.runner or "",
        runtime=runtime,
        autocast=autocast,
        split=which.value,
        metrics=evaluate(scorer, rows),
    )


def _spec_pick_scorer(
    artifact: Path, fmt: str, runner_config: Mapping[str, Any], spec: ModelSpec
) -> tuple[RowsScorer, str, str | None]:
    """``(rows scorer, runtime, autocast type applied)`` for Navigator's artifact of a spec's module."""
    if fmt == "onnx":
        from tritonrec.scorers.rows import onnx_rows_scorer

        return onnx_rows_scorer(artifact, spec), "onnxruntime", None  # Navigator named its inputs as the spec's
    enabled, dtype, applied = _autocast(runner_config)
    if fmt in ("torchscript", "torch-exportedprogram"):
        from tritonrec.scorers.torch_artifact import artifact_rows_scorer

        scorer = artifact_rows_scorer(artifact, fmt, spec, autocast=enabled, autocast_dtype=dtype)
        return scorer, "torchscript" if fmt == "torchscript" else "torch.export", applied
    raise ConfigError(f"cannot score Navigator format {fmt!r} (onnx, torchscript, torch-exportedprogram)")


def spec_navigator_quality(result: NavigatorResult, spec: ModelSpec, rows: SpecRows) -> NavigatorQuality:
    """Score Navigator's pick of a spec's module on ``rows`` with the metrics every ``select --spec`` candidate gets.

    Raises:
        ConfigError: the run picked nothing, the artifact is missing, or its format cannot be scored here.
    """
    from tritonrec.metrics import score_rows, spec_quality

    artifact, pick, fmt = _picked(result)
    scorer, runtime, autocast = _spec_pick_scorer(artifact, fmt, result.picked_runner_config, spec)
    metrics = spec_quality(spec, score_rows(scorer, rows), rows)
    return NavigatorQuality(
        artifact=artifact,
        format=fmt,
        runner=pick.runner or "",
        runtime=runtime,
        autocast=autocast,
        split="evaluation",
        metrics=metrics,
    )
