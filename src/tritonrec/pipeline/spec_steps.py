"""The steps of a team's own model, read from its spec: rows, export, and quality on the evaluation rows.

The same steps as the bundled model's (:mod:`tritonrec.pipeline.steps`), keyed by a
:class:`~tritonrec.spec.model_spec.ModelSpec` instead of a checkpoint; they never print.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from tritonrec.export.spec_export import SpecExport, export_spec
from tritonrec.export.tensorrt_build import TrtBuild
from tritonrec.metrics import RowsScorer, evaluate_rows, grouped_metrics, score_rows
from tritonrec.repository.spec_variants import SpecVariant, SpecVariantKind, build_spec_repository
from tritonrec.repository.trt_builds import spec_build
from tritonrec.spec.model_spec import ModelSpec, ScoreKind
from tritonrec.spec.rows import SpecRows, read_rows, split_rows

__all__ = [
    "RowsSplit",
    "SpecQuality",
    "spec_export_step",
    "spec_quality_step",
    "spec_repository_step",
    "spec_rows",
    "spec_trt_build",
]


class RowsSplit(enum.StrEnum):
    """Which of a spec's rows: the held-out queries, the others, or all."""

    EVALUATE = "evaluate"
    CALIBRATE = "calibrate"
    ALL = "all"


def spec_rows(spec: ModelSpec, split: RowsSplit = RowsSplit.EVALUATE) -> SpecRows:
    """The spec's rows of ``split``.

    Raises:
        DataError: the data file or a column is missing or malformed, or the split is empty.
    """
    rows = read_rows(spec)
    if split is RowsSplit.ALL:
        return rows
    calibrate, evaluate = split_rows(spec, rows)
    return evaluate if split is RowsSplit.EVALUATE else calibrate


def spec_export_step(
    spec: ModelSpec, out_dir: Path, *, fp16: bool = True, external_data: bool | None = None, parity_rows: int = 4096
) -> SpecExport:
    """Export the spec's model into ``out_dir``, its parity measured on the evaluation rows."""
    return export_spec(spec, spec_rows(spec), out_dir, fp16=fp16, external_data=external_data, parity_rows=parity_rows)


@dataclass(frozen=True, slots=True)
class SpecQuality:
    """A spec's model scored on its rows by the shared metrics module.

    Attributes:
        runtime: ``eager``, ``onnxruntime``, ``openvino`` or ``triton`` (served).
        split: which rows.
        metrics: :func:`~tritonrec.metrics.grouped_metrics` (AUC, logloss, NDCG@K, HR@K, MRR, counts).
        max_abs_diff: served only, when asked: the largest |served - in-process| score over every row.
        compared_with: what the served scores were compared with (``eager`` or the file).
    """

    runtime: str
    split: RowsSplit
    metrics: dict[str, float]
    max_abs_diff: float | None = None
    compared_with: str | None = None


def _in_process(spec: ModelSpec, onnx: Path | None) -> tuple[RowsScorer, str]:
    """The spec's model in process: the ``onnx`` file (OpenVINO for ``.xml``), the spec's ONNX model, or eager."""
    from tritonrec.scorers.rows import spec_scorer

    path = onnx or spec.model.onnx
    runtime = "eager" if path is None else "openvino" if path.suffix == ".xml" else "onnxruntime"
    return spec_scorer(spec, runtime, path), runtime


def spec_quality_step(
    spec: ModelSpec,
    *,
    onnx: Path | None = None,
    url: str | None = None,
    model: str | None = None,
    split: RowsSplit = RowsSplit.EVALUATE,
    compare: bool = False,
) -> SpecQuality:
    """Score the spec's model on its ``split`` rows: eager, the exported ``onnx`` file, or served at ``url``.

    Served: one request per query to ``model`` (default ``<spec name>_cpu``) over gRPC, scored by the same metrics;
    with ``compare``, every row is also scored in process (``onnx`` if given, else eager) and the largest
    difference is reported.
    """
    from tritonrec.scorers.rows import served_query_scores

    rows = spec_rows(spec, split)
    probabilities = spec.output.kind is ScoreKind.PROBABILITY
    if url is not None:
        scores = served_query_scores(url, model or f"{spec.name}_cpu", rows)
        metrics = grouped_metrics(
            scores, rows.labels, rows.query_ids, cutoffs=spec.metrics.cutoffs, probabilities=probabilities
        )
        if not compare:
            return SpecQuality(runtime="triton", split=split, metrics=metrics)
        scorer, runtime = _in_process(spec, onnx)
        difference = float(np.abs(scores - score_rows(scorer, rows)).max(initial=0.0))
        compared = str(onnx) if onnx is not None else runtime
        return SpecQuality("triton", split, metrics, max_abs_diff=difference, compared_with=compared)
    scorer, runtime = _in_process(spec, onnx)
    metrics = evaluate_rows(scorer, rows, cutoffs=spec.metrics.cutoffs, probabilities=probabilities)
    return SpecQuality(runtime=runtime, split=split, metrics=metrics)


def spec_repository_step(
    spec: ModelSpec, export_dir: Path, out: Path, variants: list[SpecVariant]
) -> dict[str, list[Path]]:
    """Write the spec's variants into the repository ``out``, warmed up on a query of its evaluation rows."""
    return build_spec_repository(out, spec, variants, export_dir=export_dir, warmup=spec_rows(spec))


def spec_trt_build(
    spec: ModelSpec,
    onnx: Path,
    *,
    out_dir: Path | None = None,
    max_batch: int | None = None,
    max_candidates: int | None = None,
    timing_cache: Path | None = None,
) -> TrtBuild:
    """The FP16 engine build of the spec's ``onnx`` with its ``<name>_trt_fp16`` profile, tuned on a real query.

    ``max_batch`` (rows, or queries in the query + candidates layout) and ``max_candidates`` override the
    variant's defaults; the config ``repo build --spec`` writes must then be given the same.
    """
    base = SpecVariant(kind=SpecVariantKind.TRT_FP16)
    batching = base.batching_of(spec)
    variant = replace(
        base,
        batching=replace(batching, max_batch_size=max_batch or batching.max_batch_size),
        max_candidates=max_candidates or base.max_candidates,
    )
    return spec_build(spec, onnx, warmup=spec_rows(spec), variant=variant, out_dir=out_dir, timing_cache=timing_cache)
