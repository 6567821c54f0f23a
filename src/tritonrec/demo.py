"""The main job, end to end on the bundled Amazon Beauty data, as the seven steps of :func:`run_demo`.

1. load Beauty and sample the evaluation negatives;
2. train the preset (or reuse its checkpoint);
3. export ONNX with parity checks; write the same model as a model spec (``tritonrec export spec``) and export it
   through the spec path too (``export onnx --spec``);
4. build the Triton model repository (``ranker_cpu``, and the spec's ``ranking_model_cpu`` beside it);
5. serve it on the bundled tritonserver and score every test user over gRPC with the shared metrics module,
   beside eager PyTorch and in-process ONNX Runtime; then every test user again through the spec's served model,
   as any team's model is scored (the same figures: the bundled model is one spec among others);
6. a short closed-loop sweep of the same server on real Beauty traffic;
7. a short ``tritonrec select`` (eager PyTorch, ONNX Runtime and the served graph, FP32 and FP16) and its pick
   for the default SLA (p99 50 ms) and quality budget.

The result is a :class:`DemoResult`; :meth:`DemoResult.summary` is what ``summary.json`` holds.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tritonrec.bench.serving.sweep import PointSummary, SweepSettings, best_point, run_sweep
from tritonrec.contract import DEFAULT_MODEL
from tritonrec.data.registry import DatasetName, PreparedData, prepare_dataset
from tritonrec.errors import ConfigError
from tritonrec.export.checkpoint_export import ExportResult, export_checkpoint
from tritonrec.measure.loadgen import PointSettings
from tritonrec.measure.points import Target
from tritonrec.measure.traffic import TrafficSpec
from tritonrec.metrics import grouped_metrics, ranking_metrics, score_eval_set
from tritonrec.model.config import Preset
from tritonrec.pipeline.bundled_spec import BundledSpecStep, bundled_spec_step
from tritonrec.pipeline.spec_steps import spec_repository_step, spec_rows
from tritonrec.pipeline.steps import (
    RepositoryStep,
    ServedScores,
    TrainStep,
    build_repository_step,
    score_served,
    train_or_reuse,
)
from tritonrec.records import Progress, new_record, quiet
from tritonrec.repository import VARIANTS, VariantName
from tritonrec.repository.spec_variants import SpecVariant, SpecVariantKind
from tritonrec.scorers.eager import torch_scorer
from tritonrec.scorers.ort import onnx_scorer
from tritonrec.scorers.rows import served_query_scores
from tritonrec.serving.server import LocalTriton
from tritonrec.train.loop import TrainConfig
from tritonrec.train.report import Metrics

__all__ = ["STEPS", "DemoResult", "DemoSettings", "run_demo"]

STEPS = 7


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoSettings:
    """What the demo trains and where it writes.

    Attributes:
        quick: the ``small`` preset and a 2-minute training budget (``base`` and 14 minutes otherwise).
        out_dir: report folder (``summary.json``, the server log, the repository, ``sweep/``).
        checkpoint_dir: checkpoint to reuse or write (default ``artifacts/demo-<preset>``).
        retrain: train even if the checkpoint exists.
        concurrency: gRPC requests in flight while scoring.
        command: the command line, recorded in ``summary.json`` with the host and tool versions.
    """

    quick: bool = False
    out_dir: Path = Path("reports/demo")
    checkpoint_dir: Path | None = None
    retrain: bool = False
    concurrency: int = 16
    command: str = "tritonrec demo"

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ConfigError(f"concurrency must be >= 1, got {self.concurrency}")

    @property
    def preset(self) -> Preset:
        """The model size trained."""
        return Preset.SMALL if self.quick else Preset.BASE

    @property
    def checkpoint(self) -> Path:
        """Where the checkpoint is read or written."""
        return self.checkpoint_dir or Path("artifacts") / f"demo-{self.preset.value}"

    @property
    def train_config(self) -> TrainConfig:
        """The training budget."""
        return TrainConfig(max_minutes=2.0 if self.quick else 14.0, valid_users=3000 if self.quick else 5000)


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoResult:
    """Everything the demo measured.

    Attributes:
        settings: what was asked.
        dataset_info: provenance and sizes of the data.
        trained: the checkpoint and its training report.
        export: the ONNX artifacts and parity records.
        repository: the model repository served.
        eager: test metrics of eager PyTorch.
        triton: test metrics of the same users scored through Triton over gRPC.
        served: counts and timing of the gRPC scoring.
        max_abs_diff: largest ``|Triton - eager|`` score difference.
        max_abs_diff_vs_onnx: largest ``|Triton - in-process ONNX Runtime|`` difference (same file).
        spec: the model written as a spec and exported through the spec path.
        spec_triton: the spec's metrics (:func:`~tritonrec.metrics.grouped_metrics`) through its served model.
        max_abs_diff_spec: largest ``|served spec model - eager|`` score difference.
        sweep: the best closed-loop point of the closing sweep.
        sweep_report: its Markdown report.
        selection: the short selection's record (``chosen``, ``candidates``...).
        selection_report: its Markdown report.
        elapsed_s: wall time of the whole demo.
        header: where and with what it ran (:func:`~tritonrec.records.new_record`: command, date, host, versions).
    """

    settings: DemoSettings
    dataset_info: dict[str, Any]
    trained: TrainStep
    export: ExportResult
    repository: RepositoryStep
    eager: Metrics
    triton: Metrics
    served: ServedScores
    max_abs_diff: float
    max_abs_diff_vs_onnx: float
    spec: BundledSpecStep
    spec_triton: Metrics
    max_abs_diff_spec: float
    sweep: PointSummary
    sweep_report: Path
    selection: dict[str, Any]
    selection_report: Path
    elapsed_s: float
    header: dict[str, Any]

    def summary(self) -> dict[str, Any]:
        """The JSON written to ``summary.json`` (metrics rounded to 4 decimals)."""
        report = self.trained.report
        return {
            **self.header,
            "dataset": self.dataset_info,
            "preset": self.settings.preset.value,
            "checkpoint": str(self.trained.checkpoint_dir),
            "n_parameters": report.n_parameters,
            "train_s": report.train_s,
            "test": _rounded(self.eager),
            "test_triton": _rounded(self.triton),
            "popularity_test": _rounded(report.popularity_test),
            "ndcg@10_eager": round(self.eager["ndcg@10"], 4),
            "ndcg@10_triton": round(self.triton["ndcg@10"], 4),
            "auc_eager": round(self.eager["auc"], 4),
            "auc_triton": round(self.triton["auc"], 4),
            "max_abs_diff": self.max_abs_diff,
            "max_abs_diff_vs_onnx": self.max_abs_diff_vs_onnx,
            "export_parity": [r.to_dict() for r in self.export.parity],
            "spec": {
                "file": str(self.spec.written.path),
                "export_parity": [r.to_dict() for r in self.spec.export.parity],
                "test_triton": _rounded(self.spec_triton),
                "ndcg@10_triton": round(self.spec_triton["ndcg@10"], 4),
                "gauc_triton": round(self.spec_triton["gauc"], 4),
                "max_abs_diff": self.max_abs_diff_spec,
            },
            "grpc_requests": self.served.grpc_requests,
            "triton_executions": self.served.executions,
            "triton_inferences": self.served.inferences,
            "triton_s": round(self.served.elapsed_s, 1),
            "triton_users_per_second": round(self.served.users_per_second, 1),
            "sweep_best_concurrency": self.sweep.level,
            "sweep_best_requests_per_second": self.sweep.requests_per_second,
            "sweep_best_candidates_per_second": self.sweep.candidates_per_second,
            "sweep_best_p99_ms": self.sweep.p99_ms,
            "sweep_report": str(self.sweep_report),
            "selection_chosen": self.selection["chosen"],
            "selection_measured": sum(1 for r in self.selection["candidates"] if r["measured"]),
            "selection_report": str(self.selection_report),
            "elapsed_s": round(self.elapsed_s, 1),
        }


def _rounded(metrics: Metrics) -> dict[str, float]:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()}


def _sweep(server: LocalTriton, out_dir: Path, quick: bool) -> tuple[PointSummary, Path]:
    """One run per point, our generator only: a first look (``tritonrec bench sweep`` is the measurement)."""
    settings = SweepSettings(
        model=DEFAULT_MODEL,
        concurrencies=(1, 8) if quick else (1, 8, 32),
        requests=512,
        repeats=1,
        point=PointSettings(warmup_s=2.0, window_s=2.0, max_windows=4 if quick else 6),
    )
    target = Target.at(server.grpc_url, metrics_url=server.metrics_url)
    report = run_sweep(target, TrafficSpec(), settings, out_dir, command="tritonrec demo (step 6)")
    return best_point(dict(report.record)), report.markdown_path


def _select(
    trained: TrainStep, export_dir: Path, data: PreparedData, out_dir: Path, quick: bool, progress: Progress
) -> tuple[dict[str, Any], Path]:
    """A short selection: one user sample, two trials, a small perf_analyzer sweep (``tritonrec select`` is the run)."""
    from tritonrec.measure.perf_analyzer import find_perf_analyzer
    from tritonrec.measure.points import PaSettings
    from tritonrec.select.candidates import Precision, Runtime
    from tritonrec.select.inprocess import InProcessSettings
    from tritonrec.select.run import ModelSource, SelectSettings, run_select
    from tritonrec.select.selection import Constraints
    from tritonrec.select.served_figures import ServedSettings

    settings = SelectSettings(
        constraints=Constraints(p99_ms=50.0),
        quality_users=500 if quick else 2000,
        in_process=InProcessSettings(repeats=2, min_s=0.5),
        served=ServedSettings(
            rate=50.0, concurrencies=(4, 8), repeats=2, perf_analyzer=PaSettings(measurement_ms=1500)
        ),
        runtimes=(Runtime.EAGER, Runtime.ONNXRUNTIME, Runtime.TRITON),
        precisions=(Precision.FP32, Precision.FP16),
    )
    report = run_select(
        [ModelSource("base", trained.checkpoint_dir, export_dir)],
        data,
        out_dir,
        settings,
        perf_analyzer=find_perf_analyzer(),
        command="tritonrec demo (step 7)",
        progress=progress,
    )
    return dict(report.record), report.markdown_path


def run_demo(
    settings: DemoSettings, *, step: Progress = quiet, progress: Progress = quiet, training_bars: bool = False
) -> DemoResult:
    """Run the seven steps and write ``summary.json`` into ``settings.out_dir``.

    Args:
        settings: what to train and where to write.
        step: told ``"[n/7] what"`` as each step starts.
        progress: told how far the long steps are (users scored over gRPC).
        training_bars: show the training loop's progress bars (on stderr).
    """
    started, header = time.perf_counter(), new_record(settings.command)
    preset, checkpoint_dir = settings.preset, settings.checkpoint
    step(f"[1/{STEPS}] loading Amazon Beauty (bundled) and sampling the evaluation negatives ...")
    data = prepare_dataset(DatasetName.BEAUTY)
    reuse = not settings.retrain and (checkpoint_dir / "checkpoint.json").is_file()
    if reuse:
        step(f"[2/{STEPS}] reusing {checkpoint_dir} (pass --retrain to train again)")
    else:
        minutes = settings.train_config.max_minutes
        step(f"[2/{STEPS}] training preset {preset.value!r} for at most {minutes:g} min -> {checkpoint_dir}")
    trained = train_or_reuse(
        data, preset, checkpoint_dir, settings.train_config, retrain=settings.retrain, progress=training_bars
    )

    export_dir = checkpoint_dir / "onnx"
    step(f"[3/{STEPS}] exporting ONNX with parity checks -> {export_dir}")
    export = export_checkpoint(trained.checkpoint, data.test, export_dir, fp16=True)
    spec_dir = settings.out_dir / "spec"
    step(f"      the same model as a spec (tritonrec export spec) -> {spec_dir}, exported with export onnx --spec")
    spec = bundled_spec_step(checkpoint_dir, data, spec_dir)

    root = settings.out_dir / "model_repository"
    spec_variant = SpecVariant(kind=SpecVariantKind.CPU)
    spec_model = spec_variant.name(spec.spec)
    step(f"[4/{STEPS}] building the Triton model repository ({DEFAULT_MODEL}, {spec_model}) -> {root}")
    variants = [VARIANTS[VariantName.CPU]]
    repository = build_repository_step(root, trained.checkpoint.spec, variants, export_dir=export_dir)
    spec_repository_step(spec.spec, spec.export.out_dir, root, [spec_variant])

    step(f"[5/{STEPS}] serving on the real tritonserver and scoring {len(data.test):,} test users over gRPC ...")
    eager = score_eval_set(torch_scorer(trained.checkpoint.model), data.test)
    in_process = score_eval_set(onnx_scorer(export.model_path), data.test)
    log_file = settings.out_dir / "tritonserver.log"
    spec_test = spec_rows(spec.spec)  # every test user's candidates, in the test split's order
    with LocalTriton(root, models=[*repository.model_names, spec_model], log_file=log_file) as server:
        step(f"      tritonserver ready on {server.grpc_url} (gRPC), log: {log_file}")
        served = score_served(
            server.grpc_url, DEFAULT_MODEL, data.test, concurrency=settings.concurrency, progress=progress
        )
        step(f"      the same users through the spec's {spec_model}: {len(spec_test):,} candidate rows ...")
        spec_scores = served_query_scores(server.grpc_url, spec_model, spec_test, concurrency=settings.concurrency)
        step(f"[6/{STEPS}] short load sweep (closed loop, real Beauty traffic, 50-500 candidates) ...")
        sweep, sweep_report = _sweep(server, settings.out_dir / "sweep", settings.quick)
    step(f"[7/{STEPS}] short selection: eager, ONNX Runtime and Triton x FP32/FP16, p99 <= 50 ms ...")
    selection, selection_report = _select(
        trained, export_dir, data, settings.out_dir / "select", settings.quick, progress=lambda m: step(f"      {m}")
    )

    result = DemoResult(
        settings=settings,
        dataset_info=data.info,
        trained=trained,
        export=export,
        repository=repository,
        eager=ranking_metrics(eager, data.test.labels),
        triton=ranking_metrics(served.scores, data.test.labels),
        served=served,
        max_abs_diff=float(np.max(np.abs(served.scores - eager))),
        max_abs_diff_vs_onnx=float(np.max(np.abs(served.scores - in_process))),
        spec=spec,
        spec_triton=grouped_metrics(spec_scores, spec_test.labels, spec_test.query_ids, cutoffs=(5, 10)),
        max_abs_diff_spec=float(np.max(np.abs(spec_scores.reshape(eager.shape) - eager))),
        sweep=sweep,
        sweep_report=sweep_report,
        selection=selection,
        selection_report=selection_report,
        elapsed_s=time.perf_counter() - started,
        header=header,
    )
    settings.out_dir.mkdir(parents=True, exist_ok=True)
    (settings.out_dir / "summary.json").write_text(json.dumps(result.summary(), indent=2, sort_keys=True) + "\n")
    return result
