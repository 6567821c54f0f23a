"""``tritonrec quantize``: every precision variant of an export, judged by ranking quality and CPU speed.

Steps (each a function of :mod:`tritonrec.quantize`; this module only composes them):

1. calibration rows from real training users (:func:`~tritonrec.quantize.calibration.calibration_set`);
2. Q/DQ S8S8 INT8 per calibrator: ONNX Runtime (min-max, entropy, percentile) and NVIDIA ModelOpt;
3. sensitivity per layer group and the mixed-precision Q/DQ model (validation split, quality budget);
4. CPU forms of the mixed model (QOperator U8S8, dynamic), OpenVINO FP32 and NNCF INT8;
5. every variant scored on the test split, timed side by side, its kernels profiled;
6. the winner: the fastest batch-independent variant within the budget, written as ``model_int8.onnx``
   (or ``model_int8.xml`` for OpenVINO) beside the export's graphs and ``export.json``, so
   ``tritonrec repo build --export OUT --cpu-precision int8`` serves it.

Every variant is made from the export's padded graph ``model.onnx`` (``history [B, L]``, ``candidates [B, N]``):
the INT8 file is a padded graph, and ``ranker_cpu`` serves it in the padded layout (the FP32 default is the ragged
graph ``model_ragged.onnx``; see ``tritonrec.repository.variants.cpu_layout``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnx

from tritonrec.backends.ranker_cpu_model import open_session
from tritonrec.data.registry import PreparedData
from tritonrec.data.splits import EvalSet
from tritonrec.errors import ConfigError, ExportError
from tritonrec.export.manifest import REPORT_FILE, read_export_spec
from tritonrec.metrics import evaluate
from tritonrec.quantize.calibration import CalibrationSet, calibration_set
from tritonrec.quantize.groups import LayerGroup, NodeInfo, graph_nodes, nodes_by_group
from tritonrec.quantize.modelopt_ptq import ModelOptMethod, quantize_modelopt
from tritonrec.quantize.ort_quant import (
    DEFAULT_OP_TYPES,
    Calibrator,
    OrtForm,
    OrtRecipe,
    needs_reduce_range,
    quantize_ort,
)
from tritonrec.quantize.precisions import CALIBRATORS, CalibratorName, PrecisionVariant, publish_int8
from tritonrec.quantize.sensitivity import (
    Budget,
    GroupResult,
    MixedResult,
    QualityDelta,
    choose_mixed,
    quality_delta,
    run_sensitivity,
)
from tritonrec.quantize.speed import OpProfile, SpeedConfig, SpeedModel, measure_speed, profile_ops, speed_batch
from tritonrec.records import Progress, host_facts, quiet
from tritonrec.scorers.ort import session_scorer
from tritonrec.spread import Spread, compare

__all__ = ["QUANTIZE_REPORT", "QuantizeConfig", "QuantizeResult", "VariantRow", "run_quantize"]

QUANTIZE_REPORT = "quantize.json"
MIXED_FILE = "model_qdq.onnx"


@dataclass(frozen=True, slots=True, kw_only=True)
class QuantizeConfig:
    """What ``tritonrec quantize`` does.

    Attributes:
        export_dir: the folder ``tritonrec export onnx`` wrote (``model.onnx``: the padded graph quantized here,
            ``model_ragged.onnx``, ``model_fp16.onnx``, ``export.json``).
        out_dir: where the variants, ``model_qdq.onnx``, the winner and ``quantize.json`` go.
        calibrators: the calibrators compared.
        calibration_users: real training rows to calibrate on.
        budget: the quality budget (mixed precision and the winner must meet it).
        speed: how the variants are timed.
        serving_batch: users per batch the CPU goal is judged at (must be one of ``speed.batches``).
        speedup_goal: the candidates/s ratio over FP32 the CPU goal asks for.
        openvino: also quantize with NNCF and time OpenVINO.
        eval_users: score only the first users of each split (0 = all; for quick runs and tests).
        seed: seed of the calibration draw.
    """

    export_dir: Path
    out_dir: Path
    calibrators: tuple[CalibratorName, ...] = CALIBRATORS
    calibration_users: int = 512
    budget: Budget = field(default_factory=Budget)
    speed: SpeedConfig = field(default_factory=SpeedConfig)
    serving_batch: int = 256
    speedup_goal: float = 1.3
    openvino: bool = True
    eval_users: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.serving_batch not in self.speed.batches:
            raise ConfigError(f"serving batch {self.serving_batch} is not among the timed batches {self.speed.batches}")
        if not any(not c.is_modelopt for c in self.calibrators):
            raise ConfigError("name at least one ONNX Runtime calibrator (minmax, entropy, percentile)")
        if self.calibration_users < 1 or self.eval_users < 0 or self.speedup_goal <= 0:
            raise ConfigError("calibration_users must be >= 1, eval_users >= 0, speedup_goal > 0")

    @property
    def source(self) -> Path:
        """The FP32 padded ONNX file every variant is made from (the export's ``model.onnx``)."""
        return self.export_dir / "model.onnx"


@dataclass(frozen=True, slots=True)
class VariantRow:
    """One variant's figures: test quality vs FP32, size, speed, what ran in INT8."""

    variant: PrecisionVariant
    delta: QualityDelta
    within_budget: bool
    speed: dict[int, Spread]
    profile: OpProfile | None

    def to_dict(self, serving_batch: int) -> dict[str, Any]:
        """The JSON entry of ``variants`` (the keys ``tritonrec quantize --json`` promises first)."""
        per_batch = {f"cand_per_s_{b}": round(s.median) for b, s in self.speed.items()}
        return {
            "name": self.variant.name,
            "ndcg@10": self.delta.metrics["ndcg@10"],
            "auc": self.delta.metrics["auc"],
            "logloss": self.delta.metrics["logloss"],
            "ndcg@10_delta": self.delta.ndcg,
            "auc_delta": self.delta.auc,
            "logloss_delta": self.delta.logloss,
            "bytes": self.variant.bytes(),
            **per_batch,
            "cand_per_s_256": per_batch.get("cand_per_s_256"),
            "speed": {str(b): s.to_dict() for b, s in self.speed.items()},
            "within_budget": self.within_budget,
            "serving_batch_speedup": None,
            "profile": self.profile.to_dict() if self.profile else None,
            **self.variant.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class QuantizeResult:
    """Everything ``tritonrec quantize`` measured and wrote."""

    config: QuantizeConfig
    rows: list[VariantRow]
    sensitivity: list[GroupResult]
    mixed: MixedResult
    calibrator_for_mixed: Calibrator
    valid_reference: dict[str, float]
    modelopt_errors: dict[str, str]
    winner: str | None
    goal: dict[str, Any]
    isa: tuple[str, ...]

    def row(self, name: str) -> VariantRow:
        """The row of variant ``name``."""
        return next(r for r in self.rows if r.variant.name == name)

    def to_dict(self) -> dict[str, Any]:
        """The ``quantize.json`` record body (the report adds command, host and versions)."""
        fp32 = self.row("fp32").speed[self.config.serving_batch]
        variants = []
        for r in self.rows:
            entry = r.to_dict(self.config.serving_batch)
            entry["serving_batch_speedup"] = compare(r.speed[self.config.serving_batch], fp32).to_dict()
            variants.append(entry)
        return {
            "variants": variants,
            "isa": list(self.isa),
            "budget": {
                "max_auc_drop": self.config.budget.max_auc_drop,
                "max_ndcg_drop": self.config.budget.max_ndcg_drop,
            },
            "serving_batch": self.config.serving_batch,
            "candidates": self.config.speed.candidates,
            "repeats": self.config.speed.repeats,
            "calibration_users": self.config.calibration_users,
            "sensitivity": {
                "split": "valid",
                "calibrator": self.calibrator_for_mixed.value,
                "reference": {k: self.valid_reference[k] for k in ("ndcg@10", "auc", "logloss")},
                "groups": [g.to_dict() for g in self.sensitivity],
            },
            "mixed": {
                "kept_fp": [g.value for g in self.mixed.kept_fp],
                "excluded_nodes": list(self.mixed.excluded_nodes),
                "valid": self.mixed.delta.to_dict(),
                "valid_within_budget": self.mixed.within_budget,
                "trail": self.mixed.trail,
                "file": str(self.mixed.path),
            },
            "modelopt_errors": self.modelopt_errors,
            "winner": self.winner,
            "cpu_goal": self.goal,
        }


class _Scorer:
    """Scores files on a split with the shared metrics module (sessions opened as ``ranker_cpu`` opens them)."""

    def __init__(self, rows: EvalSet, threads: int) -> None:
        self.rows, self.threads = rows, threads

    def metrics(self, path: Path, runtime: str = "onnxruntime") -> dict[str, float]:
        return evaluate(session_scorer(open_session(path, self.threads, runtime)), self.rows)


def _quantizable(nodes: list[NodeInfo]) -> dict[LayerGroup, list[NodeInfo]]:
    return {g: [n for n in group if n.op_type in DEFAULT_OP_TYPES] for g, group in nodes_by_group(nodes).items()}


def _ort_calibrated(
    config: QuantizeConfig, rows: CalibrationSet, valid: _Scorer, reference: Mapping[str, float], progress: Progress
) -> tuple[list[PrecisionVariant], Calibrator]:
    """One full-INT8 Q/DQ model per ONNX Runtime calibrator; the one with the lowest validation cost wins."""
    variants, costs = [], {}
    for name in (c for c in config.calibrators if not c.is_modelopt):
        calibrator = Calibrator(name.value)
        progress(f"ONNX Runtime Q/DQ S8S8, {calibrator.value} calibration on {len(rows)} training users")
        path = quantize_ort(
            config.source,
            config.out_dir / "variants" / f"int8_ort_{calibrator.value}.onnx",
            OrtRecipe(calibrator=calibrator),
            rows,
        )
        costs[calibrator] = config.budget.cost(quality_delta(valid.metrics(path), reference))
        variants.append(
            PrecisionVariant(
                name=f"int8-ort-{calibrator.value}", path=path, notes=f"ORT {calibrator.value}, all groups INT8"
            )
        )
    return variants, min(costs, key=lambda c: costs[c])


def _modelopt(
    config: QuantizeConfig, rows: CalibrationSet, progress: Progress
) -> tuple[list[PrecisionVariant], dict[str, str]]:
    variants, errors = [], {}
    for name in (c for c in config.calibrators if c.is_modelopt):
        method = ModelOptMethod(name.value.removeprefix("modelopt-"))
        progress(f"NVIDIA ModelOpt ONNX PTQ, {method.value} calibration")
        out = config.out_dir / "variants" / f"int8_modelopt_{method.value}.onnx"
        result = quantize_modelopt(config.source, out, rows, method=method)
        if result.path is None:
            errors[name.value] = result.error or "unknown failure"
            continue
        variants.append(
            PrecisionVariant(name=f"int8-{name.value}", path=result.path, notes=f"ModelOpt {result.version}")
        )
    return variants, errors


def _mixed_forms(
    config: QuantizeConfig, rows: CalibrationSet, mixed: MixedResult, calibrator: Calibrator
) -> list[PrecisionVariant]:
    kept = ", ".join(g.value for g in mixed.kept_fp) or "none"
    excluded = mixed.excluded_nodes
    reduce_range = needs_reduce_range(host_facts().isa)
    qop = quantize_ort(
        config.source,
        config.out_dir / "variants" / "int8_mixed_qop_u8s8.onnx",
        OrtRecipe(form=OrtForm.QOP_U8S8, calibrator=calibrator, exclude_nodes=excluded, reduce_range=reduce_range),
        rows,
    )
    dynamic = quantize_ort(
        config.source,
        config.out_dir / "variants" / "int8_mixed_dynamic.onnx",
        OrtRecipe(form=OrtForm.DYNAMIC, exclude_nodes=excluded, reduce_range=reduce_range),
        None,
    )
    return [
        PrecisionVariant(
            name="int8-mixed", path=mixed.path, notes=f"Q/DQ S8S8 ({calibrator.value}); FP32 groups: {kept}"
        ),
        PrecisionVariant(
            name="int8-mixed-qop-u8s8",
            path=qop,
            notes=f"QOperator U8S8, reduce_range={reduce_range}; FP32 groups: {kept}",
        ),
        PrecisionVariant(
            name="int8-mixed-dynamic",
            path=dynamic,
            batch_independent=False,
            notes=f"dynamic MatMul quantization, reduce_range={reduce_range}; FP32 groups: {kept}",
        ),
    ]


def _openvino(config: QuantizeConfig, rows: CalibrationSet, progress: Progress) -> list[PrecisionVariant]:
    from tritonrec.quantize.openvino_ptq import quantize_openvino

    progress("OpenVINO: NNCF post-training INT8 quantization")
    xml = quantize_openvino(config.source, config.out_dir / "variants" / "openvino_int8.xml", rows)
    return [
        PrecisionVariant(
            name="openvino-fp32", path=config.source, runtime="openvino", precision="fp32", notes="OpenVINO CPU, f32"
        ),
        PrecisionVariant(name="openvino-int8", path=xml, runtime="openvino", notes="NNCF PTQ (performance preset)"),
    ]


def _winner(rows: list[VariantRow], serving_batch: int) -> str | None:
    """The fastest batch-independent non-FP32 variant within the budget that is measurably faster than FP32."""
    fp32 = next(r for r in rows if r.variant.name == "fp32").speed[serving_batch]
    eligible = [
        r
        for r in rows
        if r.variant.precision != "fp32"
        and r.within_budget
        and r.variant.batch_independent
        and compare(r.speed[serving_batch], fp32).measurable
        and r.speed[serving_batch].median > fp32.median
    ]
    return max(eligible, key=lambda r: r.speed[serving_batch].median).variant.name if eligible else None


def _goal(rows: list[VariantRow], winner: str | None, config: QuantizeConfig) -> dict[str, Any]:
    fp32 = next(r for r in rows if r.variant.name == "fp32").speed[config.serving_batch]
    best = max(
        (r for r in rows if r.within_budget and r.variant.name != "fp32"),
        key=lambda r: r.speed[config.serving_batch].median,
        default=None,
    )
    if best is None:
        return {"met": False, "goal": config.speedup_goal, "best": None, "why": "no variant is within the budget"}
    comparison = compare(best.speed[config.serving_batch], fp32, a_name=best.variant.name, b_name="fp32")
    return {
        "met": comparison.ratio >= config.speedup_goal and comparison.measurable,
        "goal": config.speedup_goal,
        "best": best.variant.name,
        "speedup": comparison.to_dict(),
        "winner": winner,
    }


def _publish(config: QuantizeConfig, winner: PrecisionVariant | None) -> None:
    """Make ``out_dir`` an export folder ``tritonrec repo build --export`` reads, with the winner as INT8 file.

    Every graph of the export comes along (the ragged ``model_ragged.onnx`` that ``ranker_cpu`` serves in FP32 and
    ``model_offsets.onnx`` of the GPU variants too), so the folder builds every variant, not only the INT8 one.
    """
    names = ("model.onnx", "model_ragged.onnx", "model_offsets.onnx", "model_fp16.onnx", REPORT_FILE)
    publish_int8(config.export_dir, config.out_dir, names, winner)


def run_quantize(data: PreparedData, config: QuantizeConfig, *, progress: Progress = quiet) -> QuantizeResult:
    """Run every step (see the module docstring) and write ``quantize.json`` into ``config.out_dir``.

    Raises:
        ExportError: the export folder lacks ``model.onnx`` or a quantizer failed.
        CheckpointError: the export was made for another dataset.
    """
    if not config.source.is_file():
        raise ExportError(f"{config.source} not found: run `tritonrec export onnx` first")
    data.check_fits(read_export_spec(config.source), config.source)
    config.out_dir.mkdir(parents=True, exist_ok=True)
    valid_rows, test_rows = data.valid, data.test
    if config.eval_users:
        valid_rows, test_rows = valid_rows.head(config.eval_users), test_rows.head(config.eval_users)
    valid, test = _Scorer(valid_rows, config.speed.threads), _Scorer(test_rows, config.speed.threads)
    if not hasattr(data.train, "targets"):
        raise ConfigError(f"{data.name.value} has no next-item training examples to calibrate on")
    rows = calibration_set(data.train, users=config.calibration_users, seed=config.seed)  # type: ignore[arg-type]
    progress("FP32 on the validation split")
    reference = valid.metrics(config.source)

    variants = [PrecisionVariant(name="fp32", path=config.source, precision="fp32", notes="the export")]
    fp16 = config.export_dir / "model_fp16.onnx"
    if fp16.is_file():
        variants.append(PrecisionVariant(name="fp16", path=fp16, precision="fp16", notes="the export's FP16 file"))
    calibrated, best = _ort_calibrated(config, rows, valid, reference, progress)
    modelopt_variants, modelopt_errors = _modelopt(config, rows, progress)
    variants += calibrated + modelopt_variants

    groups = _quantizable(graph_nodes(onnx.load(str(config.source), load_external_data=False)))

    def quantize(excluded: tuple[str, ...], stem: str) -> Path:
        name = MIXED_FILE if stem == "mixed" else f"sensitivity/{stem}.onnx"
        return quantize_ort(
            config.source, config.out_dir / name, OrtRecipe(calibrator=best, exclude_nodes=excluded), rows
        )

    sensitivity = run_sensitivity(groups, quantize, valid.metrics, reference, config.budget, progress=progress)
    mixed = choose_mixed(groups, sensitivity, quantize, valid.metrics, reference, config.budget, progress=progress)
    variants += _mixed_forms(config, rows, mixed, best)
    if config.openvino:
        variants += _openvino(config, rows, progress)

    test_reference = test.metrics(config.source)
    deltas = {}
    for variant in variants:
        progress(f"test split: {variant.name}")
        metrics = test_reference if variant.name == "fp32" else test.metrics(variant.path, variant.runtime)
        deltas[variant.name] = quality_delta(metrics, test_reference)
    progress("timing every variant side by side")
    models = {v.name: SpeedModel(v.path, v.runtime) for v in variants}
    speed = measure_speed(models, test_rows, data.spec.n_items, config.speed, progress=progress)
    profile_batch = speed_batch(test_rows, data.spec.n_items, config.serving_batch, config.speed.candidates)
    result_rows = [
        VariantRow(
            v,
            deltas[v.name],
            config.budget.allows(deltas[v.name]),
            speed[v.name],
            profile_ops(models[v.name], profile_batch, threads=config.speed.threads),
        )
        for v in variants
    ]
    winner = _winner(result_rows, config.serving_batch)
    _publish(config, next((v for v in variants if v.name == winner), None))
    result = QuantizeResult(
        config=config,
        rows=result_rows,
        sensitivity=sensitivity,
        mixed=mixed,
        calibrator_for_mixed=best,
        valid_reference={k: float(v) for k, v in reference.items()},
        modelopt_errors=modelopt_errors,
        winner=winner,
        goal=_goal(result_rows, winner, config),
        isa=host_facts().isa,
    )
    (config.out_dir / QUANTIZE_REPORT).write_text(json.dumps(result.to_dict(), indent=2, sort_keys=True) + "\n")
    return result
