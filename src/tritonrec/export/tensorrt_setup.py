"""From ``tritonrec export trt`` arguments to a :class:`~tritonrec.export.tensorrt_build.TrtBuild`.

The profile's limits and layout default to those of the repository variant the plan is for (``ranker_trt_fp16``:
the flat graph ``model_offsets.onnx`` under Triton's ragged batching; ``ranker_trt_int8``: the padded Q/DQ file),
generated from :mod:`tritonrec.repository.variants` with the export's FeatureSpec: the same values
``export/build_trt_engines.sh`` reads from that variant's ``config.pbtxt``.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from tritonrec.errors import ConfigError, ExportError
from tritonrec.export.manifest import read_export_spec
from tritonrec.export.tensorrt_build import TrtBuild
from tritonrec.export.tensorrt_plan import ShapeProfile, TrtPrecision, layer_precisions, plan_file, plan_source
from tritonrec.repository.variants import VARIANTS, VariantName, graph_file_layout, model_config

__all__ = ["QUANTIZE_REPORT_FILE", "trt_build_from_args", "variant_profile"]

QUANTIZE_REPORT_FILE = "quantize.json"


def variant_profile(onnx: Path, precision: TrtPrecision) -> ShapeProfile:
    """The profile the ``ranker_trt_<precision>`` config asks for, for the export ``onnx`` belongs to.

    Raises:
        ExportError: ``onnx`` is not in the layout that config batches in (``ranker_trt_fp16`` takes the flat graph
            ``model_offsets.onnx``, ``ranker_trt_int8`` the padded Q/DQ file): its plan could never be placed.
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


def trt_build_from_args(args: argparse.Namespace) -> tuple[TrtBuild, bool]:
    """The build ``args`` describe, and whether it asks for a strongly typed network.

    Raises:
        ExportError: the ONNX file or its ``export.json`` is missing.
        ConfigError: the profile's limits are out of order.
    """
    onnx: Path = args.onnx
    if not onnx.is_file():
        raise ExportError(f"{onnx} not found: `tritonrec export onnx` (fp16) or `tritonrec quantize` (int8, best)")
    precision = TrtPrecision(args.precision)
    base = variant_profile(onnx, precision)
    profile = replace(
        base,
        min_batch=args.min_batch,
        opt_batch=args.opt_batch,
        max_batch=args.max_batch or base.max_batch,
        min_candidates=args.min_candidates,
        opt_candidates=args.opt_candidates,
        max_candidates=args.max_candidates or base.max_candidates,
    )
    report = args.quantize_report or onnx.parent / QUANTIZE_REPORT_FILE
    layers = layer_precisions(report, precision) if report.is_file() or args.quantize_report else {}
    strongly = precision is TrtPrecision.INT8 and not args.weakly_typed
    out = args.out or onnx.parent
    build = TrtBuild(
        onnx=onnx,
        plan=out / plan_file(precision),
        precision=precision,
        profile=profile,
        layers=layers,
        timing_cache=args.timing_cache,
        strongly_typed=strongly,
    )
    return build, strongly
