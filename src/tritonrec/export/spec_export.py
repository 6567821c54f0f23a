"""Export a spec's model: a dry run against the spec, then ONNX (FP32 + FP16) with parity on the user's own rows.

For a PyTorch model (factory + weights, TorchScript, ``torch.export`` program) the dry run calls the module on a
few of the user's rows and checks there is one score per row; the export makes the row axis and every named dim of
the spec dynamic, and the parity record compares ONNX Runtime's scores with eager PyTorch's on the evaluation rows
(max abs difference and how many rows). For an ONNX model the dry run checks the graph's input names, dtypes and
ranks against the spec, then runs it on the rows; the file is copied as it is. Nothing is written until the dry run
passes, and a failed export leaves no half-written folder.

Writes ``<out>/model.onnx`` (+ ``model_fp16.onnx``) and ``<out>/spec_export.json`` (the spec file it came from,
the artifacts, the parity records).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tritonrec.errors import ExportError
from tritonrec.export.onnx_export import OnnxArtifact, convert_to_fp16, export_module
from tritonrec.export.parity import ParityRecord, compare_scorers
from tritonrec.metrics import RowsScorer
from tritonrec.scorers.rows import module_rows_scorer, onnx_rows_scorer
from tritonrec.spec.model_spec import DTYPES, Layout, ModelSpec, Role
from tritonrec.spec.rows import SpecRows

__all__ = ["SPEC_EXPORT_FILE", "SpecExport", "dry_run", "export_spec"]

SPEC_EXPORT_FILE = "spec_export.json"
FP32_TOLERANCE = (1e-4, 1e-4)
FP16_TOLERANCE = (5e-2, 5e-2)
_ONNX_TYPES = {"float32": 1, "float16": 10, "int64": 7, "int32": 6, "bool": 9}  # onnx.TensorProto element types


@dataclass(frozen=True, slots=True)
class SpecExport:
    """What :func:`export_spec` wrote.

    Attributes:
        spec: the spec exported.
        out_dir: the export folder.
        artifacts: the ONNX files (FP32 first).
        parity: ONNX Runtime against the source, per artifact.
        parity_rows: how many of the user's rows the parity was measured on.
    """

    spec: ModelSpec
    out_dir: Path
    artifacts: list[OnnxArtifact]
    parity: list[ParityRecord]
    parity_rows: int

    @property
    def model_path(self) -> Path:
        """The FP32 ONNX file."""
        return self.artifacts[0].path


def dry_run(spec: ModelSpec, scorer: RowsScorer, rows: SpecRows, *, what: str) -> None:
    """Call ``scorer`` on a few of ``rows``: one finite score per row, or an error that says what was wrong.

    Raises:
        ExportError: the call failed (a name, dtype or shape the model does not take) or returned another shape.
    """
    start, stop = next(rows.bounds(4))
    batch = rows.batch(start, stop)
    shapes = {k: f"{v.dtype}{list(v.shape)}" for k, v in batch.items()}
    try:
        out = np.asarray(scorer(batch))
    except Exception as e:  # the model's own code raises anything; the message says what it was given
        raise ExportError(f"spec {spec.name!r}: dry run of the {what} on {stop - start} rows {shapes} failed: "
                          f"{type(e).__name__}: {e}") from e  # fmt: skip
    try:
        rows.scores_of(out, start, stop)
    except ValueError as e:
        raise ExportError(f"spec {spec.name!r}, dry run of the {what} on {shapes}: {e}") from None
    if not np.isfinite(out).all():
        raise ExportError(f"spec {spec.name!r}: dry run of the {what} returned non-finite scores")


def _check_onnx_inputs(spec: ModelSpec, path: Path) -> None:
    import onnx

    try:
        graph = onnx.load(str(path), load_external_data=False).graph
    except Exception as e:  # onnx raises DecodeError and plain Exceptions
        raise ExportError(f"model.onnx {path}: not a readable ONNX file: {e}") from e
    inputs = {i.name: i for i in graph.input}
    outputs = [o.name for o in graph.output]
    for item in spec.inputs:
        graph_input = inputs.get(item.name)
        if graph_input is None:
            raise ExportError(f"inputs: the spec names {item.name!r}, the graph's inputs are {sorted(inputs)}")
        tensor = graph_input.type.tensor_type
        if tensor.elem_type != _ONNX_TYPES[item.dtype]:
            raise ExportError(f"input {item.name!r}.dtype: the spec says {item.dtype}, the graph has onnx type "
                              f"{tensor.elem_type}")  # fmt: skip
        leading = 2 if item.role is Role.ITEM and spec.layout is Layout.QUERY_CANDIDATES else 1
        if len(tensor.shape.dim) != len(item.shape) + leading:
            axes = "the query and candidate axes" if leading == 2 else "the row axis" if item.role is Role.ITEM else (
                "the query axis")  # fmt: skip
            raise ExportError(f"input {item.name!r}.shape: the spec has {len(item.shape)} per-row dims, the graph "
                              f"{len(tensor.shape.dim) - leading} (plus {axes})")  # fmt: skip
    if spec.output.name not in outputs:
        raise ExportError(f"output.name: the spec names {spec.output.name!r}, the graph's outputs are {outputs}")


def _torch_export(spec: ModelSpec, rows: SpecRows, out: Path, external_data: bool | None) -> tuple[Any, OnnxArtifact]:
    import torch

    from tritonrec.spec.module import load_module

    module = load_module(spec)
    dry_run(spec, module_rows_scorer(module, spec), rows, what="PyTorch module")
    bounds = list(rows.bounds(3))
    example_rows = rows.batch(bounds[0][0], bounds[min(1, len(bounds) - 1)][1])  # >= 2 of each axis: none specialized
    if min(v.shape[0] for v in example_rows.values()) < 2:
        raise ExportError(f"spec {spec.name!r}: exporting needs at least 2 rows (queries) of data, got {len(rows)}")
    example = tuple(torch.from_numpy(example_rows[i.name]) for i in spec.inputs)
    query_layout = spec.layout is Layout.QUERY_CANDIDATES
    named: dict[str, Any] = {"__rows__": torch.export.Dim("queries" if query_layout else "rows")}
    dynamic_shapes: dict[str, dict[int, Any]] = {}
    for item in spec.inputs:
        axes = {0: named["__rows__"]}
        if query_layout and item.role is Role.ITEM:
            axes[1] = named.setdefault("__candidates__", torch.export.Dim("candidates"))
        for k, dim in enumerate(item.shape, start=len(axes)):
            if isinstance(dim, str):
                axes[k] = named.setdefault(dim, torch.export.Dim(dim))
        dynamic_shapes[item.name] = axes
    artifact = export_module(
        module,
        example,
        out / "model.onnx",
        input_names=[i.name for i in spec.inputs],
        dynamic_shapes=tuple(dynamic_shapes[i.name] for i in spec.inputs),  # positional: any forward() names
        external_data=external_data,
        layout=spec.layout.value,
        output_name=spec.output.name,
    )
    return module, artifact


def export_spec(
    spec: ModelSpec,
    rows: SpecRows,
    out_dir: Path,
    *,
    fp16: bool = True,
    parity_rows: int = 4096,
    external_data: bool | None = None,
) -> SpecExport:
    """Export the spec's model into ``out_dir`` after a dry run on ``rows`` (the user's evaluation rows).

    Raises:
        ExportError: the dry run failed (named input, dtype or shape; not one score per row), the exporter failed
            (an unsupported op is named in its message), or ONNX Runtime's scores differ from the source's beyond
            tolerance. ``out_dir`` is then left as it was.
        ConfigError: the factory cannot be imported.
    """
    for item in spec.inputs:
        if item.dtype not in DTYPES:  # unreachable for a validated spec; keeps the mapping total
            raise ExportError(f"input {item.name!r}: unsupported dtype {item.dtype}")
    checked = rows.take(np.arange(next(rows.bounds(parity_rows))[1]))
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out_dir.name}-", dir=out_dir.parent) as tmp:
        work = Path(tmp)
        parity: list[ParityRecord] = []
        if spec.model.onnx is not None:
            _check_onnx_inputs(spec, spec.model.onnx)
            fp32 = OnnxArtifact(
                path=work / "model.onnx", precision="fp32", external_data=False, layout=spec.layout.value
            )
            shutil.copy2(spec.model.onnx, fp32.path)
            data = spec.model.onnx.with_name(spec.model.onnx.name + ".data")
            if data.is_file():
                shutil.copy2(data, work / data.name)
            source: RowsScorer = onnx_rows_scorer(fp32.path, spec)
            dry_run(spec, source, checked, what="ONNX graph")
            reference_name = "onnx (the spec's file)"
        else:
            module, fp32 = _torch_export(spec, checked, work, external_data)
            source = module_rows_scorer(module, spec)
            reference_name = f"eager ({spec.model.kind})"
            parity.append(_parity(source, onnx_rows_scorer(fp32.path, spec), checked, reference_name, "onnx fp32",
                                  FP32_TOLERANCE))  # fmt: skip
        artifacts = [fp32]
        if fp16:
            half = convert_to_fp16(fp32, work / "model_fp16.onnx")
            artifacts.append(half)
            parity.append(_parity(onnx_rows_scorer(fp32.path, spec), onnx_rows_scorer(half.path, spec), checked,
                                  "onnx fp32", "onnx fp16", FP16_TOLERANCE))  # fmt: skip
        for record in parity:
            record.raise_if_failed()
        _write_report(spec, work, artifacts, parity, len(checked))
        out_dir.mkdir(parents=True, exist_ok=True)
        for path in work.iterdir():
            shutil.move(str(path), out_dir / path.name)
    final = [OnnxArtifact(out_dir / a.path.name, a.precision, a.external_data, a.layout) for a in artifacts]
    return SpecExport(spec=spec, out_dir=out_dir, artifacts=final, parity=parity, parity_rows=len(checked))


def _parity(
    reference: RowsScorer, candidate: RowsScorer, rows: SpecRows, ref: str, cand: str, tolerance: tuple[float, float]
) -> ParityRecord:
    cases = {f"rows {start}-{stop - 1}": rows.batch(start, stop) for start, stop in rows.bounds(1024)}
    return compare_scorers(
        lambda b: np.asarray(reference(b)).reshape(-1),
        lambda b: np.asarray(candidate(b)).reshape(-1),
        cases,
        reference_name=ref,
        candidate_name=cand,
        atol=tolerance[0],
        rtol=tolerance[1],
    )


def _write_report(
    spec: ModelSpec, out: Path, artifacts: list[OnnxArtifact], parity: list[ParityRecord], n: int
) -> None:
    report = {
        "spec": str(spec.path) if spec.path else None,
        "name": spec.name,
        "layout": spec.layout.value,
        "inputs": [
            {"name": i.name, "dtype": i.dtype, "shape": list(i.shape), "role": i.role.value} for i in spec.inputs
        ],
        "output": {"name": spec.output.name, "kind": spec.output.kind.value},
        "artifacts": [
            {"file": a.path.name, "precision": a.precision, "external_data": a.external_data} for a in artifacts
        ],
        "parity_rows": n,
        "parity": [r.to_dict() for r in parity],
    }
    (out / SPEC_EXPORT_FILE).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
