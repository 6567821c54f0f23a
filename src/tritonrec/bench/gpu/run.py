"""``tritonrec bench gpu``: the ranker per precision in process, its quality deltas, then served as ``ranker_gpu``.

What ``bench/gpu/run.sh`` runs on the GPU machine (``--device cuda``) and CI runs on the CPU (``--device cpu``,
small sizes). Nothing is trained: ``base`` is a carried checkpoint (the Beauty model; without one, ``base``
weights drawn from the seed on the Beauty catalogue, and the report says so), ``large`` is the ``large`` preset
drawn from the seed on a synthetic catalogue of ``large_items`` items.

Stages, in order, each written to ``gpu.json`` / ``gpu.md`` as soon as it ends (a run stopped at its time limit
still leaves what it measured):

1. in process, ``base``: candidates/s and latency for each precision x execution at each batch size;
2. quality: NDCG@10 / HR@10 / AUC of each precision on the Beauty test split, deltas against FP32;
3. served: ``ranker_gpu`` on the bundled tritonserver, parity, then load at increasing concurrency;
4. a team's model (``spec``, when given): rows/s and quality per precision (:mod:`.spec_stage`);
5. in process, ``large``, then the ``torch.compile`` variants: what time is left (compile only with at least
   :data:`COMPILE_MIN_S` left).

``deadline_s`` bounds the whole run; stage 1 stops early enough to leave ``served_reserve_s`` for stage 3.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from tritonrec.bench.gpu.inprocess_stage import TimingRule, measure_batches, precision_quality
from tritonrec.bench.gpu.report import write_markdown
from tritonrec.bench.gpu.served_stage import ServedSettings, best_within_sla, measure_served
from tritonrec.bench.gpu.spec_stage import SpecStageSettings, measure_spec
from tritonrec.data.registry import PreparedData, prepare_dataset
from tritonrec.data.synthetic import SyntheticConfig, synthetic_catalogue
from tritonrec.errors import ConfigError
from tritonrec.model.config import preset
from tritonrec.model.ranker import RankingModel
from tritonrec.records import Progress, Report, new_record, quiet, write_report
from tritonrec.scorers.torch_device import CastMode, DeviceSettings, Execution, Precision, place_model
from tritonrec.train.checkpoint import load_checkpoint

__all__ = ["MODELS", "GpuBenchSettings", "run_gpu_bench"]

MODELS = ("base", "large")
COMPILE_MIN_S = 60.0
"""The ``torch.compile`` stage starts only with this much of the budget left (compiling takes tens of seconds)."""
SPEC_RESERVE_S = 45.0
"""Kept from the served stage for the spec stage when a spec is given (timing a DLRM takes seconds per precision)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GpuBenchSettings:
    """What ``bench gpu`` measures.

    Attributes:
        device: ``cuda`` (or ``cuda:K``) or ``cpu``.
        checkpoint: the ``base`` checkpoint (Beauty); None = ``base`` weights drawn from ``seed``.
        models: of :data:`MODELS`, which run in process (``base`` always serves).
        large_items: items of the synthetic catalogue of ``large``.
        batches: users per in-process call.
        n_candidates: candidates per user.
        precisions: in-process precisions (FP32 first: the quality reference).
        cast: how BF16/FP16 are applied in process (``weights`` or ``autocast``).
        executions: in-process executions (eager, cuda_graph; compile variants via ``compile_precisions``).
        compile_precisions: precisions also run through ``torch.compile`` (and compile + CUDA graphs on CUDA), on
            the last of ``models``; empty = none.
        quality_users: Beauty test users scored per precision (0 = all 22,363).
        serve: run the served stage.
        served: how ``ranker_gpu`` is served and driven.
        spec: a team's model measured after the served stage (its device is this run's); None = none.
        timing: how long each in-process point is timed.
        deadline_s: the whole run's time budget.
        served_reserve_s: time kept for the served stage while stage 1 runs.
        seed: seeds weights drawn at random and every input.
    """

    device: str = "cuda"
    checkpoint: Path | None = None
    models: tuple[str, ...] = MODELS
    large_items: int = 1_000_000
    batches: tuple[int, ...] = (64, 256, 1024, 4096)
    n_candidates: int = 200
    precisions: tuple[Precision, ...] = (Precision.FP32, Precision.BF16, Precision.FP16)
    cast: CastMode = CastMode.WEIGHTS
    executions: tuple[Execution, ...] = (Execution.EAGER, Execution.CUDA_GRAPH)
    compile_precisions: tuple[Precision, ...] = (Precision.BF16,)
    quality_users: int = 0
    serve: bool = True
    served: ServedSettings = field(default_factory=ServedSettings)
    spec: SpecStageSettings | None = None
    timing: TimingRule = field(default_factory=TimingRule)
    deadline_s: float = 340.0
    served_reserve_s: float = 200.0
    seed: int = 0

    def __post_init__(self) -> None:
        unknown = [m for m in self.models if m not in MODELS]
        if unknown or not self.models:
            raise ConfigError(f"models must be some of {list(MODELS)}, got {list(self.models)}")
        if not self.precisions or self.precisions[0] is not Precision.FP32:
            raise ConfigError("precisions must start with fp32: it is the quality reference")
        if any(b < 1 for b in self.batches) or not self.batches or self.n_candidates < 1 or self.large_items < 2:
            raise ConfigError("batches and n_candidates must be >= 1 (at least one batch), large_items >= 2")
        graphs = [e for e in self.executions if e.graphs]
        if self.device == "cpu" and (graphs or self.served.cuda_graphs):
            raise ConfigError("CUDA graphs need --device cuda; on the CPU run eager (and compile)")
        if self.spec is not None and self.spec.device != self.device:
            raise ConfigError(f"the spec stage runs on this run's device {self.device}, not {self.spec.device}")
        if self.quality_users < 0 or self.deadline_s <= 0 or not 0 <= self.served_reserve_s < self.deadline_s:
            raise ConfigError("need quality_users >= 0, deadline_s > 0 and 0 <= served_reserve_s < deadline_s")

    def in_process(self, *, compiled: bool) -> list[DeviceSettings]:
        """The in-process settings: every precision x execution, or the ``torch.compile`` ones."""
        if not compiled:
            return [
                DeviceSettings(device=self.device, precision=p, cast=self.cast, execution=e)
                for p in self.precisions
                for e in self.executions
            ]
        executions = [Execution.COMPILE] + ([Execution.COMPILE_CUDA_GRAPH] if self.device != "cpu" else [])
        return [
            DeviceSettings(device=self.device, precision=p, cast=self.cast, execution=e)
            for p in self.compile_precisions
            for e in executions
        ]


def _base_model(settings: GpuBenchSettings, data: PreparedData) -> tuple[RankingModel, dict[str, Any]]:
    if settings.checkpoint is not None:
        checkpoint = load_checkpoint(settings.checkpoint)
        data.check_fits(checkpoint.spec, settings.checkpoint)
        trained = {k: checkpoint.metrics.get(k) for k in ("ndcg@10", "auc", "preset") if k in checkpoint.metrics}
        source = {"source": f"checkpoint {settings.checkpoint.name}", "trained": True, "checkpoint_metrics": trained}
        return checkpoint.model, source
    torch.manual_seed(settings.seed)
    model = RankingModel(data.spec, preset("base"), data.catalogue).eval()
    return model, {"source": f"base preset, weights drawn from seed {settings.seed} (untrained)", "trained": False}


def _large_model(settings: GpuBenchSettings) -> tuple[RankingModel, dict[str, Any]]:
    config = SyntheticConfig(n_items=settings.large_items, seed=settings.seed)
    torch.manual_seed(settings.seed)
    model = RankingModel(config.feature_spec(), preset("large"), synthetic_catalogue(config)).eval()
    return model, {"source": f"large preset, weights drawn from seed {settings.seed} on a synthetic catalogue "
                             f"of {settings.large_items:,} items (untrained)", "trained": False}  # fmt: skip


def _describe(model: RankingModel, facts: dict[str, Any]) -> dict[str, Any]:
    return {**facts, "parameters": model.n_parameters(), "feature_spec": model.spec.to_dict(),
            "model_config": model.config.to_dict()}  # fmt: skip


def device_facts(device: str) -> dict[str, Any]:
    """torch, CUDA and the device: what the in-process figures depend on."""
    facts: dict[str, Any] = {"device": device, "torch": torch.__version__, "cuda_available": torch.cuda.is_available()}
    if device.startswith("cuda") and torch.cuda.is_available():
        index = torch.device(device).index or 0
        props = torch.cuda.get_device_properties(index)
        facts.update(
            name=props.name,
            capability=f"{props.major}.{props.minor}",
            memory_gib=round(props.total_memory / 1024**3, 1),
            multiprocessors=props.multi_processor_count,
            cuda_runtime=torch.version.cuda,
            fp32_matmul_precision=torch.get_float32_matmul_precision(),
        )
    else:
        facts["threads"] = torch.get_num_threads()
    return facts


def _in_process(
    model: RankingModel, name: str, settings: GpuBenchSettings, chosen: list[DeviceSettings],
    time_left: Callable[[], float], progress: Progress,
) -> list[dict[str, Any]]:  # fmt: skip
    rows: list[dict[str, Any]] = []
    placed: dict[tuple[Precision, CastMode], torch.nn.Module] = {}
    for setting in chosen:
        progress(f"in process, {name}: {setting.label} ...")
        key = (setting.precision, setting.cast)
        if key not in placed:
            placed.clear()  # one placed copy at a time (the large model is big)
            placed[key] = place_model(model, setting)
        points = measure_batches(
            model, setting, settings.batches, settings.n_candidates, rule=settings.timing, seed=settings.seed,
            placed=placed[key], time_left=time_left,
        )  # fmt: skip
        rows.append({"model": name, **asdict(setting), "label": setting.label, "points": points})
    return rows


def _spec_stage(settings: SpecStageSettings, time_left: Callable[[], float], progress: Progress) -> dict[str, Any]:
    try:
        return measure_spec(settings, time_left=time_left, progress=progress)
    except Exception as e:  # noqa: BLE001 - a spec that cannot load is a result; the stages after it still run
        return {"error": f"{type(e).__name__}: {e}"[:800]}


def run_gpu_bench(
    settings: GpuBenchSettings,
    out_dir: Path,
    *,
    command: str,
    perf_analyzer: Path | None = None,
    work_dir: Path | None = None,
    progress: Progress = quiet,
) -> Report:
    """Run every stage (see the module docstring); write and return the report (``gpu.json``, ``gpu.md``).

    Args:
        settings: what to measure.
        out_dir: results folder (``gpu.json``, ``gpu.md`` and the served stage's ``server.log``).
        command: the command line, recorded.
        perf_analyzer: drives the served stage; None = the project's load generator.
        work_dir: where the served stage writes its export and repository (default ``out_dir/served``).
        progress: where to say what is running.
    """
    started = time.monotonic()

    def left(reserve: float = 0.0) -> Callable[[], float]:
        return lambda: settings.deadline_s - reserve - (time.monotonic() - started)

    record: dict[str, Any] = {
        **new_record(command, perf_analyzer=settings.serve and perf_analyzer is not None),
        "settings": asdict(settings),
        "device": device_facts(settings.device),
        "models": {},
        "in_process": [],
        "quality": [],
        "served": None,
        "spec": None,
        "stages_done_at_s": {},
    }
    record["settings"]["checkpoint"] = str(settings.checkpoint) if settings.checkpoint else None
    if settings.spec is not None:
        record["settings"]["spec"]["spec"] = str(settings.spec.spec)

    def save(stage: str) -> Report:
        record["elapsed_s"] = round(time.monotonic() - started, 1)
        record["stages_done_at_s"][stage] = record["elapsed_s"]
        return write_report(out_dir, "gpu", record, write_markdown(record))

    reserve = settings.served_reserve_s if settings.serve else 0.0
    progress("loading Beauty and the base model ...")
    data = prepare_dataset("beauty", seed=settings.seed)
    base, facts = _base_model(settings, data)
    record["models"]["base"] = _describe(base, facts)
    save("load")
    if "base" in settings.models:
        record["in_process"] += _in_process(
            base, "base", settings, settings.in_process(compiled=False), left(reserve), progress
        )
        save("in_process_base")
    rows = data.test if settings.quality_users == 0 else data.test.head(settings.quality_users)
    progress(f"quality of each precision on {len(rows):,} Beauty test users ...")
    quality_settings = [
        DeviceSettings(device=settings.device, precision=p, cast=settings.cast) for p in settings.precisions
    ]
    record["quality"] = precision_quality(base, rows, quality_settings)
    save("quality")
    if settings.serve:
        served_dir = work_dir or out_dir / "served"
        try:
            record["served"] = measure_served(
                base, data.test, served_dir, settings.served, device=settings.device.split(":")[0],
                perf_analyzer=perf_analyzer, time_left=left(SPEC_RESERVE_S if settings.spec else 0.0),
                progress=progress,
            )  # fmt: skip
        except Exception as e:  # noqa: BLE001 - a failed served stage is a result; the stages after it still run
            record["served"] = {"error": f"{type(e).__name__}: {e}"[:800], "points": []}
        if (served_dir / "server.log").is_file() and served_dir != out_dir:
            shutil.copy2(served_dir / "server.log", out_dir / "server.log")
        best = best_within_sla(record["served"]["points"])
        record["served"]["best_within_sla"] = best
        save("served")
    if settings.spec is not None:
        record["spec"] = _spec_stage(settings.spec, left(), progress)
        save("spec")
    last_name = settings.models[-1]
    if "large" in settings.models:
        progress("building the large model ...")
        large, facts = _large_model(settings)
        record["models"]["large"] = _describe(large, facts)
        record["in_process"] += _in_process(
            large, "large", settings, settings.in_process(compiled=False), left(), progress
        )
        save("in_process_large")
    if settings.compile_precisions and left()() < COMPILE_MIN_S:
        record["compile_skipped"] = f"less than {COMPILE_MIN_S:g} s of the time budget left"
    elif settings.compile_precisions:
        model = large if last_name == "large" else base
        record["in_process"] += _in_process(
            model, last_name, settings, settings.in_process(compiled=True), left(), progress
        )
    return save("end")
