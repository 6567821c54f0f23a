"""In-process CPU speed of each precision variant, side by side, and what its kernels really ran.

Every variant is opened as ``ranker_cpu`` serves it (``ranker_cpu_model.open_session``: the same threads, no
spinning, ONNX Runtime or OpenVINO) and scores ``B`` real test users x ``N`` candidates. ``repeats`` rounds visit
the variants in seeded random orders, so contention on a shared machine hits every variant alike; each trial
repeats its batch until ``min_time_s`` has passed. Figures are candidates
per second, reported as median (min-max) with :mod:`tritonrec.spread`.

:func:`profile_ops` answers "did it run in INT8?": ONNX Runtime's optimized graph (which INT8 kernels the
fusions produced, which MatMuls stayed in float) and its profiler (time per op type); OpenVINO's runtime model
(the precision each executed layer ran in).

Legend: B = users per batch, N = candidates per user, L = history length.
"""

from __future__ import annotations

import gc
import json
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from tritonrec.backends.ranker_cpu_model import open_session
from tritonrec.data.splits import EvalSet, FeatureBatch
from tritonrec.errors import ConfigError
from tritonrec.records import Progress, quiet
from tritonrec.scorers.ort import session_scorer
from tritonrec.spread import Spread, shuffled_trials, spread

__all__ = [
    "OpProfile",
    "SpeedConfig",
    "SpeedModel",
    "is_int8_kernel",
    "items_per_s",
    "measure_speed",
    "profile_ops",
    "speed_batch",
    "speed_table",
]

_INT8_PREFIXES = ("QLinear", "QGemm", "QAttention", "QEmbed", "DynamicQuantize", "MatMulInteger", "ConvInteger")


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeedConfig:
    """How the variants are timed.

    Attributes:
        batches: users per batch (``B``).
        candidates: candidates per user (``N``).
        repeats: trials per (variant, batch).
        min_time_s: each trial repeats its batch until this much time has passed (at least once).
        threads: intra-op threads (0 = the cores this process may use, as ``ranker_cpu`` with one instance).
        seed: order of the trials and the sampled candidates.
    """

    batches: tuple[int, ...] = (1, 32, 256, 1024)
    candidates: int = 200
    repeats: int = 3
    min_time_s: float = 0.5
    threads: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.batches or min(self.batches) < 1 or self.candidates < 1:
            raise ConfigError(f"batches and candidates must be >= 1, got {self.batches} and {self.candidates}")
        if self.repeats < 1 or self.min_time_s < 0 or self.threads < 0:
            raise ConfigError("repeats must be >= 1, min_time_s and threads >= 0")


@dataclass(frozen=True, slots=True)
class SpeedModel:
    """A file to time and the runtime that runs it (``onnxruntime`` or ``openvino``)."""

    path: Path
    runtime: str = "onnxruntime"


def speed_batch(rows: EvalSet, n_items: int, users: int, candidates: int, seed: int = 0) -> FeatureBatch:
    """``users`` real histories (cycled if the split is smaller) with ``candidates`` uniformly sampled items each."""
    rng = np.random.default_rng(seed)
    index = np.arange(users) % len(rows)
    histories = np.ascontiguousarray(rows.histories[index], dtype=np.int64)
    return FeatureBatch(histories, rng.integers(1, n_items + 1, size=(users, candidates), dtype=np.int64))


def items_per_s(run: Callable[[], object], items: int, min_time_s: float) -> float:
    """``items`` per second of ``run``, repeated until ``min_time_s`` has passed (at least once).

    One untimed run comes first: the first run of a shape allocates.
    """
    run()
    runs, started = 0, time.perf_counter()
    while True:
        run()
        runs += 1
        elapsed = time.perf_counter() - started
        if elapsed >= min_time_s:
            return runs * items / elapsed


def measure_speed(
    models: Mapping[str, SpeedModel],
    rows: EvalSet,
    n_items: int,
    config: SpeedConfig,
    *,
    progress: Progress = quiet,
) -> dict[str, dict[int, Spread]]:
    """Candidates per second of every model at every batch size.

    Each of ``repeats`` rounds visits the models in a new seeded random order; a model's session is opened for its
    turn, runs every batch size (in a random order, each after one untimed run) and is closed again: one session
    at a time keeps memory bounded (a session's arena grows to what its largest batch needs, a few GB at
    1024 users x 200 candidates), and every model meets the same contention in every round.

    Returns:
        ``{variant: {B: Spread}}``.
    """
    batches = {b: speed_batch(rows, n_items, b, config.candidates, config.seed) for b in config.batches}
    figures: dict[tuple[str, int], list[float]] = {}
    order = shuffled_trials(list(models), config.repeats, config.seed)
    for done, (name, round_index) in enumerate(order, 1):
        model = models[name]
        scorer = session_scorer(open_session(model.path, config.threads, model.runtime))
        for b, _ in shuffled_trials(config.batches, 1, config.seed + done):
            batch = batches[b]
            figures.setdefault((name, b), []).append(
                items_per_s(partial(scorer, batch), b * config.candidates, config.min_time_s)
            )
        del scorer
        gc.collect()
        progress(f"speed {done}/{len(order)}: {name} (round {round_index + 1})")
    return {name: {b: spread(figures[(name, b)]) for b in config.batches} for name in models}


def is_int8_kernel(op_type: str) -> bool:
    """Whether an ONNX Runtime op type computes in integers (``QLinearMatMul``, ``MatMulIntegerToFloat``, ...)."""
    return op_type.startswith(_INT8_PREFIXES) or "Integer" in op_type


@dataclass(frozen=True, slots=True)
class OpProfile:
    """What one variant's kernels did on one batch.

    Attributes:
        runtime: ``onnxruntime`` or ``openvino``.
        int8_ops: ``{op type: count}`` of integer kernels in the optimized graph (ORT) or
            ``{"i8:<layer>": count}`` of layers that ran in INT8 (OpenVINO).
        float_matmuls: MatMul/Gemm/FullyConnected nodes that still run in float.
        ms_per_op: ONNX Runtime profiler, milliseconds per run by op type (largest first; empty for OpenVINO).
        graph_ops: every op type of the optimized graph (ORT) or ``precision:layer`` (OpenVINO) with its count.
    """

    runtime: str
    int8_ops: dict[str, int]
    float_matmuls: int
    ms_per_op: dict[str, float] = field(default_factory=dict)
    graph_ops: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "runtime": self.runtime,
            "int8_ops": self.int8_ops,
            "float_matmuls": self.float_matmuls,
            "ms_per_op": self.ms_per_op,
            "graph_ops": self.graph_ops,
        }


def _profile_ort(path: Path, batch: FeatureBatch, threads: int, runs: int) -> OpProfile:
    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="tritonrec-profile-") as work:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(work) / "profile")
        options.optimized_model_filepath = str(Path(work) / "optimized.onnx")
        session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
        scorer = session_scorer(session)
        scorer(batch)  # warm-up (also in the profile; divided out below with the others)
        for _ in range(runs):
            scorer(batch)
        events = json.loads(Path(session.end_profiling()).read_text())
        optimized = onnx.load(str(Path(work) / "optimized.onnx"), load_external_data=False)
    times: Counter[str] = Counter()
    for event in events:
        if event.get("cat") == "Node" and str(event.get("name", "")).endswith("_kernel_time"):
            times[str(event["args"]["op_name"])] += int(event["dur"])
    graph_ops = Counter(node.op_type for node in optimized.graph.node)
    return OpProfile(
        runtime="onnxruntime",
        int8_ops={op: n for op, n in sorted(graph_ops.items()) if is_int8_kernel(op)},
        float_matmuls=graph_ops["MatMul"] + graph_ops["Gemm"] + graph_ops["FusedMatMul"],
        ms_per_op={op: round(us / 1000 / (runs + 1), 3) for op, us in times.most_common()},
        graph_ops=dict(sorted(graph_ops.items())),
    )


def profile_ops(model: SpeedModel, batch: FeatureBatch, *, threads: int = 0, runs: int = 3) -> OpProfile:
    """Profile ``model`` on ``batch`` (see :class:`OpProfile`)."""
    if model.runtime == "openvino":
        from tritonrec.quantize.openvino_ptq import runtime_precisions

        layers = runtime_precisions(open_session(model.path, threads, "openvino"))
        return OpProfile(
            runtime="openvino",
            int8_ops={k: v for k, v in layers.items() if k.startswith(("i8:", "u8:"))},
            float_matmuls=sum(v for k, v in layers.items() if k.startswith("f") and k.endswith(":FullyConnected")),
            graph_ops=layers,
        )
    return _profile_ort(model.path, batch, threads, runs)


def speed_table(figures: Mapping[str, Mapping[int, Spread]], batches: Sequence[int]) -> list[dict[str, Any]]:
    """One JSON row per variant: ``{"name", "B=<b>": spread dict, ...}``."""
    return [{"name": name, **{f"B={b}": per[b].to_dict() for b in batches}} for name, per in figures.items()]
