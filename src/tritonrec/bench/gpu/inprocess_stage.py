"""In-process speed and quality of the ranker per precision on one device (the first half of ``bench gpu``).

Legend: B = users per batch, L = history length, N = candidates per user.

**Speed.** For each :class:`~tritonrec.scorers.torch_device.DeviceSettings` and each B, the runner scores B users
with full histories (L) and N candidates each, inputs already on the device, cycling over three input sets of
random in-catalogue ids so no run re-reads the previous one's cache. Each timed call is bracketed by CUDA events
(``time.perf_counter`` on the CPU) and synchronised: its time is the batch's latency, and candidates/s =
B x N / median time. Warm-up calls come first (they capture CUDA graphs and compile). Where the inputs start on
the host, one more figure times the round trip (copy in, score, copy the float32 scores out).

**Quality.** Every precision scores the same evaluation rows (the Beauty test split: each user's held-out item
among 99 sampled negatives) through the shared metrics module; deltas are against FP32 on the same device.
"""

from __future__ import annotations

import functools
import gc
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from tritonrec.data.splits import EvalSet
from tritonrec.errors import ConfigError
from tritonrec.metrics import ranking_metrics, score_eval_set
from tritonrec.model.ranker import RankingModel
from tritonrec.scorers.torch_device import DeviceSettings, device_scorer, place_model, runner_for

__all__ = ["TimingRule", "measure_batches", "precision_quality", "time_calls"]

_INPUT_SETS = 3
_HOST_CALLS = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class TimingRule:
    """How long one point is timed.

    Attributes:
        warmup_calls: untimed calls first (CUDA-graph capture and compilation happen there).
        min_calls: timed calls at least.
        min_s: seconds of timed calls at least.
        max_calls: timed calls at most.
    """

    warmup_calls: int = 3
    min_calls: int = 10
    min_s: float = 0.3
    max_calls: int = 200

    def __post_init__(self) -> None:
        if self.warmup_calls < 1 or not 1 <= self.min_calls <= self.max_calls or self.min_s < 0:
            raise ConfigError("need warmup_calls >= 1, 1 <= min_calls <= max_calls and min_s >= 0")


def _inputs(model: RankingModel, users: int, n: int, device: torch.device, seed: int) -> list[tuple[Tensor, Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    n_items, length = model.spec.n_items, model.spec.history_len
    return [
        (
            torch.randint(1, n_items + 1, (users, length), generator=generator).to(device),
            torch.randint(1, n_items + 1, (users, n), generator=generator).to(device),
        )
        for _ in range(_INPUT_SETS)
    ]


def _timer(device: torch.device) -> Callable[[Callable[[], object]], float]:
    """A function that runs a call and returns its milliseconds, synchronised with the device."""
    if device.type == "cuda":

        def cuda_ms(call: Callable[[], object]) -> float:
            start = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
            end = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
            start.record()
            call()
            end.record()
            end.synchronize()
            return float(start.elapsed_time(end))

        return cuda_ms

    def cpu_ms(call: Callable[[], object]) -> float:
        started = time.perf_counter()
        call()
        return (time.perf_counter() - started) * 1e3

    return cpu_ms


def time_calls(calls: list[Callable[[], object]], device: torch.device, rule: TimingRule) -> list[float]:
    """Milliseconds of each timed call, cycling over ``calls`` (warm-up calls first, untimed), as ``rule`` says."""
    timer = _timer(device)
    for i in range(rule.warmup_calls):
        timer(calls[i % len(calls)])
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < rule.max_calls and (len(times) < rule.min_calls or time.perf_counter() - started < rule.min_s):
        times.append(timer(calls[len(times) % len(calls)]))
    return times


def _point(users: int, n: int, times: list[float], host_times: list[float]) -> dict[str, Any]:
    median = float(np.median(times))
    return {
        "users": users,
        "candidates": n,
        "calls": len(times),
        "median_ms": round(median, 3),
        "p90_ms": round(float(np.percentile(times, 90)), 3),
        "min_ms": round(float(min(times)), 3),
        "candidates_per_second": round(users * n / median * 1e3, 1),
        "host_round_trip_ms": round(float(np.median(host_times)), 3) if host_times else None,
    }


def _release(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def measure_batches(
    model: RankingModel,
    settings: DeviceSettings,
    batches: tuple[int, ...],
    n_candidates: int,
    *,
    rule: TimingRule | None = None,
    seed: int = 0,
    placed: nn.Module | None = None,
    time_left: Callable[[], float] = lambda: float("inf"),
) -> list[dict[str, Any]]:
    """Time ``model`` as ``settings`` say at each batch size of ``batches`` users x ``n_candidates``.

    Args:
        model: the ranker (not changed).
        settings: device, precision, cast and execution.
        batches: users per call.
        n_candidates: candidates per user.
        rule: how long each point is timed.
        seed: seeds the random inputs.
        placed: ``place_model(model, settings)`` when the caller already has it (saves a copy per setting).
        time_left: seconds left of the caller's budget; points past it are recorded as skipped.

    Returns:
        One dict per batch size: latency (median, p90, min ms), candidates/s and the host round trip, or
        ``error`` with what failed (out of memory, a compile error) or ``skipped``.
    """
    timing = rule or TimingRule()
    device = torch.device(settings.device)
    module = placed if placed is not None else place_model(model, settings)
    points: list[dict[str, Any]] = []
    for users in batches:
        if time_left() <= 0:
            points.append({"users": users, "candidates": n_candidates, "skipped": "time budget spent"})
            continue
        try:
            points.append(_measure_one(model, module, settings, users, n_candidates, timing, seed))
        except Exception as e:  # noqa: BLE001 - OOM, compile or capture failure: record it, measure the rest
            points.append({"users": users, "candidates": n_candidates, "error": f"{type(e).__name__}: {e}"[:500]})
        finally:
            _release(device)
    return points


def _measure_one(
    model: RankingModel,
    module: nn.Module,
    settings: DeviceSettings,
    users: int,
    n_candidates: int,
    timing: TimingRule,
    seed: int,
) -> dict[str, Any]:
    device = torch.device(settings.device)
    runner = runner_for(module, settings)
    inputs = _inputs(model, users, n_candidates, device, seed)
    times = time_calls([functools.partial(runner.run, *pair) for pair in inputs], runner.device, timing)
    on_host = (inputs[0][0].cpu(), inputs[0][1].cpu())
    host = [_timer(device)(lambda: runner.score(*on_host)) for _ in range(_HOST_CALLS)]
    return _point(users, n_candidates, times, host)


def precision_quality(
    model: RankingModel, rows: EvalSet, settings: list[DeviceSettings], *, batch_size: int = 1024
) -> list[dict[str, Any]]:
    """Score ``rows`` with each setting and compare with the first (the FP32 reference) through the metrics module.

    Returns:
        One dict per setting: ``label``, ``ndcg@10``, ``hr@10``, ``auc``, their deltas against the reference,
        and the largest and mean absolute score differences.
    """
    reference: np.ndarray[Any, Any] | None = None
    reference_metrics: dict[str, float] = {}
    out: list[dict[str, Any]] = []
    for setting in settings:
        scores = score_eval_set(device_scorer(model, setting), rows, batch_size=batch_size)
        metrics = ranking_metrics(scores, rows.labels)
        if reference is None:
            reference, reference_metrics = scores, metrics
        diff = np.abs(scores - reference)
        entry: dict[str, Any] = {"label": setting.label, "precision": setting.precision.value, "users": len(rows)}
        for key in ("ndcg@10", "hr@10", "auc"):
            entry[key] = round(metrics[key], 5)
            entry[f"delta_{key}"] = round(metrics[key] - reference_metrics[key], 5)
        entry["max_abs_score_diff"] = float(f"{diff.max():.3g}")
        entry["mean_abs_score_diff"] = float(f"{diff.mean():.3g}")
        out.append(entry)
        _release(torch.device(setting.device))
    return out
