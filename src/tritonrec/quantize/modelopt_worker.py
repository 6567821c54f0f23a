"""Run NVIDIA ModelOpt's ONNX post-training quantization; executed as a script by ModelOpt's own interpreter.

``tritonrec.quantize.modelopt_ptq`` runs this file by path with the Python of ``.tools/modelopt`` (ModelOpt's
pins conflict with the project's: see ``export/tools/install_modelopt.sh``). It imports only numpy and modelopt,
never tritonrec. Arguments: ``--onnx SRC --calibration ROWS.npz --method max|entropy --out DST
[--exclude-nodes a,b]``. Calibration runs on ONNX Runtime's CPU provider; layers ModelOpt does not quantize
stay FP32 (``high_precision_dtype="fp32"``: the FP16 default would change the float parts too). On success it
prints one JSON line ``{"ok": true, "modelopt": VERSION}``; on failure ``{"ok": false, "error": ...}`` and exits 1.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback


def main() -> int:
    """Quantize as the arguments say; print the JSON result line."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--onnx", required=True)
    parser.add_argument("--calibration", required=True)
    parser.add_argument("--method", choices=["max", "entropy"], required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--exclude-nodes", default="")
    args = parser.parse_args()
    try:
        import modelopt
        import numpy as np
        from modelopt.onnx.quantization import quantize

        rows = np.load(args.calibration)
        excluded = [n for n in args.exclude_nodes.split(",") if n]
        quantize(
            args.onnx,
            quantize_mode="int8",
            calibration_data={name: rows[name] for name in rows.files},
            calibration_method=args.method,
            calibration_eps=["cpu"],
            high_precision_dtype="fp32",
            nodes_to_exclude=excluded or None,
            output_path=args.out,
            log_level="WARNING",
        )
    except Exception as e:  # noqa: BLE001 - every failure is reported to the caller as data
        print(json.dumps({"ok": False, "error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc()[-2000:]}))
        return 1
    print(json.dumps({"ok": True, "modelopt": modelopt.__version__}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
