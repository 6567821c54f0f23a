"""Export a ranking model to ONNX: FP32 with dynamic batch and candidate dimensions, and an FP16 variant.

Exporter: ``torch.onnx.export(dynamo=True)`` (torch.export based, the maintained path; the TorchScript exporter
is deprecated), opset 18: current enough for ONNX Runtime and the TensorRT ONNX parser, and it has every op
the model uses (Gather, MatMul, Softmax, LayerNormalization, Where).

Graph contract (the same for every variant; how requests map onto it is the repository's request contract):

- input ``history``: int64 ``[batch, L]`` item ids, right-aligned, 0 = padding (``L`` = ``FeatureSpec.history_len``);
- input ``candidates``: int64 ``[batch, candidates]`` item ids;
- output ``scores``: float32 ``[batch, candidates]`` logits.

Any id is safe: the OOV mapping is inside the graph. Weights go to ONNX external data (``model.onnx.data`` beside
``model.onnx``; keep both together) when asked, or when the model is past the 2 GB protobuf limit.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx
import torch
from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16
from onnxruntime.transformers.onnx_model import OnnxModel

from tritonrec.contract import CANDIDATES, HISTORY, SCORES
from tritonrec.errors import ExportError
from tritonrec.model.ranker import RankingModel

__all__ = ["INPUT_NAMES", "OPSET", "OUTPUT_NAME", "OnnxArtifact", "convert_to_fp16", "export_module", "export_onnx"]

logger = logging.getLogger(__name__)

OPSET = 18
INPUT_NAMES = (HISTORY, CANDIDATES)
OUTPUT_NAME = SCORES
_PROTOBUF_LIMIT_BYTES = 2 * 1024**3
_FP32_ONLY_OPS = [*DEFAULT_OP_BLOCK_LIST, "IsNaN", "IsInf"]  # ONNX Runtime has no FP16 kernels for these (nan_to_num)


@dataclass(frozen=True, slots=True)
class OnnxArtifact:
    """An exported ONNX file and how it was written."""

    path: Path
    precision: str
    external_data: bool
    # padded [B, N]; ragged (grid + real_index, CPU); offsets (concatenated + candidate_offsets, GPU)
    layout: str = "padded"

    def files(self) -> list[Path]:
        """Every file that belongs to the artifact (the graph, plus external data if any)."""
        data = self.path.with_name(self.path.name + ".data")
        return [self.path, data] if data.exists() else [self.path]


def _weights_bytes(model: torch.nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])


def export_module(
    module: torch.nn.Module,
    example: tuple[torch.Tensor, ...],
    out_path: Path,
    *,
    input_names: list[str],
    dynamic_shapes: dict[str, dict[int, Any]] | tuple[dict[int, Any], ...],
    external_data: bool | None,
    precision: str = "fp32",
    layout: str = "padded",
    output_name: str = OUTPUT_NAME,
) -> OnnxArtifact:
    """Export ``module`` (in eval mode) to ``out_path`` with the torch.export-based exporter, checked by onnx.

    Raises:
        ExportError: the exporter failed, or the written file does not pass ``onnx.checker``.
    """
    module.eval()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    use_external = external_data if external_data is not None else _weights_bytes(module) > _PROTOBUF_LIMIT_BYTES
    try:
        program = torch.onnx.export(
            module,
            example,
            dynamo=True,
            verbose=False,  # keeps stdout clean for --json output
            opset_version=OPSET,
            input_names=input_names,
            output_names=[output_name],
            dynamic_shapes=dynamic_shapes,
        )
        if program is None:  # only the TorchScript exporter returns None
            raise ExportError("torch.onnx.export returned no program")
        program.save(str(out_path), external_data=use_external)
        onnx.checker.check_model(str(out_path))
    except ExportError:
        raise
    except Exception as e:  # the exporter raises many unrelated types; report them all as one failure
        unsupported = re.search(r"No ONNX function found for <OpOverload\(op='([^']+)'", str(e))
        if unsupported:
            raise ExportError(
                f"ONNX export to {out_path} failed: operator {unsupported.group(1)} has no ONNX conversion "
                f"(opset {OPSET}); rewrite that part of the model with supported operators"
            ) from e
        raise ExportError(f"ONNX export to {out_path} failed: {type(e).__name__}: {e}") from e
    logger.info("exported %s (external data: %s)", out_path, use_external)
    return OnnxArtifact(path=out_path, precision=precision, external_data=use_external, layout=layout)


def export_onnx(model: RankingModel, out_path: Path, *, external_data: bool | None = None) -> OnnxArtifact:
    """Export ``model`` (in eval mode) to ``out_path`` with dynamic batch and candidate dimensions.

    Args:
        model: the model; it is switched to eval mode.
        out_path: the ``.onnx`` file to write (its folder is created).
        external_data: store weights in ``<out_path>.data``; ``None`` = only past the 2 GB protobuf limit.

    Raises:
        ExportError: the exporter failed, or the written file does not pass ``onnx.checker``.
    """
    length = model.spec.history_len
    example = (torch.randint(0, model.spec.n_items + 1, (2, length)), torch.randint(1, model.spec.n_items + 1, (2, 3)))
    batch, candidates = torch.export.Dim("batch"), torch.export.Dim("candidates")
    return export_module(
        model,
        example,
        out_path,
        input_names=list(INPUT_NAMES),
        dynamic_shapes={"histories": {0: batch}, "candidates": {0: batch, 1: candidates}},
        external_data=external_data,
    )


def convert_to_fp16(source: OnnxArtifact, out_path: Path) -> OnnxArtifact:
    """Write an FP16 copy of ``source``: FP16 weights and compute, int64 ids in and FP32 scores out unchanged.

    Raises:
        ExportError: the conversion or the check of the result failed.
    """
    try:
        model = onnx.load(str(source.path))  # loads external data too
        half = convert_float_to_float16(model, keep_io_types=True, op_block_list=_FP32_ONLY_OPS)
        # keep_io_types puts the casts of float inputs last; a graph whose first node reads a float input (a spec's
        # model) is then out of order for the checker: sort it
        sortable = OnnxModel(half)
        sortable.topological_sort()
        half = sortable.model
        out_path.parent.mkdir(parents=True, exist_ok=True)
        onnx.save_model(
            half,
            str(out_path),
            save_as_external_data=source.external_data,
            location=out_path.name + ".data",
        )
        onnx.checker.check_model(str(out_path))
    except Exception as e:  # onnx raises plain Exceptions and protobuf errors
        raise ExportError(f"FP16 conversion of {source.path} failed: {type(e).__name__}: {e}") from e
    return OnnxArtifact(path=out_path, precision="fp16", external_data=source.external_data, layout=source.layout)
