"""``tritonrec quantize --spec``: the INT8 variants of a team's own model, judged on its own rows and metrics.

The same study as :mod:`tritonrec.quantize.run` (the bundled model's), keyed by a model spec:

1. rows: the spec's calibration side (the queries not held out for evaluation) is split again by query, seeded:
   ``calibration_rows`` rows of one half calibrate, the other half validates (the calibrator, the sensitivity
   pass and mixed precision are chosen there, never on the evaluation rows the report quotes);
2. Q/DQ S8S8 INT8 per ONNX Runtime calibrator (min-max, entropy, percentile), dynamic INT8 (no calibration), and
   the embedding tables alone in row-wise INT8, dequantized after the gather (:mod:`tritonrec.quantize.tables`);
3. sensitivity per op-type group, the only grouping every graph has: the embedding tables (``Gather``) and the
   linear layers (``MatMul``/``Gemm``), each alone in INT8 with the best calibrator; mixed precision quantizes the
   groups that keep the budget alone, dropping the costliest until the mix keeps it too;
4. OpenVINO FP32 and NNCF INT8 on the same calibration rows;
5. every variant scored on the evaluation rows by the shared metrics module (AUC, logloss, NDCG@K, HR@K, MRR within
   each query) and timed side by side in rows per second, each session opened as the served ``<name>_cpu``
   instance opens it (:func:`tritonrec.backends.rows_cpu_model.open_session`), in shuffled repeated rounds;
6. the winner: the fastest batch-independent variant within the budget and measurably faster than FP32 at the
   serving batch, written as ``model_int8.onnx`` (or ``model_int8.xml`` + ``.bin``) beside a copy of the export,
   so ``tritonrec repo build --spec SPEC --export OUT --cpu-precision int8`` serves it.

Legend: R = rows, B = rows per timed batch.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from tritonrec.errors import ConfigError, ExportError
from tritonrec.export.spec_export import SPEC_EXPORT_FILE
from tritonrec.metrics import evaluate_rows, grouped_metrics
from tritonrec.pipeline.spec_steps import RowsSplit, spec_rows
from tritonrec.quantize.calibration import FeedBatches
from tritonrec.quantize.groups import graph_nodes
from tritonrec.quantize.ort_quant import Calibrator, OrtForm, OrtRecipe, needs_reduce_range, quantize_ort
from tritonrec.quantize.precisions import PrecisionVariant, publish_int8
from tritonrec.quantize.sensitivity import Budget, QualityDelta, quality_delta
from tritonrec.quantize.speed import items_per_s
from tritonrec.quantize.tables import embedding_tables, quantize_tables
from tritonrec.records import Progress, host_facts, markdown_header, quiet
from tritonrec.scorers.rows import onnx_rows_scorer
from tritonrec.spec.model_spec import ModelSpec, ScoreKind
from tritonrec.spec.rows import SpecRows
from tritonrec.spread import Spread, compare, shuffled_trials, spread

__all__ = [
    "OP_GROUPS",
    "SPEC_QUANTIZE_REPORT",
    "SpecQuantizeConfig",
    "SpecQuantizeResult",
    "SpecVariantRow",
    "run_spec_quantize",
    "spec_quantize_markdown",
]

SPEC_QUANTIZE_REPORT = "precision"
OP_GROUPS: dict[str, tuple[str, ...]] = {"embedding_tables": ("Gather",), "linear_layers": ("MatMul", "Gemm")}
"""The layer groups of any graph: op types ONNX Runtime quantizes, by what they hold in a ranker."""


def _served_threads() -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return max(1, cores // 2)  # what one of the two instances of the served <name>_cpu gets


@dataclass(frozen=True, slots=True, kw_only=True)
class SpecQuantizeConfig:
    """What ``tritonrec quantize --spec`` does.

    Attributes:
        export_dir: the folder ``tritonrec export onnx --spec`` wrote (``model.onnx``, ``model_fp16.onnx``).
        out_dir: where the variants, the winner (``model_int8.*``), the export's copy and the report go.
        calibrators: the ONNX Runtime calibrators compared.
        calibration_rows: rows drawn (seeded) from the calibration half to calibrate on.
        batch_rows: rows per calibration batch.
        budget: the quality budget (AUC and NDCG@10 drops against FP32 on the evaluation rows).
        batches: rows per timed batch; the last is the serving batch the winner is judged at.
        repeats: shuffled timing rounds per variant and batch.
        min_time_s: each trial repeats its batch until this much time has passed.
        threads: intra-op threads per session (0 = what one of the two served CPU instances gets).
        openvino: also time OpenVINO FP32 and quantize with NNCF (post-training, and accuracy-controlled).
        modelopt: also quantize with NVIDIA ModelOpt (``max`` calibration) where its interpreter is installed
            (``make tools-modelopt``); a missing install or a failure is recorded under ``skipped``.
        publish: write this INT8 variant as ``model_int8.*`` instead of the winner (a team's own call, e.g. the
            smallest file inside the budget); the report says so.
        fallback: when nothing wins and nothing is named, publish the batch-independent INT8 variant with the
            smallest quality loss (so there is an INT8 file to serve and measure); the report says so.
        seed: seed of the calibration draw, the validation split and the timing order.
    """

    export_dir: Path
    out_dir: Path
    calibrators: tuple[Calibrator, ...] = tuple(Calibrator)
    calibration_rows: int = 4096
    batch_rows: int = 512
    budget: Budget = field(default_factory=Budget)
    batches: tuple[int, ...] = (256, 4096)
    repeats: int = 3
    min_time_s: float = 0.5
    threads: int = 0
    openvino: bool = True
    modelopt: bool = True
    publish: str | None = None
    fallback: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.calibrators:
            raise ConfigError("name at least one ONNX Runtime calibrator (minmax, entropy, percentile)")
        if self.calibration_rows < 1 or self.batch_rows < 1 or not self.batches or min(self.batches) < 1:
            raise ConfigError("calibration_rows, batch_rows and every timed batch must be >= 1")
        if self.repeats < 1 or self.min_time_s < 0 or self.threads < 0:
            raise ConfigError("repeats must be >= 1, min_time_s and threads >= 0")
        if self.publish is not None and self.publish not in self.int8_names:
            raise ConfigError(f"--publish {self.publish!r}: not an INT8 variant of this run, one of {self.int8_names}")

    @property
    def int8_names(self) -> list[str]:
        """The INT8 variants this run makes (``int8-mixed`` only when the sensitivity pass finds a mix)."""
        names = [f"int8-ort-{c.value}" for c in self.calibrators] + ["int8-ort-dynamic", "int8-tables", "int8-mixed"]
        names += ["int8-modelopt-max"] if self.modelopt else []
        return names + (["openvino-int8", "openvino-int8-ac"] if self.openvino else [])

    @property
    def source(self) -> Path:
        """The FP32 ONNX file every variant is made from."""
        return self.export_dir / "model.onnx"

    @property
    def serving_batch(self) -> int:
        """The batch the winner is judged at (the largest timed: a dynamic batch of several queries' rows)."""
        return max(self.batches)


@dataclass(frozen=True, slots=True)
class SpecVariantRow:
    """One variant's figures on the evaluation rows: quality against FP32, size, speed."""

    variant: PrecisionVariant
    metrics: dict[str, float]
    delta: QualityDelta
    within_budget: bool
    speed: dict[int, Spread]

    def to_dict(self, fp32: Spread, serving_batch: int) -> dict[str, Any]:
        """The JSON entry of ``variants``."""
        return {
            **self.variant.to_dict(),
            **self.delta.to_dict(),
            "metrics": self.metrics,
            "bytes": self.variant.bytes(),
            "within_budget": self.within_budget,
            "rows_per_s": {str(b): s.to_dict() for b, s in self.speed.items()},
            "serving_batch_speedup": compare(self.speed[serving_batch], fp32).to_dict(),
        }


@dataclass(frozen=True, slots=True)
class SpecQuantizeResult:
    """Everything ``tritonrec quantize --spec`` measured and wrote."""

    spec: ModelSpec
    config: SpecQuantizeConfig
    rows: list[SpecVariantRow]
    calibrator: Calibrator
    sensitivity: dict[str, dict[str, Any]]
    mixed_groups: tuple[str, ...]
    winner: str | None
    published: str | None
    counts: dict[str, int]
    skipped: dict[str, str] = field(default_factory=dict)

    def row(self, name: str) -> SpecVariantRow:
        """The row of variant ``name``."""
        return next(r for r in self.rows if r.variant.name == name)

    def to_dict(self) -> dict[str, Any]:
        """The record body (the report adds command, date, host and versions)."""
        fp32 = self.row("fp32").speed[self.config.serving_batch]
        return {
            "spec": self.spec.name,
            "spec_file": str(self.spec.path) if self.spec.path else None,
            "rows": self.counts,
            "budget": {
                "max_auc_drop": self.config.budget.max_auc_drop,
                "max_ndcg_drop": self.config.budget.max_ndcg_drop,
            },
            "batches": list(self.config.batches),
            "serving_batch": self.config.serving_batch,
            "repeats": self.config.repeats,
            "threads": self.config.threads or _served_threads(),
            "calibrator": self.calibrator.value,
            "sensitivity": self.sensitivity,
            "mixed_int8_groups": list(self.mixed_groups),
            "variants": [r.to_dict(fp32, self.config.serving_batch) for r in self.rows],
            "winner": self.winner,
            "published": self.published,
            "skipped": self.skipped,
        }


def _split_calibration(side: SpecRows, seed: int) -> tuple[SpecRows, SpecRows]:
    """Halve the calibration side by query (seeded): rows to calibrate on, rows to validate on."""
    queries = np.unique(side.query_ids)
    if len(queries) < 2:
        raise ConfigError(f"the calibration side holds {len(queries)} query: two are needed (calibrate, validate)")
    held = np.random.default_rng(seed + 1).permutation(queries)[: len(queries) // 2]
    validate = np.isin(side.query_ids, held)
    return side.take(np.flatnonzero(~validate)), side.take(np.flatnonzero(validate))


def calibration_feeds(rows: SpecRows, *, n_rows: int, batch_rows: int, seed: int) -> FeedBatches:
    """A seeded draw of ``n_rows`` rows (all when fewer), in batches of about ``batch_rows`` rows as the model takes.

    In the query + candidates layout whole queries are drawn; a batch holds whole queries too.
    """
    rng = np.random.default_rng(seed)
    if rows.query_layout:
        queries = rng.permutation(np.unique(rows.query_ids))
        sizes = np.bincount(rows.query_ids)[queries]
        kept = queries[: max(1, int(np.searchsorted(np.cumsum(sizes), n_rows, side="right")))]
        index = np.flatnonzero(np.isin(rows.query_ids, kept))
    else:
        index = np.sort(rng.choice(len(rows), size=min(n_rows, len(rows)), replace=False))
    drawn = rows.take(index)
    return FeedBatches(tuple(drawn.batches(batch_rows)))


def _timing_batch(rows: SpecRows, n: int) -> dict[str, Any]:
    """``n`` evaluation rows (cycled when fewer) as model inputs."""
    return rows.take(np.arange(n) % len(rows)).batch(0, n)


class _Judge:
    """Scores and times variants on the spec's rows, each session opened as the served instance opens it."""

    def __init__(self, spec: ModelSpec, config: SpecQuantizeConfig) -> None:
        self.spec, self.config = spec, config
        self.threads = config.threads or _served_threads()
        self.cutoffs = tuple(sorted({*spec.metrics.cutoffs, 10}))  # the budget is on NDCG@10

    def metrics(self, variant: PrecisionVariant, rows: SpecRows) -> dict[str, float]:
        scorer = onnx_rows_scorer(variant.path, self.spec, threads=self.threads, runtime=variant.runtime)
        probabilities = self.spec.output.kind is ScoreKind.PROBABILITY
        return evaluate_rows(scorer, rows, cutoffs=self.cutoffs, probabilities=probabilities)

    def speed(
        self, variants: list[PrecisionVariant], rows: SpecRows, progress: Progress
    ) -> dict[str, dict[int, Spread]]:
        """Rows per second of every variant at every batch, in shuffled rounds (one session open at a time)."""
        batches = {b: _timing_batch(rows, b) for b in self.config.batches}
        figures: dict[tuple[str, int], list[float]] = {}
        by_name = {v.name: v for v in variants}
        order = shuffled_trials(list(by_name), self.config.repeats, self.config.seed)
        for done, (name, round_index) in enumerate(order, 1):
            variant = by_name[name]
            scorer = onnx_rows_scorer(variant.path, self.spec, threads=self.threads, runtime=variant.runtime)
            for b, _ in shuffled_trials(self.config.batches, 1, self.config.seed + done):
                batch = batches[b]
                figures.setdefault((name, b), []).append(items_per_s(partial(scorer, batch), b, self.config.min_time_s))
            del scorer
            gc.collect()
            progress(f"speed {done}/{len(order)}: {name} (round {round_index + 1})")
        return {name: {b: spread(figures[(name, b)]) for b in self.config.batches} for name in by_name}


def _group_nodes(source: Path) -> dict[str, list[str]]:
    nodes = graph_nodes(onnx.load(str(source), load_external_data=False))
    groups = {g: [n.name for n in nodes if n.op_type in ops] for g, ops in OP_GROUPS.items()}
    return {g: names for g, names in groups.items() if names}


def _sensitivity(
    groups: dict[str, list[str]],
    quantize: Callable[[tuple[str, ...], str], PrecisionVariant],
    validate: Callable[[PrecisionVariant], QualityDelta],
    budget: Budget,
    progress: Progress,
) -> tuple[dict[str, dict[str, Any]], tuple[str, ...], PrecisionVariant | None]:
    """Each group alone in INT8, then the mix of those that keep the budget (costliest dropped until it holds)."""
    every = [n for names in groups.values() for n in names]
    costs, report = {}, {}
    for group, names in groups.items():
        progress(f"sensitivity: {group} alone in INT8 ({len(names)} nodes)")
        delta = validate(quantize(tuple(n for n in every if n not in names), f"sensitivity_{group}"))
        costs[group] = budget.cost(delta)
        report[group] = {**delta.to_dict(), "nodes": len(names), "budget_share": costs[group]}
    chosen = sorted((g for g in groups if costs[g] <= 1.0), key=lambda g: costs[g])
    while chosen:
        quantized = {n for g in chosen for n in groups[g]}
        variant = quantize(tuple(n for n in every if n not in quantized), "int8_mixed")
        if budget.allows(validate(variant)):
            return report, tuple(chosen), variant
        chosen.pop()  # the costliest alone goes back to float
    return report, (), None


def _modelopt(config: SpecQuantizeConfig, feeds: FeedBatches, progress: Progress) -> PrecisionVariant | str:
    """ModelOpt's INT8 (``max`` calibration) on the same calibration rows, or why there is none."""
    from tritonrec.quantize.modelopt_ptq import ModelOptMethod, find_modelopt_python, quantize_modelopt

    if find_modelopt_python() is None:
        return "ModelOpt is not installed here (make tools-modelopt)"
    progress(f"NVIDIA ModelOpt INT8, max calibration on {len(feeds):,} rows")
    done = quantize_modelopt(
        config.source, config.out_dir / "variants" / "int8_modelopt_max.onnx", feeds, method=ModelOptMethod.MAX
    )
    if done.path is None:
        return f"ModelOpt failed: {done.error}"
    return PrecisionVariant(name="int8-modelopt-max", path=done.path, notes=f"ModelOpt {done.version} Q/DQ, max")


def _variants(
    config: SpecQuantizeConfig,
    feeds: FeedBatches,
    validate: Callable[[PrecisionVariant], QualityDelta],
    progress: Progress,
) -> tuple[list[PrecisionVariant], Calibrator, dict[str, str]]:
    """The variants made from the export, the calibrator with the lowest validation cost, what could not be made.

    FP32, FP16, one Q/DQ INT8 per calibrator, dynamic INT8, row-wise INT8 tables and ModelOpt's INT8; what could not
    be made is named with why.
    """
    variants = [PrecisionVariant(name="fp32", path=config.source, precision="fp32", notes="the export")]
    fp16 = config.export_dir / "model_fp16.onnx"
    if fp16.is_file():
        variants.append(PrecisionVariant(name="fp16", path=fp16, precision="fp16", notes="the export's FP16 file"))
    costs = {}
    for calibrator in config.calibrators:
        progress(f"ONNX Runtime Q/DQ S8S8, {calibrator.value} calibration on {len(feeds):,} rows")
        path = quantize_ort(
            config.source,
            config.out_dir / "variants" / f"int8_ort_{calibrator.value}.onnx",
            OrtRecipe(calibrator=calibrator),
            feeds,
        )
        variant = PrecisionVariant(name=f"int8-ort-{calibrator.value}", path=path, notes="every group INT8")
        costs[calibrator] = config.budget.cost(validate(variant))
        variants.append(variant)
    reduce_range = needs_reduce_range(host_facts().isa)
    dynamic = quantize_ort(
        config.source,
        config.out_dir / "variants" / "int8_ort_dynamic.onnx",
        OrtRecipe(form=OrtForm.DYNAMIC, reduce_range=reduce_range),
        None,
    )
    variants.append(
        PrecisionVariant(
            name="int8-ort-dynamic",
            path=dynamic,
            batch_independent=False,
            notes=f"dynamic MatMul quantization, reduce_range={reduce_range}",
        )
    )
    if embedding_tables(onnx.load(str(config.source), load_external_data=False)):
        progress("row-wise INT8 embedding tables (dequantized after the gather)")
        tables = quantize_tables(config.source, config.out_dir / "variants" / "int8_tables.onnx")
        before = sum(t["bytes_fp32"] for t in tables.tables.values())
        variants.append(
            PrecisionVariant(
                name="int8-tables",
                path=tables.path,
                notes=f"{len(tables.tables)} tables row-wise INT8 ({before / 1e6:.1f} MB -> "
                f"{(before - tables.bytes_saved) / 1e6:.1f} MB), the rest FP32",
            )
        )
    skipped = {}
    if config.modelopt:
        made = _modelopt(config, feeds, progress)
        if isinstance(made, str):
            skipped["int8-modelopt-max"] = made
        else:
            variants.append(made)
    return variants, min(costs, key=lambda c: costs[c]), skipped


def run_spec_quantize(spec: ModelSpec, config: SpecQuantizeConfig, *, progress: Progress = quiet) -> SpecQuantizeResult:
    """Run every step (see the module docstring) into ``config.out_dir``.

    Raises:
        ExportError: the export folder lacks ``model.onnx``, or a quantizer failed.
        DataError: the spec's data cannot be read.
        ConfigError: the calibration side holds fewer than two queries.
    """
    if not config.source.is_file():
        raise ExportError(f"{config.source} not found: run `tritonrec export onnx --spec SPEC --out DIR` first")
    config.out_dir.mkdir(parents=True, exist_ok=True)
    evaluate = spec_rows(spec, RowsSplit.EVALUATE)
    calibrate_side, validate_rows = _split_calibration(spec_rows(spec, RowsSplit.CALIBRATE), config.seed)
    feeds = calibration_feeds(
        calibrate_side, n_rows=config.calibration_rows, batch_rows=config.batch_rows, seed=config.seed
    )
    judge = _Judge(spec, config)
    fp32 = PrecisionVariant(name="fp32", path=config.source, precision="fp32")
    progress(f"FP32 on {len(validate_rows):,} validation rows")
    valid_reference = judge.metrics(fp32, validate_rows)

    def validate(variant: PrecisionVariant) -> QualityDelta:
        return quality_delta(judge.metrics(variant, validate_rows), valid_reference)

    variants, calibrator, skipped = _variants(config, feeds, validate, progress)

    def quantize(excluded: tuple[str, ...], stem: str) -> PrecisionVariant:
        path = quantize_ort(
            config.source,
            config.out_dir / "variants" / f"{stem}.onnx",
            OrtRecipe(calibrator=calibrator, exclude_nodes=excluded),
            feeds,
        )
        return PrecisionVariant(name=stem.replace("_", "-"), path=path)

    groups = _group_nodes(config.source)
    sensitivity, mixed_groups, mixed = _sensitivity(groups, quantize, validate, config.budget, progress)
    if mixed is not None and set(mixed_groups) != set(groups):  # all groups = the calibrator's full-INT8 variant
        kept = ", ".join(g for g in groups if g not in mixed_groups)
        variants.append(
            PrecisionVariant(
                name="int8-mixed", path=mixed.path, notes=f"Q/DQ S8S8 ({calibrator.value}); FP32 groups: {kept}"
            )
        )
    if config.openvino:
        from tritonrec.quantize.openvino_ptq import quantize_openvino, quantize_openvino_accuracy_control

        progress("OpenVINO: NNCF post-training INT8 quantization")
        xml = quantize_openvino(config.source, config.out_dir / "variants" / "openvino_int8.xml", feeds)
        variants += [
            PrecisionVariant(
                name="openvino-fp32", path=config.source, runtime="openvino", precision="fp32", notes="OpenVINO f32"
            ),
            PrecisionVariant(name="openvino-int8", path=xml, runtime="openvino", notes="NNCF PTQ (performance)"),
        ]
        progress("OpenVINO: NNCF accuracy-controlled INT8 (the budget on the validation rows)")
        items = validation_items(validate_rows)
        metric = budget_metric(onnx_rows_scorer(config.source, spec, threads=judge.threads), config.budget)
        try:
            controlled = quantize_openvino_accuracy_control(
                config.source, config.out_dir / "variants" / "openvino_int8_ac.xml", feeds, items, metric, max_drop=1.0
            )
        except ExportError as e:  # NNCF's own failure on this graph: recorded, the other variants stand
            skipped["openvino-int8-ac"] = str(e)
        else:
            variants.append(
                PrecisionVariant(
                    name="openvino-int8-ac",
                    path=controlled,
                    runtime="openvino",
                    notes="NNCF accuracy control: operations back to FP32 until the budget holds (validation rows)",
                )
            )

    progress(f"FP32 on {len(evaluate):,} evaluation rows")
    reference = judge.metrics(fp32, evaluate)
    metrics = {}
    for variant in variants:
        progress(f"evaluation rows: {variant.name}")
        metrics[variant.name] = reference if variant.name == "fp32" else judge.metrics(variant, evaluate)
    speed = judge.speed(variants, evaluate, progress)
    rows = []
    for v in variants:
        delta = quality_delta(metrics[v.name], reference)
        rows.append(SpecVariantRow(v, metrics[v.name], delta, config.budget.allows(delta), speed[v.name]))
    winner = _winner(rows, config.serving_batch)
    published = config.publish or winner or (_smallest_loss(rows, config.budget) if config.fallback else None)
    if published is not None and not any(v.name == published and v.precision == "int8" for v in variants):
        raise ConfigError(f"--publish {published!r}: the sensitivity pass found no mix inside the budget")
    chosen = next((v for v in variants if v.name == published), None)
    publish_int8(config.export_dir, config.out_dir, ("model.onnx", "model_fp16.onnx", SPEC_EXPORT_FILE), chosen)
    return SpecQuantizeResult(
        spec=spec,
        config=config,
        rows=rows,
        calibrator=calibrator,
        sensitivity=sensitivity,
        mixed_groups=mixed_groups,
        winner=winner,
        published=published,
        skipped=skipped,
        counts={"calibration": len(feeds), "validation": len(validate_rows), "evaluation": len(evaluate)},
    )


ValidationItem = tuple[dict[str, Any], Any]
"""One query's model inputs and its labels."""


def validation_items(rows: SpecRows) -> list[ValidationItem]:
    """Each query of ``rows`` that holds a positive, as ``(model inputs, labels)`` (what NNCF validates on)."""
    return [(rows.batch(a, b), rows.labels[a:b]) for a, b in rows.queries() if rows.labels[a:b].any()]


def budget_metric(
    reference: Callable[[dict[str, Any]], Any], budget: Budget
) -> Callable[[Callable[[dict[str, Any]], Any], Sequence[ValidationItem]], float]:
    """A metric for NNCF's accuracy control that is the quality budget: 1 minus the share of it a model uses.

    ``reference`` (the FP32 model) scores 1 on any items; a model at the edge of the budget (its AUC or NDCG@10
    drop on those items equal to the budget's) scores 0, so ``max_drop = 1`` (absolute) is the budget. (Not 0 for
    FP32: NNCF also divides by the initial metric.) A query of one class has no AUC: only its NDCG@10 counts.
    """

    def figures(infer: Callable[[dict[str, Any]], Any], chosen: Sequence[ValidationItem]) -> dict[str, float]:
        scores = np.concatenate([np.asarray(infer(f), dtype=np.float64).reshape(-1) for f, _ in chosen])
        labels = np.concatenate([y for _, y in chosen])
        groups = np.repeat(np.arange(len(chosen)), [len(y) for _, y in chosen])
        return grouped_metrics(scores, labels, groups, cutoffs=(10,))

    def metric(infer: Callable[[dict[str, Any]], Any], chosen: Sequence[ValidationItem]) -> float:
        base, got = figures(reference, chosen), figures(infer, chosen)
        costs = [(base["ndcg@10"] - got["ndcg@10"]) / budget.max_ndcg_drop]
        if np.isfinite(got["auc"]) and np.isfinite(base["auc"]):
            costs.append((base["auc"] - got["auc"]) / budget.max_auc_drop)
        return 1.0 - max(costs)

    return metric


def _winner(rows: list[SpecVariantRow], serving_batch: int) -> str | None:
    """The fastest batch-independent INT8 variant within the budget, measurably faster than FP32."""
    fp32 = next(r for r in rows if r.variant.name == "fp32").speed[serving_batch]
    eligible = [
        r
        for r in rows
        if r.variant.precision == "int8"
        and r.within_budget
        and r.variant.batch_independent
        and compare(r.speed[serving_batch], fp32).measurable
        and r.speed[serving_batch].median > fp32.median
    ]
    return max(eligible, key=lambda r: r.speed[serving_batch].median).variant.name if eligible else None


def _smallest_loss(rows: list[SpecVariantRow], budget: Budget) -> str | None:
    """The batch-independent INT8 variant that uses the least of the budget."""
    int8 = [r for r in rows if r.variant.precision == "int8" and r.variant.batch_independent]
    return min(int8, key=lambda r: budget.cost(r.delta)).variant.name if int8 else None


def spec_quantize_markdown(result: SpecQuantizeResult, record: Mapping[str, Any]) -> str:
    """The report's Markdown: the variants table, the sensitivity pass and the winner."""
    config, batches = result.config, result.config.batches
    counts = result.counts
    lines = markdown_header(f"Precision variants of `{result.spec.name}` on its own rows", record)
    lines += [
        f"Calibration: {counts['calibration']:,} rows; validation (calibrator, sensitivity, mixed): "
        f"{counts['validation']:,} rows; evaluation (this table): {counts['evaluation']:,} rows. Budget: AUC drop "
        f"<= {config.budget.max_auc_drop}, NDCG@10 drop <= {config.budget.max_ndcg_drop}. Speed: rows/s, median "
        f"(min-max) of {config.repeats} shuffled rounds, {record['threads']} intra-op thread(s) per session as one "
        "served instance has them.",
        "",
        "| variant | runtime | AUC | Δ | NDCG@10 | Δ | logloss | MB | "
        + " | ".join(f"rows/s B={b}" for b in batches)
        + f" | x FP32 @B={config.serving_batch} | in budget |",
        "|---" * (10 + len(batches)) + "|",
    ]
    for entry, row in zip(record["variants"], result.rows, strict=True):
        ratio = entry["serving_batch_speedup"]
        lines.append(
            f"| {row.variant.name} | {row.variant.runtime} | {row.delta.metrics['auc']:.4f} | {row.delta.auc:+.4f} "
            f"| {row.delta.metrics['ndcg@10']:.4f} | {row.delta.ndcg:+.4f} | {row.delta.metrics['logloss']:.4f} "
            f"| {entry['bytes'] / 1e6:.1f} | "
            + " | ".join(row.speed[b].text() for b in batches)
            + f" | {ratio['ratio']:.2f} ({ratio['ratio_min']:.2f}-{ratio['ratio_max']:.2f}) "
            f"| {'yes' if row.within_budget else 'no'} |"
        )
    lines += ["", f"Calibrator (lowest validation cost): {result.calibrator.value}.", "", "Sensitivity (validation):"]
    for group, figures in result.sensitivity.items():
        lines.append(
            f"- {group} alone in INT8 ({figures['nodes']} nodes): AUC {figures['auc_delta']:+.4f}, NDCG@10 "
            f"{figures['ndcg@10_delta']:+.4f}, {figures['budget_share']:.2f} of the budget"
        )
    mixed = ", ".join(result.mixed_groups) or "none"
    lines += ["", f"Mixed precision, INT8 groups: {mixed}.", ""]
    lines += [f"Not made: `{name}`: {why}." for name, why in result.skipped.items()]
    lines += [""] if result.skipped else []
    lines.append(
        f"Winner: `{result.winner}`."
        if result.winner
        else "Winner: none (no INT8 variant is both within the budget and measurably faster than FP32 here)."
    )
    if result.published:
        chosen = (
            "the winner"
            if result.published == result.winner
            else "named by --publish"
            if result.config.publish
            else "no winner: the smallest quality loss, --publish-fallback"
        )
        lines.append(
            f"`{result.published}` ({chosen}) is written as model_int8.*: serve it with `tritonrec repo build --spec "
            f"SPEC --export {config.out_dir} --cpu-precision int8`."
        )
    return "\n".join(lines) + "\n"
