"""``tritonrec bench compression``: every compression method and ratio, measured side by side in one run.

Per dataset plan (Amazon Beauty with ``base``; a large synthetic catalogue with ``large``):

1. the parent is trained (or reused) and scored once on the test split;
2. every variant is compressed from its parent (the trained model or an earlier variant) through
   :func:`tritonrec.compress.run.compress_checkpoint` (an identical earlier checkpoint is reused), and scored on
   the same rows by the shared metrics module;
3. every model is exported to ONNX (FP32, both graphs: padded and ragged, each parity-checked against eager);
4. in-process speed: the graph ``ranker_cpu`` serves (its layout, the ragged one by default) in the ONNX Runtime
   session it serves with, on batches packed as it packs them
   of the serving batch (``batch_users`` users x ``n_candidates`` candidates of real test users), in
   ``repeats`` rounds that visit every model in turn, so load from other processes hits them alike; the
   median and the min-max of the rounds are reported;
5. served speed: each export served by the bundled Triton (``ranker_cpu``) and driven closed-loop at one fixed
   concurrency with the same users (:func:`tritonrec.measure.loadgen.measure_point`);
6. the lookup of the parent's item table quantized, as exported against ONNX Runtime's ``GatherBlockQuantized``
   (:mod:`tritonrec.measure.gather_kernels`).

``compression.json`` is rewritten after every stage, so a long run keeps what finished; the goals and the
Markdown are in :mod:`tritonrec.bench.models.compression_report`.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from tritonrec.backends.ranker_cpu_model import open_session, pack_ragged, pack_requests
from tritonrec.bench.models.compression_report import evaluate_goals, render_markdown
from tritonrec.client import RankingClient
from tritonrec.client.request import ModelLimits
from tritonrec.compress.options import (
    CompressOptions,
    DistillOptions,
    FinetuneOptions,
    PruneOptions,
    QuantizeOptions,
    ShareOptions,
    options_to_dict,
)
from tritonrec.compress.run import CompressionResult, compress_checkpoint, evaluation_rows
from tritonrec.compress.size import files_bytes, model_size
from tritonrec.contract import CANDIDATES, DEFAULT_MAX_CANDIDATES, DEFAULT_MODEL, HISTORY, REAL_INDEX, SCORES
from tritonrec.data.registry import DatasetName, PreparedData, prepare_dataset
from tritonrec.errors import ConfigError
from tritonrec.measure.gather_kernels import gather_kernels
from tritonrec.measure.loadgen import LoadMode, PointSettings, PreparedRequest, measure_point, prepare_requests
from tritonrec.measure.traffic import CandidateCounts, TrafficSpec, UserPool
from tritonrec.metrics import evaluate, ranking_metrics
from tritonrec.model.config import EmbeddingStorage, Preset, TableSharing
from tritonrec.pipeline.steps import export_step, train_or_reuse
from tritonrec.records import Progress, Report, new_record, quiet, write_report
from tritonrec.repository import VARIANTS, VariantName, graph_file_layout
from tritonrec.scorers.eager import torch_scorer
from tritonrec.serving.endpoint import local_endpoint
from tritonrec.train.checkpoint import load_checkpoint
from tritonrec.train.loop import TrainConfig

__all__ = ["DatasetPlan", "SpeedSettings", "VariantPlan", "beauty_plan", "run_compression_bench", "synthetic_plan"]

PARENT = "parent"
_METRICS = ("ndcg@10", "auc", "auc_global", "hr@10", "logloss")


@dataclass(frozen=True, slots=True, kw_only=True)
class VariantPlan:
    """One compressed model: its name, what it is derived from (``parent`` or an earlier variant), the method."""

    name: str
    parent: str
    options: CompressOptions


@dataclass(frozen=True, slots=True, kw_only=True)
class DatasetPlan:
    """The variants of one dataset and how its parent is made.

    Attributes:
        label: the plan's name in the report (``beauty``, ``synthetic``).
        dataset: which dataset.
        data_dir: its files (None = bundled).
        parent: the parent checkpoint folder (trained with ``train`` when missing).
        preset: the parent's preset.
        train: training settings of the parent, used only when it is missing.
        variants: in order; a variant's parent must come before it.
        eval_users: score only the first this many test users (0 = all).
    """

    label: str
    dataset: DatasetName
    data_dir: Path | None
    parent: Path
    preset: Preset
    train: TrainConfig
    variants: tuple[VariantPlan, ...]
    eval_users: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeedSettings:
    """The fixed scenario of the speed measurements.

    Attributes:
        batch_users: users per in-process session run (``ranker_cpu``'s ``max_batch_size``).
        n_candidates: candidates per user (the request contract's reference N).
        repeats: in-process rounds (every model once per round).
        repeat_s: in-process seconds per model and round.
        concurrency: closed-loop requests in flight against Triton.
        requests: distinct requests drawn from the test users.
        point: warm-up, windows and stability of the served point.
        threads: torch threads while compressing and training (0 = torch's default).
    """

    batch_users: int = 64
    n_candidates: int = 200
    repeats: int = 7
    repeat_s: float = 1.5
    concurrency: int = 8
    requests: int = 512
    point: PointSettings = field(default_factory=PointSettings)
    threads: int = 0


def _middle(values: tuple[float, ...]) -> float | None:
    return sorted(values)[(len(values) - 1) // 2] if values else None


def beauty_plan(
    parent: Path,
    *,
    prune_ratios: tuple[float, ...] = (0.25, 0.5, 0.75),
    share_ratios: tuple[float, ...] = (4.0, 16.0),
    finetune: FinetuneOptions,
    train: TrainConfig,
    students: tuple[DistillOptions, ...] = (),
    eval_users: int = 0,
) -> DatasetPlan:
    """Every method on Amazon Beauty with ``base``.

    Pruning at each ratio; distillation into each student (default ``small``), the first student also trained on
    labels only (the control); hash and QR sharing at each ratio; INT8/INT4 tables; the middle pruning ratio
    fine-tuned on labels only (the control of fine-tuning with the parent as teacher); and the combinations that
    aim at a 4x smaller model (every student with INT8 and INT4 tables). ``train`` trains the parent only when it
    is missing.
    """
    students = students or (DistillOptions.for_preset(Preset.SMALL),)
    if len({s.student_name for s in students}) < len(students):
        raise ConfigError(f"students need distinct names, got {[s.student_name for s in students]}")
    variants = [VariantPlan(name=f"prune-{r:g}", parent=PARENT, options=PruneOptions(ratio=r, finetune=finetune))
                for r in prune_ratios]  # fmt: skip
    variants += [VariantPlan(name=f"distill-{s.student_name}", parent=PARENT, options=s) for s in students]
    first = students[0]
    control = dataclasses.replace(first, weight=0.0)
    variants.append(VariantPlan(name=f"{first.student_name}-labels-only", parent=PARENT, options=control))
    for r in share_ratios:
        for kind in (TableSharing.HASH, TableSharing.QR):
            options = ShareOptions(kind=kind, ratio=r, finetune=finetune)
            variants.append(VariantPlan(name=f"{kind.value}-{r:g}", parent=PARENT, options=options))
    int8, int4 = QuantizeOptions(storage=EmbeddingStorage.INT8), QuantizeOptions(storage=EmbeddingStorage.INT4)
    variants += [
        VariantPlan(name="int8", parent=PARENT, options=int8),
        VariantPlan(name="int4", parent=PARENT, options=int4),
        VariantPlan(name="int4-block32", parent=PARENT, options=dataclasses.replace(int4, block=32)),
    ]
    prune, share = _middle(prune_ratios), _middle(share_ratios)
    if prune is not None:
        labels_only = PruneOptions(ratio=prune, finetune=dataclasses.replace(finetune, teacher_weight=0.0))
        variants.append(VariantPlan(name=f"prune-{prune:g}-labels-only", parent=PARENT, options=labels_only))
        variants.append(VariantPlan(name=f"prune-{prune:g}+int4", parent=f"prune-{prune:g}", options=int4))
    if share is not None:
        variants.append(VariantPlan(name=f"qr-{share:g}+int4", parent=f"qr-{share:g}", options=int4))
    for s in students:
        name = f"distill-{s.student_name}"
        variants += [
            VariantPlan(name=f"{name}+int8", parent=name, options=int8),
            VariantPlan(name=f"{name}+int4", parent=name, options=int4),
        ]
    return DatasetPlan(
        label="beauty", dataset=DatasetName.BEAUTY, data_dir=None, parent=parent, preset=Preset.BASE,
        train=train, variants=tuple(variants), eval_users=eval_users,
    )  # fmt: skip


def synthetic_plan(
    data_dir: Path,
    parent: Path,
    *,
    share_ratio: float = 4.0,
    finetune: FinetuneOptions,
    train: TrainConfig,
    eval_users: int = 0,
) -> DatasetPlan:
    """``large`` on a generated synthetic catalogue: INT8 tables, hash and QR sharing, and both combined."""
    int8, int4 = QuantizeOptions(storage=EmbeddingStorage.INT8), QuantizeOptions(storage=EmbeddingStorage.INT4)
    qr, hashed = f"qr-{share_ratio:g}", f"hash-{share_ratio:g}"
    variants = (
        VariantPlan(name="int8", parent=PARENT, options=int8),
        VariantPlan(name=hashed, parent=PARENT, options=ShareOptions(kind=TableSharing.HASH, ratio=share_ratio,
                                                                     finetune=finetune)),
        VariantPlan(name=qr, parent=PARENT, options=ShareOptions(kind=TableSharing.QR, ratio=share_ratio,
                                                                 finetune=finetune)),
        VariantPlan(name=f"{hashed}+int8", parent=hashed, options=int8),
        VariantPlan(name=f"{qr}+int8", parent=qr, options=int8),
        VariantPlan(name=f"{qr}+int4", parent=qr, options=int4),
    )  # fmt: skip
    return DatasetPlan(
        label="synthetic", dataset=DatasetName.SYNTHETIC, data_dir=data_dir, parent=parent, preset=Preset.LARGE,
        train=train, variants=variants, eval_users=eval_users,
    )  # fmt: skip


def _user_pool(data: PreparedData, n_candidates: int) -> UserPool:
    """The test users of ``data`` (their histories without padding) and the training popularity of items."""
    histories = [row[row > 0].astype(np.int64) for row in data.test.histories]
    counts = data.item_counts[: data.spec.n_items + 1]
    return UserPool(histories, counts, TrafficSpec(candidates=CandidateCounts.fixed(n_candidates), user_zipf=0.0))


def _rounded(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: round(float(metrics[k]), 5) for k in _METRICS if k in metrics}


def _trimmed_details(details: dict[str, Any]) -> dict[str, Any]:
    """What the report keeps of a method's details (per-epoch logs are summarised)."""
    out = {k: v for k, v in details.items() if k not in ("finetune", "epochs", "oracle", "train", "student_config")}
    if "metrics_before_finetune" in details:
        out["metrics_before_finetune"] = _rounded(details["metrics_before_finetune"])
    finetune = details.get("finetune") or details
    if finetune.get("epochs"):
        out["training"] = {
            "train_s": finetune.get("train_s"),
            "best_epoch": finetune.get("best_epoch"),
            "epochs": len(finetune["epochs"]),
            "stopped_by": finetune.get("stopped_by"),
        }
    return out


def _entry(name: str, plan_parent: str, result: CompressionResult) -> dict[str, Any]:
    lineage = result.lineage
    return {
        "name": name,
        "parent": plan_parent,
        "methods": list(lineage.methods),
        "method": lineage.method,
        "arguments": lineage.arguments,
        "checkpoint": str(result.out_dir),
        "params": result.size.params,
        "size": result.size.to_dict(),
        "checkpoint_bytes": result.checkpoint_bytes,
        "metrics": _rounded(lineage.metrics_after),
        "delta_vs_parent": {k: round(lineage.delta(k), 5) for k in ("ndcg@10", "auc", "auc_global")},
        "details": _trimmed_details(lineage.details),
        "compress_s": round(result.elapsed_s, 1),
        "reused": result.reused,
    }


def _current_graph(path: Path) -> bool:
    """``path`` exists and is a graph this tritonrec serves (not an earlier export's ragged graph)."""
    try:
        graph_file_layout(path)  # refuses a missing file and an earlier export's ragged graph
    except ConfigError:
        return False
    return True


def _export(checkpoint: Path, data: PreparedData, progress: Progress) -> dict[str, Any]:
    """Export (or reuse an export newer than the checkpoint) and return its files' bytes and parity."""
    out = checkpoint / "onnx"
    report = out / "export.json"
    fresh = report.is_file() and report.stat().st_mtime > (checkpoint / "weights.pt").stat().st_mtime
    if not (fresh and _current_graph(out / _SERVED.artifact)):  # an export older than the ragged graph is redone
        progress(f"exporting {checkpoint} ...")
        export_step(checkpoint, data, out, fp16=False)
    parity = json.loads(report.read_text())["parity"]  # the padded graph, then the ragged one
    files = [out / "model.onnx", out / "model.onnx.data"]
    return {
        "dir": str(out),
        "onnx_bytes": files_bytes(files),
        "parity_max_abs": max(r["max_abs"] for r in parity),
        "parity": {r["candidate"]: r["max_abs"] for r in parity},
    }


_SERVED = VARIANTS[VariantName.CPU]
"""``ranker_cpu`` as ``tritonrec repo build`` writes it: the graph file and the layout it packs batches in."""


def _batches(requests: list[PreparedRequest], users: int, history_len: int) -> list[tuple[dict[str, Any], int]]:
    out = []
    for lo in range(0, len(requests) - users + 1, users):
        group = requests[lo : lo + users]
        pairs = [(r.history[None, :], r.candidates[None, :]) for r in group]
        if _SERVED.layout == "ragged":
            history, grid, real = pack_ragged(pairs)
            feeds = {HISTORY: history, CANDIDATES: grid, REAL_INDEX: real}
        else:
            history, candidates = pack_requests(pairs, history_len)
            feeds = {HISTORY: history, CANDIDATES: candidates}
        out.append((feeds, sum(r.n_candidates for r in group)))
    return out


def in_process_speed(
    exports: dict[str, Path], requests: list[PreparedRequest], history_len: int, settings: SpeedSettings
) -> dict[str, dict[str, Any]]:
    """Candidates/s of every export in its serving session, round-robin over ``settings.repeats`` rounds."""
    sessions = {name: open_session(path / _SERVED.artifact) for name, path in exports.items()}
    batches = _batches(requests, settings.batch_users, history_len)
    rates: dict[str, list[float]] = {name: [] for name in sessions}
    for session in sessions.values():
        session.run([SCORES], batches[0][0])  # warm up
    for round_ in range(settings.repeats):
        for name, session in sessions.items():
            runs, done, started = round_, 0, time.perf_counter()
            while True:
                feeds, n = batches[runs % len(batches)]
                session.run([SCORES], feeds)
                done, runs = done + n, runs + 1
                if time.perf_counter() - started >= settings.repeat_s:
                    break
            rates[name].append(done / (time.perf_counter() - started))
    return {
        name: {
            "candidates_per_second": round(statistics.median(r), 1),
            "min": round(min(r), 1),
            "max": round(max(r), 1),
            "rounds": [round(x, 1) for x in r],
            "batch_users": settings.batch_users,
            "layout": _SERVED.layout,
        }
        for name, r in rates.items()
    }


def served_speed(export_dir: Path, pairs: list[tuple[Any, Any]], settings: SpeedSettings) -> dict[str, Any]:
    """Candidates/s of ``export_dir`` served by the bundled Triton at the fixed closed-loop concurrency."""
    with local_endpoint(export_dir) as server:
        with RankingClient(server.grpc_url, model=DEFAULT_MODEL) as client:
            limits = client.limits()
        requests = prepare_requests(pairs, limits)
        point = measure_point(
            server.grpc_url, DEFAULT_MODEL, requests, LoadMode.CLOSED, settings.concurrency, settings.point
        )
    measured = point["window_requests_per_second"][-point["measured_windows"] :]
    per_request = point["mean_candidates"]
    return {
        "candidates_per_second": point["candidates_per_second"],
        "min": round(min(measured) * per_request, 1),
        "max": round(max(measured) * per_request, 1),
        "requests_per_second": point["requests_per_second"],
        "p50_ms": point["latency_ms"]["p50"],
        "p99_ms": point["latency_ms"]["p99"],
        "errors": point["errors"],
        "stable": point["stable"],
        "mean_batch_users": point["server"]["mean_batch_users"],
        "concurrency": settings.concurrency,
    }


def _lookup_kernels(parent: Path, requests: list[PreparedRequest], settings: SpeedSettings) -> list[dict[str, Any]]:
    """The parent's item table looked up three ways for the candidates of one serving batch (INT8, INT4, INT4/32)."""
    table = load_checkpoint(parent).model.items.item
    if not isinstance(table, nn.Embedding):
        return []
    rows = np.stack([r.candidates for r in requests[: settings.batch_users]])
    runs = ((EmbeddingStorage.INT8, 0), (EmbeddingStorage.INT4, 0), (EmbeddingStorage.INT4, 32))
    return [
        gather_kernels(table.weight, storage, block, rows, repeats=settings.repeats, repeat_s=settings.repeat_s / 3)
        for storage, block in runs
    ]


def _parent_entry(plan: DatasetPlan, data: PreparedData, settings: SpeedSettings) -> tuple[dict[str, Any], Any]:
    step = train_or_reuse(
        data, plan.preset, plan.parent, TrainConfig(**{**asdict(plan.train), "threads": settings.threads})
    )
    rows = evaluation_rows(data, plan.eval_users)
    metrics = evaluate(torch_scorer(step.checkpoint.model), rows)
    entry: dict[str, Any] = {
        "name": PARENT,
        "preset": plan.preset.value,
        "checkpoint": str(plan.parent),
        "trained_now": not step.reused,
        "train_s": step.report.train_s,
        "params": model_size(step.checkpoint.model).params,
        "size": model_size(step.checkpoint.model).to_dict(),
        "checkpoint_bytes": files_bytes([plan.parent / "checkpoint.json", plan.parent / "weights.pt"]),
        "metrics": _rounded(metrics),
        "evaluated_users": len(rows),
    }
    if data.oracle_test_scores is not None:
        entry["oracle_metrics"] = _rounded(ranking_metrics(data.oracle_test_scores[: len(rows)], rows.labels))
    return entry, metrics


def _run_plan(
    plan: DatasetPlan, work_dir: Path, settings: SpeedSettings, record: dict[str, Any], save: Any, progress: Progress
) -> None:
    data = prepare_dataset(plan.dataset, plan.data_dir)
    progress(f"{plan.label}: parent {plan.parent} ({plan.preset.value}) ...")
    parent, parent_metrics = _parent_entry(plan, data, settings)
    section: dict[str, Any] = {"dataset": plan.dataset.value, "data_dir": str(plan.data_dir or "bundled")}
    section.update(dataset_info=data.info, parent=parent, variants=[])
    record["plans"][plan.label] = section
    dirs, metrics = {PARENT: plan.parent}, {PARENT: parent_metrics}
    for variant in plan.variants:
        progress(f"{plan.label}: {variant.name} ({variant.options.method.value}) from {variant.parent} ...")
        result = compress_checkpoint(
            dirs[variant.parent],
            data,
            variant.options,
            work_dir / plan.label / variant.name,
            eval_users=plan.eval_users,
            reuse=True,
            parent_metrics=metrics[variant.parent],
            threads=settings.threads,
        )
        dirs[variant.name], metrics[variant.name] = result.out_dir, result.lineage.metrics_after
        entry = _entry(variant.name, variant.parent, result)
        entry["delta_vs_root"] = {k: round(metrics[variant.name][k] - parent_metrics[k], 5) for k in ("ndcg@10", "auc")}
        entry["options"] = options_to_dict(variant.options)
        section["variants"].append(entry)
        save()
    entries = [parent, *section["variants"]]
    exports = {}
    for entry, name in zip(entries, dirs, strict=True):
        entry["export"] = _export(dirs[name], data, progress)
        exports[name] = Path(entry["export"]["dir"])
    save()
    pairs = _user_pool(data, settings.n_candidates).sample(settings.requests)
    # the limits ``tritonrec repo build`` writes for this model (what the served side reads from the config)
    limits = ModelLimits(max_history=data.spec.history_len, max_candidates=DEFAULT_MAX_CANDIDATES)
    requests = prepare_requests(pairs, limits)
    progress(f"{plan.label}: in-process speed, {settings.repeats} rounds over {len(exports)} models ...")
    speeds = in_process_speed(exports, requests, data.spec.history_len, settings)
    for entry, name in zip(entries, dirs, strict=True):
        entry["in_process"] = speeds[name]
    progress(f"{plan.label}: lookup kernels of the item table ...")
    section["lookup_kernels"] = _lookup_kernels(plan.parent, requests, settings)
    save()
    for entry, name in zip(entries, dirs, strict=True):
        progress(f"{plan.label}: {name} served through Triton at concurrency {settings.concurrency} ...")
        entry["served"] = served_speed(exports[name], pairs, settings)
        save()


def run_compression_bench(
    plans: list[DatasetPlan],
    work_dir: Path,
    out_dir: Path,
    settings: SpeedSettings,
    *,
    command: str,
    progress: Progress = quiet,
) -> Report:
    """Run every plan and write ``compression.json`` and ``compression.md`` into ``out_dir``."""
    record: dict[str, Any] = {**new_record(command), "settings": asdict(settings), "plans": {}}

    def save() -> Report:
        record["goals"] = evaluate_goals(record)
        return write_report(out_dir, "compression", record, render_markdown(record))

    for plan in plans:
        _run_plan(plan, work_dir, settings, record, save, progress)
    return save()
