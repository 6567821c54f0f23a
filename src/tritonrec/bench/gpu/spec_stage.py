"""A team's model (its spec) per precision on one device: rows/s and the quality each precision keeps (``bench gpu``).

Legend: B = rows per call, R = the spec's evaluation rows.

The spec's module (factory + weights, TorchScript or program, as every spec command loads it) is placed on the
device per precision exactly as the bundled ranker is (:func:`~tritonrec.scorers.torch_device.place_model`: a copy,
weights cast for ``weights``, or FP32 weights under ``torch.autocast`` for ``autocast``; with cast weights the
floating inputs are cast too, integer ids never are).

**Speed.** For each B, three sets of B rows drawn (seeded, with replacement) from the evaluation rows, already on
the device, cycled so no call re-reads the previous one's cache; each call timed and synchronised as the ranker's
(:func:`~tritonrec.bench.gpu.inprocess_stage.time_calls`); rows/s = B / median time. Eager execution only: a spec's
model is whatever the team wrote, and CUDA graphs need fixed shapes it may not have.

**Quality.** Each precision scores all R evaluation rows (in calls of the largest B) and is judged by
:func:`~tritonrec.metrics.spec_quality` (the spec's cutoffs and the budget's NDCG@10), deltas against FP32.

Rows layout only (every input per row, as the DLRM's): a query + candidates model has no "B rows" to time.
"""

from __future__ import annotations

import contextlib
import functools
import gc
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor, nn

from tritonrec.bench.gpu.inprocess_stage import TimingRule, time_calls
from tritonrec.errors import ConfigError
from tritonrec.metrics import score_rows, spec_quality
from tritonrec.records import Progress, quiet
from tritonrec.scorers.torch_device import CastMode, DeviceSettings, Precision, place_model
from tritonrec.spec import load_spec
from tritonrec.spec.model_spec import Layout, ModelSpec
from tritonrec.spec.module import load_module
from tritonrec.spec.rows import SpecRows, read_rows, split_rows

__all__ = ["SpecStageSettings", "measure_spec"]

_INPUT_SETS = 3
_QUALITY_KEYS = ("ndcg@10", "auc")


@dataclass(frozen=True, slots=True, kw_only=True)
class SpecStageSettings:
    """What the spec stage measures.

    Attributes:
        spec: the model spec file.
        device: ``cuda``, ``cuda:K`` or ``cpu``.
        batches: rows per timed call.
        precisions: FP32 first (the quality reference).
        cast: how BF16/FP16 are applied.
        timing: how long each point is timed.
        seed: seeds the rows drawn for timing.
    """

    spec: Path
    device: str = "cuda"
    batches: tuple[int, ...] = (1024, 16384, 131072)
    precisions: tuple[Precision, ...] = (Precision.FP32, Precision.BF16, Precision.FP16)
    cast: CastMode = CastMode.WEIGHTS
    timing: TimingRule = field(default_factory=TimingRule)
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.batches or any(b < 1 for b in self.batches):
            raise ConfigError(f"spec batches must be >= 1 rows (at least one), got {list(self.batches)}")
        if not self.precisions or self.precisions[0] is not Precision.FP32:
            raise ConfigError("precisions must start with fp32: it is the quality reference")


class _Placed:
    """The module on the device in one precision: ``run`` takes device tensors, ``score`` host rows."""

    def __init__(self, module: nn.Module, spec: ModelSpec, setting: DeviceSettings) -> None:
        self.module = place_model(module, setting)
        self.device = torch.device(setting.device)
        self.names = [i.name for i in spec.inputs]
        low = setting.precision is not Precision.FP32
        self.autocast = low and setting.cast is CastMode.AUTOCAST
        self.input_dtype = setting.precision.dtype if low and not self.autocast else None
        self.dtype = setting.precision.dtype

    def tensors(self, features: dict[str, npt.NDArray[Any]]) -> list[Tensor]:
        """The inputs in the spec's order on the device (floating ones cast with the weights)."""
        out = []
        for name in self.names:
            tensor = torch.from_numpy(np.ascontiguousarray(features[name])).to(self.device)
            if self.input_dtype is not None and tensor.is_floating_point():
                tensor = tensor.to(self.input_dtype)
            out.append(tensor)
        return out

    @contextlib.contextmanager
    def _context(self) -> Iterator[None]:
        with torch.inference_mode():
            if self.autocast:
                with torch.autocast(self.device.type, dtype=self.dtype):
                    yield
            else:
                yield

    def run(self, tensors: list[Tensor]) -> Tensor:
        """One forward call on device tensors."""
        with self._context():
            out: Tensor = self.module(*tensors)
        return out

    def score(self, features: dict[str, npt.NDArray[Any]]) -> npt.NDArray[np.float32]:
        """A :data:`~tritonrec.metrics.RowsScorer`: host rows in, float32 host scores out."""
        scores: npt.NDArray[np.float32] = self.run(self.tensors(features)).float().cpu().numpy()
        return scores


def _release(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _point(placed: _Placed, rows: SpecRows, size: int, timing: TimingRule, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    sets = [placed.tensors(rows.take(rng.integers(0, len(rows), size)).features) for _ in range(_INPUT_SETS)]
    times = time_calls([functools.partial(placed.run, t) for t in sets], placed.device, timing)
    median = float(np.median(times))
    return {
        "rows": size,
        "calls": len(times),
        "median_ms": round(median, 3),
        "p90_ms": round(float(np.percentile(times, 90)), 3),
        "rows_per_second": round(size / median * 1e3, 1),
    }


def _points(
    placed: _Placed, rows: SpecRows, settings: SpecStageSettings, time_left: Callable[[], float]
) -> list[dict[str, Any]]:
    points: list[dict[str, Any]] = []
    for size in settings.batches:
        if time_left() <= 0:
            points.append({"rows": size, "skipped": "time budget spent"})
            continue
        try:
            points.append(_point(placed, rows, size, settings.timing, settings.seed))
        except Exception as e:  # noqa: BLE001 - out of memory at one size: record it, measure the rest
            points.append({"rows": size, "error": f"{type(e).__name__}: {e}"[:500]})
        finally:
            _release(placed.device)
    return points


def _quality(
    metrics: dict[str, float], scores: npt.NDArray[np.float64], rows: SpecRows,
    reference: tuple[npt.NDArray[np.float64], dict[str, float]] | None,
) -> dict[str, Any]:  # fmt: skip
    entry: dict[str, Any] = {"rows": len(rows), "queries": rows.n_queries}
    for key in _QUALITY_KEYS:
        entry[key] = round(metrics[key], 5)
        if reference is not None:
            entry[f"delta_{key}"] = round(metrics[key] - reference[1][key], 5) + 0.0  # + 0.0: no "-0.0"
    if reference is not None:
        diff = np.abs(scores - reference[0])
        entry["max_abs_score_diff"] = float(f"{diff.max():.3g}")
        entry["mean_abs_score_diff"] = float(f"{diff.mean():.3g}")
    return entry


def _precision(
    module: nn.Module, spec: ModelSpec, rows: SpecRows, setting: DeviceSettings, settings: SpecStageSettings,
    time_left: Callable[[], float],
) -> tuple[list[dict[str, Any]], npt.NDArray[np.float64]]:  # fmt: skip
    """The timed points and the evaluation rows' scores of one precision (its placed copy freed on return)."""
    placed = _Placed(module, spec, setting)
    points = _points(placed, rows, settings, time_left)
    return points, score_rows(placed.score, rows, batch_rows=max(settings.batches))


def measure_spec(
    settings: SpecStageSettings,
    *,
    time_left: Callable[[], float] = lambda: float("inf"),
    progress: Progress = quiet,
) -> dict[str, Any]:
    """Time and judge the spec's module per precision on the device (see the module docstring).

    Returns:
        ``model`` (name, spec file, parameters, evaluation rows) and ``precisions``, one entry each: ``label``,
        ``points`` (rows/s and latency per B, or ``error`` / ``skipped``) and ``quality`` (NDCG@10, AUC, deltas
        against FP32, score differences), or ``error`` where the module could not run in that precision.

    Raises:
        ConfigError: the spec is not of the rows layout, or its model cannot be loaded.
    """
    spec = load_spec(settings.spec)
    if spec.layout is not Layout.ROWS:
        raise ConfigError(f"spec {spec.name!r} is of the {spec.layout.value} layout: the spec stage times rows-layout "
                          "models (every input per row)")  # fmt: skip
    progress(f"spec {spec.name}: loading its module and evaluation rows ...")
    module = load_module(spec)
    _, rows = split_rows(spec, read_rows(spec))
    record: dict[str, Any] = {
        "model": {
            "name": spec.name,
            "spec": str(settings.spec),
            "source": spec.model.kind,
            "parameters": sum(p.numel() for p in module.parameters()),
            "evaluation_rows": len(rows),
            "evaluation_queries": rows.n_queries,
        },  # fmt: skip
        "precisions": [],
    }
    reference: tuple[npt.NDArray[np.float64], dict[str, float]] | None = None
    for precision in settings.precisions:
        setting = DeviceSettings(device=settings.device, precision=precision, cast=settings.cast)
        progress(f"spec {spec.name}: {setting.label} ...")
        entry: dict[str, Any] = {"label": setting.label, "precision": precision.value}
        try:
            entry["points"], scores = _precision(module, spec, rows, setting, settings, time_left)
            metrics = spec_quality(spec, scores, rows)
            entry["quality"] = _quality(metrics, scores, rows, reference)
            if precision is Precision.FP32:
                reference = scores, metrics
        except Exception as e:  # noqa: BLE001 - a precision the module cannot run in is a result; go on
            entry["error"] = f"{type(e).__name__}: {e}"[:500]
        record["precisions"].append(entry)
        _release(torch.device(settings.device))
    return record
