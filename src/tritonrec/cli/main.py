"""The ``tritonrec`` command: a table of commands, each in its own module, imported only when it runs.

Each ``tritonrec.cli.<module>`` (a ``*_cmd.py`` module; ``bench``, a package with one module per group of studies)
has ``register(parser)``, which adds the command's arguments beside its handler
(``parser.set_defaults(handler=...)``). Only the running command's module is imported, so a client-only install
runs ``tritonrec query`` without the training stack. Every error the library raises on purpose
(:class:`~tritonrec.errors.TritonRecError`) is printed as ``TypeName: message`` with exit code 1.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from tritonrec.errors import TritonRecError

__all__ = ["COMMANDS", "build_parser", "main"]

COMMANDS: dict[str, tuple[str, str]] = {
    "demo": (
        "demo_cmd",
        "the main job: train (or reuse) a ranker on Amazon Beauty, export it, serve it on the real Triton server "
        "and score the test users over gRPC",
    ),
    "train": ("train_cmd", "train a ranking model and write a checkpoint"),
    "evaluate": ("evaluate_cmd", "score a checkpoint or an exported ONNX file on a dataset split"),
    "data": ("data_cmd", "dataset tools (synth: generate a synthetic e-commerce dataset)"),
    "compress": ("compress_cmd", "compress a checkpoint (prune, distill, share, quantize-embeddings) into a new one"),
    "export": ("export_cmd", "export a checkpoint (onnx: FP32 + FP16, parity-checked; trt: a TensorRT engine)"),
    "quantize": (
        "quantize_cmd",
        "INT8 per calibrator, sensitivity per layer group, mixed precision, CPU INT8 forms and OpenVINO, judged by "
        "ranking quality and CPU speed",
    ),
    "repo": ("repo_cmd", "the Triton model repository (build: configs and artifacts of the serving variants)"),
    "serve": ("serve_cmd", "serve a model repository on the bundled tritonserver (CPU) until Ctrl-C"),
    "query": ("query_cmd", "rank one user's candidates on a running Triton ranker over gRPC"),
    "bench": ("bench", "benchmarks and reports (quality, sweep, perf-analyzer, locust, efficiency, ...)"),
    "select": (
        "select_cmd",
        "measure every runtime x precision x model the same way (quality and speed) and pick one for an SLA",
    ),
}
"""``{command: (module in tritonrec.cli, one-line help)}``."""


def _command_in(argv: Sequence[str]) -> str | None:
    """The command named on the line: the first word that is not an option of ``tritonrec`` itself."""
    return next((a for a in argv if not a.startswith("-")), None)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of ``tritonrec``, with the full arguments of ``command`` (the others only listed)."""
    parser = argparse.ArgumentParser(
        prog="tritonrec",
        description="Train, export, serve on NVIDIA Triton, and measure e-commerce ranking models.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            importlib.import_module(f"tritonrec.cli.{module}").register(command_parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``tritonrec`` command; returns the process exit code."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(_command_in(arguments)).parse_args(arguments)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(args.handler(args))
    except TritonRecError as e:
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
