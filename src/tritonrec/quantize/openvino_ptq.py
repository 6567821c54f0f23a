"""OpenVINO as the second CPU runtime: NNCF post-training INT8 quantization of the exported ONNX file.

NNCF reads the FP32 ONNX graph through OpenVINO's ONNX frontend, inserts ``FakeQuantize`` ops calibrated on the
same real training rows as ONNX Runtime's calibrators (preset ``PERFORMANCE``: symmetric activations and weights,
weights per channel) and applies fast bias correction; the result is saved as OpenVINO IR (``.xml`` + ``.bin``,
FP32 weights where not quantized: ``compress_to_fp16=False``). ``ranker_cpu`` serves it with
``runtime: openvino`` (:class:`tritonrec.backends.ranker_cpu_model.OpenVinoSession`, FP32 inference precision).

:func:`quantize_openvino_accuracy_control` is NNCF's accuracy-controlled form: quantize, validate with the caller's
metric, and if the drop is over ``max_drop``, rank the quantized operations by how much each costs on the validation
items and return them to FP32 one by one until the drop is inside.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tritonrec.errors import ExportError
from tritonrec.quantize.calibration import CalibrationFeeds

__all__ = ["Infer", "ir_files", "quantize_openvino", "quantize_openvino_accuracy_control", "runtime_precisions"]

Infer = Callable[[dict[str, Any]], Any]
"""Model inputs -> the model's first output (what a validation metric runs the model with)."""

logger = logging.getLogger(__name__)


def ir_files(xml: Path) -> list[Path]:
    """The files of an OpenVINO IR model (``.xml`` and its ``.bin``)."""
    return [xml, xml.with_suffix(".bin")]


def quantize_openvino(source: Path, out_xml: Path, rows: CalibrationFeeds) -> Path:
    """Quantize the ONNX file ``source`` with NNCF, calibrated on ``rows``; write IR to ``out_xml``.

    Raises:
        ExportError: OpenVINO or NNCF failed (or is not installed: ``pip install tritonrec[quantize]``).
    """
    try:
        import nncf
        import openvino as ov
    except ImportError as e:
        raise ExportError(f"OpenVINO/NNCF are not installed ({e}): pip install 'tritonrec[quantize]'") from e
    out_xml.parent.mkdir(parents=True, exist_ok=True)
    try:
        model = ov.Core().read_model(str(source))
        feeds = rows.feeds()
        quantized = nncf.quantize(
            model,
            nncf.Dataset(feeds),
            preset=nncf.QuantizationPreset.PERFORMANCE,
            subset_size=len(feeds),  # items are batches: every calibration row is used
        )
        ov.save_model(quantized, str(out_xml), compress_to_fp16=False)
    except Exception as e:  # OpenVINO and NNCF raise their own and generic types
        raise ExportError(f"OpenVINO/NNCF quantization of {source} failed: {type(e).__name__}: {e}") from e
    logger.info("NNCF INT8 model written to %s", out_xml)
    return out_xml


def quantize_openvino_accuracy_control(
    source: Path,
    out_xml: Path,
    rows: CalibrationFeeds,
    validation: Sequence[tuple[dict[str, Any], Any]],
    metric: Callable[[Infer, Sequence[tuple[dict[str, Any], Any]]], float],
    *,
    max_drop: float,
) -> Path:
    """Quantize ``source`` with NNCF's accuracy control; write IR to ``out_xml``.

    Args:
        source: the FP32 ONNX file.
        out_xml: where the IR goes.
        rows: calibration batches.
        validation: items of ``(model inputs, anything the metric needs, e.g. labels)``; NNCF also scores the
            items one by one to rank the quantized operations, so each item should be whole queries.
        metric: ``metric(infer, items)``, higher is better.
        max_drop: the largest absolute drop of ``metric`` against the FP32 model.

    Raises:
        ExportError: OpenVINO or NNCF failed, or is not installed.
    """
    try:
        import nncf
        import openvino as ov
    except ImportError as e:
        raise ExportError(f"OpenVINO/NNCF are not installed ({e}): pip install 'tritonrec[quantize]'") from e
    out_xml.parent.mkdir(parents=True, exist_ok=True)

    def validation_fn(compiled: Any, items: Any) -> tuple[float, None]:
        return metric(lambda feeds: compiled(feeds)[0], list(items)), None

    try:
        feeds = rows.feeds()
        quantized = nncf.quantize_with_accuracy_control(
            ov.Core().read_model(str(source)),
            nncf.Dataset(feeds),
            nncf.Dataset(list(validation), lambda item: item[0]),
            validation_fn,
            max_drop=max_drop,
            drop_type=nncf.DropType.ABSOLUTE,
            preset=nncf.QuantizationPreset.PERFORMANCE,
            subset_size=len(feeds),
        )
        ov.save_model(quantized, str(out_xml), compress_to_fp16=False)
    except Exception as e:  # OpenVINO and NNCF raise their own and generic types
        raise ExportError(f"NNCF accuracy-controlled quantization of {source} failed: {type(e).__name__}: {e}") from e
    logger.info("NNCF accuracy-controlled INT8 model written to %s", out_xml)
    return out_xml


def runtime_precisions(session: object) -> dict[str, int]:
    """``{"<precision>:<layer type>": count}`` of the compiled model behind an ``OpenVinoSession``.

    What OpenVINO's CPU plugin really runs, e.g. ``i8:FullyConnected`` for INT8 matrix products.
    """
    compiled = getattr(session, "compiled", None)
    if compiled is None:
        return {}
    counts: Counter[str] = Counter()
    for op in compiled.get_runtime_model().get_ops():
        info = op.get_rt_info()
        layer = str(info["layerType"].astype(str))
        if layer in ("Const", "Parameter", "Result"):
            continue
        counts[f"{info['runtimePrecision'].astype(str)}:{layer}"] += 1
    return dict(sorted(counts.items()))
