"""Serialized PyTorch artifacts (TorchScript, ``torch.export`` programs) as :data:`tritonrec.metrics.Scorer`.

Other tools write these (Model Navigator's ``torchscript`` and ``torch-exportedprogram`` formats); scoring them
here, with the one metrics module, makes their quality comparable with every other artifact. The bundled model's
graph contract is ``forward(history [B, L], candidates [B, N]) -> scores [B, N]`` (legend: B = users, L = history
length, N = candidates per user); histories are passed at full length ``L`` (a traced graph may have fixed it). A
spec's model takes its inputs positionally in the spec's order (:func:`artifact_rows_scorer`), as its module does.

``autocast`` mirrors the runtime the tool measured: Model Navigator's Torch runners wrap each call in
``torch.autocast(device_type, enabled=autocast, dtype=autocast_dtype)``, whose CPU default type is bfloat16, so
the same artifact scores differently with and without it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from tritonrec.data.splits import FeatureBatch
from tritonrec.errors import ConfigError
from tritonrec.metrics import RowsScorer, Scorer
from tritonrec.spec.model_spec import ModelSpec

__all__ = ["AUTOCAST_DTYPES", "artifact_rows_scorer", "exported_program_scorer", "torchscript_scorer"]

AUTOCAST_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}
"""Names accepted for ``autocast_dtype`` (None = torch's default for the device)."""

_Module = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _dtype(name: str | None) -> torch.dtype | None:
    if name is None:
        return None
    short = name.removeprefix("torch.")
    if short not in AUTOCAST_DTYPES:
        raise ConfigError(f"autocast_dtype must be one of {sorted(AUTOCAST_DTYPES)} or None, got {name!r}")
    return AUTOCAST_DTYPES[short]


def _scorer(module: _Module, *, autocast: bool, autocast_dtype: str | None) -> Scorer:
    dtype = _dtype(autocast_dtype)

    def score(batch: FeatureBatch) -> npt.NDArray[np.float32]:
        histories = torch.from_numpy(np.ascontiguousarray(batch.histories, dtype=np.int64))
        candidates = torch.from_numpy(np.ascontiguousarray(batch.candidates, dtype=np.int64))
        with torch.inference_mode(), torch.autocast("cpu", enabled=autocast, dtype=dtype):
            scores = module(histories, candidates)
        result: npt.NDArray[np.float32] = scores.float().numpy()
        return result

    return score


def _load(path: Path, fmt: str) -> torch.nn.Module:
    """A TorchScript file (``torchscript``) or a saved ``torch.export`` program (``torch-exportedprogram``).

    Raises:
        ConfigError: the file does not load as that format, or the format is another.
    """
    try:
        if fmt == "torchscript":
            return torch.jit.load(str(path), map_location="cpu").eval()  # type: ignore[no-untyped-call,no-any-return]
        if fmt == "torch-exportedprogram":
            return torch.export.load(str(path)).module()
    except (RuntimeError, OSError, ValueError) as e:
        kind = "TorchScript" if fmt == "torchscript" else "a torch.export program"
        raise ConfigError(f"{path} does not load as {kind}: {e}") from e
    raise ConfigError(f"{fmt!r} is not a serialized PyTorch format (torchscript, torch-exportedprogram)")


def torchscript_scorer(path: Path, *, autocast: bool = False, autocast_dtype: str | None = None) -> Scorer:
    """A scorer over a TorchScript file (``torch.jit.load``), on the CPU.

    Args:
        path: the ``.pt`` file.
        autocast: run each call under ``torch.autocast("cpu")``.
        autocast_dtype: ``bfloat16``, ``float16`` (``torch.`` prefix allowed) or None (torch's CPU default).

    Raises:
        ConfigError: the file does not load as TorchScript, or an unknown autocast type.
    """
    return _scorer(_load(path, "torchscript"), autocast=autocast, autocast_dtype=autocast_dtype)


def exported_program_scorer(path: Path, *, autocast: bool = False, autocast_dtype: str | None = None) -> Scorer:
    """A scorer over a saved ``torch.export`` program (``torch.export.load(path).module()``), on the CPU.

    Args:
        path: the ``.pt2`` file.
        autocast: run each call under ``torch.autocast("cpu")``.
        autocast_dtype: as for :func:`torchscript_scorer`.

    Raises:
        ConfigError: the file does not load as an exported program, or an unknown autocast type.
    """
    return _scorer(_load(path, "torch-exportedprogram"), autocast=autocast, autocast_dtype=autocast_dtype)


def artifact_rows_scorer(
    path: Path, fmt: str, spec: ModelSpec, *, autocast: bool = False, autocast_dtype: str | None = None
) -> RowsScorer:
    """A spec's model serialized by another tool (``torchscript`` or ``torch-exportedprogram``) as a rows scorer.

    Its inputs are passed positionally in the spec's order, as the eager module takes them.

    Raises:
        ConfigError: the file does not load as ``fmt``, or an unknown autocast type.
    """
    module, dtype = _load(path, fmt), _dtype(autocast_dtype)
    names = [i.name for i in spec.inputs]

    def score(features: dict[str, npt.NDArray[Any]]) -> npt.NDArray[np.floating[Any]]:
        tensors = [torch.from_numpy(np.ascontiguousarray(features[n])) for n in names]
        with torch.inference_mode(), torch.autocast("cpu", enabled=autocast, dtype=dtype):
            out = module(*tensors)
        scores: npt.NDArray[np.floating[Any]] = out.float().numpy()
        return scores

    return score
