"""INT8 ONNX files from ONNX Runtime's quantizer: the Q/DQ form TensorRT consumes, and the CPU forms.

Forms (:class:`OrtForm`):

- ``qdq_s8s8``: ``QuantizeLinear``/``DequantizeLinear`` pairs, INT8 activations and weights, both symmetric
  (zero point 0), weights per output channel: the explicit-quantization form TensorRT builds INT8 engines
  from, and what ONNX Runtime's CPU provider fuses into integer kernels where it can.
- ``qop_u8s8``: QOperator form (``QLinearMatMul``/``MatMulInteger`` nodes), UINT8 asymmetric activations,
  INT8 weights: the form ONNX Runtime's x86 kernels were built around. ``reduce_range`` (7-bit weights) avoids
  the overflow of the ``vpmaddubsw`` path on CPUs without VNNI; on VNNI/AMX CPUs it only costs accuracy.
- ``dynamic``: weights quantized ahead of time, activation ranges measured per batch at run time
  (``DynamicQuantizeMatMul``): no calibration, but the scores of a row depend on the other rows of its batch.

Static forms are calibrated (:class:`Calibrator`) on real training rows
(:mod:`tritonrec.quantize.calibration`). Quantized op types are ``MatMul``/``Gemm`` (every linear layer and
the attention products) and ``Gather`` (embedding tables); element-wise ops, norms and softmax stay in float.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass, field
from pathlib import Path

from tritonrec.errors import ConfigError, ExportError
from tritonrec.quantize.calibration import CalibrationFeeds, calibration_reader

__all__ = ["DEFAULT_OP_TYPES", "Calibrator", "OrtForm", "OrtRecipe", "needs_reduce_range", "quantize_ort"]

logger = logging.getLogger(__name__)

DEFAULT_OP_TYPES = ("MatMul", "Gemm", "Gather")
_DYNAMIC_OP_TYPES = ("MatMul", "Gemm")
_VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


class Calibrator(enum.StrEnum):
    """How activation ranges are chosen from the calibration rows."""

    MINMAX = "minmax"  # the observed min/max
    ENTROPY = "entropy"  # the range minimising KL divergence of the quantized histogram (TensorRT's classic)
    PERCENTILE = "percentile"  # clip the tails at a percentile of |x|


class OrtForm(enum.StrEnum):
    """Which INT8 graph ONNX Runtime's quantizer writes (see the module docstring)."""

    QDQ_S8S8 = "qdq_s8s8"
    QOP_U8S8 = "qop_u8s8"
    DYNAMIC = "dynamic"


def needs_reduce_range(isa: tuple[str, ...] | list[str]) -> bool:
    """True on x86 CPUs without VNNI/AMX-INT8 (``reduce_range`` keeps U8S8 products from saturating there)."""
    return not any(flag in isa for flag in _VNNI_FLAGS)


@dataclass(frozen=True, slots=True, kw_only=True)
class OrtRecipe:
    """One ONNX Runtime quantization.

    Attributes:
        form: the graph form.
        calibrator: range method of the static forms (ignored by ``dynamic``).
        op_types: op types to quantize.
        exclude_nodes: node names kept in float (the layer groups mixed precision keeps).
        reduce_range: 7-bit weights (``qop_u8s8`` and ``dynamic`` on CPUs without VNNI).
        percentile: the percentile of the ``percentile`` calibrator.
    """

    form: OrtForm = OrtForm.QDQ_S8S8
    calibrator: Calibrator = Calibrator.MINMAX
    op_types: tuple[str, ...] = DEFAULT_OP_TYPES
    exclude_nodes: tuple[str, ...] = field(default_factory=tuple)
    reduce_range: bool = False
    percentile: float = 99.999

    def __post_init__(self) -> None:
        if not self.op_types:
            raise ConfigError("an ONNX Runtime recipe needs at least one op type to quantize")
        if not 50.0 < self.percentile <= 100.0:
            raise ConfigError(f"percentile must lie in (50, 100], got {self.percentile}")
        if self.reduce_range and self.form is OrtForm.QDQ_S8S8:
            raise ConfigError("reduce_range is a U8S8/dynamic option; the S8S8 Q/DQ form keeps full INT8 weights")

    @property
    def static(self) -> bool:
        """Whether the form is calibrated (static activation ranges)."""
        return self.form is not OrtForm.DYNAMIC


def _static(source: Path, out: Path, recipe: OrtRecipe, rows: CalibrationFeeds) -> None:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    method = {
        Calibrator.MINMAX: CalibrationMethod.MinMax,
        Calibrator.ENTROPY: CalibrationMethod.Entropy,
        Calibrator.PERCENTILE: CalibrationMethod.Percentile,
    }[recipe.calibrator]
    qdq = recipe.form is OrtForm.QDQ_S8S8
    quantize_static(
        str(source),
        str(out),
        calibration_reader(rows),
        quant_format=QuantFormat.QDQ if qdq else QuantFormat.QOperator,
        op_types_to_quantize=list(recipe.op_types),
        nodes_to_exclude=list(recipe.exclude_nodes),
        per_channel=True,
        reduce_range=recipe.reduce_range,
        activation_type=QuantType.QInt8 if qdq else QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=method,
        extra_options={
            "ActivationSymmetric": qdq,  # TensorRT wants zero points of 0
            "WeightSymmetric": True,
            "CalibPercentile": recipe.percentile,
            "CalibTensorRangeSymmetric": qdq,
        },
    )


def quantize_ort(source: Path, out: Path, recipe: OrtRecipe, rows: CalibrationFeeds | None) -> Path:
    """Write the INT8 model of ``source`` per ``recipe`` to ``out``.

    Args:
        source: the FP32 ONNX file (``tritonrec export onnx``).
        out: the ``.onnx`` file to write (its folder is created).
        recipe: what to quantize and how.
        rows: calibration rows (required by the static forms).

    Raises:
        ConfigError: a static form without calibration rows.
        ExportError: ONNX Runtime's quantizer failed.
    """
    if recipe.static and rows is None:
        raise ConfigError(f"{recipe.form.value} is calibrated: give it calibration rows")
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        if rows is not None and recipe.static:
            _static(source, out, recipe, rows)
        else:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantize_dynamic(
                str(source),
                str(out),
                op_types_to_quantize=[t for t in recipe.op_types if t in _DYNAMIC_OP_TYPES],
                nodes_to_exclude=list(recipe.exclude_nodes),
                per_channel=True,
                reduce_range=recipe.reduce_range,
                weight_type=QuantType.QInt8,
            )
    except (ConfigError, ExportError):
        raise
    except Exception as e:  # the quantizer raises many types (onnx, numpy, its own)
        raise ExportError(f"ONNX Runtime quantization ({recipe.form.value}) of {source} failed: {e}") from e
    logger.info("quantized %s -> %s (%s, %s)", source, out, recipe.form.value, recipe.calibrator.value)
    return out
