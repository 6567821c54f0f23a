"""Row-wise INT8 embedding tables in any ONNX graph: each table gathered as codes, dequantized after the gather.

ONNX Runtime's Q/DQ quantization of a ``Gather`` puts ``DequantizeLinear`` on the whole table, so every run
dequantizes every row of it (a million-row table on each request). Here every ``Gather`` whose data is a float
initializer ``[V, D]`` (an embedding table, gathered along rows) becomes

    codes  = Gather(table_codes uint8 [V, D], ids)
    vector = Cast(codes, float) * Cast(Gather(table_scales fp16 [V, 1], ids)) + Cast(Gather(table_biases, ids))

so only the gathered rows are dequantized. The arithmetic is the bundled model's
(:meth:`tritonrec.model.tables.QuantizedEmbedding.from_weight`: one FP16 scale and bias per row, every value
reproduced within half a scale); the tables shrink about 4x, the rest of the graph is untouched and stays FP32.
Plain ONNX ops only: any runtime that runs the graph runs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tritonrec.errors import ConfigError, ExportError

__all__ = ["TablesResult", "embedding_tables", "quantize_tables"]

MIN_ROWS = 16
"""Tables with fewer rows stay FP32 (a handful of categories: nothing to save, and a scale per row costs more)."""


@dataclass(frozen=True, slots=True)
class TablesResult:
    """What :func:`quantize_tables` changed.

    Attributes:
        path: the written model.
        tables: per quantized initializer: rows, bytes before and after, largest reconstruction error.
    """

    path: Path
    tables: dict[str, dict[str, Any]]

    @property
    def bytes_saved(self) -> int:
        """FP32 table bytes minus quantized table bytes."""
        return sum(t["bytes_fp32"] - t["bytes"] for t in self.tables.values())


def embedding_tables(model: onnx.ModelProto) -> dict[str, onnx.TensorProto]:
    """The float ``[V, D]`` initializers that are only ever the data input of a row ``Gather``."""
    initializers = {i.name: i for i in model.graph.initializer}
    gathered: dict[str, bool] = {}
    for node in model.graph.node:
        for position, name in enumerate(node.input):
            if name not in initializers:
                continue
            axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
            row_gather = node.op_type == "Gather" and position == 0 and axis == 0
            gathered[name] = gathered.get(name, True) and row_gather
    return {
        name: initializers[name]
        for name, only_gathered in gathered.items()
        if only_gathered
        and initializers[name].data_type == TensorProto.FLOAT
        and len(initializers[name].dims) == 2
        and initializers[name].dims[0] >= MIN_ROWS
    }


def quantize_tables(source: Path, out: Path) -> TablesResult:
    """Write ``source`` with every embedding table row-wise INT8 (see the module docstring) to ``out``.

    Raises:
        ExportError: the graph has no table to quantize, or a table holds values FP16 scales cannot describe.
    """
    import torch

    from tritonrec.model.config import EmbeddingStorage
    from tritonrec.model.tables import QuantizedEmbedding

    model = onnx.load(str(source))
    tables = embedding_tables(model)
    if not tables:
        raise ExportError(f"{source}: no embedding table (a float [V, D] initializer gathered along rows) to quantize")
    details: dict[str, dict[str, Any]] = {}
    for name, tensor in tables.items():
        weight = numpy_helper.to_array(tensor)
        try:
            table = QuantizedEmbedding.from_weight(torch.from_numpy(weight.copy()), EmbeddingStorage.INT8)
        except ConfigError as e:
            raise ExportError(f"{source}: table {name!r}: {e}") from e
        parts = {
            "codes": table.codes.numpy(),
            "scales": table.scales.numpy(),
            "biases": table.biases.numpy(),
        }
        for part, values in parts.items():
            model.graph.initializer.append(numpy_helper.from_array(values, f"{name}_int8_{part}"))
        error = np.abs(table.dequantized().numpy() - weight).max()
        details[name] = {
            "rows": int(weight.shape[0]),
            "dim": int(weight.shape[1]),
            "bytes_fp32": int(weight.nbytes),
            "bytes": int(sum(v.nbytes for v in parts.values())),
            "max_abs_error": float(error),
        }
    nodes = []
    for node in model.graph.node:
        if node.op_type != "Gather" or node.input[0] not in tables:
            nodes.append(node)
            continue
        table, ids, out_name = node.input[0], node.input[1], node.output[0]
        stem = f"{node.name or out_name}_int8"

        def gathered(part: str, *, stem: str = stem, table: str = table, ids: str = ids) -> str:
            nodes.append(helper.make_node("Gather", [f"{table}_int8_{part}", ids], [f"{stem}_{part}"], axis=0))
            nodes.append(helper.make_node("Cast", [f"{stem}_{part}"], [f"{stem}_{part}_f"], to=TensorProto.FLOAT))
            return f"{stem}_{part}_f"

        codes, scales, biases = gathered("codes"), gathered("scales"), gathered("biases")
        nodes.append(helper.make_node("Mul", [codes, scales], [f"{stem}_scaled"]))
        nodes.append(helper.make_node("Add", [f"{stem}_scaled", biases], [out_name]))
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    kept = [i for i in model.graph.initializer if i.name not in tables]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as e:
        raise ExportError(f"{source}: the graph with INT8 tables does not check: {e}") from e
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))
    return TablesResult(out, details)
