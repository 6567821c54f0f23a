"""OpenVINO as the second CPU runtime: NNCF post-training INT8 quantization of the exported ONNX file.

NNCF reads the FP32 ONNX graph through OpenVINO's ONNX frontend, inserts ``FakeQuantize`` ops calibrated on the
same real training rows as ONNX Runtime's calibrators (preset ``PERFORMANCE``: symmetric activations and weights,
weights per channel) and applies fast bias correction; the result is saved as OpenVINO IR (``.xml`` + ``.bin``,
FP32 weights where not quantized: ``compress_to_fp16=False``). ``ranker_cpu`` serves it with
``runtime: openvino`` (:class:`tritonrec.backends.ranker_cpu_model.OpenVinoSession`, FP32 inference precision).
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

from tritonrec.errors import ExportError
from tritonrec.quantize.calibration import CalibrationFeeds

__all__ = ["ir_files", "quantize_openvino", "runtime_precisions"]

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
