"""In-process speed of every measurable candidate: repeated trials in a shuffled order, one process per trial.

Inputs are real Beauty users (``tritonrec.measure.traffic``): single-user calls with the traffic's candidate counts
for the latency at one user, and a serving batch of ``batch_users`` x ``batch_candidates`` for throughput; for a
model spec, its own evaluation queries (:func:`write_spec_inputs`). Each
trial runs :mod:`tritonrec.select.inprocess_worker` in a fresh interpreter; ``repeats`` trials per candidate
visit the candidates in a seeded random order, so a busy moment of a shared machine does not land on one
candidate. Figures are medians with their min-max spread.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tritonrec.measure.traffic import CandidateCounts, TrafficSpec, load_user_pool
from tritonrec.records import Progress, quiet
from tritonrec.select.candidates import Candidate
from tritonrec.spec.rows import SpecRows
from tritonrec.spread import shuffled_trials, spread

__all__ = ["InProcessSettings", "measure_in_process", "write_inputs", "write_spec_inputs"]


@dataclass(frozen=True, slots=True, kw_only=True)
class InProcessSettings:
    """What one trial measures.

    Attributes:
        threads: intra-op threads of every runtime (0 = the runtime's default: every core it sees).
        single_users: distinct one-user requests (latency at 1 user).
        batch_users: users per call of the serving batch.
        batch_candidates: candidates per user of the serving batch.
        min_s: seconds of timed calls at least, per figure.
        min_calls: timed calls at least, per figure.
        max_calls: timed calls at most, per figure.
        repeats: trials per candidate.
        timeout_s: a trial that takes longer is recorded as failed.
    """

    threads: int = 0
    single_users: int = 64
    batch_users: int = 16
    batch_candidates: int = 200
    min_s: float = 2.0
    min_calls: int = 20
    max_calls: int = 2000
    repeats: int = 3
    timeout_s: float = 600.0


def write_inputs(path: Path, traffic: TrafficSpec, settings: InProcessSettings, history_len: int) -> Path:
    """The worker's inputs from ``traffic``'s users: one-user requests and the serving batch (``.npz``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pool = load_user_pool(traffic, history_len=history_len)
    fixed = load_user_pool(
        TrafficSpec(
            source=traffic.source, candidates=CandidateCounts.fixed(settings.batch_candidates), seed=traffic.seed
        ),
        history_len=history_len,
    )

    def padded(histories: Sequence[npt.NDArray[np.int64]]) -> npt.NDArray[np.int64]:
        out = np.zeros((len(histories), history_len), dtype=np.int64)
        for i, h in enumerate(histories):
            kept = h[-history_len:]
            if len(kept):
                out[i, -len(kept) :] = kept
        return out

    singles = pool.sample(settings.single_users)
    batch = fixed.sample(settings.batch_users)
    arrays = {
        "single_histories": padded([h for h, _ in singles]),
        "batch_histories": padded([h for h, _ in batch]),
        "batch_candidates": np.stack([c for _, c in batch]).astype(np.int64),
    }
    arrays |= {f"single_candidates_{i}": c.astype(np.int64) for i, (_, c) in enumerate(singles)}
    np.savez(path, **arrays)
    return path


def write_spec_inputs(path: Path, rows: SpecRows, settings: InProcessSettings) -> Path:
    """The worker's inputs from a spec's evaluation rows: one-query requests and the serving batch (``.npz``).

    The one-query requests are the first ``single_users`` queries, each with its own candidates; the serving batch
    is the next ``batch_users`` queries together, as the served model's dynamic batcher stacks them.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    queries = list(rows.queries())
    singles = queries[: settings.single_users]
    together = queries[len(singles) : len(singles) + settings.batch_users] or queries[: settings.batch_users]
    arrays: dict[str, Any] = {"singles": len(singles)}
    for i, bounds in enumerate(singles):
        arrays |= {f"single_{i}__{name}": values for name, values in rows.batch(*bounds).items()}
    start, stop = together[0][0], together[-1][1]
    arrays |= {f"batch__{name}": values for name, values in rows.batch(start, stop).items()}
    arrays["batch_rows"] = stop - start
    np.savez(path, **arrays)
    return path


def _trial(
    candidate: Candidate, inputs: Path, settings: InProcessSettings, work: Path, tag: str, spec: Path | None
) -> dict[str, Any]:
    job = {
        "spec": None if spec is None else str(spec),
        "runtime": candidate.runtime.value,
        "precision": candidate.precision.value,
        "artifact": str(candidate.artifact),
        "threads": settings.threads,
        "inputs": str(inputs),
        "timing": {"min_s": settings.min_s, "min_calls": settings.min_calls, "max_calls": settings.max_calls},
    }
    job_file, out_file = work / f"{tag}.job.json", work / f"{tag}.out.json"
    job_file.write_text(json.dumps(job))
    cmd = [sys.executable, "-m", "tritonrec.select.inprocess_worker", str(job_file), str(out_file)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=settings.timeout_s, check=False)  # noqa: S603
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {settings.timeout_s:g} s"}
    if done.returncode != 0 or not out_file.is_file():
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return {"error": f"exit {done.returncode}: {' | '.join(tail)}"}
    result: dict[str, Any] = json.loads(out_file.read_text())
    return result


def _summary(trials: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [t for t in trials if "error" not in t]
    errors = [t["error"] for t in trials if "error" in t]
    if not ok:
        return {"measured": False, "errors": errors}

    def sp(values: list[float]) -> dict[str, Any]:
        return spread(values).to_dict()

    return {
        "measured": True,
        "trials": len(ok),
        "errors": errors,
        "load_s": sp([t["load_s"] for t in ok]),
        "warmup_s": sp([t["warmup_s"] for t in ok]),
        "latency_p50_ms": sp([t["latency_ms"]["p50"] for t in ok]),
        "latency_p99_ms": sp([t["latency_ms"]["p99"] for t in ok]),
        "batch": ok[0]["batch"],
        "batch_cand_per_s": sp([t["batch_cand_per_s"] for t in ok]),
        "peak_rss_mib": max(t["peak_rss_mib"] for t in ok),
        "model_rss_mib": round(max(t["peak_rss_mib"] - t["base_rss_mib"] for t in ok), 1),
    }


def measure_in_process(
    candidates: Sequence[Candidate],
    inputs: Path,
    settings: InProcessSettings,
    *,
    seed: int = 0,
    spec: Path | None = None,
    progress: Progress = quiet,
) -> dict[str, dict[str, Any]]:
    """Each candidate's in-process figures (by name): spreads over ``settings.repeats`` trials.

    ``spec``: the candidates are a model spec's (its file; ``inputs`` from :func:`write_spec_inputs`).
    """
    trials: dict[str, list[dict[str, Any]]] = {c.name: [] for c in candidates}
    by_name = {c.name: c for c in candidates}
    order = shuffled_trials(list(by_name), settings.repeats, seed=seed)
    with tempfile.TemporaryDirectory(prefix="tritonrec-select-") as work:
        for i, (name, repeat) in enumerate(order, start=1):
            progress(f"in process [{i}/{len(order)}] {name} (trial {repeat + 1}) ...")
            trials[name].append(_trial(by_name[name], inputs, settings, Path(work), f"t{i}", spec))
    return {name: _summary(t) for name, t in trials.items()}
