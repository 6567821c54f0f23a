"""The TensorRT build a ``ranker_trt_*`` variant needs: its profile from the variant's config, and the plan.

The profile's limits and layout default to those of the repository variant the plan is for (``ranker_trt_fp16``:
the offsets graph ``model_offsets.onnx`` under Triton's ragged batching; ``ranker_trt_int8``: the padded Q/DQ file),
generated from :mod:`tritonrec.repository.variants` with the export's FeatureSpec: the same values
``export/build_trt_engines.sh`` reads from that variant's ``config.pbtxt``. ``tritonrec export trt`` turns its flags
into :class:`ProfileLimits` and calls :func:`variant_build`; with ``--spec``, :func:`spec_build` takes the profile
a spec's ``<name>_trt_fp16`` config states.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from tritonrec.errors import ConfigError, ExportError
from tritonrec.export.manifest import read_export_spec
from tritonrec.export.tensorrt_build import TrtBuild
from tritonrec.export.tensorrt_plan import (
    OPT_BATCH,
    OPT_CANDIDATES,
    ShapeProfile,
    SpecShapeProfile,
    TrtPrecision,
    layer_precisions,
    plan_file,
    plan_source,
)
from tritonrec.repository.spec_variants import TRT_SHAPE_KEYS, SpecVariant, SpecVariantKind, trt_shapes
from tritonrec.repository.variants import VARIANTS, VariantName, graph_file_layout, model_config
from tritonrec.spec.model_spec import ModelSpec
from tritonrec.spec.rows import SpecRows

__all__ = ["QUANTIZE_REPORT_FILE", "ProfileLimits", "spec_build", "variant_build", "variant_profile"]

QUANTIZE_REPORT_FILE = "quantize.json"


@dataclass(frozen=True, slots=True, kw_only=True)
class ProfileLimits:
    """The profile's points a user may set; ``None`` keeps the variant's own maximum.

    Attributes:
        min_batch / opt_batch / max_batch: users per execution.
        min_candidates / opt_candidates / max_candidates: candidates per user.
    """

    min_batch: int = 1
    opt_batch: int = OPT_BATCH
    max_batch: int | None = None
    min_candidates: int = 1
    opt_candidates: int = OPT_CANDIDATES
    max_candidates: int | None = None


def variant_profile(onnx: Path, precision: TrtPrecision) -> ShapeProfile:
    """The profile the ``ranker_trt_<precision>`` config asks for, for the export ``onnx`` belongs to.

    Raises:
        ExportError: ``onnx`` is not in the layout that config batches in (``ranker_trt_fp16`` takes the offsets
            graph ``model_offsets.onnx``, ``ranker_trt_int8`` the padded Q/DQ file): its plan could never be placed.
    """
    name = VariantName.TRT_FP16 if precision is TrtPrecision.FP16 else VariantName.TRT_INT8
    profile = ShapeProfile.from_config(model_config(VARIANTS[name], read_export_spec(onnx)))
    try:
        layout = graph_file_layout(onnx)
    except ConfigError as e:
        raise ExportError(str(e)) from e
    if layout != profile.layout:
        try:
            wanted = f"build it from {plan_source(precision, profile.layout)}"
        except ConfigError as e:
            wanted = str(e)
        raise ExportError(
            f"{onnx.name} is a {layout} graph, but {name} batches in the {profile.layout} layout: {wanted}"
        )
    return profile


def variant_build(
    onnx: Path,
    precision: TrtPrecision,
    *,
    limits: ProfileLimits | None = None,
    out_dir: Path | None = None,
    quantize_report: Path | None = None,
    timing_cache: Path | None = None,
    weakly_typed: bool = False,
) -> TrtBuild:
    """The build of ``onnx`` for its ``ranker_trt_<precision>`` variant.

    Args:
        onnx: the ONNX file (``model_offsets.onnx`` for fp16; ``model_qdq.onnx`` for int8 and best).
        precision: the engine precision.
        limits: the profile's points (default :class:`ProfileLimits`: the variant's own maxima).
        out_dir: folder of the plan (default: the ONNX file's folder).
        quantize_report: ``quantize.json`` whose float groups are pinned (default: beside ``onnx``, if any).
        timing_cache: a timing cache file to read and update.
        weakly_typed: int8 as ``--int8 --fp16`` with pinned layers instead of a strongly typed network.

    Raises:
        ExportError: the ONNX file or its ``export.json`` is missing, or it is in the wrong layout.
        ConfigError: the profile's limits are out of order.
    """
    if not onnx.is_file():
        raise ExportError(f"{onnx} not found: `tritonrec export onnx` (fp16) or `tritonrec quantize` (int8, best)")
    base = variant_profile(onnx, precision)
    limits = limits or ProfileLimits()
    profile = replace(
        base,
        min_batch=limits.min_batch,
        opt_batch=limits.opt_batch,
        max_batch=limits.max_batch or base.max_batch,
        min_candidates=limits.min_candidates,
        opt_candidates=limits.opt_candidates,
        max_candidates=limits.max_candidates or base.max_candidates,
    )
    report = quantize_report or onnx.parent / QUANTIZE_REPORT_FILE
    layers = layer_precisions(report, precision) if report.is_file() or quantize_report else {}
    return TrtBuild(
        onnx=onnx,
        plan=(out_dir or onnx.parent) / plan_file(precision),
        precision=precision,
        profile=profile,
        layers=layers,
        timing_cache=timing_cache,
        strongly_typed=precision is TrtPrecision.INT8 and not weakly_typed,
    )


def spec_build(
    spec: ModelSpec,
    onnx: Path,
    *,
    warmup: SpecRows | None = None,
    variant: SpecVariant | None = None,
    out_dir: Path | None = None,
    timing_cache: Path | None = None,
) -> TrtBuild:
    """The FP16 build of a spec's ``model.onnx`` for its ``<name>_trt_fp16`` variant: the config's own profile.

    The profile is :func:`~tritonrec.repository.spec_variants.trt_shapes` of ``variant`` (default: the layout's
    batching, ``max_len`` 512, ``max_candidates`` 2,048), tuned for a real query of ``warmup``; the plan is
    ``model.plan``, the file the config loads, so ``out_dir`` may be the variant's version folder.

    Raises:
        ExportError: the ONNX file is missing.
    """
    if not onnx.is_file():
        raise ExportError(f"{onnx} not found: `tritonrec export onnx --spec SPEC --out DIR` writes DIR/model.onnx")
    chosen = variant or SpecVariant(kind=SpecVariantKind.TRT_FP16)
    shapes = trt_shapes(spec, chosen, warmup)
    profile = SpecShapeProfile.from_trtexec(*(shapes[key] for key in TRT_SHAPE_KEYS))
    return TrtBuild(
        onnx=onnx,
        plan=(out_dir or onnx.parent) / chosen.artifact,
        precision=TrtPrecision.FP16,
        profile=profile,
        layers={},
        timing_cache=timing_cache,
        strongly_typed=False,
    )
