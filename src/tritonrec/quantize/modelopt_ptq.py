"""NVIDIA ModelOpt's ONNX PTQ as a second calibrator, run in ModelOpt's own virtualenv through a subprocess.

ModelOpt writes the same explicit-quantization form TensorRT consumes (INT8 Q/DQ, symmetric, weights per
channel) but chooses by itself which nodes to quantize (its TensorRT-oriented partitioning: MatMul, the inputs of
residual Adds, LayerNorm outputs, ...), so it is compared by the same quality and speed measurements as ONNX
Runtime's calibrators. Nothing here imports modelopt: :func:`find_modelopt_python` finds the interpreter,
:func:`quantize_modelopt` runs ``modelopt_worker.py`` with it and returns the file or the exact failure.
"""

from __future__ import annotations

import enum
import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tritonrec.quantize.calibration import CalibrationSet, FeedBatches

__all__ = ["LOCAL_INSTALL", "ModelOptMethod", "ModelOptResult", "find_modelopt_python", "quantize_modelopt"]

LOCAL_INSTALL = Path(".tools/modelopt/bin/python")
"""Where ``export/tools/install_modelopt.sh`` puts ModelOpt's interpreter (relative to the repository root)."""
ENV_VAR = "TRITONREC_MODELOPT_PYTHON"
_WORKER = Path(__file__).with_name("modelopt_worker.py")


class ModelOptMethod(enum.StrEnum):
    """ModelOpt's INT8 calibration methods."""

    MAX = "max"
    ENTROPY = "entropy"


@dataclass(frozen=True, slots=True)
class ModelOptResult:
    """What a ModelOpt run gave: the file, or why there is none.

    Attributes:
        path: the quantized ONNX file (None when it failed or could not run).
        error: the exact failure (None on success).
        version: ModelOpt's version, when it ran.
    """

    path: Path | None
    error: str | None
    version: str | None = None


def find_modelopt_python(path: Path | None = None) -> Path | None:
    """ModelOpt's interpreter: ``path``, else ``$TRITONREC_MODELOPT_PYTHON``, else ``.tools/modelopt``; or None."""
    for candidate in (path, Path(os.environ[ENV_VAR]) if os.environ.get(ENV_VAR) else None, LOCAL_INSTALL):
        if candidate is not None and candidate.exists():
            return candidate.absolute()
    return None


def quantize_modelopt(
    source: Path,
    out: Path,
    rows: CalibrationSet | FeedBatches,
    *,
    method: ModelOptMethod = ModelOptMethod.MAX,
    exclude_nodes: tuple[str, ...] = (),
    python: Path | None = None,
    timeout_s: float = 1800,
) -> ModelOptResult:
    """Quantize ``source`` to ``out`` with ModelOpt, calibrated on ``rows``; failures are returned, not raised.

    Args:
        source: the FP32 ONNX file.
        out: the ``.onnx`` file to write.
        rows: calibration rows (real training users, or a spec's calibration rows).
        method: ModelOpt's calibration method.
        exclude_nodes: node names to keep in float.
        python: ModelOpt's interpreter (default: :func:`find_modelopt_python`).
        timeout_s: give up after this long.
    """
    interpreter = find_modelopt_python(python)
    if interpreter is None:
        return ModelOptResult(
            None, f"no ModelOpt interpreter (${ENV_VAR} or {LOCAL_INSTALL}): run bash export/tools/install_modelopt.sh"
        )
    source, out = source.absolute(), out.absolute()  # the worker runs in a scratch folder
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tritonrec-modelopt-") as work:
        calibration = rows.save(Path(work) / "calibration.npz")
        command = [
            str(interpreter),
            str(_WORKER),
            "--onnx",
            str(source),
            "--calibration",
            str(calibration),
            "--method",
            method.value,
            "--out",
            str(out),
            "--exclude-nodes",
            ",".join(exclude_nodes),
        ]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, cwd=work)
        except (OSError, subprocess.TimeoutExpired) as e:
            return ModelOptResult(None, f"ModelOpt did not run: {type(e).__name__}: {e}")
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    try:
        result = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        tail = (done.stderr or done.stdout)[-1500:]
        return ModelOptResult(None, f"ModelOpt exited {done.returncode} without a result: {tail}")
    if not result.get("ok"):
        return ModelOptResult(None, str(result.get("error")))
    if not out.is_file():
        return ModelOptResult(None, f"ModelOpt reported success but wrote no {out}")
    return ModelOptResult(out, None, str(result.get("modelopt")))
