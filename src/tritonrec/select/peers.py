"""Peer tools beside ``tritonrec select``: what another optimizer picks for the same model, judged by our rules.

Triton Model Navigator (:mod:`tritonrec.select.navigator`) converts the checkpoint to its formats, profiles each
on its own runners and picks by speed alone. Its pick is then scored with OUR metrics on the same test users as
every candidate, and held to the same quality budget against the same FP32 reference, so the report can say
whether a speed-only pick would have shipped a model that loses more quality than the user allows.

A peer that fails (not installed, a failed conversion, a timeout) is reported as such: the step, the command and
the log's tail; it never stops the selection.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tritonrec.errors import ConfigError
from tritonrec.select.navigator import (
    NavigatorQuality,
    NavigatorResult,
    NavigatorSettings,
    navigator_quality,
    profiled_candidates,
    run_navigator,
    run_spec_navigator,
    spec_navigator_quality,
)
from tritonrec.select.selection import Constraints

if TYPE_CHECKING:
    from tritonrec.data.registry import PreparedData
    from tritonrec.spec.model_spec import ModelSpec
    from tritonrec.spec.rows import SpecRows

__all__ = ["NavigatorPeer", "Peer", "SpecNavigatorPeer", "navigator_entry"]

Peer = Callable[[list[dict[str, Any]], "str | None", "dict[str, float] | None"], dict[str, Any]]
"""``(our candidate rows, our pick, the reference's quality) -> the peer's report entry``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class NavigatorPeer:
    """Model Navigator's ``optimize`` on the base checkpoint, its pick scored and judged like ours.

    Attributes:
        checkpoint: the base checkpoint (what select's FP32 reference is).
        data: its prepared dataset.
        dataset: the dataset's name, for the worker.
        data_dir: the dataset's files (None = the bundled copy).
        out_dir: Navigator's run folder.
        constraints: select's constraints (the quality budget is applied to Navigator's pick).
        quality_users: test users scored (0 = all), the same seeded sample as the candidates'.
        quality_seed: the seed of that sample.
        settings: what Navigator converts and how it profiles.
        python: its venv's python (None = the default).
        timeout_s: the run is stopped after this long.
    """

    checkpoint: Path
    data: PreparedData
    dataset: str
    data_dir: Path | None
    out_dir: Path
    constraints: Constraints
    quality_users: int = 0
    quality_seed: int = 0
    settings: NavigatorSettings = NavigatorSettings()
    python: Path | None = None
    timeout_s: float = 1800.0

    def __call__(
        self, rows: list[dict[str, Any]], chosen: str | None, reference: dict[str, float] | None
    ) -> dict[str, Any]:
        """Run Navigator, score its pick with our metrics, judge it against ``reference``; the report entry."""
        result = run_navigator(
            self.checkpoint,
            dataset=self.dataset,
            out_dir=self.out_dir,
            data_dir=self.data_dir,
            history_len=self.data.spec.history_len,
            settings=self.settings,
            python=self.python,
            timeout_s=self.timeout_s,
        )
        score = partial(navigator_quality, result, self.data, limit=self.quality_users, seed=self.quality_seed)
        return navigator_entry(result, score, self.settings.profile_candidates, self.constraints, reference, chosen)


@dataclass(frozen=True, slots=True, kw_only=True)
class SpecNavigatorPeer:
    """Model Navigator's ``optimize`` on a spec's module, its pick scored on the spec's rows and judged like ours.

    Attributes:
        spec: the spec (its module is select's FP32 reference).
        rows: the evaluation rows every candidate's quality is measured on (Navigator's samples come from them).
        out_dir: Navigator's run folder.
        constraints: select's constraints (the quality budget is applied to Navigator's pick).
        settings: what Navigator converts and how it profiles (batch sizes count rows, or queries).
        python: its venv's python (None = the default).
        timeout_s: the run is stopped after this long.
    """

    spec: ModelSpec
    rows: SpecRows
    out_dir: Path
    constraints: Constraints
    settings: NavigatorSettings = NavigatorSettings()
    python: Path | None = None
    timeout_s: float = 1800.0

    def __call__(
        self, rows: list[dict[str, Any]], chosen: str | None, reference: dict[str, float] | None
    ) -> dict[str, Any]:
        """Run Navigator on the spec's module, score its pick on the spec's rows, judge it; the report entry."""
        result = run_spec_navigator(
            self.spec,
            self.rows,
            out_dir=self.out_dir,
            settings=self.settings,
            python=self.python,
            timeout_s=self.timeout_s,
        )
        score = partial(spec_navigator_quality, result, self.spec, self.rows)
        per_row = profiled_candidates(self.rows, self.settings)
        return navigator_entry(result, score, per_row, self.constraints, reference, chosen)


def navigator_entry(
    result: NavigatorResult,
    score: Callable[[], NavigatorQuality],
    candidates_per_row: int,
    constraints: Constraints,
    reference: dict[str, float] | None,
    chosen: str | None,
) -> dict[str, Any]:
    """The report's entry for a Navigator run: what it did, its pick, our metrics on it (``score``), the verdict."""
    entry: dict[str, Any] = {
        "tool": f"Triton Model Navigator {result.navigator_version or '(not run)'}",
        "ran": result.ran,
        "record": str(result.record_path) if result.record_path else None,
        "log": str(result.log_path) if result.log_path else None,
        "failure": None,
        "picked": None,
        "quality": None,
        "delta": None,
        "meets_quality": None,
    }
    if result.failure is not None:
        f = result.failure
        entry["failure"] = {"step": f.step, "exit_code": f.exit_code, "error": f.error, "log_tail": f.log_tail}
    pick = result.picked
    if pick is None or not pick.found:
        why = result.failure.error if result.failure else "no format passed its correctness and profiling"
        entry["summary"] = f"picked nothing: {why}"
        return entry
    entry["picked"] = {
        "format": pick.format,
        "runner": pick.runner,
        "rows_per_second": pick.throughput_per_second,
        "candidates_per_row": candidates_per_row,
        "latency_ms": pick.latency_ms,
        "strategy": pick.strategy,
    }
    try:
        scored = score()
    except (ConfigError, RuntimeError, ValueError) as e:
        entry["summary"] = f"picked {pick.format} on {pick.runner}; our metrics could not score it: {e}"
        return entry
    metrics = dict(scored.metrics)
    entry["quality"] = {**metrics, "scored_by": scored.runtime, "autocast": scored.autocast}
    entry["summary"] = _summary(entry, metrics, reference, constraints, chosen)
    return entry


def _summary(
    entry: dict[str, Any],
    metrics: dict[str, float],
    reference: dict[str, float] | None,
    constraints: Constraints,
    chosen: str | None,
) -> str:
    picked = entry["picked"]
    speed = picked["rows_per_second"]
    text = f"picked {picked['format']} on {picked['runner']} by speed alone"
    per_row = picked["candidates_per_row"]
    if speed and per_row == 1:
        text += f" ({speed:,.0f} rows (candidates)/s in its own profiling; not comparable with served figures)"
    elif speed:
        text += (
            f" ({speed:,.0f} rows/s of {per_row} candidates in its own profiling = "
            f"{speed * per_row:,.0f} candidates/s; not comparable with served figures)"
        )
    text += f"; our metrics on its pick: NDCG@10 {metrics['ndcg@10']:.4f}, AUC {metrics['auc']:.4f}"
    if entry["quality"]["autocast"]:
        text += f" (scored under {entry['quality']['autocast']} autocast, as its runner ran it)"
    if reference is not None:
        delta = {k: metrics[k] - reference[k] for k in ("auc", "ndcg@10")}
        ok = -delta["auc"] <= constraints.max_auc_drop and -delta["ndcg@10"] <= constraints.max_ndcg_drop
        entry.update(delta=delta, meets_quality=ok)
        text += (
            f", ΔAUC {delta['auc']:+.4f}, ΔNDCG@10 {delta['ndcg@10']:+.4f} against the FP32 reference: "
            + ("within" if ok else "OUTSIDE")
            + " the allowed loss"
        )
    text += f". tritonrec's pick: {chosen or 'none'}."
    return text
