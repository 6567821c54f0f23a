"""``tritonrec quantize``: INT8 (per calibrator), mixed precision, CPU INT8 forms and OpenVINO, judged on Beauty."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from tritonrec.cli.common import Console, add_data_source, command_line, numbers, prepare_from_args, print_json

__all__ = ["register", "run_quantize_cmd"]


def register(p: argparse.ArgumentParser) -> None:
    """The ``tritonrec quantize`` arguments."""
    from tritonrec.quantize.precisions import CALIBRATORS

    p.add_argument("--export", type=Path, required=True, help="folder written by `tritonrec export onnx`")
    add_data_source(p)
    p.add_argument("--out", type=Path, required=True, help="output folder (variants, model_qdq.onnx, model_int8.*)")
    p.add_argument(
        "--calibrators",
        default=",".join(c.value for c in CALIBRATORS),
        help=f"comma-separated, of: {', '.join(c.value for c in CALIBRATORS)} (default: all)",
    )
    p.add_argument("--calibration-users", type=int, default=512, help="real training rows to calibrate on (512)")
    p.add_argument("--max-auc-drop", type=float, default=0.0008, help="quality budget: AUC drop vs FP32 (0.0008)")
    p.add_argument("--max-ndcg-drop", type=float, default=0.005, help="quality budget: NDCG@10 drop vs FP32 (0.005)")
    p.add_argument("--batches", default="1,32,256,1024", help="users per timed batch (1,32,256,1024)")
    p.add_argument("--candidates", type=int, default=200, help="candidates per user when timing (200)")
    p.add_argument("--repeats", type=int, default=3, help="interleaved timing repeats per variant and batch (3)")
    p.add_argument("--serving-batch", type=int, default=256, help="users per batch the CPU goal is judged at (256)")
    p.add_argument("--no-openvino", action="store_true", help="skip OpenVINO/NNCF")
    p.add_argument("--no-serve", action="store_true", help="skip serving the winner through Triton")
    p.add_argument("--eval-users", type=int, default=0, help="score only the first users of each split (0 = all)")
    p.add_argument("--report-dir", type=Path, default=None, help="also write precision.json/.md here")
    p.add_argument("--json", action="store_true", help="print one JSON object with the `variants` list")
    p.set_defaults(handler=run_quantize_cmd)


def run_quantize_cmd(args: argparse.Namespace) -> int:
    """Run the quantization study; print the table (or JSON)."""
    from tritonrec.quantize.precisions import parse_calibrators
    from tritonrec.quantize.report import write_precision_report
    from tritonrec.quantize.run import QuantizeConfig, run_quantize
    from tritonrec.quantize.sensitivity import Budget
    from tritonrec.quantize.served_parity import served_check
    from tritonrec.quantize.speed import SpeedConfig

    console = Console()
    say = (lambda _m: None) if args.json else console.show
    config = QuantizeConfig(
        export_dir=args.export,
        out_dir=args.out,
        calibrators=parse_calibrators(args.calibrators),
        calibration_users=args.calibration_users,
        budget=Budget(max_auc_drop=args.max_auc_drop, max_ndcg_drop=args.max_ndcg_drop),
        speed=SpeedConfig(
            batches=tuple(int(b) for b in numbers(args.batches)), candidates=args.candidates, repeats=args.repeats
        ),
        serving_batch=args.serving_batch,
        openvino=not args.no_openvino,
        eval_users=args.eval_users,
        seed=args.seed,
    )
    # ONNX Runtime's calibrators and NNCF print to stdout; --json promises one object there
    with contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext():
        data = prepare_from_args(args)
        result = run_quantize(data, config, progress=say)
        extra = {}
        winner = next((r.variant for r in result.rows if r.variant.name == result.winner), None)
        if winner is not None and not args.no_serve:
            rows = data.test.head(args.eval_users) if args.eval_users else data.test
            check = served_check(args.out, rows, variant=winner.name, runtime=winner.runtime, progress=say)
            extra["served"] = check.to_dict()
        report = write_precision_report(result, args.report_dir or args.out, command_line(), extra)
    if args.json:
        print_json(report.record)
        return 0
    print(report.markdown)
    print(f"report: {report.json_path}, {report.markdown_path}")
    return 0
