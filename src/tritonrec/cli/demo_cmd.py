"""``tritonrec demo``: the main job (``tritonrec.demo``), its steps shown and its figures printed."""

from __future__ import annotations

import argparse
from pathlib import Path

from tritonrec.cli.common import Console, command_line, print_metrics

__all__ = ["register", "run_demo"]


def register(p: argparse.ArgumentParser) -> None:
    """The arguments of ``tritonrec demo``."""
    p.add_argument("--quick", action="store_true", help="small preset and a 2-minute budget")
    p.add_argument("--out", type=Path, default=Path("reports/demo"), help="report directory")
    p.add_argument(
        "--checkpoint", type=Path, default=None, help="checkpoint to reuse or write (default: artifacts/demo-<preset>)"
    )
    p.add_argument("--retrain", action="store_true", help="train even if the checkpoint exists")
    p.add_argument("--concurrency", type=int, default=16, help="gRPC requests in flight while scoring (default 16)")
    p.set_defaults(handler=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    """Run the main job end to end; print the quality table, the serving figures and where the summary is."""
    from tritonrec import demo

    settings = demo.DemoSettings(
        quick=args.quick,
        out_dir=args.out,
        checkpoint_dir=args.checkpoint,
        retrain=args.retrain,
        concurrency=args.concurrency,
        command=command_line(),
    )
    console = Console()
    result = demo.run_demo(settings, step=console.show, progress=console.show_in_place, training_bars=True)
    console.end_line()
    rows = {
        "model, eager (test)": result.eager,
        "model, Triton gRPC (test)": result.triton,
        "popularity (test)": result.trained.report.popularity_test,
    }
    print_metrics(rows)
    served, sweep = result.served, result.sweep
    print(
        f"Triton: {served.grpc_requests:,} gRPC requests in {served.executions:,} model executions "
        f"({served.users_per_second:,.0f} users/s); max |Triton - eager| = {result.max_abs_diff:.2e}"
    )
    spec = result.spec_triton
    print(
        f"The same model as a spec ({result.spec.written.path}), served as {result.spec.spec.name}_cpu: NDCG@10 "
        f"{spec['ndcg@10']:.4f}, AUC {spec['gauc']:.4f} (per user) over {spec['n_rows']:,} candidate rows; "
        f"max |served - eager| = {result.max_abs_diff_spec:.2e}"
    )
    print(
        f"Sweep: best {sweep.requests_per_second:,} req/s ({sweep.candidates_per_second:,.0f} candidates/s) at "
        f"concurrency {sweep.level:g}, p99 {sweep.p99_ms} ms; report: {result.sweep_report}"
    )
    chosen = next((r for r in result.selection["candidates"] if r["name"] == result.selection["chosen"]), None)
    measured = sum(1 for r in result.selection["candidates"] if r["measured"])
    if chosen is None:
        print(f"Pick (p99 <= 50 ms, AUC drop <= 0.0008, NDCG@10 drop <= 0.005): none of {measured} measured candidates")
    else:
        print(
            f"Pick (p99 <= 50 ms, AUC drop <= 0.0008, NDCG@10 drop <= 0.005): {chosen['name']} of {measured} measured, "
            f"{chosen['cand_per_s']['median']:,.0f} candidates/s, p99 {chosen['p99_ms']:.1f} ms, "
            f"NDCG@10 {chosen['ndcg@10']:.4f}; report: {result.selection_report}"
        )
    print(f"summary: {settings.out_dir / 'summary.json'}")
    return 0
