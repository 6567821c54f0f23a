"""The lookup of a quantized embedding table in ONNX Runtime, three ways, on the same rows.

- ``fp32 Gather``: the FP32 table (the reference);
- ``Gather + dequantize``: what the exported models hold: :class:`~tritonrec.model.tables.QuantizedEmbedding`
  (codes, FP16 scale and bias per block) exported through the same exporter as the model (Gather, Cast, Mul, Add;
  INT4 codes unpacked with Floor/Sub);
- ``GatherBlockQuantized``: ONNX Runtime's contrib operator (``com.microsoft``), uint8 data (4-bit packed two per
  byte, or 8-bit), one FP32 scale and an integer zero point per block, ``value = (code - zero_point) * scale``.
  The table is quantized for it with its own asymmetric min/max rule (an integer zero point cannot hold the
  FP16 bias of our layout), so its reconstruction error is reported beside ours.

Each is timed in interleaved rounds (every graph once per round) and checked against the FP32 table.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import Tensor, nn

from tritonrec.model.config import EmbeddingStorage
from tritonrec.model.tables import QuantizedEmbedding

__all__ = ["gather_kernels"]

_OPSET = 18


class _Lookup(nn.Module):
    def __init__(self, table: nn.Module) -> None:
        super().__init__()
        self.table = table

    def forward(self, rows: Tensor) -> Tensor:
        out: Tensor = self.table(rows)
        return out


def _exported(module: nn.Module, example: Tensor, path: Path) -> bytes:
    dims = {"rows": {0: torch.export.Dim("batch"), 1: torch.export.Dim("n")}}
    program = torch.onnx.export(
        _Lookup(module), (example,), dynamo=True, verbose=False, opset_version=_OPSET, input_names=["rows"],
        dynamic_shapes=dims,
    )  # fmt: skip
    if program is None:
        raise RuntimeError("the exporter returned no program")
    program.save(str(path))
    return path.read_bytes()


def _gather_block_quantized(weight: npt.NDArray[np.float32], bits: int, block: int) -> tuple[bytes, Any]:
    """The contrib-operator graph and its dequantized table (integer zero points, FP32 scales)."""
    rows, dim = weight.shape
    levels = (1 << bits) - 1
    blocks = weight.reshape(rows, dim // block, block)
    low, high = np.minimum(blocks.min(-1), 0.0), np.maximum(blocks.max(-1), 0.0)
    scale = np.where(high > low, (high - low) / levels, 1.0).astype(np.float32)
    zero = np.clip(np.round(-low / scale), 0, levels).astype(np.uint8)
    codes = np.clip(np.round(blocks / scale[..., None]) + zero[..., None], 0, levels).astype(np.uint8)
    table = ((codes.astype(np.float32) - zero[..., None]) * scale[..., None]).reshape(rows, dim)
    codes = codes.reshape(rows, dim)
    if bits == 4:
        codes = codes[:, 0::2] | (codes[:, 1::2] << 4)
        zero = zero[:, 0::2] | (zero[:, 1::2] << 4) if zero.shape[1] > 1 else zero
    node = helper.make_node(
        "GatherBlockQuantized", ["data", "rows", "scales", "zero_points"], ["out"], domain="com.microsoft",
        bits=bits, block_size=block, gather_axis=0, quantize_axis=1,
    )  # fmt: skip
    arrays = {"data": codes, "scales": scale, "zero_points": zero}
    inits = [numpy_helper.from_array(a, name) for name, a in arrays.items()]
    graph = helper.make_graph(
        [node], "gather_block_quantized",
        [helper.make_tensor_value_info("rows", TensorProto.INT64, ["batch", "n"])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)], inits,
    )  # fmt: skip
    opsets = [helper.make_opsetid("", _OPSET), helper.make_opsetid("com.microsoft", 1)]
    model = helper.make_model(graph, opset_imports=opsets)
    return model.SerializeToString(), table


def gather_kernels(
    weight: Tensor, storage: EmbeddingStorage, block: int, rows: npt.NDArray[np.int64], *, repeats: int, repeat_s: float
) -> dict[str, Any]:
    """Time and check the three lookups of ``weight`` ``[R, D]`` for ``rows`` ``[B, N]`` (see the module docstring).

    Returns:
        ``{kernel: {"lookups_per_second", "min", "max", "max_abs_error", "ops"}}`` plus the settings.
    """
    block = block or weight.shape[1]
    quantized = QuantizedEmbedding.from_weight(weight, storage, block)
    example = torch.from_numpy(rows[:2, :3])
    with tempfile.TemporaryDirectory(prefix="tritonrec-gather-") as work:
        table = nn.Embedding(weight.shape[0], weight.shape[1])
        table.weight.data.copy_(weight.detach())
        fp32 = _exported(table, example, Path(work) / "fp32.onnx")
        ours = _exported(quantized, example, Path(work) / "ours.onnx")
    contrib, contrib_table = _gather_block_quantized(weight.detach().numpy().astype(np.float32), storage.bits, block)
    graphs = {"fp32 Gather": fp32, "Gather + dequantize": ours, "GatherBlockQuantized": contrib}
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    cpu = ["CPUExecutionProvider"]
    sessions = {name: ort.InferenceSession(g, options, providers=cpu) for name, g in graphs.items()}
    reference = weight.detach().numpy()[rows]
    tables = {"fp32 Gather": reference, "Gather + dequantize": quantized.dequantized().numpy()[rows]}
    tables["GatherBlockQuantized"] = contrib_table[rows]
    out: dict[str, Any] = {"storage": storage.value, "block": block, "rows_shape": list(rows.shape), "kernels": {}}
    rates: dict[str, list[float]] = {name: [] for name in sessions}
    for _ in range(repeats):
        for name, session in sessions.items():
            done, started = 0, time.perf_counter()
            while time.perf_counter() - started < repeat_s:
                session.run(None, {"rows": rows})
                done += rows.size
            rates[name].append(done / (time.perf_counter() - started))
    for name, session in sessions.items():
        (got,) = session.run(None, {"rows": rows})
        out["kernels"][name] = {
            "lookups_per_second": round(statistics.median(rates[name])),
            "min": round(min(rates[name])),
            "max": round(max(rates[name])),
            "matches_its_table": bool(np.allclose(got, tables[name], atol=1e-5)),
            "max_abs_error": float(np.abs(got - reference).max()),
            "ops": sorted({n.op_type for n in onnx.load_from_string(graphs[name]).graph.node}),
        }
    return out
