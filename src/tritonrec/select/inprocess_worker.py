"""One candidate's in-process speed, in a process of its own: ``python -m tritonrec.select.inprocess_worker JOB OUT``.

A fresh process per trial gives each candidate its own peak RSS and a cold load. The job (JSON) names the runtime,
precision, artifact and threads, and an ``.npz`` of inputs (Beauty users, or with ``spec`` a model spec's evaluation
queries, scored eager or by the graph in ONNX Runtime / OpenVINO); the worker writes its figures (JSON) to ``OUT``:

- ``load_s``: from nothing to a ready scorer (reading the file, building the session or model, compiling lazily
  excluded), ``warmup_s``: the first call at the serving batch (``torch.compile`` compiles there); every one-user
  request is then run once, untimed, so shapes seen for the first time do not land in the timed calls;
- ``latency_ms``: one user (one query) per call, with its own candidate count, p50/p99 over the calls;
- ``batch_cand_per_s``: the serving batch's candidates per call over the median call time;
- ``peak_rss_mib`` (``VmHWM`` of this process, data included) and ``base_rss_mib`` (before the model).
"""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tritonrec.data.splits import FeatureBatch
from tritonrec.select.candidates import Precision, Runtime
from tritonrec.select.runtimes import open_scorer

__all__ = ["main"]


def _rss_mib() -> float:
    """Peak RSS of this process image: ``VmHWM`` (``ru_maxrss`` would carry the parent's peak across fork + exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _timed_calls(
    call: Callable[[Any], Any], inputs: list[Any], *, min_s: float, min_calls: int, max_calls: int
) -> list[float]:
    times: list[float] = []
    start = time.perf_counter()
    i = 0
    while i < max_calls and (i < min_calls or time.perf_counter() - start < min_s):
        batch = inputs[i % len(inputs)]
        t = time.perf_counter()
        call(batch)
        times.append(time.perf_counter() - t)
        i += 1
    return times


def _bundled(job: dict[str, Any]) -> tuple[Callable[[Any], Any], list[Any], Any, int]:
    """The bundled model's scorer, its one-user requests and serving batch (Beauty users), the batch's candidates."""
    arrays = np.load(job["inputs"])
    singles = [
        FeatureBatch(arrays["single_histories"][i : i + 1], arrays[f"single_candidates_{i}"][None, :])
        for i in range(len(arrays["single_histories"]))
    ]
    batch = FeatureBatch(arrays["batch_histories"], arrays["batch_candidates"])
    scorer = open_scorer(
        Runtime(job["runtime"]), Precision(job["precision"]), Path(job["artifact"]), threads=job["threads"]
    )
    return scorer, singles, batch, int(batch.candidates.size)


def _spec(job: dict[str, Any]) -> tuple[Callable[[Any], Any], list[Any], Any, int]:
    """A spec's model: its scorer (eager, or the graph in ONNX Runtime / OpenVINO), one-query requests, the batch."""
    from tritonrec.scorers.rows import spec_scorer
    from tritonrec.spec import load_spec

    spec = load_spec(Path(job["spec"]))
    arrays = np.load(job["inputs"])
    names = [i.name for i in spec.inputs]
    singles = [{n: arrays[f"single_{q}__{n}"] for n in names} for q in range(int(arrays["singles"]))]
    batch = {n: arrays[f"batch__{n}"] for n in names}
    runtime = Runtime(job["runtime"])
    scorer = spec_scorer(spec, runtime.rows_runtime, Path(job["artifact"]), threads=job["threads"])
    return scorer, singles, batch, int(arrays["batch_rows"])


def main(argv: list[str]) -> int:
    """Run the job ``argv[0]`` and write its figures to ``argv[1]``."""
    job = json.loads(Path(argv[0]).read_text())
    base_rss = _rss_mib()
    t = time.perf_counter()
    scorer, singles, batch, batch_candidates = _spec(job) if job.get("spec") else _bundled(job)
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    scorer(batch)
    warmup_s = time.perf_counter() - t
    for single in singles:
        scorer(single)  # every one-request shape once: a compiled model specializes on them here, not while timed
    rule = job["timing"]
    single_times = _timed_calls(scorer, singles, **rule)
    batch_times = _timed_calls(scorer, [batch], **rule)
    figures = {
        "load_s": round(load_s, 4),
        "warmup_s": round(warmup_s, 4),
        "latency_ms": {
            "p50": round(float(np.percentile(single_times, 50)) * 1e3, 3),
            "p99": round(float(np.percentile(single_times, 99)) * 1e3, 3),
            "calls": len(single_times),
        },
        "batch": {"candidates": batch_candidates, "calls": len(batch_times)},
        "batch_cand_per_s": round(batch_candidates / float(np.median(batch_times)), 1),
        "peak_rss_mib": round(_rss_mib(), 1),
        "base_rss_mib": round(base_rss, 1),
    }
    Path(argv[1]).write_text(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
