"""The precision variants ``tritonrec quantize`` writes, and how each is made.

Every variant is a file a CPU runtime can load (``ranker_cpu`` serves any of them); the FP32 and FP16 files come
from ``tritonrec export onnx``. Names:

| name | file | how |
|---|---|---|
| ``fp32`` / ``fp16`` | ``model.onnx`` / ``model_fp16.onnx`` | the export |
| ``int8-ort-<calibrator>`` | ``variants/int8_ort_<calibrator>.onnx`` | ONNX Runtime Q/DQ S8S8, every group INT8 |
| ``int8-modelopt-<method>`` | ``variants/int8_modelopt_<method>.onnx`` | NVIDIA ModelOpt Q/DQ (its own node choice) |
| ``int8-mixed`` | ``model_qdq.onnx`` | Q/DQ S8S8, the sensitive groups in FP32: TensorRT's input |
| ``int8-mixed-qop-u8s8`` | ``variants/int8_mixed_qop_u8s8.onnx`` | the same groups, QOperator U8S8 (CPU form) |
| ``int8-mixed-dynamic`` | ``variants/int8_mixed_dynamic.onnx`` | the same groups, dynamic MatMul quantization |
| ``openvino-fp32`` / ``openvino-int8`` | ``model.onnx`` / ``variants/openvino_int8.xml`` | OpenVINO; NNCF PTQ |
"""

from __future__ import annotations

import enum
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tritonrec.errors import ConfigError

__all__ = ["CALIBRATORS", "CalibratorName", "PrecisionVariant", "parse_calibrators", "publish_int8"]


class CalibratorName(enum.StrEnum):
    """Calibrators ``tritonrec quantize --calibrators`` compares."""

    MINMAX = "minmax"
    ENTROPY = "entropy"
    PERCENTILE = "percentile"
    MODELOPT_MAX = "modelopt-max"
    MODELOPT_ENTROPY = "modelopt-entropy"

    @property
    def is_modelopt(self) -> bool:
        """Whether NVIDIA ModelOpt runs it (else ONNX Runtime)."""
        return self.value.startswith("modelopt-")


CALIBRATORS = tuple(CalibratorName)


def parse_calibrators(text: str) -> tuple[CalibratorName, ...]:
    """``"minmax,entropy"`` -> calibrators (at least one ONNX Runtime calibrator: mixed precision builds on it).

    Raises:
        ConfigError: an unknown name, or no ONNX Runtime calibrator.
    """
    names = [n.strip() for n in text.split(",") if n.strip()]
    known = {c.value: c for c in CalibratorName}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(f"unknown calibrator(s) {unknown}; known: {', '.join(known)}")
    chosen = tuple(c for c in CalibratorName if c.value in names)
    if not any(not c.is_modelopt for c in chosen):
        raise ConfigError("name at least one ONNX Runtime calibrator (minmax, entropy, percentile)")
    return chosen


@dataclass(frozen=True, slots=True, kw_only=True)
class PrecisionVariant:
    """One precision variant and its file.

    Attributes:
        name: the variant's name in reports (see the module docstring).
        path: the file a runtime loads.
        runtime: ``onnxruntime`` or ``openvino``.
        precision: ``fp32``, ``fp16`` or ``int8``.
        batch_independent: a row's scores do not depend on the other rows of its batch (false for dynamic
            quantization: served scores then differ from in-process ones).
        notes: how it was made (calibrator, groups in float, ...).
    """

    name: str
    path: Path
    runtime: str = "onnxruntime"
    precision: str = "int8"
    batch_independent: bool = True
    notes: str = ""

    def __post_init__(self) -> None:
        if self.runtime not in ("onnxruntime", "openvino"):
            raise ConfigError(f"{self.name}: runtime must be onnxruntime or openvino, got {self.runtime!r}")
        if self.precision not in ("fp32", "fp16", "int8"):
            raise ConfigError(f"{self.name}: precision must be fp32, fp16 or int8, got {self.precision!r}")

    def files(self) -> list[Path]:
        """Every file of the variant (an OpenVINO IR ``.xml`` has its ``.bin``; ONNX may have ``.data``)."""
        if self.path.suffix == ".xml":
            return [self.path, self.path.with_suffix(".bin")]
        data = self.path.with_name(self.path.name + ".data")
        return [self.path, data] if data.exists() else [self.path]

    def bytes(self) -> int:
        """Size of the variant's files on disk."""
        return sum(p.stat().st_size for p in self.files() if p.exists())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "name": self.name,
            "file": str(self.path),
            "runtime": self.runtime,
            "precision": self.precision,
            "batch_independent": self.batch_independent,
            "notes": self.notes,
        }


def publish_int8(export_dir: Path, out_dir: Path, names: Sequence[str], winner: PrecisionVariant | None) -> None:
    """Make ``out_dir`` an export folder ``repo build`` reads, the winner's files as ``model_int8.<suffix>``.

    The export's ``names`` (and their ``.data``) are copied and any earlier ``model_int8.*`` removed. Quantized
    files carry their weights inline (an IR ``.bin`` goes with its ``.xml``): renaming them is safe.
    """
    for name in names:
        for source in (export_dir / name, export_dir / f"{name}.data"):
            if source.is_file() and source.resolve() != (out_dir / source.name).resolve():
                shutil.copy2(source, out_dir / source.name)
    for stale in out_dir.glob("model_int8.*"):
        stale.unlink()
    if winner is not None:
        for source in winner.files():
            shutil.copy2(source, out_dir / f"model_int8{source.suffix}")
