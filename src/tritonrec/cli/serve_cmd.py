"""``tritonrec serve``: a model repository on the bundled tritonserver (CPU) until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from tritonrec.cli.common import names
from tritonrec.errors import ConfigError

if TYPE_CHECKING:
    from tritonrec.serving.health import Watchdog

__all__ = ["register", "run_serve"]


def register(p: argparse.ArgumentParser) -> None:
    """The arguments of ``tritonrec serve``."""
    p.add_argument("--repo", type=Path, required=True, help="model repository folder")
    p.add_argument("--models", default=None, help="comma-separated models to load (default: all in the repository)")
    p.add_argument("--grpc-port", type=int, default=8001, help="gRPC port (default 8001)")
    p.add_argument("--http-port", type=int, default=8000, help="HTTP port (default 8000)")
    p.add_argument("--metrics-port", type=int, default=8002, help="Prometheus metrics port (default 8002)")
    p.add_argument("--log-file", type=Path, default=None, help="write the server log here (default: the terminal)")
    p.add_argument(
        "--probe-interval-s",
        type=float,
        default=10.0,
        help="run a real inference on every model this often and reload a model whose backend died (0 = off)",
    )
    p.set_defaults(handler=run_serve)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run_serve(args: argparse.Namespace) -> int:
    """Serve a repository on the bundled tritonserver until Ctrl-C or SIGTERM."""
    from tritonrec.serving.health import Watchdog
    from tritonrec.serving.server import LocalTriton

    if args.probe_interval_s < 0:
        raise ConfigError(f"--probe-interval-s must be >= 0, got {args.probe_interval_s}")
    models = names(args.models) if args.models else None
    server = LocalTriton(
        args.repo,
        grpc_port=args.grpc_port,
        http_port=args.http_port,
        metrics_port=args.metrics_port,
        log_file=args.log_file,
        models=models,
    )
    signal.signal(signal.SIGTERM, _raise_interrupt)
    watchdog = None
    try:
        server.start()
        print(
            f"serving {args.repo} ({', '.join(server.served_models)}): grpc {server.grpc_url}, "
            f"http {server.http_url}, metrics {server.metrics_url}; Ctrl-C stops",
            flush=True,
        )
        if args.probe_interval_s and server.served_models:  # an empty repository has nothing to probe
            watchdog = Watchdog(
                server.grpc_url, server.served_models, interval_s=args.probe_interval_s, repository=args.repo
            ).start()
            print(f"probing every model with a real inference every {args.probe_interval_s:g} s", flush=True)
        code = server.wait()
        print(f"tritonserver exited on its own with code {code}", file=sys.stderr)
        print(server.log_tail(20), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        _stop_watchdog(watchdog)  # before the server: it would probe (and try to reload) the models being unloaded
        print("stopping tritonserver ...", flush=True)
        stopped = server.stop()
        print(f"stopped (exit code {stopped})", flush=True)
        return 0
    finally:
        _stop_watchdog(watchdog)
        server.stop()


def _stop_watchdog(watchdog: Watchdog | None) -> None:
    """Stop probing (a second call does nothing) and print the reloads the watchdog made."""
    if watchdog is None or watchdog.stopped:
        return
    watchdog.stop()
    for r in watchdog.recoveries:
        print(f"reloaded {r.model} after: {r.error} (answering again after {r.recovered_s} s)", flush=True)
