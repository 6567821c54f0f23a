"""Export a checkpoint: FP32 ONNX (+ optional FP16), each with a parity record, written to ``export.json``.

Tolerances: FP32 ONNX against eager PyTorch must agree to ``atol 1e-4, rtol 1e-4`` (same arithmetic, different
kernels); FP16 against FP32 ONNX to ``atol 0.05, rtol 0.01`` (half precision keeps about 3 significant digits).
A record past its tolerance raises :class:`~tritonrec.errors.ExportError` after ``export.json`` is written, so
the failing figures are kept.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tritonrec.data.feature_spec import FeatureSpec
from tritonrec.data.splits import EvalSet
from tritonrec.export.manifest import REPORT_FILE
from tritonrec.export.onnx_export import OPSET, OnnxArtifact, convert_to_fp16, export_onnx
from tritonrec.export.parity import ParityRecord, compare_scorers, parity_batches
from tritonrec.export.ragged import export_offsets_onnx, export_ragged_onnx
from tritonrec.scorers.eager import torch_scorer
from tritonrec.scorers.ort import onnx_scorer, ragged_onnx_scorer
from tritonrec.train.checkpoint import Checkpoint

__all__ = ["FP16_TOLERANCE", "FP32_TOLERANCE", "ExportResult", "export_checkpoint"]

FP32_TOLERANCE = (1e-4, 1e-4)
FP16_TOLERANCE = (5e-2, 1e-2)


@dataclass(frozen=True, slots=True)
class ExportResult:
    """What ``export_checkpoint`` wrote: the folder, the ONNX artifacts, their parity records.

    Attributes:
        out_dir: the export folder (``model.onnx``, ``model_fp16.onnx``, ``export.json``).
        spec: the exported model's FeatureSpec (recorded in ``export.json`` for the repository builder).
        artifacts: one per precision.
        parity: each artifact against its reference on real, OOV and empty-history rows.
    """

    out_dir: Path
    spec: FeatureSpec
    artifacts: tuple[OnnxArtifact, ...]
    parity: tuple[ParityRecord, ...]

    @property
    def model_path(self) -> Path:
        """The FP32 ONNX file in the padded layout (in-process scoring, ``[B, N]`` batches)."""
        return self.artifacts[0].path

    def layout_path(self, layout: str) -> Path | None:
        """The FP32 file of ``layout`` (``ragged``: what ``ranker_cpu`` serves), None when not exported."""
        return next((a.path for a in self.artifacts if a.layout == layout and a.precision == "fp32"), None)

    def to_dict(self) -> dict[str, Any]:
        """The JSON written to ``export.json``."""
        return {
            "opset": OPSET,
            "feature_spec": self.spec.to_dict(),
            "artifacts": [
                {
                    "precision": a.precision,
                    "layout": a.layout,
                    "files": [p.name for p in a.files()],
                    "external_data": a.external_data,
                }
                for a in self.artifacts
            ],
            "parity": [r.to_dict() for r in self.parity],
        }


def export_checkpoint(
    checkpoint: Checkpoint,
    rows: EvalSet,
    out_dir: Path,
    *,
    fp16: bool = True,
    gpu_graph: bool = False,
    external_data: bool | None = None,
    parity_rows: int = 256,
) -> ExportResult:
    """Write ``model.onnx`` (and ``model_fp16.onnx``) plus ``export.json`` into ``out_dir``.

    Args:
        checkpoint: the loaded checkpoint.
        rows: real evaluation rows of the checkpoint's dataset, for the parity checks.
        out_dir: output folder.
        fp16: also write and check the FP16 variant.
        gpu_graph: also write and check ``model_offsets.onnx``, the offsets graph Triton's ragged batching feeds on
            GPU nodes (``ranker_onnx``, the TensorRT engines).
        external_data: force (True) or forbid (False) ONNX external data; None = only past 2 GB.
        parity_rows: evaluation rows per parity case.

    Returns:
        The artifacts and parity records (also written to ``export.json``).

    Raises:
        ExportError: the export failed or a parity record is past its tolerance.
    """
    batches = parity_batches(rows, checkpoint.spec.n_items, n_rows=parity_rows)
    fp32 = export_onnx(checkpoint.model, out_dir / "model.onnx", external_data=external_data)
    fp32_scorer = onnx_scorer(fp32.path)
    records: list[ParityRecord] = [
        compare_scorers(
            torch_scorer(checkpoint.model),
            fp32_scorer,
            batches,
            reference_name="eager fp32",
            candidate_name="onnx fp32",
            atol=FP32_TOLERANCE[0],
            rtol=FP32_TOLERANCE[1],
        )
    ]
    eager = torch_scorer(checkpoint.model)
    layouts = [(export_ragged_onnx, "model_ragged.onnx", False)]
    if gpu_graph:
        layouts.append((export_offsets_onnx, "model_offsets.onnx", True))
    artifacts = [fp32]
    for export, name, offsets in layouts:
        graph = export(checkpoint.model, out_dir / name, external_data=external_data)
        artifacts.append(graph)
        records.append(
            compare_scorers(
                eager,
                ragged_onnx_scorer(graph.path, offsets=offsets),
                batches,
                reference_name="eager fp32",
                candidate_name=f"onnx fp32 {graph.layout}",
                atol=FP32_TOLERANCE[0],
                rtol=FP32_TOLERANCE[1],
            )
        )
    if fp16:
        half = convert_to_fp16(fp32, out_dir / "model_fp16.onnx")
        artifacts.append(half)
        records.append(
            compare_scorers(
                fp32_scorer,
                onnx_scorer(half.path),
                batches,
                reference_name="onnx fp32",
                candidate_name="onnx fp16",
                atol=FP16_TOLERANCE[0],
                rtol=FP16_TOLERANCE[1],
            )
        )
    result = ExportResult(out_dir, checkpoint.spec, tuple(artifacts), tuple(records))
    (out_dir / REPORT_FILE).write_text(json.dumps(result.to_dict(), indent=2, sort_keys=True) + "\n")
    for record in records:
        record.raise_if_failed()
    return result
