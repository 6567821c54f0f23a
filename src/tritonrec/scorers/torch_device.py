"""The ranker in PyTorch on a chosen device and precision, as a :data:`tritonrec.metrics.Scorer` (GPU or CPU).

Legend: B = users, L = history length, N = candidates per user.

One :class:`DeviceSettings` says how the model runs:

- ``device``: ``cuda`` (or ``cuda:K``) or ``cpu``;
- ``precision``: ``fp32``, ``bf16`` or ``fp16``, applied by ``cast`` = ``weights`` (the model's floating weights
  are cast: every op runs in that type, LayerNorm and softmax included) or ``autocast`` (FP32 weights,
  ``torch.autocast`` picks per op: matrix products in the low type, reductions in FP32; what ``ranker_gpu``
  serves);
- ``execution``: ``eager``; ``cuda_graph`` (one CUDA graph per bucketed ``[B, L]``/``[B, N]`` shape, replayed:
  removes the launch cost of the model's ~100 small kernels); ``compile`` (``torch.compile``, dynamic shapes);
  ``compile_cuda_graph`` (the compiled model captured in CUDA graphs).

On a CPU, ``bf16`` runs (fast where the CPU has AVX512-BF16/AMX, slow elsewhere) and ``fp16`` runs but is not a
meaningful speed figure: most CPUs have no FP16 matrix units, so it falls back to slow reference kernels. CUDA
graphs need CUDA.

The history is encoded once per user, as on the CPU: the model's ``encode_history`` runs on ``[B, L]`` and its
result is shared by the user's N candidates. The runner is
:class:`~tritonrec.backends.ranker_gpu_model.ProgramRunner`, the same code the ``ranker_gpu`` Python model
serves with.
"""

from __future__ import annotations

import copy
import enum
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from tritonrec.backends.ranker_gpu_model import ProgramRunner
from tritonrec.data.splits import FeatureBatch
from tritonrec.errors import ConfigError
from tritonrec.metrics import Scorer

__all__ = [
    "CastMode",
    "DeviceSettings",
    "Execution",
    "Precision",
    "device_runner",
    "device_scorer",
    "place_model",
    "runner_for",
]


class Precision(enum.StrEnum):
    """Floating-point type the model computes in."""

    FP32 = "fp32"
    BF16 = "bf16"
    FP16 = "fp16"

    @property
    def dtype(self) -> torch.dtype:
        """The torch dtype."""
        return {Precision.FP32: torch.float32, Precision.BF16: torch.bfloat16, Precision.FP16: torch.float16}[self]


class CastMode(enum.StrEnum):
    """How a lower precision is applied."""

    WEIGHTS = "weights"  # cast the model's floating parameters and buffers
    AUTOCAST = "autocast"  # FP32 weights, torch.autocast per op


class Execution(enum.StrEnum):
    """How the model's kernels are launched."""

    EAGER = "eager"
    CUDA_GRAPH = "cuda_graph"
    COMPILE = "compile"
    COMPILE_CUDA_GRAPH = "compile_cuda_graph"

    @property
    def graphs(self) -> bool:
        """Replays CUDA graphs."""
        return self in (Execution.CUDA_GRAPH, Execution.COMPILE_CUDA_GRAPH)

    @property
    def compiled(self) -> bool:
        """Runs the model through ``torch.compile``."""
        return self in (Execution.COMPILE, Execution.COMPILE_CUDA_GRAPH)


def _enum(cls: type[enum.StrEnum], value: object, what: str) -> enum.StrEnum:
    try:
        return cls(str(value))
    except ValueError:
        raise ConfigError(f"{what} must be one of {[m.value for m in cls]}, got {value!r}") from None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceSettings:
    """How the ranker runs: device, precision and how it is applied, how kernels are launched.

    Attributes:
        device: ``cuda``, ``cuda:K`` or ``cpu``.
        precision: compute type.
        cast: how a lower precision is applied (ignored for FP32).
        execution: eager, CUDA graphs, ``torch.compile``, or both.
        candidate_step: with CUDA graphs, candidate widths are rounded up to a multiple of this.
    """

    device: str = "cuda"
    precision: Precision = Precision.FP32
    cast: CastMode = CastMode.WEIGHTS
    execution: Execution = Execution.EAGER
    candidate_step: int = 8

    def __post_init__(self) -> None:
        for name, cls in (("precision", Precision), ("cast", CastMode), ("execution", Execution)):
            value = getattr(self, name)
            if not isinstance(value, cls):
                object.__setattr__(self, name, _enum(cls, value, name))
        if self.device != "cpu" and not self.device.startswith("cuda"):
            raise ConfigError(f"device must be cpu, cuda or cuda:K, got {self.device!r}")
        if self.execution.graphs and self.device == "cpu":
            raise ConfigError(f"{self.execution.value} needs a CUDA device; on the CPU use eager or compile")
        if self.candidate_step < 1:
            raise ConfigError(f"candidate_step must be >= 1, got {self.candidate_step}")

    @property
    def label(self) -> str:
        """Short name for reports, e.g. ``bf16 weights cuda_graph``."""
        cast = "" if self.precision is Precision.FP32 else f" {self.cast.value}"
        return f"{self.precision.value}{cast} {self.execution.value}"


def place_model(model: nn.Module, settings: DeviceSettings) -> nn.Module:
    """A copy of ``model`` in eval mode on the settings' device, weights cast if asked (``model`` is unchanged)."""
    if settings.device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {settings.device} asked for, but torch sees no CUDA device")
    placed = copy.deepcopy(model).eval().to(settings.device)
    if settings.precision is not Precision.FP32 and settings.cast is CastMode.WEIGHTS:
        placed = placed.to(settings.precision.dtype)  # floating parameters and buffers only: id tables stay int64
    return placed


def runner_for(placed: nn.Module, settings: DeviceSettings) -> ProgramRunner:
    """The runner over a model already placed by :func:`place_model` with the same device, precision and cast."""
    module = torch.compile(placed, dynamic=True) if settings.execution.compiled else placed
    autocast = settings.precision is not Precision.FP32 and settings.cast is CastMode.AUTOCAST
    return ProgramRunner(
        module,
        torch.device(settings.device),
        precision=settings.precision.value if autocast else Precision.FP32.value,
        cuda_graphs=settings.execution.graphs,
        candidate_step=settings.candidate_step,
    )


def device_runner(model: nn.Module, settings: DeviceSettings) -> ProgramRunner:
    """The runner that scores with ``model`` as ``settings`` say (a placed copy; ``model`` is unchanged)."""
    return runner_for(place_model(model, settings), settings)


def device_scorer(model: nn.Module, settings: DeviceSettings) -> Scorer:
    """Return a scorer (numpy in, float32 numpy out) that runs ``model`` as ``settings`` say.

    Histories are passed at the model's full length ``L`` (CUDA graphs need fixed shapes); any integer ids are
    valid, as for every scorer.
    """
    runner = device_runner(model, settings)

    def score(batch: FeatureBatch) -> npt.NDArray[np.float32]:
        histories = torch.from_numpy(np.ascontiguousarray(batch.histories, dtype=np.int64))
        candidates = torch.from_numpy(np.ascontiguousarray(batch.candidates, dtype=np.int64))
        scores: npt.NDArray[np.float32] = runner.score(histories, candidates).numpy()
        return scores

    return score
