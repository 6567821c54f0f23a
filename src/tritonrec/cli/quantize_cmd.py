"""``tritonrec quantize``: INT8 (per calibrator), mixed precision, CPU INT8 forms and OpenVINO, judged on quality.

The bundled model is judged on its dataset's splits; a team's own model (``--spec``) on its spec's rows.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from tritonrec.cli.common import Console, add_data_source, command_line, numbers, prepare_from_args, print_json
from tritonrec.errors import ConfigError

if TYPE_CHECKING:
    from tritonrec.records import Report

__all__ = ["register", "run_quantize_cmd"]


def register(p: argparse.ArgumentParser) -> None:
    """The ``tritonrec quantize`` arguments."""
    from tritonrec.quantize.precisions import CALIBRATORS

    p.add_argument("--export", type=Path, required=True, help="folder written by `tritonrec export onnx`")
    p.add_argument(
        "--spec",
        type=Path,
        default=None,
        help="a model spec (TOML): quantize your own model (--export: its `export onnx --spec` folder), calibrated "
        "on its calibration rows and judged on its evaluation rows",
    )
    add_data_source(p, required=False)
    p.add_argument("--out", type=Path, required=True, help="output folder (variants, model_qdq.onnx, model_int8.*)")
    p.add_argument(
        "--calibrators",
        default=",".join(c.value for c in CALIBRATORS),
        help=f"comma-separated, of: {', '.join(c.value for c in CALIBRATORS)} (default: all)",
    )
    p.add_argument("--calibration-users", type=int, default=512, help="real training rows to calibrate on (512)")
    p.add_argument(
        "--calibration-rows", type=int, default=4096, help="with --spec: calibration rows drawn from the spec (4096)"
    )
    p.add_argument("--max-auc-drop", type=float, default=0.0008, help="quality budget: AUC drop vs FP32 (0.0008)")
    p.add_argument("--max-ndcg-drop", type=float, default=0.005, help="quality budget: NDCG@10 drop vs FP32 (0.005)")
    p.add_argument(
        "--batches",
        default=None,
        help="users per timed batch (1,32,256,1024); with --spec rows per timed batch, the last judged (256,4096)",
    )
    p.add_argument("--candidates", type=int, default=200, help="candidates per user when timing (200)")
    p.add_argument("--repeats", type=int, default=3, help="interleaved timing repeats per variant and batch (3)")
    p.add_argument("--serving-batch", type=int, default=256, help="users per batch the CPU goal is judged at (256)")
    p.add_argument("--no-openvino", action="store_true", help="skip OpenVINO/NNCF")
    p.add_argument(
        "--publish",
        default=None,
        help="with --spec: write this INT8 variant (a name of the report) as model_int8.* instead of the winner",
    )
    p.add_argument(
        "--publish-fallback",
        action="store_true",
        help="with --spec: when no variant wins, write the INT8 variant with the smallest quality loss as model_int8.*",
    )
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
    if args.spec is not None:
        return _quantize_spec(args, say)
    if args.dataset is None:
        raise ConfigError("name the data the export is judged on: --dataset (the bundled model), or --spec")
    config = QuantizeConfig(
        export_dir=args.export,
        out_dir=args.out,
        calibrators=parse_calibrators(args.calibrators),
        calibration_users=args.calibration_users,
        budget=Budget(max_auc_drop=args.max_auc_drop, max_ndcg_drop=args.max_ndcg_drop),
        speed=SpeedConfig(
            batches=tuple(int(b) for b in numbers(args.batches or "1,32,256,1024")),
            candidates=args.candidates,
            repeats=args.repeats,
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
    return _show(report, as_json=args.json)


def _quantize_spec(args: argparse.Namespace, say: Callable[[str], None]) -> int:
    from tritonrec.quantize.ort_quant import Calibrator
    from tritonrec.quantize.precisions import parse_calibrators
    from tritonrec.quantize.sensitivity import Budget
    from tritonrec.quantize.spec_quantize import (
        SPEC_QUANTIZE_REPORT,
        SpecQuantizeConfig,
        run_spec_quantize,
        spec_quantize_markdown,
    )
    from tritonrec.records import new_record, write_report
    from tritonrec.spec import load_spec

    calibrators = tuple(Calibrator(c.value) for c in parse_calibrators(args.calibrators) if not c.is_modelopt)
    config = SpecQuantizeConfig(
        export_dir=args.export,
        out_dir=args.out,
        calibrators=calibrators,
        calibration_rows=args.calibration_rows,
        budget=Budget(max_auc_drop=args.max_auc_drop, max_ndcg_drop=args.max_ndcg_drop),
        batches=tuple(int(b) for b in numbers(args.batches or "256,4096")),
        repeats=args.repeats,
        openvino=not args.no_openvino,
        publish=args.publish,
        fallback=args.publish_fallback,
        seed=args.seed,
    )
    # ONNX Runtime's calibrators and NNCF print to stdout; --json promises one object there
    with contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext():
        result = run_spec_quantize(load_spec(args.spec), config, progress=say)
        record = {**new_record(command_line()), **result.to_dict()}
        report = write_report(
            args.report_dir or args.out, SPEC_QUANTIZE_REPORT, record, spec_quantize_markdown(result, record)
        )
    return _show(report, as_json=args.json)


def _show(report: Report, *, as_json: bool) -> int:
    """Print the record as one JSON object, or the Markdown and where the report went."""
    if as_json:
        print_json(report.record)
        return 0
    print(report.markdown)
    print(f"report: {report.json_path}, {report.markdown_path}")
    return 0
