"""The ``tritonrec`` command: one parser, subcommands dispatched to small modules.

Heavy imports (torch, onnx) happen inside the subcommands, so ``tritonrec --help`` stays fast and commands
that do not need the training stack never load it. Every error the library raises on purpose
(:class:`~tritonrec.errors.TritonRecError`) is printed as ``TypeName: message`` with exit code 1.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from tritonrec.errors import TritonRecError

__all__ = ["build_parser", "main"]

Handler = Callable[[argparse.Namespace], int]


def _add_data_source(p: argparse.ArgumentParser, *, required: bool = True) -> None:
    p.add_argument(
        "--dataset", required=required, choices=["beauty", "rees46", "synthetic"], help="which dataset to use"
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="folder with the dataset files (default: the copy bundled with tritonrec; for synthetic, a dataset "
        "generated in memory from the default config)",
    )
    p.add_argument("--history-len", type=int, default=50, help="history length L for sequence data (default 50)")
    p.add_argument("--seed", type=int, default=0, help="seed of the split, negatives and training (default 0)")
    p.add_argument("--skip-malformed", action="store_true", help="skip malformed input lines instead of failing")
    p.add_argument(
        "--valid-user-fraction",
        type=float,
        default=1.0,
        help="sequence data: share of users whose second-last item is held out for validation; the others also "
        "train on it (1.0 = classic leave-one-out, the default; test items are never trained on)",
    )


def _train_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("train", help="train a ranking model and write a checkpoint")
    _add_data_source(p)
    p.add_argument("--preset", default="base", help="model preset: small, base or large (default base)")
    p.add_argument("--out", type=Path, required=True, help="checkpoint directory to write")
    p.add_argument("--epochs", type=int, default=None, help="maximum epochs")
    p.add_argument("--max-minutes", type=float, default=None, help="training time budget in minutes")
    p.add_argument("--batch-size", type=int, default=None, help="users per step")
    p.add_argument("--lr", type=float, default=None, help="learning rate")
    p.add_argument("--valid-users", type=int, default=None, help="validate on this many users (0 = all)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _evaluate_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("evaluate", help="score a checkpoint or an exported ONNX file on a dataset split")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", type=Path, help="checkpoint directory (eager PyTorch)")
    source.add_argument("--onnx", type=Path, help="ONNX file written by `tritonrec export onnx` (ONNX Runtime, CPU)")
    _add_data_source(p)
    p.add_argument("--split", choices=["test", "valid"], default="test", help="which rows to score")
    p.add_argument("--limit", type=int, default=0, help="score only the first N users (0 = all)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _data_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("data", help="dataset tools")
    data_sub = p.add_subparsers(dest="data_command", required=True)
    synth = data_sub.add_parser("synth", help="generate a synthetic e-commerce dataset")
    synth.add_argument("--out", type=Path, required=True, help="directory to write")
    synth.add_argument("--n-items", type=int, default=20_000)
    synth.add_argument("--n-users", type=int, default=20_000)
    synth.add_argument("--n-categories", type=int, default=50)
    synth.add_argument("--n-brands", type=int, default=500)
    synth.add_argument("--history-len", type=int, default=50)
    synth.add_argument("--slate-size", type=int, default=20)
    synth.add_argument("--label-noise", type=float, default=1.0, help="smaller = more predictable clicks")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--json", action="store_true", help="print the summary as JSON")


def _demo_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "demo",
        help="the main job: train (or reuse) a ranker on Amazon Beauty, export it, serve it on the real Triton "
        "server and score the test users over gRPC",
    )
    p.add_argument("--quick", action="store_true", help="small preset and a 2-minute budget")
    p.add_argument("--out", type=Path, default=Path("reports/demo"), help="report directory")
    p.add_argument(
        "--checkpoint", type=Path, default=None, help="checkpoint to reuse or write (default: artifacts/demo-<preset>)"
    )
    p.add_argument("--retrain", action="store_true", help="train even if the checkpoint exists")
    p.add_argument("--concurrency", type=int, default=16, help="gRPC requests in flight while scoring (default 16)")


def _export_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("export", help="export a checkpoint")
    export_sub = p.add_subparsers(dest="export_command", required=True)
    onnx = export_sub.add_parser("onnx", help="FP32 (+ FP16) ONNX with dynamic batch, parity-checked")
    onnx.add_argument("--checkpoint", type=Path, required=True, help="checkpoint directory")
    _add_data_source(onnx)
    onnx.add_argument("--out", type=Path, required=True, help="output folder (model.onnx, export.json, ...)")
    onnx.add_argument("--no-fp16", action="store_true", help="skip the FP16 variant")
    onnx.add_argument(
        "--external-data", action="store_true", help="always store weights in model.onnx.data (default: past 2 GB)"
    )
    onnx.add_argument("--json", action="store_true", help="print the export report as JSON")


def _repo_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("repo", help="the Triton model repository")
    repo_sub = p.add_subparsers(dest="repo_command", required=True)
    build = repo_sub.add_parser(
        "build", help="write config.pbtxt files (+ artifacts) for the serving variants (see model_repository/README.md)"
    )
    source = build.add_mutually_exclusive_group(required=True)
    source.add_argument("--export", type=Path, help="folder written by `tritonrec export onnx`")
    source.add_argument("--checkpoint", type=Path, help="checkpoint to export first (needs --dataset)")
    _add_data_source(build, required=False)
    build.add_argument("--out", type=Path, required=True, help="repository folder to write")
    build.add_argument(
        "--variants",
        default="ranker_cpu",
        help="comma-separated: ranker_cpu, ranker_onnx, ranker_trt_fp16, ranker_trt_int8 (default ranker_cpu)",
    )
    build.add_argument("--configs-only", action="store_true", help="write config.pbtxt files only, no artifacts")
    build.add_argument("--max-batch-size", type=int, default=None, help="users per execution (default 64)")
    build.add_argument("--max-queue-delay-us", type=int, default=None, help="dynamic batcher delay (default 2000)")
    build.add_argument(
        "--cpu-threads",
        type=int,
        default=None,
        help="ranker_cpu ORT threads per instance (0 = cores / instances)",
    )
    build.add_argument("--instances", type=int, default=None, help="model instances per device (ranker_cpu: 2)")
    build.add_argument(
        "--ort-tensorrt", action="store_true", help="ranker_onnx: enable the TensorRT execution accelerator (FP16)"
    )


def _serve_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="serve a model repository on the bundled tritonserver (CPU) until Ctrl-C")
    p.add_argument("--repo", type=Path, required=True, help="model repository folder")
    p.add_argument("--models", default=None, help="comma-separated models to load (default: all in the repository)")
    p.add_argument("--grpc-port", type=int, default=8001, help="gRPC port (default 8001)")
    p.add_argument("--http-port", type=int, default=8000, help="HTTP port (default 8000)")
    p.add_argument("--metrics-port", type=int, default=8002, help="Prometheus metrics port (default 8002)")
    p.add_argument("--log-file", type=Path, default=None, help="write the server log here (default: the terminal)")


def _query_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("query", help="rank one user's candidates on a running Triton ranker over gRPC")
    p.add_argument("--url", default="127.0.0.1:8001", help="Triton gRPC host:port (default 127.0.0.1:8001)")
    p.add_argument("--model", default="ranker_cpu", help="model name (default ranker_cpu)")
    p.add_argument("--history", default="", help="comma-separated item ids, oldest first (may be empty)")
    p.add_argument("--candidates", required=True, help="comma-separated item ids to rank")
    p.add_argument("--top-k", type=int, default=None, help="only the best K (default: every candidate, by score)")
    p.add_argument("--timeout-s", type=float, default=5.0, help="deadline of the call, retries included")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _bench_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("bench", help="benchmarks and reports")
    bench_sub = p.add_subparsers(dest="bench_command", required=True)
    quality = bench_sub.add_parser("quality", help="train presets on datasets and write the quality report")
    quality.add_argument("--datasets", default="beauty,rees46,synthetic", help="comma-separated dataset names")
    quality.add_argument("--presets", default="small,base", help="comma-separated presets to train")
    quality.add_argument("--max-minutes", type=float, default=14.0, help="training budget per run")
    quality.add_argument("--out", type=Path, required=True, help="results folder (quality.json, quality.md)")
    quality.add_argument("--checkpoints", type=Path, default=Path("artifacts/quality"), help="checkpoint folder")
    quality.add_argument("--seed", type=int, default=0)
    quality.add_argument("--valid-user-fraction", type=float, default=1.0, help="see `tritonrec train --help`")
    contract = bench_sub.add_parser(
        "contract", help="history once per request vs once per candidate row: bytes and throughput, side by side"
    )
    _add_export_out(contract, "contract.json, contract.md")
    contract.add_argument("--candidates", type=int, default=200, help="candidates per user (default 200)")
    contract.add_argument("--requests", type=int, default=600, help="users sent through Triton per contract")
    contract.add_argument("--concurrency", type=int, default=8, help="gRPC requests in flight (default 8)")
    client = bench_sub.add_parser(
        "client", help="sync and asyncio RankingClient beside perf_analyzer on ranker_cpu, same requests, one run"
    )
    _add_export_out(client, "client.json, client.md")
    client.add_argument("--concurrency", default="1,8,32", help="comma-separated concurrencies (default 1,8,32)")
    client.add_argument("--requests", type=int, default=1500, help="requests per client and concurrency")
    client.add_argument(
        "--perf-analyzer",
        type=Path,
        default=None,
        help="perf_analyzer wrapper (bench/tools/install_perf_analyzer.sh prints it); omitted: clients only",
    )
    _bench_load_parsers(bench_sub)


def _add_export_out(p: argparse.ArgumentParser, results: str) -> None:
    p.add_argument("--export", type=Path, required=True, help="folder written by `tritonrec export onnx`")
    p.add_argument("--out", type=Path, required=True, help=f"results folder ({results})")


def _add_traffic(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scenario", type=Path, default=None, help="scenario TOML (bench/scenarios/): model and traffic")
    p.add_argument("--source", default="beauty", help="users: beauty (real data) or synthetic (default beauty)")
    p.add_argument("--candidates", default="50-500", help="candidates per request: N or LOW-HIGH (default 50-500)")
    p.add_argument(
        "--candidate-distribution",
        default="uniform",
        choices=["fixed", "uniform", "log_uniform"],
        help="how LOW-HIGH counts are drawn (default uniform)",
    )
    p.add_argument("--user-zipf", type=float, default=1.1, help="Zipf exponent over users (default 1.1)")


def _add_point(p: argparse.ArgumentParser) -> None:
    p.add_argument("--warmup-s", type=float, default=3.0, help="warm-up before each point (default 3 s)")
    p.add_argument("--window-s", type=float, default=3.0, help="measurement window (default 3 s)")
    p.add_argument("--max-windows", type=int, default=8, help="windows before giving up on stability (default 8)")
    p.add_argument("--stability-pct", type=float, default=15.0, help="spread allowed between windows (default 15)")


def _add_target(p: argparse.ArgumentParser) -> None:
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", default=None, help="a running Triton's gRPC endpoint, host:port")
    where.add_argument("--export", type=Path, default=None, help="serve this ONNX export locally (ranker_cpu)")


def _add_endpoint(p: argparse.ArgumentParser, out: str) -> None:
    _add_target(p)
    p.add_argument("--out", type=Path, required=True, help=f"results folder ({out})")
    p.add_argument(
        "--perf-analyzer",
        default=None,
        help="path of perf_analyzer, or 'auto' (.tools/perf_analyzer or PATH); omitted: ours only",
    )


def _bench_load_parsers(bench_sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sweep = bench_sub.add_parser(
        "sweep", help="closed-loop (concurrency) and open-loop (Poisson rate) sweep, perf_analyzer beside it"
    )
    _add_endpoint(sweep, "sweep.json, sweep.md, sweep.png")
    sweep.add_argument("--model", default=None, help="model name (default: the scenario's, else ranker_cpu)")
    sweep.add_argument("--concurrency", default="1,4,8,16,32", help="closed-loop concurrencies ('' for none)")
    sweep.add_argument("--rates", default="", help="open-loop request rates per second, comma-separated")
    sweep.add_argument("--requests", type=int, default=1024, help="distinct requests drawn (default 1024)")
    _add_traffic(sweep)
    _add_point(sweep)
    pa = bench_sub.add_parser(
        "perf-analyzer", help="NVIDIA perf_analyzer on real requests at each concurrency, beside our harness"
    )
    _add_endpoint(pa, "sweep.json, sweep.md, sweep.png")
    pa.add_argument("--model", default=None, help="model name (default: the scenario's, else ranker_cpu)")
    pa.add_argument("--concurrency", default="8,32", help="concurrencies (default 8,32)")
    pa.add_argument("--requests", type=int, default=1024, help="distinct requests drawn (default 1024)")
    _add_traffic(pa)
    _add_point(pa)
    locust = bench_sub.add_parser(
        "locust", help="one headless locust run of a scenario: CSV/HTML, SLA exit code, locust's own CPU cost"
    )
    _add_target(locust)
    locust.add_argument("--scenario", type=Path, required=True, help="scenario TOML (bench/scenarios/)")
    locust.add_argument("--processes", type=int, default=0, help="locust worker processes (default 0: one process)")
    locust.add_argument("--out", type=Path, required=True, help="results folder (locust.json, .md, CSV, HTML)")
    efficiency = bench_sub.add_parser(
        "efficiency", help="candidates/s through Triton over gRPC / in-process ONNX Runtime at the same batch sizes"
    )
    _add_export_out(efficiency, "efficiency.json, .md")
    efficiency.add_argument("--candidates", type=int, default=200, help="candidates per user (default 200)")
    efficiency.add_argument("--concurrency", default="4,8,16,32", help="concurrencies to find the best one")
    _add_point(efficiency)
    batching = bench_sub.add_parser(
        "batching", help="dynamic batching on/off and a few batcher settings, N=8 and N=200, side by side"
    )
    _add_export_out(batching, "batching.json, .md, .png")
    batching.add_argument("--candidates", default="8,200", help="candidate counts (default 8,200)")
    batching.add_argument("--concurrency", type=int, default=16, help="closed-loop concurrency (default 16)")
    batching.add_argument(
        "--perf-analyzer", default=None, help="also run perf_analyzer (a path, or 'auto') on each setting"
    )
    batching.add_argument("--settings", default="", help="comma-separated batcher settings (default: all)")
    _add_point(batching)


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``tritonrec`` command."""
    parser = argparse.ArgumentParser(
        prog="tritonrec",
        description="Train, evaluate and export e-commerce ranking models for NVIDIA Triton deployments.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)
    _train_parser(sub)
    _evaluate_parser(sub)
    _data_parser(sub)
    _demo_parser(sub)
    _export_parser(sub)
    _bench_parser(sub)
    _repo_parser(sub)
    _serve_parser(sub)
    _query_parser(sub)
    return parser


def _handler(args: argparse.Namespace) -> Handler:
    if args.command == "data":
        from tritonrec.cli import data_cmd

        return data_cmd.run_synth
    if args.command == "export":
        from tritonrec.cli import export_cmd

        return export_cmd.run_export_onnx
    if args.command == "bench":
        from tritonrec.cli import bench_cmd

        bench_handlers: dict[str, Handler] = {
            "quality": bench_cmd.run_quality,
            "contract": bench_cmd.run_contract,
            "client": bench_cmd.run_client,
            "sweep": bench_cmd.run_sweep,
            "perf-analyzer": bench_cmd.run_sweep,
            "efficiency": bench_cmd.run_efficiency,
            "locust": bench_cmd.run_locust,
            "batching": bench_cmd.run_batching,
        }
        return bench_handlers[args.bench_command]
    from tritonrec.cli import train_cmd

    if args.command in ("repo", "serve"):
        from tritonrec.cli import serve_cmd

        return serve_cmd.run_repo_build if args.command == "repo" else serve_cmd.run_serve
    if args.command == "query":
        from tritonrec.cli import query_cmd

        return query_cmd.run_query
    if args.command == "demo":
        from tritonrec.cli import demo_cmd

        return demo_cmd.run_demo
    handlers: dict[str, Handler] = {"train": train_cmd.run_train, "evaluate": train_cmd.run_evaluate}
    return handlers[args.command]


def main(argv: list[str] | None = None) -> int:
    """Run the ``tritonrec`` command; returns the process exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return _handler(args)(args)
    except TritonRecError as e:
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
