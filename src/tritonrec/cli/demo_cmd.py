"""``tritonrec demo``: the main job, end to end on the bundled Amazon Beauty data.

Train (or reuse) -> export ONNX -> build the repository -> serve on the real Triton -> score the test users over
gRPC with the shared metrics module -> a short load sweep (``tritonrec bench sweep``) -> stop the server.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tritonrec.bench.loadgen import PointSettings
from tritonrec.bench.sweep import SweepSettings, run_sweep
from tritonrec.bench.traffic import TrafficSpec
from tritonrec.cli.train_cmd import check_fits, print_table, round_metrics, summary_rows
from tritonrec.client.ranking import RankingClient
from tritonrec.client.scorer import triton_scorer
from tritonrec.data.registry import prepare_dataset
from tritonrec.data.splits import EvalSet, FeatureBatch
from tritonrec.export.checkpoint_export import export_checkpoint
from tritonrec.export.ort_scorer import onnx_scorer
from tritonrec.metrics import Scorer, ranking_metrics, score_eval_set
from tritonrec.model.scoring import torch_scorer
from tritonrec.repository import build_repository, resolve_variants
from tritonrec.server import LocalTriton
from tritonrec.train.checkpoint import load_checkpoint
from tritonrec.train.loop import TrainConfig
from tritonrec.train.run import train_and_save

__all__ = ["run_demo"]

MODEL = "ranker_cpu"
STEPS = 6


def _step(n: int, text: str) -> None:
    print(f"[{n}/{STEPS}] {text}", flush=True)


def _with_progress(scorer: Scorer, total: int) -> Scorer:
    """Print how many users ``scorer`` has scored so far (one line, rewritten in place)."""
    done = 0

    def score(batch: FeatureBatch) -> npt.NDArray[np.floating[Any]]:
        nonlocal done
        scores = scorer(batch)
        done += len(batch.histories)
        print(f"\r      {done:,}/{total:,} users scored over gRPC", end="\n" if done >= total else "", flush=True)
        return scores

    return score


def _short_sweep(url: str, out: Path, quick: bool) -> dict[str, Any]:
    """A few closed-loop points on real Beauty traffic; the full report goes to ``out/sweep``."""
    settings = SweepSettings(
        model=MODEL,
        concurrencies=(1, 8) if quick else (1, 8, 32),
        requests=512,
        point=PointSettings(warmup_s=2.0, window_s=2.0, max_windows=4 if quick else 6),
    )
    report = run_sweep(url, TrafficSpec(), settings, out / "sweep", command="tritonrec demo (step 6)")
    best = max(report["closed"], key=lambda p: p["requests_per_second"])
    return {
        "sweep_best_concurrency": best["level"],
        "sweep_best_requests_per_second": best["requests_per_second"],
        "sweep_best_candidates_per_second": best["candidates_per_second"],
        "sweep_best_p99_ms": best["latency_ms"]["p99"],
        "sweep_report": str(out / "sweep" / "sweep.md"),
    }


def _serve_and_score(
    repository: Path, out: Path, test: EvalSet, concurrency: int, quick: bool
) -> tuple[npt.NDArray[np.float64], dict[str, Any]]:
    log_file = out / "tritonserver.log"
    with LocalTriton(repository, models=[MODEL], log_file=log_file) as server:
        print(f"      tritonserver ready on {server.grpc_url} (gRPC), log: {log_file}", flush=True)
        with RankingClient(server.grpc_url, model=MODEL) as client:
            before = client.statistics()  # warmup inferences are counted too
            started = time.perf_counter()
            scorer = _with_progress(triton_scorer(client, concurrency=concurrency), len(test))
            scores = score_eval_set(scorer, test, batch_size=1024)
            seconds = time.perf_counter() - started
            stats = client.statistics()
        served = {
            "grpc_requests": client.requests_sent,
            "triton_executions": stats["execution_count"] - before["execution_count"],
            "triton_inferences": stats["inference_count"] - before["inference_count"],
            "triton_seconds": round(seconds, 1),
            "triton_users_per_second": round(len(test) / seconds, 1),
        }
        _step(6, "short load sweep (closed loop, real Beauty traffic, 50-500 candidates) ...")
        served.update(_short_sweep(server.grpc_url, out, quick))
    return scores, served


def run_demo(args: argparse.Namespace) -> int:
    """Run the main job end to end and write ``summary.json``."""
    preset_name = "small" if args.quick else "base"
    checkpoint_dir = args.checkpoint or Path("artifacts") / f"demo-{preset_name}"
    started = time.perf_counter()
    _step(1, "loading Amazon Beauty (bundled) and sampling the evaluation negatives ...")
    data = prepare_dataset("beauty")
    if args.retrain or not (checkpoint_dir / "checkpoint.json").is_file():
        minutes = 2.0 if args.quick else 14.0
        _step(2, f"training preset {preset_name!r} for at most {minutes:g} min -> {checkpoint_dir}")
        config = TrainConfig(max_minutes=minutes, valid_users=3000 if args.quick else 5000)
        train_and_save(data, preset_name, config, checkpoint_dir)
    else:
        _step(2, f"reusing {checkpoint_dir} (pass --retrain to train again)")
    checkpoint = load_checkpoint(checkpoint_dir)
    check_fits(checkpoint.spec, data, checkpoint_dir)

    export_dir = checkpoint_dir / "onnx"
    _step(3, f"exporting ONNX with parity checks -> {export_dir}")
    export = export_checkpoint(checkpoint, data.test, export_dir, fp16=False)

    repository = args.out / "model_repository"
    _step(4, f"building the Triton model repository ({MODEL}) -> {repository}")
    build_repository(repository, checkpoint.spec, resolve_variants([MODEL]), export_dir=export_dir)

    _step(5, f"serving on the real tritonserver and scoring {len(data.test):,} test users over gRPC ...")
    eager = score_eval_set(torch_scorer(checkpoint.model), data.test)
    in_process = score_eval_set(onnx_scorer(export_dir / "model.onnx"), data.test)
    served_scores, served = _serve_and_score(repository, args.out, data.test, args.concurrency, args.quick)

    eager_metrics = ranking_metrics(eager, data.test.labels)
    triton_metrics = ranking_metrics(served_scores, data.test.labels)
    summary = {
        "dataset": data.info,
        "preset": preset_name,
        "checkpoint": str(checkpoint_dir),
        "n_parameters": checkpoint.metrics["n_parameters"],
        "train_seconds": checkpoint.metrics["train_seconds"],
        "test": round_metrics(eager_metrics),
        "test_triton": round_metrics(triton_metrics),
        "popularity_test": round_metrics(checkpoint.metrics["popularity_test"]),
        "ndcg@10_eager": round(eager_metrics["ndcg@10"], 4),
        "ndcg@10_triton": round(triton_metrics["ndcg@10"], 4),
        "auc_eager": round(eager_metrics["auc"], 4),
        "auc_triton": round(triton_metrics["auc"], 4),
        "max_abs_diff": float(np.max(np.abs(served_scores - eager))),
        "max_abs_diff_vs_onnx": float(np.max(np.abs(served_scores - in_process))),
        "export_parity": export["parity"],
        **served,
        "seconds": round(time.perf_counter() - started, 1),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    print_table(
        {
            "model, eager (test)": eager_metrics,
            "model, Triton gRPC (test)": triton_metrics,
            **summary_rows(checkpoint.metrics, model_row=False),
        }
    )
    print(
        f"Triton: {served['grpc_requests']:,} gRPC requests in {served['triton_executions']:,} model executions "
        f"({served['triton_users_per_second']:,.0f} users/s); max |Triton - eager| = {summary['max_abs_diff']:.2e}"
    )
    print(
        f"Sweep: best {served['sweep_best_requests_per_second']:,} req/s "
        f"({served['sweep_best_candidates_per_second']:,.0f} candidates/s) at concurrency "
        f"{served['sweep_best_concurrency']:g}, p99 {served['sweep_best_p99_ms']} ms; report: {served['sweep_report']}"
    )
    print(f"summary: {args.out / 'summary.json'}")
    return 0
